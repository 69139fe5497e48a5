package hooks

import (
	"errors"
	"fmt"
	"strings"
	"time"
)

// Sentinel errors, matched with errors.Is on an *Error.
var (
	// ErrRelativePath: the hook's path is not absolute (runtime spec:
	// "path (string, REQUIRED) with similar semantics to IEEE Std 1003.1-2008
	// execv's path. This specification extends the IEEE standard in that path
	// MUST be absolute").
	ErrRelativePath = errors.New("hook path is not absolute")
	// ErrBadTimeout: timeout is set but not greater than zero.
	ErrBadTimeout = errors.New("hook timeout must be greater than zero")
	// ErrTimeout: the hook ran past its timeout and was killed.
	ErrTimeout = errors.New("hook timed out")
)

// Error is the failure of one hook.
type Error struct {
	Path string
	// Timeout is the hook's timeout; TimedOut says whether it was hit.
	Timeout  time.Duration
	TimedOut bool
	// Status is the wait status as text ("exit status 3", "signal: killed"),
	// empty when the hook never ran.
	Status string
	// Stderr is the tail (at most StderrTail bytes) of what the hook wrote to
	// its stderr.
	Stderr string
	// Err is the underlying error: ErrRelativePath, ErrBadTimeout,
	// ErrTimeout, an *exec.ExitError, a start error, or ctx.Err().
	Err error
}

func (e *Error) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "hook %s", e.Path)
	switch {
	case e.TimedOut:
		fmt.Fprintf(&b, ": timed out after %s (killed its process group)", e.Timeout)
	case e.Status != "":
		fmt.Fprintf(&b, ": %s", e.Status)
	default:
		fmt.Fprintf(&b, ": %v", e.Err)
	}
	if s := strings.TrimSpace(e.Stderr); s != "" {
		fmt.Fprintf(&b, ": stderr: %s", s)
	}
	return b.String()
}

func (e *Error) Unwrap() error { return e.Err }
