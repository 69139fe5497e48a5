package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/ctrlog"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/state"
)

// The verbs of the detached lifecycle: stop, start, kill, wait, logs
// (podman's). Each names containers by name, id or a unique id prefix.

// pollInterval is how often the verbs that wait look again.
const pollInterval = 20 * time.Millisecond

// Get resolves one container reference (any state).
func (m Manage) Get(ctx context.Context, ref string) (Listed, error) {
	if c, err := m.lookup(ref, true); !errors.Is(err, errAskStore) {
		return c, err
	}
	all, err := m.List(ctx, true)
	if err != nil {
		return Listed{}, err
	}
	return find(all, ref)
}

// ended reports whether c has no process left and no monitor at work.
func (m Manage) ended(c Listed) bool {
	st, err := lifecycle.StatusOf(m.G, c.ID)
	if err != nil {
		return false
	}
	if st != "" && st != state.Stopped {
		return false
	}
	rec, ok, err := readRecord(c.dir)
	switch {
	case err != nil:
		return false
	case !ok:
		rec = c.rec // removed (--rm): the monitor named before
	}
	return rec.Monitor == nil || !state.Alive(rec.Monitor.Pid, rec.Monitor.Start)
}

// waitEnded waits up to d (d < 0: for ever) for c to end.
func (m Manage) waitEnded(ctx context.Context, c Listed, d time.Duration) bool {
	deadline := time.Now().Add(d)
	for !m.ended(c) {
		if d >= 0 && time.Now().After(deadline) || ctx.Err() != nil {
			return false
		}
		time.Sleep(pollInterval)
	}
	return true
}

// Stop stops a running container as podman stop does: its stop signal
// (the image's StopSignal, else SIGTERM), then SIGKILL when it is still
// running after timeout. It returns once the container has ended and its
// monitor is gone (the exit status recorded; under --rm, the container
// removed). A container that is not running is left as it is.
func (m Manage) Stop(ctx context.Context, ref string, timeout time.Duration) error {
	c, err := m.Get(ctx, ref)
	if err != nil {
		return err
	}
	if c.External {
		return externalError(c, refuseStop)
	}
	return m.stop(ctx, c, timeout)
}

func (m Manage) stop(ctx context.Context, c Listed, timeout time.Duration) error {
	if !c.Running() {
		return nil
	}
	sig := unix.SIGTERM
	if c.rec.StopSignal != "" {
		if n := unix.SignalNum(c.rec.StopSignal); n != 0 {
			sig = n
		}
	}
	if timeout > 0 {
		m.G.Debugf("stopping %s with %s", short(c.ID), unix.SignalName(sig))
		m.signal(c, sig)
		if m.waitEnded(ctx, c, timeout) {
			return nil
		}
		fmt.Fprintf(m.Stderr, "sandy: container %s did not stop within %v after %s: killing it (SIGKILL)\n", short(c.ID), timeout, unix.SignalName(sig))
	}
	m.signal(c, unix.SIGKILL)
	if m.waitEnded(ctx, c, 10*time.Second) {
		return nil
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	// The process is gone or unkillable (D state); a monitor that does
	// not finish its teardown is ended too, and the rest is rm's.
	if c.rec.Monitor != nil {
		if p, err := os.FindProcess(c.rec.Monitor.Pid); err == nil && state.Alive(c.rec.Monitor.Pid, c.rec.Monitor.Start) {
			_ = p.Signal(unix.SIGKILL)
		}
	}
	return fmt.Errorf("container %s did not end within 10s of SIGKILL", short(c.ID))
}

// signal sends sig to c's init; one that has ended meanwhile is no error.
func (m Manage) signal(c Listed, sig unix.Signal) {
	if err := lifecycle.Kill(m.G, c.ID, sig, false); err != nil {
		m.G.Debugf("signalling %s: %v", short(c.ID), err)
	}
}

// Kill sends sig to the container's main process (podman kill).
func (m Manage) Kill(ctx context.Context, ref string, sig unix.Signal) error {
	c, err := m.Get(ctx, ref)
	if err != nil {
		return err
	}
	if c.External {
		return externalError(c, refuseKill)
	}
	if !c.Running() || c.State == Stopping {
		return fmt.Errorf("container %s is %s: can only kill a running container", short(c.ID), c.State)
	}
	return lifecycle.Kill(m.G, c.ID, sig, false)
}

// Wait waits for the container to end and returns its exit status.
func (m Manage) Wait(ctx context.Context, ref string) (int, error) {
	c, err := m.Get(ctx, ref)
	if err != nil {
		// A run -d --rm container is gone once it ended; its exit file
		// is not (a full id names it).
		if len(ref) == 64 && state.ValidateID(ref) == nil {
			if e, ok := readExitFile(m.G, ref); ok {
				return e.Code, nil
			}
		}
		return -1, err
	}
	if c.External {
		return -1, externalError(c, refuseWait)
	}
	if !m.waitEnded(ctx, c, -1) {
		return -1, ctx.Err()
	}
	if rec, ok, err := readRecord(c.dir); err == nil && ok && rec.ExitCode != nil {
		return *rec.ExitCode, nil
	}
	if e, ok := readExitFile(m.G, c.ID); ok {
		return e.Code, nil
	}
	return -1, fmt.Errorf("container %s ended without an exit status: its monitor was killed", short(c.ID))
}

// Start starts a container that is not running again, on the same layer,
// under a new monitor (podman start). A running one is left as it is.
func (m Manage) Start(ctx context.Context, ref string) (Listed, error) {
	c, _, err := m.start(ctx, ref, nil)
	return c, err
}

// start is Start; attach, when set, is called with the container's
// directory once its monitor's attach socket is up, before the container
// runs (start -a). started is false for a container that was running.
func (m Manage) start(ctx context.Context, ref string, attach func(dir string) error) (c Listed, started bool, err error) {
	c, err = m.Get(ctx, ref)
	if err != nil {
		return c, false, err
	}
	switch {
	case c.External:
		return c, false, externalError(c, refuseStart)
	case c.Running():
		return c, false, nil
	}
	if _, err := os.Stat(filepath.Join(c.dir, MonitorFile)); err != nil {
		return c, false, fmt.Errorf("container %s cannot be started again: it was run before sandy had monitors (run a new one)", short(c.ID))
	}
	unlock, err := lockStart(c.dir)
	if err != nil {
		return c, false, err
	}
	defer unlock()
	if !m.ended(c) {
		return c, false, nil // started by another `start` meanwhile
	}
	// The runtime state its last run left (a killed monitor's): the id
	// must be free for the new run.
	if err := lifecycle.Delete(ctx, m.G, c.ID, true); err != nil {
		return c, false, fmt.Errorf("removing the runtime state of the last run: %w", err)
	}
	var hook func() error
	attachFailed := false
	if attach != nil {
		hook = func() error {
			err := attach(c.dir)
			attachFailed = err != nil
			return err
		}
	}
	if err := startMonitor(c.dir, m.Stderr, hook); err != nil {
		// A client that could not connect leaves the container to run
		// (its monitor's wait ends); anything else undoes the start.
		if !attachFailed {
			if derr := lifecycle.Delete(ctx, m.G, c.ID, true); derr != nil {
				m.G.Debugf("removing the runtime state of %s: %v", c.ID, derr)
			}
		}
		return c, false, err
	}
	rec, _, err := readRecord(c.dir)
	if err == nil {
		c.rec = rec
	}
	return c, true, nil
}

// lockStart serialises the starts of one container.
func lockStart(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".start.lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking the container's start: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the container's start: %w", err)
	}
	return func() { f.Close() }, nil
}

