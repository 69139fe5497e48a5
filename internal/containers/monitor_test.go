package containers

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/state"
)

// TestStateOf: a detached container's state is its monitor's as much as
// the runtime's; a monitor gone without an exit status was killed.
func TestStateOf(t *testing.T) {
	start, _, err := state.ProcStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	alive := &Proc{Pid: os.Getpid(), Start: start}
	dead := &Proc{Pid: os.Getpid(), Start: start + 1} // the pid, reused
	code := 0
	now := time.Now()
	for _, tc := range []struct {
		name    string
		st      string
		rec     Record
		want    string
		killed  bool
		running bool
	}{
		{"foreground, running", state.Running, Record{}, state.Running, false, true},
		{"foreground, exited", state.Stopped, Record{ExitCode: &code}, "exited", false, false},
		{"foreground, no runtime state", "", Record{}, "exited", false, false},
		{"detached, running", state.Running, Record{Monitor: alive}, state.Running, false, true},
		{"detached, being set up", "", Record{Monitor: alive}, state.Creating, false, true},
		{"detached, process ended, monitor at work", state.Stopped, Record{Monitor: alive, Started: &now}, Stopping, false, true},
		{"detached, runtime state gone, monitor at work", "", Record{Monitor: alive, Started: &now}, Stopping, false, true},
		{"detached, exited", "", Record{Monitor: dead, ExitCode: &code}, "exited", false, false},
		{"detached, monitor killed", state.Stopped, Record{Monitor: dead}, "exited", true, false},
		{"detached, monitor killed, runtime state collected", "", Record{Monitor: dead}, "exited", true, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, killed := stateOf(tc.st, tc.rec)
			if got != tc.want || killed != tc.killed {
				t.Errorf("stateOf(%q) = %q, %v; want %q, %v", tc.st, got, killed, tc.want, tc.killed)
			}
			if r := (Listed{State: got}).Running(); r != tc.running {
				t.Errorf("Running() = %v, want %v", r, tc.running)
			}
		})
	}
}

// TestMonitorConfigRoundTrip: what run -d writes is what the monitor (and
// each later start) reads.
func TestMonitorConfigRoundTrip(t *testing.T) {
	dir := t.TempDir()
	o := &lifecycle.RunOptions{}
	o.ID, o.Bundle, o.RootfsMode, o.Seccomp = "abc", dir, "direct", "default"
	o.Network.Mode, o.Network.Publish = "slirp4netns", []string{"8080:80"}
	o.NetFiles = &lifecycle.NetFiles{DNS: []string{"1.1.1.1"}}
	g := &lifecycle.Global{Root: "/r", CgroupManager: "auto"}
	c := newMonitorConfig(g, RunRequest{Rm: true, Helper: "/h"}, o, dir, []string{"vol"}, true, true)
	if c.LogDriver != LogDriverK8sFile {
		t.Errorf("default log driver %q", c.LogDriver)
	}
	if err := writeMonitorConfig(c); err != nil {
		t.Fatal(err)
	}
	got, err := readMonitorConfig(dir)
	if err != nil {
		t.Fatal(err)
	}
	if got.ID != "abc" || got.Root != "/r" || !got.Rm || !got.Terminal || !got.Interactive || got.Network.Publish[0] != "8080:80" || got.NetFiles.DNS[0] != "1.1.1.1" || got.AnonymousVolumes[0] != "vol" || got.Helper != "/h" {
		t.Errorf("read back %+v", got)
	}
	if _, err := os.Stat(filepath.Join(dir, "."+MonitorFile+".tmp")); err == nil {
		t.Error("the temporary file is left")
	}
}

// TestUpdateRecord: a record is changed in place, under its lock; a
// container without one (not sandy's) is an error.
func TestUpdateRecord(t *testing.T) {
	dir := t.TempDir()
	if err := updateRecord(dir, func(*Record) {}); err == nil {
		t.Error("no record: no error")
	}
	now := time.Now().UTC().Truncate(time.Second)
	if err := writeRecord(dir, Record{Image: "i", Created: now}); err != nil {
		t.Fatal(err)
	}
	if err := updateRecord(dir, func(r *Record) { r.Detached, r.StopSignal = true, "SIGINT" }); err != nil {
		t.Fatal(err)
	}
	r, ok, err := readRecord(dir)
	if err != nil || !ok || r.Image != "i" || !r.Detached || r.StopSignal != "SIGINT" || !r.Created.Equal(now) {
		t.Errorf("read back %+v, %v, %v", r, ok, err)
	}
}

func TestLingerWarning(t *testing.T) {
	doc, err := os.ReadFile("../../docs/troubleshooting.md")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(doc), "\n### lingering is off for USER\n") { // #lingering-is-off-for-user
		t.Error("docs/troubleshooting.md has no entry for the warning's anchor")
	}
	for _, tc := range []struct {
		name  string
		files []string
		warn  bool
	}{
		{"no systemd", nil, false},
		{"systemd, lingering off", []string{"/run/systemd/system"}, true},
		{"systemd, lingering on", []string{"/run/systemd/system", "/var/lib/systemd/linger/alice"}, false},
		{"another user lingers", []string{"/run/systemd/system", "/var/lib/systemd/linger/bob"}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			exists := func(p string) bool { return slices.Contains(tc.files, p) }
			w := lingerWarning("alice", exists)
			if (w != "") != tc.warn {
				t.Errorf("warning %q, want one: %v", w, tc.warn)
			}
			if w != "" && !strings.Contains(w, "loginctl enable-linger alice") {
				t.Errorf("warning without the fix: %q", w)
			}
		})
	}
}
