//go:build linux

package usernet

import (
	"bufio"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// serveHarness runs Serve on a socketpair, with its ready pipe and
// lifeline, and returns the init's end of the socket, the ready
// reader, the lifeline's writer and Serve's result.
// served is Serve's return.
type served struct {
	handedOver bool
	err        error
}

func serveHarness(t *testing.T) (initEnd *os.File, ready *bufio.Reader, lifeline *os.File, done <-chan served) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	readyR, readyW, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	life, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	lifeR, lifeW := os.NewFile(uintptr(life[0]), "lifeline-net"), os.NewFile(uintptr(life[1]), "lifeline")
	ch := make(chan served, 1)
	go func() {
		h, err := Serve(os.NewFile(uintptr(fds[0]), "host"), readyW, lifeR, Config{DNS: nil}, nil, nil)
		ch <- served{h, err}
	}()
	t.Cleanup(func() { readyR.Close(); lifeW.Close() })
	return os.NewFile(uintptr(fds[1]), "init"), bufio.NewReader(readyR), lifeW, ch
}

// sendTap sends what stands for the tap (one end of a datagram
// socketpair) as the init does, and waits for Serve's "ok".
func sendTap(t *testing.T, initEnd *os.File, ready *bufio.Reader) {
	t.Helper()
	tap, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { unix.Close(tap[1]) })
	if err := unix.Sendmsg(int(initEnd.Fd()), []byte{'t'}, unix.UnixRights(tap[0]), nil, 0); err != nil {
		t.Fatal(err)
	}
	unix.Close(tap[0])
	initEnd.Close()
	if l, err := ready.ReadString('\n'); err != nil || l != "ok\n" {
		t.Fatalf("ready: %q, %v", l, err)
	}
}

// TestServe: the tap's fd arrives as the init sends it (here one end of
// a datagram socketpair stands for the tap), "ok" is said, and the
// network lives until the lifeline ends.
// Every fd it was given, and every fd of its network, is closed when it
// returns: sandy-net may serve another container after it.
func TestServe(t *testing.T) {
	before := openFDs(t)
	initEnd, ready, lifeline, done := serveHarness(t)
	sendTap(t, initEnd, ready)
	select {
	case r := <-done:
		t.Fatalf("Serve returned before the lifeline ended: %v", r.err)
	case <-time.After(100 * time.Millisecond):
	}
	lifeline.Close()
	select {
	case r := <-done:
		if r.err != nil || r.handedOver {
			t.Fatalf("Serve: %+v, want no error and no hand-over", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return once the lifeline ended")
	}
	// The test's own: the ready pipe's read end and the tap's other
	// end, closed at its cleanup; and the one fd a network leaves open
	// (Network.Close: gVisor's stop eventfd).
	if after := openFDs(t); after != before+3 {
		t.Errorf("%d fds open before Serve, %d after; want the test's 2 and gVisor's eventfd more only", before, after)
	}
}

// openFDs counts this process's open fds.
func openFDs(t *testing.T) int {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	return len(ents)
}

// TestServeHandOver: once a pidfd came on the lifeline, its end no
// longer ends the network: the process's exit does.
func TestServeHandOver(t *testing.T) {
	initEnd, ready, lifeline, done := serveHarness(t)
	sendTap(t, initEnd, ready)
	sleeper := exec.Command("sleep", "60")
	if err := sleeper.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = sleeper.Process.Kill(); _ = sleeper.Wait() }()
	pidfd, err := unix.PidfdOpen(sleeper.Process.Pid, 0)
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Sendmsg(int(lifeline.Fd()), []byte{'h'}, unix.UnixRights(pidfd), nil, 0); err != nil {
		t.Fatal(err)
	}
	unix.Close(pidfd)
	lifeline.Close()
	select {
	case r := <-done:
		t.Fatalf("Serve returned at the lifeline's end after the hand-over: %v", r.err)
	case <-time.After(200 * time.Millisecond):
	}
	_ = sleeper.Process.Kill()
	_ = sleeper.Wait()
	select {
	case r := <-done:
		if r.err != nil || !r.handedOver {
			t.Fatalf("Serve: %+v, want no error and the hand-over", r)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Serve did not return once the handed-over process exited")
	}
}

// TestServeInitGone: an init that ends without sending (its program
// failed) is an error on the ready pipe, not a wait.
func TestServeInitGone(t *testing.T) {
	initEnd, ready, _, done := serveHarness(t)
	initEnd.Close()
	l, _ := ready.ReadString('\n')
	if !strings.HasPrefix(l, "error: ") || !strings.Contains(l, "ended before sending it") {
		t.Fatalf("ready: %q", l)
	}
	if r := <-done; r.err == nil {
		t.Fatal("Serve: no error")
	}
}
