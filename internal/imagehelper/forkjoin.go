package imagehelper

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"github.com/moby/sys/capability"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/userns"
)

// The helper's start in the pause's namespace without nsenter and
// unshare: userns.ForkExec, from this process, does what the chain's
// two C programs did (pause.go):
//
//	sandy ── fork ── child 1: setns(the pause's user namespace, by the fd
//	                 the pause checks pinned), unshare(CLONE_NEWNS)
//	                 (propagation unchanged), clone
//	                    └── child 2: fds 0-4 as the chain's (3: the
//	                        namespace, 4: the helper's binary), setsid
//	                        and the parent-death signal as asked, execve
//	                        /proc/self/fd/4 ARGS
//
// As with --preserve-credentials, the ids stay the caller's (0 of the
// namespace: the plan's "setresuid" sets the ids it has) and the helper
// keeps the full capability set the join gives; no seccomp, no cwd
// change (the plan's chdir is to "."), the caller's umask. The chain
// stays the fallback: for stdio that is not a file (the fork passes fds
// only) and for any failure of the fork before the helper's execve.

// forkPlanFor plans the helper's start in ns; reason says why it cannot
// be forked ("" when it can). files are the stdio files the plan opened
// (/dev/null for none): the caller closes them once it has started.
func forkPlanFor(exe *os.File, ns Namespace, sns *storeNS, env []string, pdeathsig syscall.Signal) (plan *userns.ForkPlan, opened []*os.File, reason string, err error) {
	var files []*os.File
	for i, s := range []any{ns.Stdin, ns.Stdout, ns.Stderr} {
		f, isFile := s.(*os.File)
		switch {
		case isFile && f != nil:
			files = append(files, f)
		case s == nil || isFile:
			flag := os.O_WRONLY
			if i == 0 {
				flag = os.O_RDONLY
			}
			null, err := os.OpenFile(os.DevNull, flag|unix.O_CLOEXEC, 0)
			if err != nil {
				closeAll(opened)
				return nil, nil, "", fmt.Errorf("opening %s: %w", os.DevNull, err)
			}
			opened = append(opened, null)
			files = append(files, null)
		default:
			closeAll(opened)
			return nil, nil, "stdio that is not a file", nil
		}
	}
	last, err := capability.LastCap()
	if err != nil {
		closeAll(opened)
		return nil, nil, "", fmt.Errorf("reading the highest capability number: %w", err)
	}
	umask, err := userns.Umask()
	if err != nil {
		closeAll(opened)
		return nil, nil, "", err
	}
	all := uint64(1)<<uint(last+1) - 1
	if last >= 63 {
		all = ^uint64(0)
	}
	// fd 3: the namespace; fd 4: the helper's binary (as the chain's).
	exePath := "/proc/self/fd/4"
	plan = &userns.ForkPlan{
		Joins:        []userns.NSJoin{{File: sns.ns, Flag: unix.CLONE_NEWUSER, Name: "user"}},
		Unshare:      unix.CLONE_NEWNS,
		Files:        append(files, sns.ns, exe),
		KeepBounding: all,
		LastCap:      int(last),
		Cwd:          ".",
		// The caller's uid and gid are 0 of the namespace (podman's map:
		// 0 → the caller): setresuid(0) keeps them.
		UID: 0, GID: 0,
		Effective: all, Permitted: all,
		Umask:     umask,
		Paths:     []string{exePath},
		Args:      append([]string{exePath}, ns.Args...),
		Env:       env,
		Setsid:    ns.Setsid,
		Pdeathsig: pdeathsig,
	}
	return plan, opened, "", nil
}

func closeAll(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// forkJoined starts the helper in sns with ForkExec (see the top of this
// file). A nil child with a nil error: it cannot be forked (reason says
// why); the caller falls back to the chain.
func forkJoined(exe *os.File, ns Namespace, sns *storeNS, env []string, pdeathsig syscall.Signal) (child *userns.Child, reason string, err error) {
	plan, opened, reason, err := forkPlanFor(exe, ns, sns, env, pdeathsig)
	if err != nil || reason != "" {
		return nil, reason, err
	}
	defer closeAll(opened)
	f, err := userns.ForkExec(plan)
	if err != nil {
		return nil, "the fork failed: " + err.Error(), nil
	}
	if err := f.Release(); err != nil {
		f.Kill()
		return nil, "the forked helper failed: " + err.Error(), nil
	}
	proc, err := os.FindProcess(f.Pid)
	if err != nil {
		f.Kill()
		return nil, "", fmt.Errorf("finding the forked helper %d: %w", f.Pid, err)
	}
	// The helper is this process's child: an exec.Cmd around it waits
	// and signals as the chain's did.
	cmd := &exec.Cmd{Path: plan.Paths[0], Args: plan.Args, Env: plan.Env, Process: proc}
	return &userns.Child{Cmd: cmd}, "", nil
}

// probeFork forks true(1) into ns as forkJoined starts a helper: nil
// when it ran and exited 0.
func probeFork(ns *os.File) error {
	path, err := exec.LookPath("true")
	if err != nil {
		return fmt.Errorf("probing the join: %w", err)
	}
	exe, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("probing the join: %w", err)
	}
	defer exe.Close()
	child, reason, err := forkJoined(exe, Namespace{}, &storeNS{ns: ns}, []string{}, 0)
	if err != nil {
		return fmt.Errorf("probing the join: %w", err)
	}
	if child == nil {
		return fmt.Errorf("probing the join: %s", reason)
	}
	if err := child.Cmd.Wait(); err != nil {
		return fmt.Errorf("probing the join: %s: %w", path, err)
	}
	return nil
}
