//go:build linux

package attach

import (
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"sync"

	"golang.org/x/sys/unix"
)

// ErrNoSocket is a container directory without an attach socket: no
// monitor serves it (it is not running, or it was started before sandy
// had attach sockets).
var ErrNoSocket = errors.New("no attach socket")

// Conn is a client's end of the attach socket.
type Conn struct {
	c    *net.UnixConn
	mu   sync.Mutex // one writer at a time (stdin, resizes)
	stop chan struct{}
	once sync.Once
}

// Interrupt ends the Session at once, as the detach keys do (the caller
// got a signal that ends it): the container goes on running.
func (c *Conn) Interrupt() { c.once.Do(func() { close(c.stop) }) }

// Dial connects to the attach socket in dir.
func Dial(dir string) (*Conn, error) {
	var c *net.UnixConn
	err := viaDirFD(dir, func(short string) error {
		var err error
		c, err = net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: short, Net: "unixpacket"})
		return err
	})
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
			return nil, fmt.Errorf("%w: %s: %v", ErrNoSocket, filepath.Join(dir, SocketName), err)
		}
		return nil, fmt.Errorf("connecting to %s: %w", filepath.Join(dir, SocketName), err)
	}
	return &Conn{c: c, stop: make(chan struct{})}, nil
}

// Close hangs up.
func (c *Conn) Close() error { return c.c.Close() }

func (c *Conn) send(p []byte) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, err := c.c.Write(p)
	return err
}

// Resize asks for the pty's window size.
func (c *Conn) Resize(rows, cols uint16) error { return c.send(resizePacket(rows, cols)) }

// Stdin sends p to the container's stdin.
func (c *Conn) Stdin(p []byte) error {
	for _, pkt := range dataPackets(KindStdin, p) {
		if err := c.send(pkt); err != nil {
			return err
		}
	}
	return nil
}

// CloseStdin closes the container's stdin (without -t).
func (c *Conn) CloseStdin() error { return c.send([]byte{KindStdinEOF}) }

// Streams are a session's ends.
type Streams struct {
	// Stdin, when set, is copied to the container (nil: --no-stdin, or a
	// container without stdin). Its EOF closes the container's stdin.
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// DetachKeys end the session when typed on Stdin (nil: never).
	DetachKeys []byte
}

// Result is how a session ended.
type Result struct {
	// Exited: the monitor sent the exit status, Code.
	Exited bool
	Code   int
	// Detached: the detach keys were typed.
	Detached bool
}

// Session copies s.Stdin to the container and its output to s.Stdout and
// s.Stderr until the container exits (the monitor sends its status), the
// detach keys are typed, or the monitor hangs up (Result zero: the
// caller looks at the container).
func (c *Conn) Session(s Streams) (Result, error) {
	type ended struct {
		r   Result
		err error
	}
	done := make(chan ended, 2)
	go func() {
		r, err := c.output(s.Stdout, s.Stderr)
		done <- ended{r, err}
	}()
	if s.Stdin != nil {
		go func() {
			detached, err := c.input(s.Stdin, s.DetachKeys)
			if detached || err != nil {
				done <- ended{Result{Detached: detached}, err}
			}
		}()
	}
	select {
	case e := <-done:
		return e.r, e.err
	case <-c.stop:
		return Result{Detached: true}, nil
	}
}

// output copies the container's output until the exit message or the
// hang-up.
func (c *Conn) output(stdout, stderr io.Writer) (Result, error) {
	buf := make([]byte, maxPacket+1)
	for {
		n, err := c.c.Read(buf)
		if err != nil || n == 0 {
			return Result{}, nil
		}
		m, err := Decode(buf[:n])
		if err != nil {
			return Result{}, fmt.Errorf("reading the attach socket: %w", err)
		}
		switch m.Kind {
		case KindStdout:
			if _, err := stdout.Write(m.Data); err != nil {
				return Result{}, fmt.Errorf("writing the container's output: %w", err)
			}
		case KindStderr:
			if _, err := stderr.Write(m.Data); err != nil {
				return Result{}, fmt.Errorf("writing the container's output: %w", err)
			}
		case KindExit:
			return Result{Exited: true, Code: m.Code}, nil
		default:
			return Result{}, fmt.Errorf("reading the attach socket: %w: kind %d from the monitor", ErrMalformed, m.Kind)
		}
	}
}

// input copies in to the container until EOF (then the container's stdin
// is closed: false, nil, and the output goes on) or the detach keys.
func (c *Conn) input(in io.Reader, keys []byte) (detached bool, err error) {
	d := &detacher{keys: keys}
	buf := make([]byte, MaxPayload)
	for {
		n, rerr := in.Read(buf)
		if n > 0 {
			out, det := d.feed(buf[:n])
			if len(out) > 0 {
				if err := c.Stdin(out); err != nil {
					return false, nil // the monitor hung up: the output side tells
				}
			}
			if det {
				return true, nil
			}
		}
		if rerr != nil {
			if errors.Is(rerr, io.EOF) {
				_ = c.CloseStdin()
				return false, nil
			}
			return false, fmt.Errorf("reading stdin: %w", rerr)
		}
	}
}
