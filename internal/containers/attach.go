package containers

import (
	"encoding/json"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/attach"
)

// The monitor's side of the attach socket (internal/attach): what the
// clients send goes to the container's stdin (-i) or the pty (-t), what
// the container writes goes to them (output), and they hear its exit
// status once it is recorded.

// serveAttach creates the attach socket in the container's directory.
// Under --wait-attach (start -a) it tells the CLI so and waits for its
// client before the container runs.
func (m *monitor) serveAttach() error {
	o := attach.ServerOptions{
		Logf: func(format string, args ...any) {
			fmt.Fprintf(os.Stderr, "%s sandy monitor: %s\n", time.Now().Format(time.RFC3339), fmt.Sprintf(format, args...))
		},
	}
	if m.cfg.Interactive {
		if m.cfg.Terminal {
			o.Input = ptyWriter{m}
		} else {
			if err := m.makeStdin(); err != nil {
				return err
			}
			o.Input, o.CloseInput = m.stdinW, m.closeStdin
		}
	}
	if m.cfg.Terminal {
		o.Resize = m.resize
	}
	var err error
	if m.srv, err = attach.Listen(m.cfg.Dir, o); err != nil {
		return err
	}
	if m.waitAttach {
		b, _ := json.Marshal(readyMsg{Listening: true})
		if _, err := m.ready.Write(append(b, '\n')); err != nil {
			return fmt.Errorf("telling the CLI the socket is up: %w", err)
		}
		m.srv.WaitAttached(attachWait)
	}
	return nil
}

// makeStdin makes the container's stdin pipe under -i without -t (the
// clients feed it), once: a pending monitor makes it before the init
// starts, its attach socket comes once the container's directory exists.
func (m *monitor) makeStdin() error {
	if !m.cfg.Interactive || m.cfg.Terminal || m.stdinR != nil {
		return nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	m.pipes = append(m.pipes, r) // the init's copy is its own: ours goes once it runs
	m.stdinR, m.stdinW = r, w
	return nil
}

// input is the container's stdin: the read end of the pipe the clients
// feed under -i, else /dev/null (under -t the pty is its stdin: the
// clients write to the master).
func (m *monitor) input() (*os.File, error) {
	if m.stdinR == nil {
		return m.null, nil
	}
	return m.stdinR, nil
}

// closeStdin closes the container's stdin (a client's stdin EOF, or the
// container's end). A client blocked writing to it returns.
func (m *monitor) closeStdin() {
	if m.stdinW != nil {
		m.stdinW.Close()
	}
}

// resize sets the pty's window size: the kernel sends the container's
// foreground process group SIGWINCH.
func (m *monitor) resize(rows, cols uint16) error {
	f := m.master.Load()
	if f == nil {
		return fmt.Errorf("the pty is not open yet")
	}
	raw, err := f.SyscallConn()
	if err != nil {
		return err
	}
	var ierr error
	if err := raw.Control(func(fd uintptr) {
		ierr = unix.IoctlSetWinsize(int(fd), unix.TIOCSWINSZ, &unix.Winsize{Row: rows, Col: cols})
	}); err != nil {
		return err
	}
	return ierr
}

// setMaster is lifecycle's PtyMaster: the pty is open, the clients'
// input goes to it from now on.
func (m *monitor) setMaster(f *os.File) {
	m.master.Store(f)
	close(m.masterReady)
}

// ptyWriter writes the clients' stdin to the pty's master. Input sent
// before the pty is open (start -a -i, piped) waits for it, until the
// monitor's end.
type ptyWriter struct{ m *monitor }

func (w ptyWriter) Write(p []byte) (int, error) {
	select {
	case <-w.m.masterReady:
	case <-w.m.attachDone:
		return 0, os.ErrClosed
	}
	return w.m.master.Load().Write(p)
}

// endAttach sends the clients the exit status recorded and removes the
// socket: the container is gone, the log holds what it wrote.
func (m *monitor) endAttach() error {
	m.closeAttach(m.code)
	return nil
}

// closeAttach ends the attach sessions (code < 0: the container did not
// run, nothing to tell).
func (m *monitor) closeAttach(code int) {
	if m.srv != nil {
		close(m.attachDone)
		m.srv.Close(code)
		m.srv = nil
	}
	m.closeStdin()
}
