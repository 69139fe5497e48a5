package userns

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/idmap"
)

// Joining namespaces by path, with no helper left between the caller and
// the process it starts.
//
// setns(2) into a user namespace needs a single-threaded caller, and every
// Go process has several threads, so the joins are made by util-linux
// nsenter, which then execs sandy's spawn helper (SpawnRole) in the joined
// namespaces (network, IPC, UTS and pid namespaces alone, with no new user
// namespace, Start joins itself instead: setns.go):
//
//	caller ── nsenter --user=P --net=P ... --preserve-credentials [--no-fork]
//	             └─execve─ sandy _spawn FLAGS NFDS -- ARGS
//	                          └─clone(FLAGS|CLONE_PARENT)─ sandy ARGS  (the child the caller wants)
//	                          exits 0
//
// CLONE_PARENT makes the new process a child of the helper's parent, not
// of the helper: `sandy run` waits for it, and after `sandy create` exits
// it is reparented to the caller's subreaper (conmon, a containerd shim),
// which must reap the container's pid to learn its exit status.
// (util-linux unshare --fork, used before, stayed as the container's
// parent and reaped it itself, so conmon never saw the exit.)
//
// Without a pid namespace to join, nsenter runs with --no-fork and becomes
// the helper: the child is the caller's. A joined pid namespace is only
// the pid_for_children of the process that joined it, and the kernel
// refuses such a process new threads (clone(2): CLONE_THREAD, EINVAL), so
// no Go program may run in it: nsenter forks then, and its child, already
// inside the pid namespace, execs the helper. The new process is then
// nsenter's, and nsenter exits as soon as the helper has: Start makes the
// caller a child subreaper (PR_SET_CHILD_SUBREAPER) beforehand, so the
// orphan comes to the caller, and Child.Wait (or ReapChain) returns once
// it has.
//
// With no namespace to make (exec's exec init: every one is joined), the
// helper has nothing to clone, and nsenter execs the child itself, which
// saves a Go runtime start-up of the whole sandy binary (about 12 ms on
// this project's 2-core machine, a third of `sandy exec`):
//
//	caller ── nsenter --user=P ... --pid=P ...
//	             └─fork, execve─ sandy ARGS   (in the pid namespace)
//
// The child is then nsenter's until the caller, once the child has
// reported, kills nsenter (Child.Adopt): the orphan comes to the caller,
// its subreaper, as it comes after the helper's exit. nsenter sets no
// parent-death signal on its child (util-linux continue_as_child), and
// the child sets its own only after that. Without a pid namespace to join,
// nsenter --no-fork becomes the child, the caller's from the start.
//
// In every case nsenter and the helper stay in the caller's mount
// namespace, so /proc/self/fd/N, the sealed sandy binary, resolves in the
// host's /proc. The mount namespace is never joined here: after
// setns(CLONE_NEWNS) the next execve would resolve the binary inside the
// container.

// SpawnRole is the hidden argv[1] of the spawn helper.
const SpawnRole = "_spawn"

// spawnArgv builds the nsenter → spawn helper chain that starts exePath
// with args in the joined namespaces, plus the new ones in cloneflags.
// nfds fds from 3 on are passed through to the new process.
func spawnArgv(nsenter string, joins []Join, keepIDs bool, exePath string, cloneflags uintptr, nfds int, args []string) []string {
	argv := []string{nsenter}
	for _, j := range joins {
		argv = append(argv, "--"+j.Flag+"="+j.Path)
	}
	if keepIDs {
		argv = append(argv, "--preserve-credentials")
	}
	if !joinsPid(joins) {
		argv = append(argv, "--no-fork")
	}
	argv = append(argv, "--", exePath)
	if cloneflags != 0 {
		argv = append(argv, SpawnRole, "0x"+strconv.FormatUint(uint64(cloneflags), 16), strconv.Itoa(nfds), "--")
	}
	return append(argv, args...)
}

func joinsPid(joins []Join) bool {
	for _, j := range joins {
		if j.Flag == "pid" {
			return true
		}
	}
	return false
}

