//go:build linux

package attach

import (
	"bytes"
	"io"
	"net"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"
)

// syncBuf is a bytes.Buffer for two goroutines.
type syncBuf struct {
	mu sync.Mutex
	b  bytes.Buffer
}

func (s *syncBuf) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuf) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func waitUntil(t *testing.T, what string, cond func() bool) {
	t.Helper()
	for deadline := time.Now().Add(5 * time.Second); !cond(); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
	}
}

func (s *Server) count() int {
	s.mu.Lock()
	defer s.mu.Unlock()
	return len(s.clients)
}

func listen(t *testing.T, o ServerOptions) (*Server, string) {
	t.Helper()
	// A long directory: the socket's path is over unix(7)'s 107 bytes.
	dir := filepath.Join(t.TempDir(), strings.Repeat("d", 100))
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	o.Logf = t.Logf
	s, err := Listen(dir, o)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close(-1) })
	return s, dir
}

// TestServerSession: two clients see the output written after they
// attached, stdout and stderr apart; stdin, its EOF and resizes reach the
// monitor's side; Close sends the exit status and removes the socket.
func TestServerSession(t *testing.T) {
	var in syncBuf
	eof := make(chan struct{})
	var rows, cols uint16
	var mu sync.Mutex
	s, dir := listen(t, ServerOptions{
		Input:      &in,
		CloseInput: func() { close(eof) },
		Resize: func(r, c uint16) error {
			mu.Lock()
			defer mu.Unlock()
			rows, cols = r, c
			return nil
		},
	})
	fi, err := os.Stat(filepath.Join(dir, SocketName))
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("socket mode %v, want a socket 0600", fi.Mode())
	}
	out := s.Stream(KindStdout)
	_, _ = out.Write([]byte("before anyone attached\n"))

	type session struct {
		stdout, stderr syncBuf
		res            chan Result
	}
	stdinR, stdinW := io.Pipe()
	var sessions []*session
	var conns []*Conn
	for i := 0; i < 2; i++ {
		c, err := Dial(dir)
		if err != nil {
			t.Fatal(err)
		}
		conns = append(conns, c)
		ss := &session{res: make(chan Result, 1)}
		sessions = append(sessions, ss)
		var stdin io.Reader
		if i == 0 {
			stdin = stdinR
		}
		go func() {
			r, err := c.Session(Streams{Stdin: stdin, Stdout: &ss.stdout, Stderr: &ss.stderr})
			if err != nil {
				t.Errorf("session: %v", err)
			}
			ss.res <- r
		}()
	}
	waitUntil(t, "two clients", func() bool { return s.count() == 2 })
	_, _ = out.Write([]byte("out\n"))
	_, _ = s.Stream(KindStderr).Write([]byte("err\n"))
	if err := conns[1].Resize(44, 122); err != nil {
		t.Fatal(err)
	}
	_, _ = stdinW.Write([]byte("typed"))
	waitUntil(t, "stdin", func() bool { return in.String() == "typed" })
	stdinW.Close()
	select {
	case <-eof:
	case <-time.After(5 * time.Second):
		t.Fatal("stdin EOF did not close the input")
	}
	// The resize came on the other client's connection, which the
	// server reads on a goroutine of its own: it may arrive after the
	// first client's stdin and EOF (the fresh-clone run of 2026-12-07
	// 16:36 saw 0x0 here).
	waitUntil(t, "the resize", func() bool {
		mu.Lock()
		defer mu.Unlock()
		return rows == 44 && cols == 122
	})
	for i, ss := range sessions {
		waitUntil(t, "the output", func() bool { return ss.stdout.String() == "out\n" && ss.stderr.String() == "err\n" })
		_ = i
	}
	s.Close(3)
	for i, ss := range sessions {
		select {
		case r := <-ss.res:
			if !r.Exited || r.Code != 3 {
				t.Errorf("client %d: %+v, want exit 3", i, r)
			}
		case <-time.After(5 * time.Second):
			t.Fatalf("client %d: no end", i)
		}
	}
	if _, err := os.Stat(filepath.Join(dir, SocketName)); err == nil {
		t.Error("the socket is left after Close")
	}
	if _, err := Dial(dir); err == nil {
		t.Error("Dial after Close worked")
	}
}

