package lifecycle

import (
	"context"
	"errors"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/cgroupv2"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/userns"
)

// applyRecorder is a cgroup manager of the given kind whose Apply reports
// the pid it was given and returns err.
type applyRecorder struct {
	cgroupv2.Manager
	kind  string
	calls chan int
	err   error
}

func (a *applyRecorder) Kind() string { return a.kind }

func (a *applyRecorder) Apply(_ context.Context, pid int) error {
	a.calls <- pid
	return a.err
}

// TestApplyEarly: a systemd scope for an init that is sandy's own child is
// asked for as soon as the init is started (startInit), not after its
// hello (joinCgroup), so that the D-Bus round trips with systemd run beside
// the init's start-up; joinCgroup then waits for it, reports its error,
// and refuses an init whose hello names another pid. A cgroupfs manager
// (the init is cloned into its cgroup) is left to joinCgroup.
func TestApplyEarly(t *testing.T) {
	sleep := exec.Command("sleep", "10")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleep.Process.Kill(); _ = sleep.Wait() })
	pid := sleep.Process.Pid

	for _, tc := range []struct {
		name  string
		kind  string
		early bool
	}{
		{"systemd", cgroupv2.KindSystemd, true},
		{"cgroupfs", cgroupv2.KindCgroupfs, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			rec := &applyRecorder{kind: tc.kind, calls: make(chan int, 1), err: errors.New("no scope")}
			cr := &creation{cg: rec, child: &userns.Child{Cmd: sleep}, c: &state.Container{}}
			cr.applyEarly(context.Background())
			if !tc.early {
				if cr.early != nil {
					t.Fatal("applyEarly started an Apply for a cgroupfs manager")
				}
				return
			}
			select {
			case got := <-rec.calls:
				if got != pid {
					t.Fatalf("Apply(%d), want the init's pid %d", got, pid)
				}
			case <-time.After(10 * time.Second):
				t.Fatal("applyEarly did not call Apply")
			}
			cr.c.Pid = pid
			if err := cr.joinCgroup(context.Background()); err == nil || !strings.Contains(err.Error(), "no scope") {
				t.Fatalf("joinCgroup after a failed early Apply: %v, want its error", err)
			}
			select {
			case <-rec.calls:
				t.Fatal("joinCgroup called Apply a second time")
			default:
			}
			cr.c.Pid = pid + 1
			if err := cr.joinCgroup(context.Background()); err == nil {
				t.Fatal("joinCgroup accepted a hello with another pid than the init was started as")
			}
			cr.undo.run() // waits for the Apply, which has ended
		})
	}
}

// joinRecorder also reports the pids Join was given.
type joinRecorder struct {
	applyRecorder
	joins chan int
}

func (j *joinRecorder) Join(_ context.Context, pid int) error {
	j.joins <- pid
	return nil
}

// TestRawFallbackRejoins: a raw child was put into its cgroup (rawMaps'
// startApply) and its program failed; the Go init that runs instead starts
// no second Apply (a systemd scope of that name exists: its sentinel
// keeps it) and joins the cgroup instead (rejoinCgroup). Without a
// cgroup applied to a raw child, nothing is joined there.
func TestRawFallbackRejoins(t *testing.T) {
	sleep := exec.Command("sleep", "10")
	if err := sleep.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = sleep.Process.Kill(); _ = sleep.Wait() })
	rec := &joinRecorder{applyRecorder: applyRecorder{kind: cgroupv2.KindSystemd, calls: make(chan int, 2)}, joins: make(chan int, 1)}
	cr := &creation{cg: rec, child: &userns.Child{Cmd: sleep}, c: &state.Container{}}
	if err := cr.rejoinCgroup(context.Background()); err != nil || len(rec.joins) != 0 {
		t.Fatalf("rejoinCgroup with no raw child's cgroup: %v, %d joins", err, len(rec.joins))
	}
	cr.startApply(context.Background(), 4242) // the raw child's
	if err := cr.early.wait(); err != nil {
		t.Fatal(err)
	}
	<-rec.calls
	cr.applyEarly(context.Background()) // the Go init's start
	cr.c.Pid = sleep.Process.Pid
	if err := cr.rejoinCgroup(context.Background()); err != nil {
		t.Fatal(err)
	}
	if got := <-rec.joins; got != sleep.Process.Pid {
		t.Fatalf("Join(%d), want the Go init's pid %d", got, sleep.Process.Pid)
	}
	select {
	case pid := <-rec.calls:
		t.Fatalf("a second Apply (pid %d) for the Go init", pid)
	case <-time.After(100 * time.Millisecond):
	}
	cr.undo.run()
}
