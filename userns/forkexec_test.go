//go:build linux

package userns

import (
	"errors"
	"io"
	"os"
	"os/signal"
	"runtime"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// simulate runs ops on a table of open fds (fd -> the original fd whose
// file it holds) and checks that each op's StatusFD holds the status
// pipe before the op.
func simulate(t *testing.T, src []int, ops []fdOp, status int) map[int]int {
	t.Helper()
	tab := map[int]int{}
	for _, f := range src {
		tab[f] = f
	}
	for i, op := range ops {
		if got, ok := tab[op.StatusFD]; !ok || got != status {
			t.Fatalf("op %d %+v: fd %d does not hold the status pipe (%v)", i, op, op.StatusFD, tab)
		}
		f, ok := tab[op.From]
		if !ok {
			t.Fatalf("op %d %+v: fd %d is not open", i, op, op.From)
		}
		tab[op.To] = f
	}
	return tab
}

func TestShuffleFDs(t *testing.T) {
	for _, tc := range []struct {
		name string
		src  []int
	}{
		{"in place", []int{0, 1, 2, 3, 4}},
		{"reversed", []int{4, 3, 2, 1, 0}},
		{"high", []int{10, 11, 12, 7, 9}},
		{"crossing", []int{1, 0, 2, 5, 3}},
		{"same file twice", []int{0, 0, 0, 8, 6}},
		{"status on a target", []int{2, 1, 0, 3, 0}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			cloexec := make([]bool, len(tc.src))
			cloexec[len(cloexec)-1], cloexec[len(cloexec)-2] = true, true
			status := tc.src[len(tc.src)-1]
			ops := shuffleFDs(tc.src, cloexec, status)
			tab := simulate(t, tc.src, ops, status)
			for i, f := range tc.src {
				if tab[i] != f {
					t.Errorf("fd %d holds %d, want %d (ops %+v)", i, tab[i], f, ops)
				}
			}
			// The last op on each target sets its close-on-exec flag.
			last := map[int]fdOp{}
			for _, op := range ops {
				last[op.To] = op
			}
			for i := range tc.src {
				if last[i].Cloexec != cloexec[i] {
					t.Errorf("fd %d: close-on-exec %v, want %v", i, last[i].Cloexec, cloexec[i])
				}
			}
		})
	}
}

// selfPlan is a plan that runs in this process's own namespaces with its
// own ids and no capability changes: it needs no privilege.
func selfPlan(t *testing.T, out *os.File, args ...string) *ForkPlan {
	t.Helper()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { null.Close() })
	return &ForkPlan{
		Files:        []*os.File{null, out, out},
		KeepBounding: ^uint64(0),
		LastCap:      40,
		Cwd:          "/",
		UID:          uint32(os.Getuid()),
		GID:          uint32(os.Getgid()),
		Umask:        0o022,
		Paths:        []string{"/nonexistent/sh", "/bin/sh"},
		Args:         args,
		Env:          []string{"FOO=bar", "PATH=/bin:/usr/bin"},
	}
}

func runPlan(t *testing.T, plan *ForkPlan, r *os.File) (string, error) {
	t.Helper()
	f, err := ForkExec(plan)
	if err != nil {
		return "", err
	}
	for _, fl := range plan.Files {
		if fl != r {
			fl.Close()
		}
	}
	if err := f.Release(); err != nil {
		return "", err
	}
	out, _ := io.ReadAll(r)
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(f.Pid, &ws, 0, nil); err != nil {
		t.Fatalf("wait4 %d: %v", f.Pid, err)
	}
	if ws.ExitStatus() != 0 {
		t.Fatalf("exit status %v, output %q", ws, out)
	}
	return string(out), nil
}