// LogsOptions are `sandy logs`'s flags.
type LogsOptions struct {
	ctrlog.Options
	Follow bool
}

// Logs prints the container's log (podman logs); with Follow it goes on
// printing what the container writes until it has ended.
func (m Manage) Logs(ctx context.Context, ref string, w io.Writer, o LogsOptions) error {
	c, err := m.Get(ctx, ref)
	if err != nil {
		return err
	}
	return m.logs(ctx, c, w, o)
}

func (m Manage) logs(ctx context.Context, c Listed, w io.Writer, o LogsOptions) error {
	if c.External {
		return externalError(c, refuseLogs)
	}
	if c.rec.LogDriver == LogDriverNone {
		return fmt.Errorf("container %s has no log: it was run with --log-driver none", short(c.ID))
	}
	f, err := os.Open(filepath.Join(c.dir, LogFile))
	if errors.Is(err, os.ErrNotExist) {
		if c.rec.Monitor == nil && !c.Running() {
			return fmt.Errorf("container %s has no log: only a container run with -d (or started with sandy container start) has one", short(c.ID))
		}
		if !o.Follow {
			return nil
		}
		// Its monitor is making it.
		for errors.Is(err, os.ErrNotExist) && !m.ended(c) && ctx.Err() == nil {
			time.Sleep(pollInterval)
			f, err = os.Open(filepath.Join(c.dir, LogFile))
		}
		if err != nil {
			return nil
		}
	}
	if err != nil {
		return fmt.Errorf("opening the container's log: %w", err)
	}
	defer func() { f.Close() }()
	o.Options.Follow = o.Follow
	// The part --log-opt max-size rotated out comes first.
	var r io.Reader = io.NewSectionReader(f, 0, 1<<62)
	var oldLen int64
	if old, err := os.Open(filepath.Join(c.dir, OldLogFile)); err == nil {
		defer old.Close()
		if fi, err := old.Stat(); err == nil {
			oldLen = fi.Size()
			r = io.MultiReader(io.NewSectionReader(old, 0, oldLen), r)
		}
	}
	n, s, err := ctrlog.Read(r, w, o.Options)
	if err != nil || !o.Follow {
		return err
	}
	off := max(0, n-oldLen)
	for {
		// Whether it had ended is looked at before the last read: what
		// it wrote before it ended is in the file by then.
		done := m.ended(c)
		k, err := s.Copy(io.NewSectionReader(f, off, 1<<62), w, o.Timestamps)
		off += k
		if err != nil {
			return err
		}
		if rotated(f, filepath.Join(c.dir, LogFile)) {
			// The monitor wrote the old file to its end before it
			// renamed it: read that end, then go on with the new one.
			if _, err := s.Copy(io.NewSectionReader(f, off, 1<<62), w, o.Timestamps); err != nil {
				return err
			}
			nf, err := os.Open(filepath.Join(c.dir, LogFile))
			if err != nil {
				return s.Flush(w, o.Timestamps) // removed (--rm)
			}
			f.Close()
			f, off = nf, 0
			continue
		}
		if done || ctx.Err() != nil {
			return s.Flush(w, o.Timestamps)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// rotated reports whether path no longer names f's file (--log-opt
// max-size rotated it).
func rotated(f *os.File, path string) bool {
	a, err := f.Stat()
	if err != nil {
		return false
	}
	b, err := os.Stat(path)
	return err == nil && !os.SameFile(a, b)
}
