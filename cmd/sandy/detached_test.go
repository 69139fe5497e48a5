package main

import (
	"strings"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/containers"
	sandyformat "github.com/sandy-rt/sandy/internal/format"
)

func TestParseSince(t *testing.T) {
	now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for _, tc := range []struct {
		in   string
		want time.Time
		bad  bool
	}{
		{in: "10m", want: now.Add(-10 * time.Minute)},
		{in: "1h30m", want: now.Add(-90 * time.Minute)},
		{in: "2024-05-06T07:00:00Z", want: time.Date(2024, 5, 6, 7, 0, 0, 0, time.UTC)},
		{in: "2024-05-06T07:00:00.5+02:00", want: time.Date(2024, 5, 6, 5, 0, 0, 5e8, time.UTC)},
		{in: "1714979289", want: time.Unix(1714979289, 0)},
		{in: "1714979289.25", want: time.Unix(1714979289, 25e7)},
		{in: "yesterday", bad: true},
		{in: "-5", bad: true},
	} {
		got, err := parseSince(tc.in, now)
		switch {
		case tc.bad && err == nil:
			t.Errorf("%q: no error", tc.in)
		case !tc.bad && err != nil:
			t.Errorf("%q: %v", tc.in, err)
		case !tc.bad && !got.Equal(tc.want):
			t.Errorf("%q: got %v, want %v", tc.in, got, tc.want)
		}
	}
}

func TestStatusColumn(t *testing.T) {
	now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	ago := now.Add(-5 * time.Second)
	code := 137
	for _, tc := range []struct {
		c    containers.Listed
		want string
	}{
		{containers.Listed{State: "running"}, "Up"},
		{containers.Listed{State: "running", Started: &ago}, "Up 5 seconds ago"},
		{containers.Listed{State: "exited", ExitCode: &code, Finished: &ago}, "Exited (137) 5 seconds ago"},
		{containers.Listed{State: "exited", MonitorGone: true}, "Exited (unknown: its monitor was killed)"},
		{containers.Listed{State: "stopping"}, "Stopping"},
		{containers.Listed{State: "exited"}, "Exited"},
	} {
		if got := status(now, tc.c); got != tc.want {
			t.Errorf("status(%+v) = %q, want %q", tc.c, got, tc.want)
		}
	}
}

// TestAgo: podman's (go-units') words for how long ago.
func TestAgo(t *testing.T) {
	now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	for d, want := range map[time.Duration]string{
		0: "Less than a second ago", time.Second: "1 second ago", 59 * time.Second: "59 seconds ago",
		90 * time.Second: "About a minute ago", 5 * time.Minute: "5 minutes ago", 70 * time.Minute: "About an hour ago",
		3 * time.Hour: "3 hours ago", 72 * time.Hour: "3 days ago", 21 * 24 * time.Hour: "3 weeks ago",
		100 * 24 * time.Hour: "3 months ago", 800 * 24 * time.Hour: "2 years ago",
	} {
		if got := ago(now, now.Add(-d)); got != want {
			t.Errorf("ago(%v) = %q, want %q", d, got, want)
		}
	}
}

// TestPsTemplate: ps --format TEMPLATE with podman's field names, the
// table form's header, and an unknown field refused before any output.
func TestPsTemplate(t *testing.T) {
	now := time.Date(2024, 5, 6, 7, 8, 9, 0, time.UTC)
	code := 3
	c := containers.Listed{ID: "0123456789abcdef0123", Names: []string{"web"}, Image: "localhost/bb:d", Command: []string{"httpd", "-f"},
		Created: now.Add(-5 * time.Minute), State: "exited", ExitCode: &code, Finished: ptrTime(now.Add(-time.Minute)),
		Ports: []containers.PortMapping{{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Protocol: "tcp"}}, Labels: map[string]string{"team": "ci"}}
	rows := []psRow{newPsRow(now, c, false)}
	for _, tc := range []struct{ format, want string }{
		{"{{.ID}} {{.Names}} {{.State}} {{.ExitCode}}", "0123456789ab web exited 3\n"},
		{`{{.Status}}\t{{.Ports}}`, "Exited (3) About a minute ago\t127.0.0.1:8080->80/tcp\n"},
		{`{{.RunningFor}} {{.Label "team"}} {{.Command}}`, "5 minutes ago ci httpd -f\n"},
		{"table {{.ID}}\t{{.Names}}", "CONTAINER ID  NAMES\n0123456789ab  web\n"},
	} {
		tmpl, err := sandyformat.Parse(tc.format, psRow{})
		if err != nil {
			t.Fatalf("%s: %v", tc.format, err)
		}
		var b strings.Builder
		if err := sandyformat.Write(&b, tmpl, rows, psHeaders); err != nil {
			t.Fatal(err)
		}
		if b.String() != tc.want {
			t.Errorf("--format %q: %q, want %q", tc.format, b.String(), tc.want)
		}
	}
	if _, err := sandyformat.Parse("{{.Nope}}", psRow{}); err == nil {
		t.Error("an unknown field was accepted")
	}
}

func ptrTime(t time.Time) *time.Time { return &t }
