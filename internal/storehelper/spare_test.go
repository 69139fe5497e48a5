//go:build containers_image_openpgp

package storehelper

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/imagehelper"
)

// TestSparePlace: one spare per key (a second listener is refused while
// the first holds the place); a listener's wait ends after its idle time
// with its socket removed and its place free; a connection ends the wait
// and frees the place too, so that a run coming meanwhile starts a
// helper that may take it; the socket is the user's alone.
func TestSparePlace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".helpers")
	sock, _ := imagehelper.SparePaths(dir, "k")
	l, err := listenSpare(dir, "k")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("the socket: %v, %v; want a socket of mode 0600", fi, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the directory: %v, %v; want mode 0700", fi, err)
	}
	if l2, err := listenSpare(dir, "k"); err == nil {
		l2.accept(0)
		t.Fatal("a second spare of the same key took the place")
	}
	if other, err := listenSpare(dir, "other"); err != nil {
		t.Errorf("a spare of another key: %v", err)
	} else {
		other.accept(time.Millisecond)
	}

	t0 := time.Now()
	if _, ok := l.accept(50 * time.Millisecond); ok {
		t.Fatal("accept without a connection said it had one")
	}
	if d := time.Since(t0); d < 40*time.Millisecond {
		t.Errorf("the idle wait ended after %v, want 50 ms", d)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket after the wait: %v, want it removed", err)
	}

	// The place is free again; a connection ends the next wait.
	l, err = listenSpare(dir, "k")
	if err != nil {
		t.Fatalf("the place after the wait: %v", err)
	}
	c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(c)
	if err := unix.Connect(c, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	conn, ok := l.accept(10 * time.Second)
	if !ok {
		t.Fatal("no connection accepted")
	}
	defer unix.Close(conn)
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket while serving: %v, want it removed", err)
	}
	l3, err := listenSpare(dir, "k")
	if err != nil {
		t.Fatalf("the place while the first serves: %v, want it free", err)
	}
	l3.accept(0)
}
