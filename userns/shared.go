//go:build linux

package userns

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
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
// the fork ("" when it can).
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
	for _, s := range []any{cfg.Stdin, cfg.Stdout, cfg.Stderr} {
		if _, ok := s.(*os.File); s != nil && !ok {
			return "stdio that is not a file"
		}
	}
	return ""
}

// sharedPlan is the ForkPlan of cfg's child in cfg.SharedUserNS; opened
// are the files it opened (/dev/null for missing stdio, also a nil
// *os.File), for the caller to close once the child runs.
func sharedPlan(cfg Config) (plan *ForkPlan, opened []*os.File, err error) {
	var files []*os.File
	for i, s := range []any{cfg.Stdin, cfg.Stdout, cfg.Stderr} {
		if f, ok := s.(*os.File); ok && f != nil {
			files = append(files, f)
			continue
		}
		flag := os.O_WRONLY
		if i == 0 {
			flag = os.O_RDONLY
		}
		null, err := os.OpenFile(os.DevNull, flag|unix.O_CLOEXEC, 0)
		if err != nil {
			closeFiles(opened)
			return nil, nil, err
		}
		opened = append(opened, null)
		files = append(files, null)
	}
	last, err := capability.LastCap()
	if err != nil {
		closeFiles(opened)
		return nil, nil, fmt.Errorf("reading the highest capability number: %w", err)
	}
	umask, err := Umask()
	if err != nil {
		closeFiles(opened)
		return nil, nil, err
	}
	all := uint64(1)<<uint(last+1) - 1
	if last >= 63 {
		all = ^uint64(0)
	}
	files = append(append(files, cfg.ExtraFiles...), cfg.Exe)
	exePath := fmt.Sprintf("/proc/self/fd/%d", len(files)-1)
	cwd := cfg.Dir
	if cwd == "" {
		cwd = "."
	}
	return &ForkPlan{
		Joins:        []NSJoin{{File: cfg.SharedUserNS, Flag: unix.CLONE_NEWUSER, Name: "user"}},
		Unshare:      cfg.Cloneflags &^ unix.CLONE_NEWUSER,
		Setsid:       cfg.Setsid,
		Pdeathsig:    cfg.Pdeathsig,
		Files:        files,
		KeepBounding: all,
		LastCap:      int(last),
		Cwd:          cwd,
		UID:          0, GID: 0, // the caller's own ids there (the namespace's maps make it 0)
		Effective: all, Permitted: all,
		Umask: umask,
		Paths: []string{exePath},
		Args:  append([]string{"sandy"}, cfg.Args...),
		Env:   cfg.Env,
	}, opened, nil
}

// startShared starts cfg's child in cfg.SharedUserNS (see the top of this
// file). A nil child with a nil error: it cannot be forked there (reason
// says why); the caller makes a new user namespace instead.
func startShared(cfg Config) (child *Child, reason string, err error) {
	if reason := sharedUnforkable(cfg); reason != "" {
		return nil, reason, nil
	}
	plan, opened, err := sharedPlan(cfg)
	if err != nil {
		return nil, "", err
	}
	defer closeFiles(opened)
	f, err := ForkExec(plan)
	if err != nil {
		return nil, "the fork failed: " + err.Error(), nil
	}
	if err := f.Release(); err != nil {
		f.Kill()
		return nil, "the forked child failed: " + err.Error(), nil
	}
	proc, err := os.FindProcess(f.Pid)
	if err != nil {
		_ = unix.Kill(f.Pid, unix.SIGKILL)
		var ws unix.WaitStatus
		_, _ = unix.Wait4(f.Pid, &ws, 0, nil)
		return nil, "", fmt.Errorf("finding the forked init %d: %w", f.Pid, err)
	}
	// The child is this process's own (CLONE_PARENT): an exec.Cmd
	// around it waits and signals as Start's own children.
	cmd := &exec.Cmd{Path: plan.Paths[0], Args: plan.Args, Env: plan.Env, Process: proc}
	return &Child{Cmd: cmd, shared: true}, "", nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}

// Umask reads this process's umask from /proc/self/status (umask(2)
// cannot read it without setting it, which would race the other
// threads' file creations).
func Umask() (int, error) {
	f, err := os.Open("/proc/self/status")
	if err != nil {
		return 0, fmt.Errorf("reading the umask: %w", err)
	}
	defer f.Close()
	return parseUmask(f)
}

func parseUmask(r io.Reader) (int, error) {
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if v, ok := strings.CutPrefix(sc.Text(), "Umask:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 8, 32)
			if err != nil {
				return 0, fmt.Errorf("reading the umask %q: %w", v, err)
			}
			return int(n), nil
		}
	}
	if err := sc.Err(); err != nil {
		return 0, fmt.Errorf("reading the umask: %w", err)
	}
	return 0, errors.New("reading the umask: no Umask line in /proc/self/status")
}
