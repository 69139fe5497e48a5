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
	"syscall"

	"github.com/moby/sys/capability"
	"golang.org/x/sys/unix"
)

// ForkJoin is a program to start as root of a user namespace the caller
// joins by fd, whose maps make the caller uid and gid 0 (the image
// store's, which its pause process holds): ForkExec's child 1 joins it
// and makes the new namespaces, child 2 (the caller's own child) execs
// the program with the caller's ids, 0 there, every capability, the
// caller's umask, no seccomp. The image helper and a container's init
// (Config.SharedUserNS) start this way.
type ForkJoin struct {
	NS      *os.File // the user namespace to join
	Unshare uintptr  // CLONE_NEW* flags of the namespaces to make after the join
	// Stdin, Stdout and Stderr must be files or nil (/dev/null); the
	// fork passes fds only.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	Files          []*os.File // fds 3, 4, ...
	Path           string     // execve's path: /proc/self/fd/N of one of Files
	Args, Env      []string   // Args[0] included
	Dir            string     // the working directory; "" for the caller's
	Setsid         bool
	Pdeathsig      syscall.Signal
}

// ForkJoined starts j and returns it once it has exec'd. A nil child with
// a nil error: it cannot be forked as asked, or the fork or the child
// failed before its execve (reason says which); the caller starts it
// another way.
func ForkJoined(j ForkJoin) (child *Child, reason string, err error) {
	stdio, opened, reason, err := stdioFiles(j.Stdin, j.Stdout, j.Stderr)
	if err != nil || reason != "" {
		return nil, reason, err
	}
	defer closeFiles(opened)
	last, err := capability.LastCap()
	if err != nil {
		return nil, "", fmt.Errorf("reading the highest capability number: %w", err)
	}
	umask, err := Umask()
	if err != nil {
		return nil, "", err
	}
	all := uint64(1)<<uint(last+1) - 1
	if last >= 63 {
		all = ^uint64(0)
	}
	cwd := j.Dir
	if cwd == "" {
		cwd = "."
	}
	plan := &ForkPlan{
		Joins:        []NSJoin{{File: j.NS, Flag: unix.CLONE_NEWUSER, Name: "user"}},
		Unshare:      j.Unshare,
		Setsid:       j.Setsid,
		Pdeathsig:    j.Pdeathsig,
		Files:        append(stdio, j.Files...),
		KeepBounding: all,
		LastCap:      int(last),
		Cwd:          cwd,
		// The caller's uid and gid are 0 of the namespace (podman's map:
		// 0 → the caller): setresuid(0) keeps them.
		UID: 0, GID: 0,
		Effective: all, Permitted: all,
		Umask: umask,
		Paths: []string{j.Path},
		Args:  j.Args,
		Env:   j.Env,
	}
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
		return nil, "", fmt.Errorf("finding the forked child %d: %w", f.Pid, err)
	}
	// The child is this process's own (CLONE_PARENT): an exec.Cmd
	// around it waits and signals as Start's own children.
	cmd := &exec.Cmd{Path: j.Path, Args: j.Args, Env: j.Env, Process: proc}
	return &Child{Cmd: cmd}, "", nil
}

// stdioFiles turns stdio into the fork's fds 0-2: files as they are, nil
// (also a nil *os.File) as /dev/null, opened here (opened, for the caller
// to close once the child runs); anything else is a reason not to fork.
func stdioFiles(stdin io.Reader, stdout, stderr io.Writer) (files, opened []*os.File, reason string, err error) {
	for i, s := range []any{stdin, stdout, stderr} {
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
				closeFiles(opened)
				return nil, nil, "", fmt.Errorf("opening %s: %w", os.DevNull, err)
			}
			opened = append(opened, null)
			files = append(files, null)
		default:
			closeFiles(opened)
			return nil, nil, "stdio that is not a file", nil
		}
	}
	return files, opened, "", nil
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
