package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/fds"
	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/seccomp"
	"github.com/sandy-rt/sandy/userns"
)

// exec's fast path: `sandy exec` forks the process itself
// (userns.ForkExec), from a plan of the exec init's set-up computed here
// (initproc.NewForkPlan): no nsenter, no second start of sandy. The
// fallback, nsenter and the exec init (startInit), runs what the fork
// cannot do:
//   - process.terminal: the pty is allocated in the container's devpts
//     by a process in its mount namespace, and its master sent back;
//   - a seccomp profile with SCMP_ACT_NOTIFY: the listener fd is handed
//     to the agent before the process runs, over the sync socket;
//   - stdio that is not a file (an io.Reader or io.Writer of a library
//     caller): the fork passes fds only;
//   - a container whose root the host cannot open (/proc/PID/root), to
//     read its /etc/passwd for HOME;
//   - fs.suid_dumpable 1: the forked process's change of ids would make
//     it dumpable again before its execve, and a container process could
//     then open its /proc/PID/exe, the host's sandy binary (the exec init
//     runs from a sealed copy).

// planFork decides the path and, for the fork, plans the process.
func (ex *execution) planFork(context.Context) error {
	p := ex.proc
	if p.Terminal {
		ex.fallback = "process.terminal: the pty comes from the container's devpts"
		return nil
	}
	if dumpable, err := fds.ReadFile("/proc/sys/fs/suid_dumpable"); err != nil || strings.TrimSpace(string(dumpable)) == "1" {
		ex.fallback = "fs.suid_dumpable is 1 (or unreadable): a change of ids would make the forked process dumpable"
		return nil
	}
	files, reason, err := stdioFiles(ex.o, &ex.undo)
	if err != nil {
		return err
	}
	if reason != "" {
		ex.fallback = reason
		return nil
	}
	var filter *seccomp.Filter
	if sc := ex.spec.Linux.Seccomp; sc != nil && !ex.c.NoSeccomp {
		if filter, err = seccomp.Compile(sc); err != nil {
			return fmt.Errorf("compiling the seccomp profile: %w", err)
		}
		if filter.NeedsListener() {
			ex.fallback = "a seccomp NOTIFY listener: handed to its agent through the exec init"
			return nil
		}
	}
	root, err := fds.Open(fmt.Sprintf("/proc/%d/root", ex.c.Pid), unix.O_PATH|unix.O_DIRECTORY)
	if err != nil {
		ex.fallback = fmt.Sprintf("the container's root cannot be opened from the host (%v)", err)
		return nil
	}
	defer root.Close()
	ex.forkIn = initproc.ForkInput{Process: p, Filter: filter, Root: root, SetgroupsDenied: setgroupsDeniedIn(ex.c.Pid)}
	plan, err := initproc.NewForkPlan(ex.forkIn)
	if err != nil {
		return err
	}
	plan.Joins = ex.nsJoins
	// Root with mappings of other host ids is not root in there.
	plan.JoinAsRoot = !userns.RootInMap(ex.uids, os.Getuid())
	plan.Files = append(files, ex.files[:ex.o.PreserveFDs]...)
	ex.plan = plan
	return nil
}

// stdioFiles are the process's stdin, stdout and stderr as files: the
// caller's, or /dev/null for none (closed by undo: the forked process has
// its own once forked); a reason for the fallback when one is
// not a file.
func stdioFiles(o *ExecOptions, undo *cleanups) ([]*os.File, string, error) {
	var out []*os.File
	for i, s := range []any{o.Stdin, o.Stdout, o.Stderr} {
		f, isFile := s.(*os.File)
		switch {
		case isFile && f != nil:
			out = append(out, f)
		case s == nil || isFile: // none, or a nil *os.File
			flag := os.O_WRONLY
			if i == 0 {
				flag = os.O_RDONLY
			}
			null, err := os.OpenFile(os.DevNull, flag, 0)
			if err != nil {
				return nil, "", err
			}
			undo.add(func() { null.Close() })
			out = append(out, null)
		default:
			return nil, "stdio that is not a file", nil
		}
	}
	return out, "", nil
}

// setgroupsDeniedIn reads /proc/PID/setgroups ("deny" under the
// single-id map).
func setgroupsDeniedIn(pid int) bool {
	data, err := fds.ReadFile(fmt.Sprintf("/proc/%d/setgroups", pid))
	return err == nil && strings.TrimSpace(string(data)) == "deny"
}

// fork starts the process, stopped before its set-up in the container.
func (ex *execution) fork(context.Context) error {
	f, err := userns.ForkExec(ex.plan)
	var fe *userns.ForkError
	if errors.As(err, &fe) {
		return ex.forkFailure(fe)
	}
	if err != nil {
		return err
	}
	ex.forked, ex.pid = f, f.Pid
	ex.undo.add(f.Kill)
	return nil
}

// forkRlimits sets process.rlimits on the forked process, before it
// switches to process.user (see setRlimits).
func (ex *execution) forkRlimits(context.Context) error {
	if err := applyRlimits(ex.pid, ex.proc.Rlimits); err != nil {
		return fmt.Errorf("setting rlimits: %w", err)
	}
	return nil
}

// releaseFork lets the forked process set itself up and exec, and waits
// until it has. A process that failed never ran: its pid file goes.
func (ex *execution) releaseFork() error {
	t0 := time.Now()
	err := ex.forked.Release()
	ex.g.Debugf("exec: releasing the process (its set-up in the container and execve): %v", time.Since(t0).Round(10*time.Microsecond))
	if err == nil {
		return nil
	}
	if ex.o.PidFile != "" {
		os.Remove(ex.o.PidFile)
	}
	var fe *userns.ForkError
	if errors.As(err, &fe) {
		return ex.forkFailure(fe)
	}
	return err
}

// waitFork waits for the forked process, the caller's child.
func (ex *execution) waitFork() (unix.WaitStatus, error) {
	var ws unix.WaitStatus
	for {
		_, err := unix.Wait4(ex.pid, &ws, 0, nil)
		if err != unix.EINTR {
			return ws, err
		}
	}
}

// forkFailure says fe in the exec init's words.
func (ex *execution) forkFailure(fe *userns.ForkError) error {
	read := func(name string) string {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/%s", ex.c.Pid, name))
		return string(data)
	}
	return initproc.ForkFailure(ex.forkIn, ex.plan, fe, read("uid_map"), read("gid_map"))
}
