//go:build linux

package attach

import (
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
)

// SocketName is the attach socket's name in the container's directory
// (conmon's).
const SocketName = "attach"

// maxQueued bounds a client's queue: at most maxQueued bytes of output
// wait for a client (besides what its socket buffer holds). Output queued
// while the client is busy is merged into packets of up to MaxPayload
// bytes, so that a client that reads keeps up with most containers. Past
// the bound, the output is not queued for it: a client that is reading
// (its last write went through within stallLimit) loses that part (the
// log has it), one that is not is disconnected.
const maxQueued = 8 << 20

// stallLimit is how long a client with a full queue may go without taking
// a packet before it is disconnected.
const stallLimit = time.Second

// closeGrace is how long Close lets the clients read what is queued for
// them (the last output and the exit status) before it hangs up.
const closeGrace = 2 * time.Second

// Input is where the clients' stdin goes: the write end of the container's
// stdin pipe, or the pty master under -t.
type Input interface {
	io.Writer
}

// ServerOptions are what the monitor gives its server.
type ServerOptions struct {
	// Input receives the clients' stdin; nil: the container has no stdin
	// (run without -i), and what clients send is dropped.
	Input Input
	// CloseInput closes the container's stdin at a client's stdin EOF
	// (nil under -t: the pty stays open, as conmon's does without -i).
	CloseInput func()
	// Resize sets the pty's window size (nil without -t).
	Resize func(rows, cols uint16) error
	// Logf reports what a client did wrong (the monitor's log).
	Logf func(format string, args ...any)
}

// Server is the monitor's end of the attach socket.
type Server struct {
	o    ServerOptions
	ln   *net.UnixListener
	path string
	uid  int

	mu       sync.Mutex
	clients  map[*client]struct{}
	closed   bool
	attached chan struct{} // closed when the first client attaches
	inMu     sync.Mutex    // serialises the clients' stdin writes
	inClosed bool
	writers  sync.WaitGroup
}

// client is one attached connection. Its queue is a list of packets the
// writer goroutine sends; wake tells it there is more, or that the queue
// is closed (the client dropped, or the server closing).
type client struct {
	conn *net.UnixConn

	mu      sync.Mutex
	pending [][]byte
	queued  int
	closed  bool
	wake    chan struct{} // 1-buffered

	lastWrite atomic.Int64 // unix nanoseconds of the last packet sent to it
	lost      int64        // bytes not queued for it (s.mu)
}

// push queues pkt (merging data into the last packet of the same kind
// when it has room); false when the queue would pass maxQueued.
func (c *client) push(pkt []byte) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return true
	}
	if c.queued+len(pkt) > maxQueued {
		return false
	}
	if n := len(c.pending); n > 0 && pkt[0] != KindExit {
		last := c.pending[n-1]
		if last[0] == pkt[0] && len(last)+len(pkt)-1 <= maxPacket {
			if cap(last) != maxPacket {
				// A packet Stream made, shared by every client: the
				// merged one is this client's own.
				last = append(make([]byte, 0, maxPacket), last...)
			}
			c.pending[n-1] = append(last, pkt[1:]...)
			c.queued += len(pkt) - 1
			c.signal()
			return true
		}
	}
	c.pending = append(c.pending, pkt)
	c.queued += len(pkt)
	c.signal()
	return true
}

func (c *client) signal() {
	select {
	case c.wake <- struct{}{}:
	default:
	}
}

// close ends the queue: the writer sends what is queued, then stops.
func (c *client) close() {
	c.mu.Lock()
	c.closed = true
	c.mu.Unlock()
	c.signal()
}

// take returns what is queued; done when the queue is closed and empty.
func (c *client) take() (pkts [][]byte, done bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	pkts, c.pending, c.queued = c.pending, nil, 0
	return pkts, c.closed && len(pkts) == 0
}

