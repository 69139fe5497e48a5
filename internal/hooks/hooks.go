//go:build linux

package hooks

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/fds"
)

// pipeDrain bounds how long Run waits, once the hook has exited, for its
// stdout/stderr pipes to reach EOF. A hook that starts a daemon which keeps
// the pipes open (a common prestart pattern) must not hang the runtime; runc
// waits forever there.
const pipeDrain = time.Second

// Run runs one hook with state on its stdin and waits for it, in the
// caller's working directory. Its stdout and stderr are copied to stdout and
// stderr (nil discards). The error, if any, is an *Error.
func Run(ctx context.Context, h specs.Hook, state []byte, stdout, stderr io.Writer) error {
	return runIn(ctx, "", h, state, stdout, stderr)
}

// runIn is Run with dir as the hook's working directory ("" for the
// caller's).
func runIn(ctx context.Context, dir string, h specs.Hook, state []byte, stdout, stderr io.Writer) error {
	herr := &Error{Path: h.Path}
	if !filepath.IsAbs(h.Path) {
		herr.Err = ErrRelativePath
		return herr
	}
	if h.Timeout != nil {
		if *h.Timeout <= 0 {
			herr.Err = fmt.Errorf("%w: %d", ErrBadTimeout, *h.Timeout)
			return herr
		}
		herr.Timeout = time.Duration(*h.Timeout) * time.Second
	}
	hctx, cancel := context.WithCancel(ctx)
	if herr.Timeout > 0 {
		// The cause tells the hook's own timeout apart from a deadline
		// or cancellation of the caller's ctx.
		hctx, cancel = context.WithTimeoutCause(ctx, herr.Timeout, ErrTimeout)
	}
	defer cancel()
	tail := &tailBuffer{max: StderrTail}
	if stderr == nil {
		stderr = io.Discard
	}

	cmd := exec.CommandContext(hctx, h.Path)
	if len(h.Args) > 0 {
		cmd.Args = h.Args
	}
	// A non-nil empty slice: exec.Cmd treats nil Env as "inherit", and the
	// spec's env replaces the environment.
	cmd.Env = append([]string{}, h.Env...)
	cmd.Dir = dir
	cmd.Stdin = bytes.NewReader(state)
	cmd.Stdout = stdout
	cmd.Stderr = io.MultiWriter(stderr, tail)
	// Its own process group, so that the timeout can kill the hook and every
	// child it started with one kill(-pgid) (kill(2)).
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	cmd.Cancel = func() error {
		// pgid == pid because of Setpgid with Pgid 0. The group outlives
		// its leader as long as a member is alive, so this also reaches
		// orphaned grandchildren after the hook itself exited.
		return unix.Kill(-cmd.Process.Pid, unix.SIGKILL)
	}
	cmd.WaitDelay = pipeDrain

	// exec.Cmd passes only 0, 1, 2 (and ExtraFiles) on purpose, but an fd
	// opened without O_CLOEXEC anywhere in this process would still cross
	// execve(2) into the hook.
	if err := fds.CloexecFrom(3); err != nil {
		herr.Err = fmt.Errorf("marking fds close-on-exec: %w", err)
		return herr
	}
	err := cmd.Run()
	herr.Stderr = tail.String()
	if err == nil || (errors.Is(err, exec.ErrWaitDelay) && cmd.ProcessState != nil && cmd.ProcessState.Success()) {
		// ErrWaitDelay with a zero exit: the hook succeeded and left a
		// child holding its stdout or stderr.
		return nil
	}
	if cmd.ProcessState != nil {
		herr.Status = cmd.ProcessState.String()
	}
	switch {
	case ctx.Err() == nil && errors.Is(context.Cause(hctx), ErrTimeout):
		herr.TimedOut = true
		herr.Err = ErrTimeout
	case ctx.Err() != nil:
		// The cause says why the caller gave up (a signal to sandy
		// run, a deadline); errors.Is still matches ctx.Err().
		herr.Err = fmt.Errorf("%w (killed its process group)", causeOf(ctx))
		herr.Status = ""
	default:
		herr.Err = err
	}
	return herr
}

// causeOf is ctx's cause, wrapped so that errors.Is matches ctx.Err() too
// (context.Canceled or DeadlineExceeded) when the cause is another error.
func causeOf(ctx context.Context) error {
	cause := context.Cause(ctx)
	if errors.Is(cause, ctx.Err()) {
		return cause
	}
	return fmt.Errorf("%w: %w", cause, ctx.Err())
}

// RunAll runs hs in order and stops at the first failure, which it returns
// wrapped with kind and the hook's index: the rule for prestart,
// createRuntime, createContainer, startContainer and poststart.
func RunAll(ctx context.Context, kind string, hs []specs.Hook, state []byte, stdout, stderr io.Writer) error {
	return RunAllIn(ctx, "", kind, hs, state, stdout, stderr)
}

// RunAllIn is RunAll with dir as the hooks' working directory: the bundle
// directory for prestart and createRuntime, where runc runs them.
func RunAllIn(ctx context.Context, dir, kind string, hs []specs.Hook, state []byte, stdout, stderr io.Writer) error {
	for i, h := range hs {
		if err := ctx.Err(); err != nil {
			// Cancelled between two hooks: start no more.
			return fmt.Errorf("%s hook %d: %w", kind, i, causeOf(ctx))
		}
		if err := runIn(ctx, dir, h, state, stdout, stderr); err != nil {
			return fmt.Errorf("%s hook %d: %w", kind, i, err)
		}
	}
	return nil
}

// RunAllReport runs every hook in hs, in order, and returns all failures
// joined (errors.Join): the rule for poststop, whose failures the runtime
// reports but does not act on.
func RunAllReport(ctx context.Context, kind string, hs []specs.Hook, state []byte, stdout, stderr io.Writer) error {
	var errs []error
	for i, h := range hs {
		if err := Run(ctx, h, state, stdout, stderr); err != nil {
			errs = append(errs, fmt.Errorf("%s hook %d: %w", kind, i, err))
		}
	}
	return errors.Join(errs...)
}
