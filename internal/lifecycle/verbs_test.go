//go:build linux

package lifecycle

import (
	"bytes"
	"encoding/json"
	"errors"
	"io"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/state"
)

// fakeContainer saves a container state in a fresh state root: its init is
// pid (start: its start time, 0 for a stopped one), its cgroup state
// cgroup (nil: none saved).
func fakeContainer(t *testing.T, id string, pid int, start uint64, cgroup string) *Global {
	t.Helper()
	g := &Global{Root: filepath.Join(t.TempDir(), "state"), Stderr: io.Discard}
	root, err := state.OpenRoot(g.Root)
	if err != nil {
		t.Fatal(err)
	}
	c := &state.Container{ID: id, Bundle: "/b", Rootfs: "/b/rootfs", Pid: pid, PidStart: start,
		Created: time.Date(2026, 12, 5, 1, 2, 3, 4, time.UTC)}
	if cgroup != "" {
		c.Cgroup = json.RawMessage(cgroup)
	}
	lock, err := root.Create(c)
	if err != nil {
		t.Fatal(err)
	}
	lock.Unlock()
	return g
}

// sleeper starts a process that stands in for a running container's init.
func sleeper(t *testing.T) (int, uint64) {
	t.Helper()
	cmd := exec.Command("sleep", "100")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	start, _, err := state.ProcStart(cmd.Process.Pid)
	if err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid, start
}

// deadPid returns the pid of a process that has exited and been reaped.
func deadPid(t *testing.T) int {
	t.Helper()
	cmd := exec.Command("true")
	if err := cmd.Run(); err != nil {
		t.Fatal(err)
	}
	return cmd.Process.Pid
}

// TestKillStopped: kill --all of a stopped container succeeds, as with runc
// (containerd's CRI sends it while it stops a pod), with any signal, 0
// included, whatever its cgroup state; kill without --all fails and says
// what to do, with runc's words "container not running": containerd's
// shim (pkg/process checkKillError) takes an error with them as "process
// already finished", and any other as a failed kill, which fails the
// pod's StopPodSandbox when the container exited just before (critest's
// attach and HostNetwork specs).
func TestKillStopped(t *testing.T) {
	for _, cg := range []string{"", `{"kind":"none"}`, `{"kind":"cgroupfs","path":"/sys/fs/cgroup/sandy-test-gone"}`} {
		g := fakeContainer(t, "c1", deadPid(t), 1, cg)
		for _, sig := range []unix.Signal{0, unix.SIGKILL, unix.SIGTERM} {
			if err := Kill(g, "c1", sig, true); err != nil {
				t.Errorf("cgroup %q: kill --all c1 %d: %v, want success", cg, sig, err)
			}
		}
		for _, sig := range []unix.Signal{0, unix.SIGKILL} {
			err := Kill(g, "c1", sig, false)
			if err == nil || !strings.Contains(err.Error(), "is stopped") || !strings.Contains(err.Error(), "sandy delete c1") {
				t.Errorf("cgroup %q: kill c1 %d: %v, want an error that says it is stopped and what to do", cg, sig, err)
			}
			if !errors.Is(err, state.ErrNotRunning) || !strings.Contains(err.Error(), "container not running") {
				t.Errorf("cgroup %q: kill c1 %d: %v, want state.ErrNotRunning (\"container not running\", what containerd's shim matches)", cg, sig, err)
			}
		}
	}
}

// TestKillSignalZero: signal 0 checks that the init can be signalled and
// sends nothing.
func TestKillSignalZero(t *testing.T) {
	pid, start := sleeper(t)
	g := fakeContainer(t, "c1", pid, start, `{"kind":"none"}`)
	if err := Kill(g, "c1", 0, false); err != nil {
		t.Fatalf("kill c1 0: %v", err)
	}
	if !state.Alive(pid, start) {
		t.Fatal("signal 0 killed the init")
	}
}