// SpawnMain is the spawn helper (argv: FLAGS NFDS -- ARGS...). It starts
// /proc/self/exe ARGS as a child of its own parent, in new namespaces for
// FLAGS, with fds 3..3+NFDS-1 and stdio passed through, and returns once
// the new process has exec'd.
func SpawnMain(args []string) error {
	if len(args) < 4 || args[2] != "--" {
		return errors.New("usage: sandy _spawn FLAGS NFDS -- ARGS")
	}
	flags, err := strconv.ParseUint(args[0], 0, 64)
	if err != nil {
		return fmt.Errorf("clone flags %q: %w", args[0], err)
	}
	nfds, err := strconv.Atoi(args[1])
	if err != nil || nfds < 0 {
		return fmt.Errorf("fd count %q: want a number", args[1])
	}
	files := make([]*os.File, nfds)
	for i := range files {
		files[i] = os.NewFile(uintptr(3+i), "fd"+strconv.Itoa(3+i))
	}
	cmd := &exec.Cmd{
		Path:       "/proc/self/exe",
		Args:       append([]string{"sandy"}, args[3:]...),
		Env:        os.Environ(),
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		ExtraFiles: files,
		// No Pdeathsig here: Go's child checks getppid() against the
		// forker's pid after setting it, which CLONE_PARENT makes differ, and
		// would kill itself. The child sets its own when it wants one.
		SysProcAttr: &syscall.SysProcAttr{Cloneflags: uintptr(flags) | unix.CLONE_PARENT},
	}
	if err := cmd.Start(); err != nil {
		return explainCloneError(err, uintptr(flags))
	}
	// Not ours to wait for: the kernel made it our parent's child.
	return nil
}

// WaitSpawned waits for pid, a child the spawn helper started for this
// process (so ours to reap), and returns its state.
func WaitSpawned(pid int) (*os.ProcessState, error) {
	p, err := os.FindProcess(pid)
	if err != nil {
		return nil, err
	}
	return p.Wait()
}

// CheckNamespaceFile opens path and checks that it is a namespace of the
// type clone flag want (CLONE_NEWNET, ...), with ioctl(NS_GET_NSTYPE)
// (ioctl_ns(2), Linux 4.11+), so that a wrong path is refused before
// anything starts rather than by setns(2) in a helper.
func CheckNamespaceFile(path string, want uintptr) error {
	f, err := os.Open(path)
	if err != nil {
		return err
	}
	defer f.Close()
	got, err := unix.IoctlRetInt(int(f.Fd()), unix.NS_GET_NSTYPE)
	if err != nil {
		return fmt.Errorf("%s is not a namespace file: %w", path, err)
	}
	if uintptr(got) != want {
		return fmt.Errorf("%s is a %s namespace, not a %s namespace", path, nsTypeName(uintptr(got)), nsTypeName(want))
	}
	return nil
}

func nsTypeName(flag uintptr) string {
	switch flag {
	case unix.CLONE_NEWUSER:
		return "user"
	case unix.CLONE_NEWNS:
		return "mount"
	case unix.CLONE_NEWPID:
		return "pid"
	case unix.CLONE_NEWNET:
		return "network"
	case unix.CLONE_NEWIPC:
		return "ipc"
	case unix.CLONE_NEWUTS:
		return "uts"
	case unix.CLONE_NEWCGROUP:
		return "cgroup"
	case unix.CLONE_NEWTIME:
		return "time"
	}
	return fmt.Sprintf("%#x", flag)
}

// RootIn reports whether uid is root (container id 0) in the user
// namespace of pid, from /proc/PID/uid_map (RootInMap); false when the
// map cannot be read.
func RootIn(pid, uid int) bool {
	path := "/proc/" + strconv.Itoa(pid) + "/uid_map"
	data, err := os.ReadFile(path)
	if err != nil {
		return false
	}
	uids, err := idmap.ParseProcMap(path, string(data))
	if err != nil {
		return false
	}
	return RootInMap(uids, uid)
}

// RootInMap reports whether uid is root in the user namespace whose uid
// map is uids, as idmap.ParseProcMap parses /proc/PID/uid_map: a range
// maps container id 0 to uid itself. Host uid 0 mapped to another id, or
// 0 reached inside a range that starts elsewhere, is not taken for it:
// sandy's own namespaces map 0 at the start of a range, and root with
// mappings of other host ids joins as it would anywhere else.
func RootInMap(uids []specs.LinuxIDMapping, uid int) bool {
	for _, m := range uids {
		if m.ContainerID == 0 && int64(m.HostID) == int64(uid) {
			return true
		}
	}
	return false
}