// Listen creates the socket in dir (a directory only the user can enter)
// and serves it until Close. A stale socket of a dead monitor is
// replaced.
func Listen(dir string, o ServerOptions) (*Server, error) {
	if o.Logf == nil {
		o.Logf = func(string, ...any) {}
	}
	if err := checkPrivate(dir); err != nil {
		return nil, err
	}
	path := filepath.Join(dir, SocketName)
	var ln *net.UnixListener
	err := viaDirFD(dir, func(short string) error {
		_ = os.Remove(path)
		var err error
		ln, err = net.ListenUnix("unixpacket", &net.UnixAddr{Name: short, Net: "unixpacket"})
		return err
	})
	if err != nil {
		return nil, fmt.Errorf("creating the attach socket %s: %w", path, err)
	}
	// The socket gets its mode from the umask at bind; the directory is
	// private already (checkPrivate): this is the second lock.
	ln.SetUnlinkOnClose(false)
	if err := os.Chmod(path, 0o600); err != nil {
		ln.Close()
		_ = os.Remove(path)
		return nil, fmt.Errorf("creating the attach socket %s: %w", path, err)
	}
	s := &Server{o: o, ln: ln, path: path, uid: os.Getuid(), clients: map[*client]struct{}{}, attached: make(chan struct{})}
	go s.accept()
	return s, nil
}

// checkPrivate refuses a directory that another user could enter or that
// is not the user's own: the socket would be theirs to connect to.
func checkPrivate(dir string) error {
	var st unix.Stat_t
	if err := unix.Stat(dir, &st); err != nil {
		return fmt.Errorf("checking the container's directory %s: %w", dir, err)
	}
	if int(st.Uid) != os.Getuid() {
		return fmt.Errorf("the container's directory %s belongs to uid %d, not to you (uid %d): no attach socket there", dir, st.Uid, os.Getuid())
	}
	if st.Mode&0o077 != 0 {
		// containers/storage makes it 0700; a looser one is made private.
		if err := os.Chmod(dir, os.FileMode(st.Mode&0o700)); err != nil {
			return fmt.Errorf("making the container's directory %s private: %w", dir, err)
		}
	}
	return nil
}

// viaDirFD calls fn with a short name for dir/SocketName: a socket's path
// has at most 107 bytes (unix(7)), a store's directory may be longer; the
// directory's fd in /proc/self/fd is short (conmon's way).
func viaDirFD(dir string, fn func(short string) error) error {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return fn(fmt.Sprintf("/proc/self/fd/%d/%s", fd, SocketName))
}

func (s *Server) accept() {
	for {
		conn, err := s.ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, net.ErrClosed) {
				return
			}
			s.o.Logf("attach socket: accept: %v", err)
			time.Sleep(50 * time.Millisecond) // EMFILE: not a busy loop
			continue
		}
		if !s.sameUser(conn) {
			conn.Close()
			continue
		}
		c := &client{conn: conn, wake: make(chan struct{}, 1)}
		c.lastWrite.Store(time.Now().UnixNano())
		s.mu.Lock()
		if s.closed {
			s.mu.Unlock()
			conn.Close()
			continue
		}
		s.clients[c] = struct{}{}
		if len(s.clients) == 1 {
			select {
			case <-s.attached:
			default:
				close(s.attached)
			}
		}
		s.writers.Add(1)
		s.mu.Unlock()
		go s.write(c)
		go s.read(c)
	}
}

// sameUser checks the peer's credentials (SO_PEERCRED): the socket's mode
// keeps other users out already, this is the second lock.
func (s *Server) sameUser(conn *net.UnixConn) bool {
	raw, err := conn.SyscallConn()
	if err != nil {
		return false
	}
	var cred *unix.Ucred
	var cerr error
	if err := raw.Control(func(fd uintptr) {
		cred, cerr = unix.GetsockoptUcred(int(fd), unix.SOL_SOCKET, unix.SO_PEERCRED)
	}); err != nil || cerr != nil {
		return false
	}
	if int(cred.Uid) != s.uid {
		s.o.Logf("attach socket: hung up on pid %d of uid %d", cred.Pid, cred.Uid)
		return false
	}
	return true
}

// WaitAttached waits until a client has attached, or d has passed.
func (s *Server) WaitAttached(d time.Duration) bool {
	select {
	case <-s.attached:
		return true
	case <-time.After(d):
		return false
	}
}

// write sends c its queue until the queue is closed (c dropped or the
// server closed) and empty, or a write fails.
func (s *Server) write(c *client) {
	defer s.writers.Done()
	defer c.conn.Close()
	for range c.wake {
		pkts, done := c.take()
		for _, p := range pkts {
			if _, err := c.conn.Write(p); err != nil {
				s.drop(c)
				return
			}
			c.lastWrite.Store(time.Now().UnixNano())
		}
		if done {
			return
		}
		if len(pkts) > 0 {
			c.signal() // closed meanwhile: look again
		}
	}
}

