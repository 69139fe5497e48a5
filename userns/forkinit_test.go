//go:build linux

package userns

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// openHow is an open_how for openat2(2) in the root: a directory, never
// a magic link, every symlink resolved as if the root were /.
func openHow(flags uint64) []byte {
	how := unix.OpenHow{Flags: flags | unix.O_PATH | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	return unsafe.Slice((*byte)(unsafe.Pointer(&how)), unsafe.Sizeof(how))
}

// testProgram mounts a root like a container init's: rootfs bound on
// itself, proc, a read-only /proc/sys, a masked path that does not
// exist, the hostname, then pivot_root.
func testProgram(rootfs string) []Op {
	const root, tmp = 1, 2
	dir := openHow(unix.O_DIRECTORY | unix.O_NOFOLLOW)
	return []Op{
		{What: "making / rslave", Trap: unix.SYS_MOUNT, Args: [6]Arg{Str(""), Str("/"), Str(""), Val(unix.MS_REC | unix.MS_SLAVE)}},
		{What: "binding the rootfs", Trap: unix.SYS_MOUNT, Args: [6]Arg{Str(rootfs), Str(rootfs), Str(""), Val(unix.MS_BIND | unix.MS_REC)}},
		{What: "opening the root", Trap: unix.SYS_OPENAT, Args: [6]Arg{Val(atFDCWD), Str(rootfs), Val(unix.O_PATH | unix.O_DIRECTORY | unix.O_CLOEXEC)}, Out: root},
		{What: "opening /proc", Trap: unix.SYS_OPENAT2, Args: [6]Arg{Slot(root), Str("/proc"), Buf(dir), Val(uintptr(len(dir)))}, Out: tmp},
		{What: "mounting proc", Trap: unix.SYS_MOUNT, Args: [6]Arg{Str("proc"), FDPath(tmp), Str("proc"), Val(unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)}},
		{What: "closing /proc", Trap: unix.SYS_CLOSE, Args: [6]Arg{Slot(tmp)}},
		{What: "opening /nonexistent", Trap: unix.SYS_OPENAT2, Args: [6]Arg{Slot(root), Str("/nonexistent"), Buf(dir), Val(uintptr(len(dir)))}, Out: tmp, Tolerate: syscall.ENOENT, SkipErr: 2},
		{What: "masking /nonexistent", Trap: unix.SYS_MOUNT, Args: [6]Arg{Str("tmpfs"), FDPath(tmp), Str("tmpfs"), Val(unix.MS_RDONLY)}},
		{What: "closing /nonexistent", Trap: unix.SYS_CLOSE, Args: [6]Arg{Slot(tmp)}},
		{What: "opening /proc/sys", Trap: unix.SYS_OPENAT2, Args: [6]Arg{Slot(root), Str("/proc/sys"), Buf(dir), Val(uintptr(len(dir)))}, Out: tmp},
		{What: "binding /proc/sys", Trap: unix.SYS_MOUNT, Args: [6]Arg{FDPath(tmp), FDPath(tmp), Str(""), Val(unix.MS_BIND | unix.MS_REC)}},
		{What: "closing /proc/sys", Trap: unix.SYS_CLOSE, Args: [6]Arg{Slot(tmp)}},
		{What: "reopening /proc/sys", Trap: unix.SYS_OPENAT2, Args: [6]Arg{Slot(root), Str("/proc/sys"), Buf(dir), Val(uintptr(len(dir)))}, Out: tmp},
		{What: "remounting /proc/sys read-only", Trap: TrapRemount, Args: [6]Arg{FDPath(tmp), Val(unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC)}},
		{What: "closing /proc/sys", Trap: unix.SYS_CLOSE, Args: [6]Arg{Slot(tmp)}},
		{What: "setting the hostname", Trap: unix.SYS_SETHOSTNAME, Args: [6]Arg{Str("rawinit"), Val(7)}},
		{What: "entering the root", Trap: unix.SYS_FCHDIR, Args: [6]Arg{Slot(root)}},
		{What: "pivot_root", Trap: unix.SYS_PIVOT_ROOT, Args: [6]Arg{Str("."), Str(".")}},
		{What: "making the old root rslave", Trap: unix.SYS_MOUNT, Args: [6]Arg{Str(""), Str("."), Str(""), Val(unix.MS_REC | unix.MS_SLAVE)}},
		{What: "detaching the old root", Trap: unix.SYS_UMOUNT2, Args: [6]Arg{Str("."), Val(unix.MNT_DETACH)}},
		{What: "entering /", Trap: unix.SYS_CHDIR, Args: [6]Arg{Str("/")}},
	}
}

// selfMaps writes the single-id map of this process's ids into pid's
// user namespace, as the kernel lets an unprivileged caller.
func selfMaps(pid int) error {
	for _, f := range []struct{ name, data string }{
		{"setgroups", "deny"},
		{"uid_map", fmt.Sprintf("0 %d 1", os.Geteuid())},
		{"gid_map", fmt.Sprintf("0 %d 1", os.Getegid())},
	} {
		if err := os.WriteFile(fmt.Sprintf("/proc/%d/%s", pid, f.name), []byte(f.data), 0); err != nil {
			return err
		}
	}
	return nil
}

func initPlan(t *testing.T, out *os.File, program []Op, script string) *ForkPlan {
	t.Helper()
	plan := selfPlan(t, out, "sh", "-c", script)
	plan.UID, plan.GID = 0, 0
	plan.Paths = []string{"/bin/sh"}
	plan.Cloneflags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWUTS | unix.CLONE_NEWIPC
	plan.Program = program
	plan.Pdeathsig = syscall.SIGKILL
	return plan
}

func forkInitOutput(t *testing.T, plan *ForkPlan, r *os.File) (string, error) {
	t.Helper()
	return forkInitWith(t, plan, r, selfMaps)
}

// forkInitWith runs plan with ForkInit and setUp, and returns what the
// process wrote to r; it must exit 0.
func forkInitWith(t *testing.T, plan *ForkPlan, r *os.File, setUp func(pid int) error) (string, error) {
	t.Helper()
	f, err := ForkInit(plan, setUp)
	if err != nil {
		return "", err
	}
	for _, fl := range plan.Files {
		if fl != r {
			fl.Close()
		}
	}
	if err := f.AwaitReady(); err != nil {
		return "", err
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

func TestForkInitRunsProgram(t *testing.T) {
	if err := unix.Unshare(0); err != nil {
		t.Fatal(err)
	}
	rootfs := testutil.MakeRootfs(t, t.TempDir())
	if err := os.WriteFile(filepath.Join(rootfs, "marker"), []byte("in the root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	script := `cat /marker; hostname; id -u; echo pid $$; ls /proc/self/fd | tr '\n' ' '; echo; cat /proc/self/mountinfo`
	out, err := forkInitOutput(t, initPlan(t, w, testProgram(rootfs), script), r)
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EINVAL) && os.Geteuid() != 0 {
			testutil.Skip(t, "no user namespaces here: %v", err)
		}
		t.Fatal(err)
	}
	lines := strings.Split(out, "\n")
	if len(lines) < 6 {
		t.Fatalf("output %q", out)
	}
	for i, want := range []string{"in the root", "rawinit", "0", "pid 1", "0 1 2 3 "} {
		if lines[i] != want {
			t.Errorf("line %d: %q, want %q (output %q)", i, lines[i], want, out)
		}
	}
	var proc, sys bool
	for _, l := range lines[5:] {
		f := strings.Fields(l)
		if len(f) < 6 {
			continue
		}
		switch f[4] {
		case "/proc":
			proc = true
		case "/proc/sys":
			sys = strings.HasPrefix(f[5], "ro,")
		case "/nonexistent":
			t.Errorf("a mount for a path that does not exist: %q", l)
		}
	}
	if !proc || !sys {
		t.Errorf("want /proc mounted and /proc/sys read-only (proc %v, sys %v): %q", proc, sys, out)
	}
}

func TestForkInitProgramError(t *testing.T) {
	rootfs := testutil.MakeRootfs(t, t.TempDir())
	program := testProgram(rootfs)
	program[3].Args[1] = Str("/not-here") // opening /proc
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	_, err = forkInitOutput(t, initPlan(t, w, program, "true"), r)
	var pe *ProgramError
	if !errors.As(err, &pe) || pe.Index != 3 || pe.What != "opening /proc" || !errors.Is(err, unix.ENOENT) {
		t.Fatalf("got %v (%#v), want op 3, opening /proc, ENOENT", err, pe)
	}
}

func TestForkInitExecError(t *testing.T) {
	rootfs := testutil.MakeRootfs(t, t.TempDir())
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	plan := initPlan(t, w, testProgram(rootfs), "true")
	plan.Paths = []string{"/bin/not-here"}
	_, err = forkInitOutput(t, plan, r)
	var fe *ForkError
	if !errors.As(err, &fe) || fe.Step != StepExec || fe.Errno != unix.ENOENT {
		t.Fatalf("got %v, want StepExec ENOENT", err)
	}
}

func TestFDPath(t *testing.T) {
	for _, fd := range []uintptr{0, 7, 10, 123, 4294967295} {
		var b [32]byte
		fdPath(&b, fd)
		got := string(b[:strings.IndexByte(string(b[:]), 0)])
		if want := fmt.Sprintf("/proc/self/fd/%d", fd); got != want {
			t.Errorf("fdPath(%d) = %q, want %q", fd, got, want)
		}
	}
}

func TestPrepareProgramChecks(t *testing.T) {
	for _, tc := range []struct {
		name string
		op   Op
	}{
		{"slot out of range", Op{What: "x", Trap: unix.SYS_CLOSE, Args: [6]Arg{Slot(MaxSlots)}}},
		{"out slot out of range", Op{What: "x", Trap: unix.SYS_GETPID, Out: MaxSlots}},
		{"skips past the end", Op{What: "x", Trap: unix.SYS_GETPID, SkipOK: 2}},
		{"three fd paths", Op{What: "x", Trap: unix.SYS_MOUNT, Args: [6]Arg{FDPath(1), FDPath(1), FDPath(1)}}},
	} {
		if _, _, err := prepareProgram([]Op{tc.op}); err == nil {
			t.Errorf("%s: accepted", tc.name)
		}
	}
}

// holdUserNS starts a process that holds a user namespace mapping the
// caller to root (as the image store's pause process does) and opens it.
func holdUserNS(t *testing.T) *os.File {
	t.Helper()
	holder := exec.Command("unshare", "--user", "--map-root-user", "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = holder.Process.Kill(); _ = holder.Wait() })
	pid := strconv.Itoa(holder.Process.Pid)
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		// unshare(1) execs sleep once its namespace is made and mapped.
		if b, err := os.ReadFile("/proc/" + pid + "/comm"); err == nil && string(b) == "sleep\n" {
			break
		}
		if time.Now().After(end) {
			t.Fatal("unshare did not exec sleep")
		}
	}
	ns, err := os.Open("/proc/" + pid + "/ns/user")
	if err != nil {
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) {
			testutil.Skip(t, "cannot open the holder's user namespace: %v", err)
		}
		t.Fatal(err)
	}
	t.Cleanup(func() { ns.Close() })
	return ns
}

// TestForkInitJoined: in a user namespace that has its maps (the image
// store's), the init runs its program as root there, pid 1 of a new pid
// namespace, in mount, uts and ipc namespaces of its own, and execs as
// in a new user namespace; a program's failure is its op's.
func TestForkInitJoined(t *testing.T) {
	ns := holdUserNS(t)
	want, _ := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(ns.Fd())))
	rootfs := testutil.MakeRootfs(t, t.TempDir())
	if err := os.WriteFile(filepath.Join(rootfs, "marker"), []byte("in the root\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	joined := func(program []Op, script string, w *os.File) *ForkPlan {
		plan := initPlan(t, w, program, script)
		plan.Unshare, plan.Cloneflags = plan.Cloneflags&^unix.CLONE_NEWUSER, 0
		plan.Joins = []NSJoin{{File: ns, Flag: unix.CLONE_NEWUSER, Name: "user"}}
		return plan
	}
	run := func(plan *ForkPlan, r *os.File) (string, error) {
		t.Helper()
		setUpPid := 0
		out, err := forkInitWith(t, plan, r, func(pid int) error { setUpPid = pid; return nil })
		if err == nil && setUpPid <= 0 {
			t.Errorf("the set-up ran for pid %d", setUpPid)
		}
		return out, err
	}

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	script := `cat /marker; hostname; id -u; echo pid $$; readlink /proc/self/ns/user; grep -c . /proc/self/uid_map`
	out, err := run(joined(testProgram(rootfs), script, w), r)
	if err != nil {
		t.Fatal(err)
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	wantLines := []string{"in the root", "rawinit", "0", "pid 1", want, "1"}
	if len(lines) != len(wantLines) {
		t.Fatalf("output %q, want the lines %q", out, wantLines)
	}
	for i := range wantLines {
		if lines[i] != wantLines[i] {
			t.Errorf("line %d: %q, want %q (output %q)", i, lines[i], wantLines[i], out)
		}
	}

	// The handles (ForkPlan.Handles): child 2's network and pid
	// namespaces, in this process, although child 2 is not dumpable.
	r3, w3, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r3.Close()
	plan := joined(testProgram(rootfs), "readlink /proc/self/ns/net; readlink /proc/self/ns/pid", w3)
	plan.Unshare |= unix.CLONE_NEWNET
	plan.Handles, plan.HandlesPid = true, true
	f, err := ForkInit(plan, nil)
	if err != nil {
		t.Fatal(err)
	}
	w3.Close()
	if f.NetNS == nil || f.PidNS == nil {
		t.Fatalf("handles: net %v, pid %v", f.NetNS, f.PidNS)
	}
	var handles []string
	for _, h := range []*os.File{f.NetNS, f.PidNS} {
		l, err := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(h.Fd())))
		if err != nil {
			t.Fatal(err)
		}
		handles = append(handles, l)
		h.Close()
	}
	if err := f.AwaitReady(); err != nil {
		t.Fatal(err)
	}
	if err := f.Release(); err != nil {
		t.Fatal(err)
	}
	seen, _ := io.ReadAll(r3)
	var ws syscall.WaitStatus
	_, _ = syscall.Wait4(f.Pid, &ws, 0, nil)
	if got := strings.Fields(string(seen)); len(got) != 2 || got[0] != handles[0] || got[1] != handles[1] {
		t.Errorf("the child's namespaces %q, the handles %q", got, handles)
	}
	if own, _ := os.Readlink("/proc/self/ns/net"); handles[0] == own {
		t.Errorf("the network namespace handle is this process's own: %s", own)
	}

	program := testProgram(rootfs)
	program[3].Args[1] = Str("/not-here") // opening /proc
	r2, w2, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r2.Close()
	_, err = run(joined(program, "true", w2), r2)
	var pe *ProgramError
	if !errors.As(err, &pe) || pe.Index != 3 || !errors.Is(err, unix.ENOENT) {
		t.Fatalf("got %v, want op 3 (opening /proc) ENOENT", err)
	}

	// A set-up that fails: the child is killed and reaped, the error is
	// the set-up's.
	setUpErr := errors.New("no cgroup")
	if f, err := ForkInit(joined(testProgram(rootfs), "true", w2), func(int) error { return setUpErr }); !errors.Is(err, setUpErr) {
		if f != nil {
			f.Kill()
		}
		t.Errorf("a failed set-up: %v, want its error", err)
	}
	for name, edit := range map[string]func(*ForkPlan){
		"clone flags": func(p *ForkPlan) { p.Cloneflags = unix.CLONE_NEWNS },
		"no pid ns":   func(p *ForkPlan) { p.Unshare &^= unix.CLONE_NEWPID },
		"new user ns": func(p *ForkPlan) { p.Unshare |= unix.CLONE_NEWUSER },
		"as root":     func(p *ForkPlan) { p.JoinAsRoot = true },
		"no program":  func(p *ForkPlan) { p.Program = nil },
	} {
		plan := joined(testProgram(rootfs), "true", w2)
		edit(plan)
		if f, err := ForkInit(plan, nil); err == nil {
			f.Kill()
			t.Errorf("%s: ForkInit accepted the plan", name)
		}
	}
}
