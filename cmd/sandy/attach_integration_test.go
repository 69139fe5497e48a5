//go:build integration

package main_test

import (
	"bytes"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// attachProc is a `sandy attach` (or start -a) running in the background.
type attachProc struct {
	t    *testing.T
	cmd  *exec.Cmd
	out  syncBuffer
	errb syncBuffer
	done chan struct{}
}

func (e *imgEnv) startAttach(stdin *os.File, stdout io.Writer, args ...string) *attachProc {
	e.t.Helper()
	p := &attachProc{t: e.t, cmd: e.cmd(args...), done: make(chan struct{})}
	if stdin != nil {
		p.cmd.Stdin = stdin
	}
	p.cmd.Stdout, p.cmd.Stderr = &p.out, &p.errb
	if stdout != nil {
		p.cmd.Stdout = stdout
	}
	if err := p.cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.done) }()
	e.t.Cleanup(func() { p.kill() })
	return p
}

func (p *attachProc) kill() {
	select {
	case <-p.done:
	default:
		_ = p.cmd.Process.Signal(unix.SIGCONT)
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// attached waits until the process holds a socket: sandy attach opens
// none but the attach socket.
func (p *attachProc) attached() {
	p.t.Helper()
	waitFor(p.t, 30*time.Second, "attach to connect", func() bool {
		ents, _ := os.ReadDir("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/fd")
		for _, e := range ents {
			if l, _ := os.Readlink("/proc/" + strconv.Itoa(p.cmd.Process.Pid) + "/fd/" + e.Name()); strings.HasPrefix(l, "socket:") {
				return true
			}
		}
		return false
	})
}

// exit waits for the process and returns its status.
func (p *attachProc) exit() int {
	p.t.Helper()
	select {
	case <-p.done:
	case <-time.After(60 * time.Second):
		p.kill()
		p.t.Fatalf("%v did not exit; stdout %q, stderr %q", p.cmd.Args[1:], p.out.String(), p.errb.String())
	}
	return p.cmd.ProcessState.ExitCode()
}

// osPipe is a pipe whose ends are files: a child gets the read end itself
// (exec.Cmd waits for the copy of any other reader, which would wait for
// the test's writes).
func osPipe(t *testing.T) (*os.File, *os.File) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { r.Close(); w.Close() })
	return r, w
}

// containerDir is the container's directory (its log's).
func (e *imgEnv) containerDir(name string) string {
	e.t.Helper()
	return filepath.Dir(strings.TrimSpace(e.ok("inspect", "--format", "{{.LogPath}}", name)))
}

