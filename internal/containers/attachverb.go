package containers

import (
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/sandy-rt/sandy/internal/attach"
)

// AttachOptions are `sandy attach`'s and `sandy start -a`'s.
type AttachOptions struct {
	// Stdin is copied to the container's stdin (nil: --no-stdin). A
	// container run without -i has none: Stdin is not read then.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// DetachKeys end the attach, the container left running (nil: off).
	DetachKeys []byte
	// Ready, when set, is called once attached (raw mode, resizes and
	// signals are the caller's); what it returns is called at the end, on
	// every path.
	Ready func(AttachInfo) (done func())
}

// AttachInfo is what Ready gets.
type AttachInfo struct {
	ID string
	// Terminal: the container has a pty (-t); Interactive: a stdin (-i).
	Terminal, Interactive bool
	Conn                  *attach.Conn
}

// ErrNotRunning is an attach to a container that is not running (podman's
// words).
var ErrNotRunning = errors.New("you can only attach to running containers")

// Attach attaches to a running container (podman attach): its output from
// now on, the caller's stdin to its stdin (-i), until it exits (its exit
// status is returned), the detach keys are typed (0: it goes on running)
// or the monitor hangs up.
func (m Manage) Attach(ctx context.Context, ref string, o AttachOptions) (int, error) {
	c, err := m.Get(ctx, ref)
	if err != nil {
		return ExitSandyError, err
	}
	if c.External {
		return ExitSandyError, externalError(c, refuseAttach)
	}
	if !c.Running() || c.State == Stopping {
		return ExitSandyError, fmt.Errorf("container %s is %s: %w (sandy start -a -i %s starts it and attaches)", short(c.ID), c.State, ErrNotRunning, short(c.ID))
	}
	cfg, err := readMonitorConfig(c.dir)
	if err != nil || c.rec.Monitor == nil {
		return ExitSandyError, fmt.Errorf("container %s has no monitor to attach to: its output goes to the sandy run in whose foreground it runs (only run -d and start make a monitor)", short(c.ID))
	}
	conn, err := attach.Dial(c.dir)
	if errors.Is(err, attach.ErrNoSocket) {
		if m.ended(c) {
			return ExitSandyError, fmt.Errorf("container %s has exited: %w", short(c.ID), ErrNotRunning)
		}
		return ExitSandyError, fmt.Errorf("container %s has no attach socket: its monitor is older than sandy attach (sandy restart %s gives it one): %w", short(c.ID), short(c.ID), err)
	}
	if err != nil {
		return ExitSandyError, err
	}
	return m.session(ctx, c, cfg, conn, o)
}

// StartAttach is `start -a`: it starts a container that is not running
// and attaches to it before its process runs (all of its output, its exit
// status); a running one is attached to.
func (m Manage) StartAttach(ctx context.Context, ref string, o AttachOptions) (int, error) {
	var conn *attach.Conn
	c, started, err := m.start(ctx, ref, func(dir string) error {
		var err error
		conn, err = attach.Dial(dir)
		return err
	})
	if err != nil {
		if conn != nil {
			conn.Close()
		}
		return ExitSandyError, err
	}
	if !started {
		return m.Attach(ctx, c.ID, o)
	}
	if conn == nil {
		return ExitSandyError, fmt.Errorf("container %s started, but its monitor did not ask for the attach", short(c.ID))
	}
	cfg, err := readMonitorConfig(c.dir)
	if err != nil {
		conn.Close()
		return ExitSandyError, err
	}
	return m.session(ctx, c, cfg, conn, o)
}

// hangupWait is how long an attach whose monitor hung up waits for the
// container's end before it says the monitor dropped it.
const hangupWait = 3 * time.Second

// monitorEndWait bounds the wait for the monitor's end after the exit
// status came.
const monitorEndWait = 30 * time.Second

func (m Manage) session(ctx context.Context, c Listed, cfg monitorConfig, conn *attach.Conn, o AttachOptions) (int, error) {
	defer conn.Close()
	s := attach.Streams{Stdout: o.Stdout, Stderr: o.Stderr, DetachKeys: o.DetachKeys}
	if cfg.Interactive {
		s.Stdin = o.Stdin
	}
	if o.Ready != nil {
		if done := o.Ready(AttachInfo{ID: c.ID, Terminal: cfg.Terminal, Interactive: cfg.Interactive, Conn: conn}); done != nil {
			defer done()
		}
	}
	r, err := conn.Session(s)
	switch {
	case err != nil:
		return ExitSandyError, err
	case r.Detached:
		return 0, nil
	case r.Exited:
		// The monitor sends the status once recorded, then finishes (the
		// socket, --rm): a `sandy rm` right after attach must not find it
		// still stopping.
		m.waitEnded(ctx, c, monitorEndWait)
		return r.Code, nil
	}
	// The monitor hung up without an exit status: it was killed (the
	// container with it), or it dropped this client for not reading.
	if !m.waitEnded(ctx, c, hangupWait) {
		return ExitSandyError, fmt.Errorf("the monitor of container %s hung up on this attach while the container runs: it disconnects a client that does not read the output as fast as the container writes it (attach again; sandy logs %s has all of it)", short(c.ID), short(c.ID))
	}
	code, err := m.Wait(ctx, c.ID)
	if err != nil {
		return ExitSandyError, err // its monitor was killed: no status
	}
	return code, nil
}