// TestServerGarbage: a client that sends what is no message is hung up
// on; the server and the other clients go on.
func TestServerGarbage(t *testing.T) {
	s, dir := listen(t, ServerOptions{})
	good, err := Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	var goodOut syncBuf
	go func() { _, _ = good.Session(Streams{Stdout: &goodOut, Stderr: io.Discard}) }()
	for _, junk := range [][]byte{{0}, {KindResize, 1}, {KindStdout, 'x'}, {KindExit, 0, 0, 0, 0}, bytes.Repeat([]byte{KindStdin}, maxPacket+10), {KindStdinEOF, 1, 2}} {
		c, err := Dial(dir)
		if err != nil {
			t.Fatal(err)
		}
		waitUntil(t, "the client", func() bool { return s.count() == 2 })
		if _, err := c.c.Write(junk); err != nil {
			t.Fatal(err)
		}
		_ = c.c.SetReadDeadline(time.Now().Add(5 * time.Second))
		buf := make([]byte, 16)
		if n, err := c.c.Read(buf); err == nil && n > 0 {
			t.Errorf("junk %v: the server answered %v", junk[:min(len(junk), 8)], buf[:n])
		} else if ne, ok := err.(net.Error); ok && ne.Timeout() {
			t.Errorf("junk %v: not hung up on", junk[:min(len(junk), 8)])
		}
		c.Close()
		waitUntil(t, "the hang-up", func() bool { return s.count() == 1 })
	}
	_, _ = s.Stream(KindStdout).Write([]byte("still here"))
	waitUntil(t, "the good client's output", func() bool { return goodOut.String() == "still here" })
}

// TestServerSlowClient: a client that does not read is disconnected once
// its queue is full and it took nothing for stallLimit; the writes never
// block, and another client, which reads, gets everything.
func TestServerSlowClient(t *testing.T) {
	s, dir := listen(t, ServerOptions{})
	stuck, err := Dial(dir) // never reads
	if err != nil {
		t.Fatal(err)
	}
	defer stuck.Close()
	fast, err := Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	var got countWriter
	go func() { _, _ = fast.Session(Streams{Stdout: &got, Stderr: io.Discard}) }()
	waitUntil(t, "two clients", func() bool { return s.count() == 2 })
	chunk := bytes.Repeat([]byte{'x'}, MaxPayload)
	const total = 64 << 20 // far more than the socket buffer and the queue
	start := time.Now()
	w := s.Stream(KindStdout)
	for n := 0; n < total; n += len(chunk) {
		_, _ = w.Write(chunk)
		if n%(1<<20) == 0 {
			// Let the fast client keep up: it is not the one to drop.
			waitUntil(t, "the fast client", func() bool { return got.n() >= n })
		}
	}
	if d := time.Since(start); d > 20*time.Second {
		t.Errorf("writing %d MiB took %v", total>>20, d)
	}
	waitUntil(t, "the fast client's output", func() bool { return got.n() == total })
	// The container goes on writing: once the stuck client has taken
	// nothing for stallLimit, it is dropped.
	for deadline := time.Now().Add(10 * time.Second); s.count() == 2; time.Sleep(10 * time.Millisecond) {
		if time.Now().After(deadline) {
			t.Fatal("the stuck client was not dropped")
		}
		_, _ = w.Write(chunk)
	}
}

type countWriter struct {
	mu    sync.Mutex
	count int
}

func (c *countWriter) Write(p []byte) (int, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.count += len(p)
	return len(p), nil
}

func (c *countWriter) n() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.count
}

// TestListenPrivate: a directory others can enter is made private before
// the socket is made in it.
func TestListenPrivate(t *testing.T) {
	dir := t.TempDir()
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	s, err := Listen(dir, ServerOptions{})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close(-1)
	fi, err := os.Stat(dir)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o700 {
		t.Errorf("directory mode %v, want 0700", fi.Mode().Perm())
	}
}

// slowWriter takes each write after a pause: a client that reads, slower
// than the output comes.
type slowWriter struct{ countWriter }

func (s *slowWriter) Write(p []byte) (int, error) {
	time.Sleep(2 * time.Millisecond)
	return s.countWriter.Write(p)
}

// TestServerLaggingClient: a client that reads, but slower than the
// output comes, is not disconnected: it misses what does not fit in its
// queue, and gets the rest.
func TestServerLaggingClient(t *testing.T) {
	var logged syncBuf
	s, dir := listen(t, ServerOptions{})
	s.o.Logf = func(format string, args ...any) { _, _ = logged.Write([]byte(format + "\n")) }
	c, err := Dial(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := &slowWriter{}
	res := make(chan Result, 1)
	go func() {
		r, _ := c.Session(Streams{Stdout: got, Stderr: io.Discard})
		res <- r
	}()
	waitUntil(t, "the client", func() bool { return s.count() == 1 })
	chunk := bytes.Repeat([]byte{'x'}, MaxPayload)
	const total = 3 * maxQueued
	w := s.Stream(KindStdout)
	for n := 0; n < total; n += len(chunk) {
		_, _ = w.Write(chunk)
	}
	if s.count() != 1 {
		t.Fatalf("the lagging client was disconnected; log: %s", logged.String())
	}
	if !strings.Contains(logged.String(), "slower") {
		t.Errorf("no word of the lost output; log: %s", logged.String())
	}
	_, _ = w.Write([]byte("end"))
	s.Close(0)
	select {
	case r := <-res:
		if !r.Exited {
			t.Errorf("the lagging client's session ended without the exit status: %+v", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the lagging client's session did not end")
	}
	if n := got.n(); n >= total || n < maxQueued {
		t.Errorf("the client got %d bytes of %d: want what its queue held, not all", n, total)
	}
}
