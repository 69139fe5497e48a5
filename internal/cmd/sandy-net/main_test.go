package main

import (
	"net"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// TestPublishArg: FD:PORT names a handed-over socket above the fixed
// fds and a port; anything else is refused before the network starts.
func TestPublishArg(t *testing.T) {
	for _, bad := range []string{"", "6", "6:", ":80", "5:80", "x:80", "6:0", "6:65536", "6:80:1"} {
		if _, err := publishArg(bad, nil); err == nil || !strings.Contains(err.Error(), "want FD:PORT") {
			t.Errorf("publishArg(%q) = %v, want the FD:PORT error", bad, err)
		}
	}
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	f, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	// At fd 100, as sandy's ExtraFiles put it above the fixed ones.
	if err := unix.Dup3(int(f.Fd()), 100, unix.O_CLOEXEC); err != nil {
		t.Fatal(err)
	}
	fw, err := publishArg("100:8080", func(fd int) *os.File { return os.NewFile(uintptr(fd), "published") })
	if err != nil || fw.Listener == nil || fw.Port != 8080 {
		t.Fatalf("publishArg of a TCP listener: %+v, %v", fw, err)
	}
	fw.Listener.Close()
	if _, err := unix.FcntlInt(100, unix.F_GETFD, 0); err == nil {
		t.Error("fd 100 is open after publishArg: the forward has its own copy")
	}
}