func TestForkExecRuns(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// The process is this test's child (wait4 above), in /, with the
	// plan's env, and only fds 0-2 open.
	plan := selfPlan(t, w, "sh", "-c", `echo "$FOO $(pwd) $(ls /proc/self/fd | wc -l) $(grep -c . /proc/self/status >/dev/null && awk '/^PPid/{print $2}' /proc/self/status)"`)
	plan.Cwd = "/tmp"
	out, err := runPlan(t, plan, r)
	if err != nil {
		t.Fatal(err)
	}
	// ls of /proc/self/fd sees 0, 1, 2 and its own directory fd; pwd
	// runs in a subshell, whose parent is the sh.
	f := strings.Fields(out)
	if len(f) < 3 || f[0] != "bar" || f[1] != "/tmp" || f[2] != "4" {
		t.Errorf("output %q, want bar /tmp 4 ...", out)
	}
}

// TestForkExecSignals: the process starts with no signal blocked and no
// handler, and a signal this process ignores stays ignored (execve keeps
// SIG_IGN, as every runtime's exec does): resetSignals sets the default
// action of the others and puts the ignored one back.
func TestForkExecSignals(t *testing.T) {
	signal.Ignore(syscall.SIGHUP)
	t.Cleanup(func() { signal.Reset(syscall.SIGHUP) })
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	plan := selfPlan(t, w, "cat", "/proc/self/status")
	plan.Paths = []string{"/bin/cat", "/usr/bin/cat"}
	out, err := runPlan(t, plan, r)
	if err != nil {
		t.Fatal(err)
	}
	masks := map[string]uint64{}
	for _, line := range strings.Split(strings.TrimSpace(out), "\n") {
		k, v, _ := strings.Cut(line, ":")
		if k != "SigBlk" && k != "SigIgn" && k != "SigCgt" {
			continue
		}
		m, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		if err != nil {
			t.Fatalf("%q: %v", line, err)
		}
		masks[k] = m
	}
	if m, ok := masks["SigBlk"]; !ok || m != 0 {
		t.Errorf("SigBlk %#x (%v), want 0: the process starts with signals blocked\n%s", m, ok, out)
	}
	if m, ok := masks["SigCgt"]; !ok || m != 0 {
		t.Errorf("SigCgt %#x (%v), want 0\n%s", m, ok, out)
	}
	if m := masks["SigIgn"]; m&(1<<(syscall.SIGHUP-1)) == 0 {
		t.Errorf("SigIgn %#x: SIGHUP, ignored by the caller, is not ignored in the process\n%s", m, out)
	}
}

func TestForkExecErrors(t *testing.T) {
	for _, tc := range []struct {
		name  string
		edit  func(*ForkPlan)
		step  ForkStep
		errno syscall.Errno
		value int32
	}{
		{"cwd missing", func(p *ForkPlan) { p.Cwd = "/nonexistent" }, StepChdir, syscall.ENOENT, 0},
		{"not found", func(p *ForkPlan) { p.Paths = []string{"/nonexistent/a", "/nonexistent/b"} }, StepExec, syscall.ENOENT, -1},
		{"denied then not found", func(p *ForkPlan) { p.Paths = []string{"/etc/passwd", "/nonexistent/b"} }, StepExec, syscall.EACCES, -1},
		{"a directory", func(p *ForkPlan) { p.Paths = []string{"/"} }, StepExec, syscall.EACCES, -1},
		{"rlimit above the hard limit", func(p *ForkPlan) {
			var own syscall.Rlimit
			_ = syscall.Getrlimit(syscall.RLIMIT_NOFILE, &own)
			p.Rlimits = []Rlimit{{Resource: syscall.RLIMIT_NOFILE, Soft: 10, Hard: 5}}
		}, StepRlimit, syscall.EINVAL, 0},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			plan := selfPlan(t, w, "sh", "-c", "true")
			tc.edit(plan)
			_, err = runPlan(t, plan, r)
			var fe *ForkError
			if !errors.As(err, &fe) {
				t.Fatalf("got %v, want a ForkError", err)
			}
			if fe.Step != tc.step || fe.Errno != tc.errno || fe.Value != tc.value {
				t.Errorf("got %+v, want step %d errno %v value %d", *fe, tc.step, tc.errno, tc.value)
			}
		})
	}
}