// read handles what c sends until it hangs up or sends garbage.
func (s *Server) read(c *client) {
	buf := make([]byte, maxPacket+1)
	oob := make([]byte, 0)
	for {
		n, _, flags, _, err := c.conn.ReadMsgUnix(buf, oob)
		if err != nil || n == 0 {
			return // hung up (detached, or gone): its output ends with its writes
		}
		if flags&unix.MSG_TRUNC != 0 || n > maxPacket {
			s.o.Logf("attach socket: a client sent a packet longer than %d bytes: hung up", maxPacket)
			s.drop(c)
			return
		}
		m, err := Decode(buf[:n])
		if err == nil {
			err = s.handle(m)
		}
		if err != nil {
			s.o.Logf("attach socket: %v: hung up", err)
			s.drop(c)
			return
		}
	}
}

func (s *Server) handle(m Message) error {
	switch m.Kind {
	case KindStdin:
		s.inMu.Lock()
		defer s.inMu.Unlock()
		if s.o.Input != nil && !s.inClosed {
			// A container that does not read its stdin blocks this
			// client's reader only (and the other clients' stdin): never
			// the output.
			if _, err := s.o.Input.Write(m.Data); err != nil {
				s.inClosed = true // the container closed it, or ended
			}
		}
	case KindStdinEOF:
		s.inMu.Lock()
		defer s.inMu.Unlock()
		if s.o.CloseInput != nil && !s.inClosed {
			s.inClosed = true
			s.o.CloseInput()
		}
	case KindResize:
		if s.o.Resize != nil && m.Rows > 0 && m.Cols > 0 {
			if err := s.o.Resize(m.Rows, m.Cols); err != nil {
				s.o.Logf("attach socket: resizing the pty to %dx%d: %v", m.Rows, m.Cols, err)
			}
		}
	default:
		return fmt.Errorf("%w: kind %d from a client", ErrMalformed, m.Kind)
	}
	return nil
}

// drop disconnects c (idempotent).
func (s *Server) drop(c *client) {
	s.mu.Lock()
	defer s.mu.Unlock()
	s.dropLocked(c)
}

func (s *Server) dropLocked(c *client) {
	if _, ok := s.clients[c]; !ok {
		return
	}
	delete(s.clients, c)
	c.close()
	// A writer blocked on a client that stopped reading returns now, and
	// what is queued for it is not sent.
	_ = c.conn.SetWriteDeadline(time.Now())
}

// send queues pkts for every client, never waiting: a client whose queue
// is full is dropped.
func (s *Server) send(pkts ...[]byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for c := range s.clients {
		for _, p := range pkts {
			if c.push(p) {
				continue
			}
			if time.Since(time.Unix(0, c.lastWrite.Load())) > stallLimit {
				s.o.Logf("attach socket: a client did not read for %v with %d MiB of output waiting: disconnected", stallLimit, maxQueued>>20)
				s.dropLocked(c)
				break
			}
			if c.lost == 0 {
				s.o.Logf("attach socket: a client reads slower than the container writes: output beyond %d MiB waiting is not sent to it", maxQueued>>20)
			}
			c.lost += int64(len(p) - 1)
		}
	}
}

// Stream returns the writer of one stream (KindStdout or KindStderr): it
// sends each Write to the clients attached now, and never blocks.
func (s *Server) Stream(kind byte) io.Writer { return streamWriter{s, kind} }

type streamWriter struct {
	s    *Server
	kind byte
}

func (w streamWriter) Write(p []byte) (int, error) {
	w.s.mu.Lock()
	none := len(w.s.clients) == 0
	w.s.mu.Unlock()
	if !none {
		w.s.send(dataPackets(w.kind, p)...)
	}
	return len(p), nil
}

// Close stops accepting, removes the socket, sends the clients the exit
// status (code < 0: none, the container did not run) after what is
// queued, and hangs up once they read it or closeGrace passed.
func (s *Server) Close(code int) {
	s.mu.Lock()
	if s.closed {
		s.mu.Unlock()
		return
	}
	s.closed = true
	s.ln.Close()
	_ = os.Remove(s.path)
	for c := range s.clients {
		if code >= 0 {
			c.mu.Lock()
			c.queued = 0 // the status goes whatever waits before it
			c.mu.Unlock()
			c.push(exitPacket(code))
		}
		delete(s.clients, c)
		c.close()
		_ = c.conn.SetWriteDeadline(time.Now().Add(closeGrace))
	}
	s.mu.Unlock()
	s.writers.Wait()
}
