package slirp

import (
	"bufio"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
)

// TestStopLongStateDir: Stop reaches the monitor's control socket in a
// state directory whose socket path is longer than a unix socket address
// holds (the reaper renames a container's state directory to
// .gone-<64-hex id>-<suffix>, 112 bytes under /tmp/sandy-UID): connect
// through the directory's fd, not ENAMETOOLONG/EINVAL and a teardown
// that never ends.
func TestStopLongStateDir(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".gone-"+strings.Repeat("a", 64)+"-0123456789ab", strings.Repeat("b", 20))
	if err := os.MkdirAll(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	if len(filepath.Join(dir, "monitor.sock")) <= maxSockPath {
		t.Fatalf("the test's directory is not long enough: %s", dir)
	}
	path, done, err := sockPath(dir, "monitor.sock")
	if err != nil {
		t.Fatal(err)
	}
	l, err := net.Listen("unix", path)
	done()
	if err != nil {
		t.Fatalf("listening on %s: %v", path, err)
	}
	l.(*net.UnixListener).SetUnlinkOnClose(false)
	defer l.Close()
	if _, err := os.Stat(filepath.Join(dir, "monitor.sock")); err != nil {
		t.Fatalf("the socket is not in the state directory: %v", err)
	}
	got := make(chan string, 1)
	go func() {
		c, err := l.Accept()
		if err != nil {
			got <- err.Error()
			return
		}
		line, _ := bufio.NewReader(c).ReadString('\n')
		c.Close() // the monitor closes by exiting
		got <- line
	}()
	if err := Stop(dir); err != nil {
		t.Fatalf("Stop: %v", err)
	}
	if line := <-got; line != "stop\n" {
		t.Errorf("the monitor read %q, want a stop request", line)
	}
}

// TestSocketDir: a state directory too long for a socket address is
// named through /proc/self/fd, and sockets bound and dialed there work
// until release; a short one is used as it is.
func TestSocketDir(t *testing.T) {
	short := t.TempDir()
	if dir, release, err := socketDir(short, "slirp-api.sock"); err != nil || dir != short {
		t.Fatalf("short dir: %q, %v", dir, err)
	} else {
		release()
	}
	long := filepath.Join(t.TempDir(), strings.Repeat("x", 100))
	if err := os.Mkdir(long, 0o700); err != nil {
		t.Fatal(err)
	}
	dir, release, err := socketDir(long, "slirp-api.sock")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(dir, "/proc/self/fd/") {
		t.Fatalf("long dir named %q", dir)
	}
	p := filepath.Join(dir, "slirp-api.sock")
	l, err := net.Listen("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	c, err := net.Dial("unix", p)
	if err != nil {
		t.Fatal(err)
	}
	c.Close()
	if _, err := os.Stat(filepath.Join(long, "slirp-api.sock")); err != nil {
		t.Errorf("the socket is not in the state directory: %v", err)
	}
	release()
	if _, err := os.Stat(dir); err == nil {
		t.Errorf("%s still open after release", dir)
	}
}
