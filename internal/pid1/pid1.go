// Package pid1 is `sandy run --init`'s init: the container's pid 1 when
// the command should not be. It starts the command, passes every signal
// it gets on to it, reaps every process that ends in the container (the
// orphans reparented to pid 1 too), and exits with the command's status
// (128+N for a signal N), as tini and catatonit do.
//
// The runtime binds its own binary at /run/sandy-init (the sealed copy
// when the user can write sandy's file, so nothing in the container can
// change the host's); sandy's main starts here when argv[0] names it.
// A command that is pid 1 itself gets no default signal actions from the
// kernel: a SIGTERM it does not handle is ignored, which is the trap
// --init avoids.
//
// The container's init execs it with ReadyFDFlag=N first in its
// arguments: N is the write end of the host's exec fifo, which `start`
// (and `run -d`) reads until EOF. Main closes it once its handlers are
// in place (signal.Notify), before it starts the command, so that
// nothing reports the container started while a signal could still kill
// this Go program (its runtime exits 2 on a SIGTERM that comes before
// Notify) or be dropped (pid_namespaces(7): none reaches a pid 1 before
// it has a handler). See initproc's handOn.
package pid1

import (
	"errors"
	"fmt"
	"os"
	"os/signal"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Name is argv[0]'s base name that selects Main.
const Name = "sandy-init"

// ReadyFDFlag=N, first in the arguments, is an fd to close once the
// signal handlers are in place.
const ReadyFDFlag = "--ready-fd"

// Main runs args (after an optional ReadyFDFlag=N, then an optional "--")
// as the child and returns the exit status to exit with.
func Main(args []string) int {
	// First: every signal from here on is queued for the loop below.
	sigs := make(chan os.Signal, 32)
	signal.Notify(sigs)
	signal.Ignore(syscall.SIGTTIN, syscall.SIGTTOU)
	args, ready, err := parseArgs(args)
	if ready >= 0 {
		// The handlers exist: the host's start may return.
		_ = unix.Close(ready)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandy-init: %v\n", err)
		return 125
	}
	path, err := lookPath(args[0])
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandy-init: %v\n", err)
		if errors.Is(err, os.ErrPermission) {
			return 126
		}
		return 127
	}
	pid, err := syscall.ForkExec(path, args, &syscall.ProcAttr{
		Env:   os.Environ(),
		Files: []uintptr{0, 1, 2},
	})
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandy-init: starting %s: %v\n", args[0], err)
		return 126
	}
	for {
		s := <-sigs
		switch s {
		case syscall.SIGURG: // the Go runtime's own preemption signal
			continue
		case syscall.SIGCHLD:
		default:
			_ = unix.Kill(pid, s.(syscall.Signal))
			continue
		}
		if code, done := reap(pid); done {
			return code
		}
	}
}

// parseArgs splits off ReadyFDFlag=N (ready is -1 without it) and a
// "--" from the command.
func parseArgs(args []string) (cmd []string, ready int, err error) {
	ready = -1
	if len(args) > 0 && strings.HasPrefix(args[0], ReadyFDFlag+"=") {
		n, err := strconv.Atoi(strings.TrimPrefix(args[0], ReadyFDFlag+"="))
		if err != nil || n < 3 {
			return nil, -1, fmt.Errorf("%s: want an fd number above 2", args[0])
		}
		ready, args = n, args[1:]
	}
	if len(args) > 0 && args[0] == "--" {
		args = args[1:]
	}
	if len(args) == 0 {
		return nil, ready, errors.New("no command")
	}
	return args, ready, nil
}

// reap collects every process that has ended; done is true once the
// child has, with its exit status.
func reap(child int) (code int, done bool) {
	for {
		var ws unix.WaitStatus
		pid, err := unix.Wait4(-1, &ws, unix.WNOHANG, nil)
		if err != nil || pid <= 0 {
			return code, done
		}
		if pid != child {
			continue
		}
		done = true
		switch {
		case ws.Exited():
			code = ws.ExitStatus()
		case ws.Signaled():
			code = 128 + int(ws.Signal())
		}
	}
}

// lookPath finds the command in PATH as execvp does.
func lookPath(name string) (string, error) {
	if name == "" {
		return "", errors.New("empty command")
	}
	for _, c := range candidates(name) {
		fi, err := os.Stat(c)
		if err != nil {
			continue
		}
		if fi.IsDir() || unix.Access(c, unix.X_OK) != nil {
			return "", fmt.Errorf("%s: %w", c, os.ErrPermission)
		}
		return c, nil
	}
	return "", fmt.Errorf("%s: executable file not found in $PATH", name)
}

func candidates(name string) []string {
	for _, c := range name {
		if c == '/' {
			return []string{name}
		}
	}
	path := os.Getenv("PATH")
	if path == "" {
		path = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	var out []string
	start := 0
	for i := 0; i <= len(path); i++ {
		if i == len(path) || path[i] == ':' {
			dir := path[start:i]
			if dir == "" {
				dir = "."
			}
			out = append(out, dir+"/"+name)
			start = i + 1
		}
	}
	return out
}