// TestAttach: sandy attach to a container run with -d: the output from
// the moment it attaches, stdin (-i) and its EOF, the exit status, a pty
// with resizes (-t), the detach keys, two clients at once, start -a -i;
// a container that is not running is an error; a client that does not
// read is dropped while the log goes on.
func TestAttach(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e, _ := detachedEnv(t)
	t.Cleanup(func() {
		// What a failed subtest left running.
		e.t = t
		e.run_(nil, "rm", "-f", "a1", "a2", "a3", "a5", "a6", "a7", "a8", "a9", "a10")
	})

	t.Run("output after attaching", func(t *testing.T) {
		e.t = t
		e.runD("--name", "a1", "localhost/bb:d", "sh", "-c", "echo early; while [ ! -e /tmp/go ]; do sleep 0.05; done; echo late; echo oops >&2; exit 7")
		// run -d returns once the process runs, which may be before its
		// first echo: what comes before the attach is the log's only.
		waitFor(t, 10*time.Second, "the first line in the log", func() bool { return strings.Contains(e.ok("logs", "a1"), "early") })
		dir := e.containerDir("a1")
		fi, err := os.Stat(filepath.Join(dir, "attach"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode()&os.ModeSocket == 0 || fi.Mode().Perm() != 0o600 {
			t.Errorf("attach socket mode %v, want a socket 0600", fi.Mode())
		}
		if di, err := os.Stat(dir); err != nil || di.Mode().Perm() != 0o700 {
			t.Errorf("container directory: %v, %v; want 0700", di.Mode(), err)
		}
		p := e.startAttach(nil, nil, "attach", "a1")
		p.attached()
		e.ok("container", "exec", "a1", "touch", "/tmp/go")
		if code := p.exit(); code != 7 {
			t.Errorf("attach: exit %d, want 7; stderr %q", code, p.errb.String())
		}
		if out := p.out.String(); out != "late\n" {
			t.Errorf("attach stdout %q, want \"late\\n\" (nothing from before it attached)", out)
		}
		if errOut := p.errb.String(); errOut != "oops\n" {
			t.Errorf("attach stderr %q, want \"oops\\n\"", errOut)
		}
		if _, err := os.Stat(filepath.Join(dir, "attach")); err == nil {
			t.Error("the attach socket is left after the container exited")
		}
		if out := e.ok("logs", "a1"); !strings.Contains(out, "early\n") || !strings.Contains(out, "late\n") {
			t.Errorf("logs: %q", out)
		}
	})

	t.Run("stdin", func(t *testing.T) {
		e.t = t
		e.runD("-i", "--name", "a2", "localhost/bb:d", "sh", "-c", `while read l; do echo "got $l"; done; echo bye; exit 5`)
		r := e.run_([]byte("one\ntwo\n"), "attach", "a2")
		if r.code != 5 || r.stdout != "got one\ngot two\nbye\n" {
			t.Errorf("attach: exit %d, stdout %q (want 5, got one, got two, bye)\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		if out := e.ok("wait", "a2"); out != "5\n" {
			t.Errorf("wait: %q", out)
		}
	})

	t.Run("start -a -i", func(t *testing.T) {
		e.t = t
		r := e.run_([]byte("three\n"), "start", "-a", "-i", "a2")
		if r.code != 5 || r.stdout != "got three\nbye\n" {
			t.Errorf("start -a -i: exit %d, stdout %q (want 5, got three, bye)\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		r = e.run_([]byte("four\n"), "container", "start", "-ai", "a2")
		if r.code != 5 || r.stdout != "got four\nbye\n" {
			t.Errorf("container start -ai: exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
		}
		// start -a sees the output from the process's first byte.
		e.runD("--name", "a7", "localhost/bb:d", "sh", "-c", "echo first; echo second >&2; exit 3")
		e.ok("wait", "a7")
		r = e.run_(nil, "start", "-a", "a7")
		if r.code != 3 || r.stdout != "first\n" || !strings.Contains(r.stderr, "second\n") {
			t.Errorf("start -a: exit %d, stdout %q, stderr %q (want 3, first, second)", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("not running", func(t *testing.T) {
		e.t = t
		if msg := e.fails(125, "attach", "a7"); !strings.Contains(msg, "you can only attach to running containers") {
			t.Errorf("attach to an exited container: %s", msg)
		}
		if msg := e.fails(125, "attach", "--detach-keys", "ctrl-1", "a7"); !strings.Contains(msg, "ctrl-1") {
			t.Errorf("bad --detach-keys: %s", msg)
		}
		if msg := e.fails(125, "container", "attach", "no-such"); !strings.Contains(msg, "no-such") {
			t.Errorf("attach to no container: %s", msg)
		}
	})

	t.Run("two clients", func(t *testing.T) {
		e.t = t
		e.runD("-i", "--name", "a5", "localhost/bb:d", "sh", "-c", `while read l; do echo "got $l"; done; exit 4`)
		watcher := e.startAttach(nil, nil, "container", "attach", "--no-stdin", "a5")
		inR, inW := osPipe(t)
		typist := e.startAttach(inR, nil, "attach", "a5")
		inR.Close()
		watcher.attached()
		typist.attached()
		if _, err := inW.Write([]byte("hello\n")); err != nil {
			t.Fatal(err)
		}
		for _, p := range []*attachProc{watcher, typist} {
			waitFor(t, 30*time.Second, "got hello", func() bool { return p.out.String() == "got hello\n" })
		}
		inW.Close() // EOF: the container's stdin is closed, it exits
		for _, p := range []*attachProc{watcher, typist} {
			if code := p.exit(); code != 4 {
				t.Errorf("%v: exit %d, want 4; stderr %q", p.cmd.Args[1:], code, p.errb.String())
			}
		}
	})

	t.Run("garbage", func(t *testing.T) {
		e.t = t
		e.runD("-i", "--name", "a9", "localhost/bb:d", "cat")
		dir := e.containerDir("a9")
		d, err := os.Open(dir)
		if err != nil {
			t.Fatal(err)
		}
		defer d.Close()
		sock := fmt.Sprintf("/proc/self/fd/%d/attach", d.Fd())
		for _, junk := range [][]byte{{0}, {9, 9, 9}, {5, 1}, {4, 4}, {1}, make([]byte, 70000)} {
			c, err := net.DialUnix("unixpacket", nil, &net.UnixAddr{Name: sock, Net: "unixpacket"})
			if err != nil {
				t.Fatal(err)
			}
			_, _ = c.Write(junk)
			c.Close()
		}
		// A stream socket, not a packet one: refused by the kernel.
		if c, err := net.Dial("unix", sock); err == nil {
			c.Close()
			t.Error("a SOCK_STREAM client connected to the attach socket")
		}
		r := e.run_([]byte("still here\n"), "attach", "a9")
		if r.code != 0 || r.stdout != "still here\n" {
			t.Errorf("attach after the garbage: exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("sig-proxy", func(t *testing.T) {
		e.t = t
		e.runD("-i", "--name", "a10", "localhost/bb:d", "sh", "-c", `trap 'echo got INT; exit 9' INT; echo armed; while :; do sleep 0.1; done`)
		waitFor(t, 30*time.Second, "the trap", func() bool { return strings.Contains(e.ok("logs", "a10"), "armed") })
		inR, _ := osPipe(t)
		p := e.startAttach(inR, nil, "attach", "a10")
		p.attached()
		if err := p.cmd.Process.Signal(unix.SIGINT); err != nil {
			t.Fatal(err)
		}
		if code := p.exit(); code != 9 || p.out.String() != "got INT\n" {
			t.Errorf("SIGINT to attach: exit %d, stdout %q (want 9, got INT); stderr %q", code, p.out.String(), p.errb.String())
		}
	})

	t.Run("detach keys", func(t *testing.T) {
		e.t = t
		e.runD("-i", "--name", "a6", "localhost/bb:d", "cat")
		inR, inW := osPipe(t)
		p := e.startAttach(inR, nil, "attach", "--detach-keys", "ctrl-a,d", "a6")
		inR.Close()
		p.attached()
		_, _ = inW.Write([]byte("x\n"))
		waitFor(t, 30*time.Second, "the echo", func() bool { return p.out.String() == "x\n" })
		_, _ = inW.Write([]byte("\x01d"))
		if code := p.exit(); code != 0 {
			t.Errorf("detached attach: exit %d; stderr %q", code, p.errb.String())
		}
		inW.Close()
		if out := e.ok("ps"); !strings.Contains(out, "a6") || !strings.Contains(out, "Up") {
			t.Errorf("ps after the detach:\n%s", out)
		}
		r := e.run_([]byte("y\n"), "attach", "a6")
		if r.code != 0 || r.stdout != "y\n" {
			t.Errorf("attach again: exit %d, stdout %q\nstderr: %s", r.code, r.stdout, r.stderr)
		}
	})

	t.Run("tty", func(t *testing.T) {
		e.t = t
		e.runD("-it", "--name", "a3", "localhost/bb:d", "sh", "-c", `read a; stty size; read b; stty size; echo "done=$a$b"; read c; exit 6`)
		master, slave, before := testPty(t, 33, 111)
		var out syncBuffer
		go func() { _, _ = io.Copy(&out, master) }()
		attachTTY := func() *attachProc {
			p := &attachProc{t: t, cmd: e.cmd("attach", "a3"), done: make(chan struct{})}
			p.cmd.Stdin, p.cmd.Stdout, p.cmd.Stderr = slave, slave, slave
			if err := p.cmd.Start(); err != nil {
				t.Fatal(err)
			}
			go func() { _ = p.cmd.Wait(); close(p.done) }()
			t.Cleanup(p.kill)
			p.attached()
			return p
		}
		p := attachTTY()
		time.Sleep(200 * time.Millisecond) // the initial size goes before the input
		_, _ = master.Write([]byte("one\r"))
		waitFor(t, 30*time.Second, "33 111", func() bool { return strings.Contains(out.String(), "33 111") })
		during, _ := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if during.Lflag&unix.ICANON != 0 || during.Lflag&unix.ECHO != 0 {
			t.Errorf("the terminal is not raw while attached: lflag %#x", during.Lflag)
		}
		if err := master.Resize(console.WinSize{Height: 44, Width: 122}); err != nil {
			t.Fatal(err)
		}
		_ = p.cmd.Process.Signal(unix.SIGWINCH)
		time.Sleep(300 * time.Millisecond)
		_, _ = master.Write([]byte("two\r"))
		waitFor(t, 30*time.Second, "44 122", func() bool { return strings.Contains(out.String(), "44 122") })
		waitFor(t, 30*time.Second, "done=onetwo", func() bool { return strings.Contains(out.String(), "done=onetwo") })
		// ctrl-p ctrl-q detaches: the container goes on.
		_, _ = master.Write([]byte{16, 17})
		if code := p.exit(); code != 0 {
			t.Errorf("detach: exit %d; output %q", code, out.String())
		}
		after, _ := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if !bytes.Equal(termiosBytes(before), termiosBytes(after)) {
			t.Errorf("the terminal is not restored after the detach: lflag %#x, was %#x", after.Lflag, before.Lflag)
		}
		if ps := e.ok("ps"); !strings.Contains(ps, "a3") || !strings.Contains(ps, "Up") {
			t.Errorf("ps after the detach:\n%s", ps)
		}
		p = attachTTY()
		_, _ = master.Write([]byte("three\r"))
		if code := p.exit(); code != 6 {
			t.Errorf("attach again: exit %d, want 6; output %q", code, out.String())
		}
		after, _ = unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
		if !bytes.Equal(termiosBytes(before), termiosBytes(after)) {
			t.Errorf("the terminal is not restored after the exit: lflag %#x, was %#x", after.Lflag, before.Lflag)
		}
	})

	t.Run("a client that does not read", func(t *testing.T) {
		e.t = t
		line := strings.Repeat("0123456789", 100)
		// Not as fast as it can: the log is not rotated while the test
		// looks at its size (a rotation can give the new file the old
		// one's inode).
		e.runD("--name", "a8", "localhost/bb:d", "sh", "-c", "while :; do for i in 0 1 2 3 4 5 6 7 8 9; do echo "+line+"; done; sleep 0.001; done")
		dir := e.containerDir("a8")
		// Its stdout is a pipe nobody reads, and it is stopped: the monitor
		// drops it once 8 MiB wait for it and it took nothing for a second.
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		p := e.startAttach(nil, w, "attach", "a8")
		w.Close()
		p.attached()
		time.Sleep(500 * time.Millisecond)
		if err := p.cmd.Process.Signal(syscall.SIGSTOP); err != nil {
			t.Fatal(err)
		}
		logged := func() (os.FileInfo, int64) {
			var fi os.FileInfo
			var err error
			// Between the rotation's rename and its new file, there is none.
			for i := 0; i < 100; i++ {
				if fi, err = os.Stat(filepath.Join(dir, "ctr.log")); err == nil {
					return fi, fi.Size()
				}
				time.Sleep(10 * time.Millisecond)
			}
			t.Fatal(err)
			return nil, 0
		}
		grows := func() {
			t.Helper()
			fi0, n0 := logged()
			time.Sleep(time.Second)
			fi1, n1 := logged()
			if os.SameFile(fi0, fi1) && n1 <= n0 {
				t.Fatalf("the log stopped growing while the client is stopped (%d bytes)", n1)
			}
		}
		for i := 0; i < 2; i++ {
			grows()
		}
		waitFor(t, 30*time.Second, "the monitor to drop the client", func() bool {
			b, _ := os.ReadFile(filepath.Join(dir, "monitor.log"))
			return strings.Contains(string(b), "disconnected")
		})
		grows()
		_ = p.cmd.Process.Signal(syscall.SIGCONT)
		go func() { _, _ = io.Copy(io.Discard, r) }()
		if code := p.exit(); code != 125 || !strings.Contains(p.errb.String(), "hung up on this attach") {
			t.Errorf("the dropped attach: exit %d, stderr %q (want 125 and why)", code, p.errb.String())
		}
		e.ok("rm", "-f", "a8")
	})
}
