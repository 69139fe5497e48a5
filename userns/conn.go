package userns

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// maxMessage bounds one message (a config.json with a large seccomp
// profile is well under this).
const maxMessage = 16 << 20

// Msg is one message of the sync protocol.
type Msg struct {
	Type string          `json:"type"`
	Data json.RawMessage `json:"data,omitempty"`
	// FDs arrive with the message (SCM_RIGHTS); the receiver owns them.
	FDs []int `json:"-"`
	// PID is the sender's pid as seen in the receiver's pid namespace
	// (SCM_CREDENTIALS; the kernel translates it), when the receiver
	// called PassCred; else 0.
	PID int `json:"-"`
}

// Decode unmarshals m.Data into v.
func (m *Msg) Decode(v any) error {
	if len(m.Data) == 0 {
		return nil
	}
	if err := json.Unmarshal(m.Data, v); err != nil {
		return fmt.Errorf("decoding %q message: %w", m.Type, err)
	}
	return nil
}

// Conn is one end of the sync socket. Messages are framed as a 4-byte
// big-endian length followed by that many bytes of JSON; descriptors ride
// on the length header, so a receiver that reads the header gets them.
type Conn struct{ f *os.File }

// NewPair returns a connected pair of sync sockets: the parent keeps the
// first, the second goes to the child (as an inherited fd, so it is not
// close-on-exec there).
func NewPair() (parent *Conn, child *os.File, err error) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("creating sync socketpair: %w", err)
	}
	return &Conn{f: os.NewFile(uintptr(fds[0]), "sync-parent")}, os.NewFile(uintptr(fds[1]), "sync-child"), nil
}

// NewConn wraps an inherited sync socket fd (the child side). The fd stays
// open across execve (GainCaps needs that); call CloseOnExec once no more
// re-exec is due.
func NewConn(fd int) *Conn {
	return &Conn{f: os.NewFile(uintptr(fd), "sync")}
}

// CloseOnExec marks the socket close-on-exec.
func (c *Conn) CloseOnExec() { unix.CloseOnExec(int(c.f.Fd())) }

// PassCred makes the kernel attach the sender's credentials to every
// message this end receives (SO_PASSCRED, unix(7)): Msg.PID is then the
// sender's pid in this process's pid namespace, whatever namespace, and
// whatever chain of helpers, the sender runs in.
func (c *Conn) PassCred() error {
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Control(func(fd uintptr) {
		serr = unix.SetsockoptInt(int(fd), unix.SOL_SOCKET, unix.SO_PASSCRED, 1)
	}); err != nil {
		return err
	}
	return serr
}

// File returns the socket (e.g. to pass it on to a re-exec).
func (c *Conn) File() *os.File { return c.f }

// Close closes the socket.
func (c *Conn) Close() error { return c.f.Close() }

// Send sends a message of type typ with payload v (may be nil) and fds.
// A json.RawMessage payload is sent as it is: a caller that encodes with
// a codec of its own (the init's config, internal/specjson) passes its
// bytes so.
func (c *Conn) Send(typ string, v any, fds ...int) error {
	m := Msg{Type: typ}
	if raw, ok := v.(json.RawMessage); ok {
		m.Data = raw
	} else if v != nil {
		data, err := json.Marshal(v)
		if err != nil {
			return fmt.Errorf("encoding %q message: %w", typ, err)
		}
		m.Data = data
	}
	body, err := json.Marshal(m)
	if err != nil {
		return err
	}
	if len(body) > maxMessage {
		return fmt.Errorf("%q message of %d bytes is too large", typ, len(body))
	}
	var hdr [4]byte
	binary.BigEndian.PutUint32(hdr[:], uint32(len(body)))
	var oob []byte
	if len(fds) > 0 {
		oob = unix.UnixRights(fds...)
	}
	rc, err := c.f.SyscallConn()
	if err != nil {
		return err
	}
	var serr error
	if err := rc.Write(func(fd uintptr) bool {
		serr = unix.Sendmsg(int(fd), hdr[:], oob, nil, 0)
		return serr != unix.EAGAIN
	}); err != nil {
		return err
	}
	if serr != nil {
		return fmt.Errorf("sending %q message: %w", typ, serr)
	}
	if _, err := c.f.Write(body); err != nil {
		return fmt.Errorf("sending %q message: %w", typ, err)
	}
	return nil
}