// A child that the caller abandons before Release exits on its own.
func TestForkExecAbandoned(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := ForkExec(selfPlan(t, w, "sh", "-c", "echo ran"))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	f.goW.Close()
	f.goW = nil
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(f.Pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(r)
	if ws.ExitStatus() != 1 || len(out) != 0 {
		t.Errorf("abandoned child: status %v, output %q; want exit 1, nothing run", ws, out)
	}
	f.status.Close()
	// As Release and Kill do once the child is gone: it no longer shares
	// this process's memory (the later tests' children must be able to
	// have their maps written, which needs this process dumpable).
	f.unshare()
}

// Many processes while other goroutines allocate and the GC runs: where
// the children share this process's memory (forkvm_amd64.go), neither
// side may disturb the other.
func TestForkExecUnderGC(t *testing.T) {
	stop := make(chan struct{})
	defer close(stop)
	for i := 0; i < 2; i++ {
		go func() {
			var keep [][]byte
			for {
				select {
				case <-stop:
					return
				default:
				}
				keep = append(keep, make([]byte, 4096))
				if len(keep) > 1000 {
					keep = nil
					runtime.GC()
				}
			}
		}()
	}
	for i := 0; i < 100; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		plan := selfPlan(t, w, "sh", "-c", "echo $FOO")
		if i%3 == 0 {
			plan.Cwd = "/nonexistent"
		}
		out, err := runPlan(t, plan, r)
		r.Close()
		var fe *ForkError
		switch {
		case i%3 == 0 && (!errors.As(err, &fe) || fe.Step != StepChdir):
			t.Fatalf("run %d: %v, want a chdir failure", i, err)
		case i%3 != 0 && (err != nil || out != "bar\n"):
			t.Fatalf("run %d: %q, %v", i, out, err)
		}
	}
}

// Kill after a successful Release leaves the process alone (exec's undo
// must not kill what ran, nor, after a failure, a pid that is reaped and
// may be another process's).
func TestForkExecKillAfterRelease(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	f, err := ForkExec(selfPlan(t, w, "sh", "-c", "sleep 0.2"))
	if err != nil {
		t.Fatal(err)
	}
	w.Close()
	if err := f.Release(); err != nil {
		t.Fatal(err)
	}
	f.Kill()
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(f.Pid, &ws, 0, nil); err != nil {
		t.Fatal(err)
	}
	if ws.Signaled() || ws.ExitStatus() != 0 {
		t.Errorf("the released process ended with %v: Kill reached it", ws)
	}
}

func TestForkExecUnshareSetsid(t *testing.T) {
	if os.Getuid() != 0 {
		testutil.Skip(t, "needs root: unshare(CLONE_NEWNS) needs CAP_SYS_ADMIN (run the unit tests as root, as hack/test.sh does)")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	// A mount namespace of its own (child 1's unshare), a session of its
	// own (child 2's setsid: the session id is its pid).
	plan := selfPlan(t, w, "sh", "-c", `echo $(readlink /proc/self/ns/mnt) $$ $(cut -d' ' -f6 /proc/$$/stat)`)
	plan.Unshare = syscall.CLONE_NEWNS
	plan.Setsid = true
	plan.Pdeathsig = syscall.SIGKILL
	out, err := runPlan(t, plan, r)
	if err != nil {
		t.Fatal(err)
	}
	own, err := os.Readlink("/proc/self/ns/mnt")
	if err != nil {
		t.Fatal(err)
	}
	f := strings.Fields(out)
	if len(f) != 3 || f[0] == own || !strings.HasPrefix(f[0], "mnt:") || f[1] != f[2] {
		t.Errorf("output %q: want a mount namespace other than %s, and the session id its pid", out, own)
	}
}
