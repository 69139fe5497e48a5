package imagehelper

import (
	"fmt"
	"os"
	"os/exec"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/userns"
)

// The helper's start in the pause's namespace without nsenter and
// unshare: userns.ForkJoined (ForkExec), from this process, does what the chain's
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

// forkJoined starts the helper in sns with userns.ForkJoined (see the
// top of this file): fd 3 the namespace, fd 4 the helper's binary, as
// the chain's. A nil child with a nil error: it cannot be forked (reason
// says why); the caller falls back to the chain.
func forkJoined(exe *os.File, ns Namespace, sns *storeNS, env []string, pdeathsig syscall.Signal) (child *userns.Child, reason string, err error) {
	const exePath = "/proc/self/fd/4"
	return userns.ForkJoined(userns.ForkJoin{
		NS:        sns.ns,
		Unshare:   unix.CLONE_NEWNS,
		Stdin:     ns.Stdin,
		Stdout:    ns.Stdout,
		Stderr:    ns.Stderr,
		Files:     []*os.File{sns.ns, exe},
		Path:      exePath,
		Args:      append([]string{exePath}, ns.Args...),
		Env:       env,
		Setsid:    ns.Setsid,
		Pdeathsig: pdeathsig,
	})
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