// ErrClosed is returned by Recv when the other side closed the socket
// (for the parent: the child died or exec'd).
var ErrClosed = errors.New("sync socket closed by the other side")

// Recv receives the next message.
func (c *Conn) Recv() (*Msg, error) {
	var hdr [4]byte
	oob := make([]byte, unix.CmsgSpace(16*4)+unix.CmsgSpace(unix.SizeofUcred))
	rc, err := c.f.SyscallConn()
	if err != nil {
		return nil, err
	}
	var n, oobn int
	var rerr error
	if err := rc.Read(func(fd uintptr) bool {
		n, oobn, _, _, rerr = unix.Recvmsg(int(fd), hdr[:], oob, unix.MSG_CMSG_CLOEXEC)
		return rerr != unix.EAGAIN
	}); err != nil {
		return nil, err
	}
	if rerr != nil {
		return nil, fmt.Errorf("receiving message: %w", rerr)
	}
	var fds []int
	pid := 0
	if oobn > 0 {
		cmsgs, err := unix.ParseSocketControlMessage(oob[:oobn])
		if err != nil {
			return nil, err
		}
		for _, cm := range cmsgs {
			if cm.Header.Type == unix.SCM_CREDENTIALS {
				if cred, err := unix.ParseUnixCredentials(&cm); err == nil {
					pid = int(cred.Pid)
				}
				continue
			}
			got, err := unix.ParseUnixRights(&cm)
			if err == nil {
				fds = append(fds, got...)
			}
		}
	}
	if n == 0 {
		closeAll(fds)
		return nil, ErrClosed
	}
	if n < 4 {
		if _, err := io.ReadFull(c.f, hdr[n:]); err != nil {
			closeAll(fds)
			return nil, fmt.Errorf("receiving message header: %w", err)
		}
	}
	size := binary.BigEndian.Uint32(hdr[:])
	if size > maxMessage {
		closeAll(fds)
		return nil, fmt.Errorf("message of %d bytes is too large", size)
	}
	body := make([]byte, size)
	if _, err := io.ReadFull(c.f, body); err != nil {
		closeAll(fds)
		return nil, fmt.Errorf("receiving message body: %w", err)
	}
	var m Msg
	if err := json.Unmarshal(body, &m); err != nil {
		closeAll(fds)
		return nil, fmt.Errorf("decoding message: %w", err)
	}
	m.FDs = fds
	m.PID = pid
	return &m, nil
}

// Expect receives one message and checks its type. A message of type
// "error" is turned into an *ChildError.
func (c *Conn) Expect(typ string) (*Msg, error) {
	m, err := c.Recv()
	if err != nil {
		return nil, err
	}
	if m.Type == MsgError {
		closeAll(m.FDs)
		var ce ChildError
		if err := m.Decode(&ce); err != nil {
			return nil, err
		}
		return nil, &ce
	}
	if m.Type != typ {
		closeAll(m.FDs)
		return nil, fmt.Errorf("sync protocol: got %q message, want %q", m.Type, typ)
	}
	return m, nil
}

func closeAll(fds []int) {
	for _, fd := range fds {
		unix.Close(fd)
	}
}

// MsgError carries a *ChildError from the child; the parent prints it once.
const MsgError = "error"

// ChildError is a failure inside the child, reported by the parent.
type ChildError struct {
	Step     string `json:"step"`
	Message  string `json:"message"`
	Hint     string `json:"hint,omitempty"`
	ExitCode int    `json:"exitCode,omitempty"` // for `run`: 127 not found, 126 not executable
}

// ExitStatus is the status a command exits with when it failed with err:
// the child's own when err is a *ChildError that sets one (127: the
// program is not found, 126: not executable, as a shell reports them),
// else 1. It is the one place that maps a ChildError to a status: the
// init and the exec init exit with it, `run` returns it. (`exec` does
// not: like runc exec, it exits 255 for any failure of its own.)
func ExitStatus(err error) int {
	var ce *ChildError
	if errors.As(err, &ce) && ce.ExitCode != 0 {
		return ce.ExitCode
	}
	return 1
}

func (e *ChildError) Error() string {
	s := e.Message
	if e.Step != "" {
		s = e.Step + ": " + s
	}
	if e.Hint != "" {
		s += "\nhint: " + e.Hint
	}
	return s
}
