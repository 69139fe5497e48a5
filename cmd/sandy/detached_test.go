package main

import (
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/containers"
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