// TestVerbErrorsSayWhatToDo: a verb that needs a live container, on a
// stopped one or one still being created, names the verb and the way out;
// update on a state without a cgroup says so (not "unexpected end of JSON
// input").
func TestVerbErrorsSayWhatToDo(t *testing.T) {
	stopped := fakeContainer(t, "c1", deadPid(t), 1, `{"kind":"none"}`)
	creating := fakeContainer(t, "c1", 0, 0, "")
	pid, start := sleeper(t)
	noCgroup := fakeContainer(t, "c1", pid, start, "")
	ctx := t.Context()
	tests := []struct {
		name string
		g    *Global
		fn   func(g *Global) error
		want []string
	}{
		{"ps stopped", stopped, func(g *Global) error { return Ps(g, "c1", "json", nil, io.Discard) }, []string{"is stopped", "ps needs", "sandy delete c1"}},
		{"pause stopped", stopped, func(g *Global) error { return Pause(ctx, g, "c1", true) }, []string{"is stopped", "pause needs", "sandy delete c1"}},
		{"resume creating", creating, func(g *Global) error { return Pause(ctx, g, "c1", false) }, []string{"still being created", "resume needs", "sandy delete c1"}},
		{"update stopped", stopped, func(g *Global) error { return Update(ctx, g, "c1", &specs.LinuxResources{}, false) }, []string{"is stopped", "update needs"}},
		{"events creating", creating, func(g *Global) error { return Events(ctx, g, "c1", time.Second, true, io.Discard) }, []string{"still being created", "events needs"}},
		{"kill creating", creating, func(g *Global) error { return Kill(g, "c1", unix.SIGTERM, false) }, []string{"still being created", "kill needs"}},
		{"update without cgroup state", noCgroup, func(g *Global) error { return Update(ctx, g, "c1", &specs.LinuxResources{}, false) }, []string{"no cgroup in its state", "update needs one", "create it again"}},
		{"resume running", noCgroup, func(g *Global) error { return Pause(ctx, g, "c1", false) }, []string{"not paused", "sandy pause c1"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.fn(tt.g)
			if err == nil {
				t.Fatal("no error")
			}
			if strings.Contains(err.Error(), "JSON") {
				t.Errorf("error %q is about JSON", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// TestListJSONKeys: list --format json prints runc's containerState keys
// in runc's order (runc list.go), ociVersion first.
func TestListJSONKeys(t *testing.T) {
	g := fakeContainer(t, "c1", deadPid(t), 1, `{"kind":"none"}`)
	var buf bytes.Buffer
	if err := List(g, &buf, "json", false); err != nil {
		t.Fatal(err)
	}
	var list []json.RawMessage
	if err := json.Unmarshal(buf.Bytes(), &list); err != nil || len(list) != 1 {
		t.Fatalf("list: %s (%v)", buf.Bytes(), err)
	}
	dec := json.NewDecoder(bytes.NewReader(list[0]))
	var keys []string
	_, _ = dec.Token() // {
	for dec.More() {
		k, _ := dec.Token()
		keys = append(keys, k.(string))
		var v json.RawMessage
		if err := dec.Decode(&v); err != nil {
			t.Fatal(err)
		}
	}
	// annotations is left out when empty, as runc's omitempty.
	want := "ociVersion id pid status bundle rootfs created owner"
	if got := strings.Join(keys, " "); got != want {
		t.Fatalf("keys %q, want %q", got, want)
	}
	var e listEntry
	_ = json.Unmarshal(list[0], &e)
	if e.Version != specs.Version || e.Status != "stopped" || e.Pid != 0 || e.Bundle != "/b" {
		t.Fatalf("entry %+v", e)
	}
}

// TestFilterPs: ps ID ARGS keeps ps(1)'s header and the container's lines,
// found by the PID column wherever the options put it.
func TestFilterPs(t *testing.T) {
	out := "UID          PID    PPID  C STIME TTY          TIME CMD\n" +
		"root           1       0  0 10:00 ?        00:00:01 /sbin/init\n" +
		"1001        4242       1  0 10:00 ?        00:00:00 sleep 100\n" +
		"1001        4243    4242  0 10:00 ?        00:00:00 sh -c x 4242\n"
	var buf bytes.Buffer
	if err := filterPs([]byte(out), []int{4242, 7}, &buf); err != nil {
		t.Fatal(err)
	}
	want := "UID          PID    PPID  C STIME TTY          TIME CMD\n1001        4242       1  0 10:00 ?        00:00:00 sleep 100\n"
	if buf.String() != want {
		t.Fatalf("got\n%s\nwant\n%s", buf.String(), want)
	}
	if err := filterPs([]byte("USER CMD\nroot init\n"), []int{1}, io.Discard); err == nil || !strings.Contains(err.Error(), "no PID column") {
		t.Fatalf("no PID column: %v", err)
	}
}
