//go:build linux

package userns

import (
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// Joining a user namespace that has the maps already.
//
// Rootless podman runs its containers in the user namespace its pause
// process holds; sandy's image store has one too (imagehelper's pause),
// with the very maps a container without --userns or explicit maps gets
// (0 → the caller, 1..N → the subordinate ranges). Making a copy of it
// for each container costs newuidmap and newgidmap, two setuid programs,
// and the /bin/sh gate that waits for them (2-4 ms on 2 cores, and the
// init's Go start cannot begin before they end). With
// Config.SharedUserNS, Start forks the child into that namespace with
// ForkExec instead, as imagehelper starts its helpers there:
//
//	sandy ── fork ── child 1: setns(the shared user namespace), unshare
//	                 the config's other new namespaces (pid: for the
//	                 children), clone
//	                    └── child 2 (pid 1 of the new pid namespace, the
//	                        caller's child): stdio, the extra files and the
//	                        binary as Start lays them out, setsid and the
//	                        parent-death signal as asked, uid and gid 0
//	                        (the caller's own ids, mapped to 0), every
//	                        capability, execve /proc/self/fd/N init
//
// The child then starts as a new namespace's child would once its maps
// are written (GainCaps has nothing to do). Where the fork cannot do what
// the config asks (a cgroup to clone into, joins, stdio that is not a
// file, a detached start) or fails before the execve, Start makes a new
// user namespace as before: sharing is never a requirement.

// sharedUnforkable says why cfg cannot be started in cfg.SharedUserNS by
// the fork ("" when it may be tried).
func sharedUnforkable(cfg Config) string {
	switch {
	case cfg.Cloneflags&unix.CLONE_NEWUSER == 0:
		return "no new user namespace asked"
	case len(cfg.Join) > 0:
		return "namespaces to join"
	case cfg.CgroupFD >= 0:
		return "a cgroup to clone into"
	case cfg.Detach:
		return "a detached start"
	}
	return "" // and stdio that is not a file: ForkJoined says so
}

// startShared starts cfg's child in cfg.SharedUserNS (see the top of this
// file). A nil child with a nil error: it cannot be forked there (reason
// says why); the caller makes a new user namespace instead.
func startShared(cfg Config) (child *Child, reason string, err error) {
	if reason := sharedUnforkable(cfg); reason != "" {
		return nil, reason, nil
	}
	files := append(append([]*os.File(nil), cfg.ExtraFiles...), cfg.Exe)
	child, reason, err = ForkJoined(ForkJoin{
		NS:        cfg.SharedUserNS,
		Unshare:   cfg.Cloneflags &^ unix.CLONE_NEWUSER,
		Stdin:     cfg.Stdin,
		Stdout:    cfg.Stdout,
		Stderr:    cfg.Stderr,
		Files:     files,
		Path:      fmt.Sprintf("/proc/self/fd/%d", 3+len(files)-1),
		Args:      append([]string{"sandy"}, cfg.Args...),
		Env:       cfg.Env,
		Dir:       cfg.Dir,
		Setsid:    cfg.Setsid,
		Pdeathsig: cfg.Pdeathsig,
	})
	if child != nil {
		child.shared = true
	}
	return child, reason, err
}
