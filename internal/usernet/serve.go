//go:build linux

package usernet

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/fds"
)

// ReceiveTap reads the one message the container's init sends on sock
// (initproc.RawTap): a byte and tap0's fd, close-on-exec here.
func ReceiveTap(sock *os.File) (*os.File, error) {
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, fmt.Errorf("receiving tap0: %w", err)
	}
	if n == 0 && oobn == 0 {
		return nil, errors.New("receiving tap0: the init ended before sending it")
	}
	fd, err := fds.FromRights(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("receiving tap0: %w", err)
	}
	return os.NewFile(uintptr(fd), "tap0"), nil
}

// Serve is the network program's life (cmd sandy-net): tap0 from the
// init on sock, the network on it with the published ports, "ok" (or
// the error) on ready, then the network until lifeline ends (awaitEnd).
// handedOver: the end was the init's exit, after a hand-over (a
// detached container's, whose sandy-net delete waits for), not the
// lifeline's. lifelineEnded, when not nil, is called as the lifeline
// ends (not after a hand-over), before the network is closed: sandy-net
// takes its place as a spare then, so that the next run, which may
// start as this one's sandy returns, finds it (and waits for the close).
func Serve(sock, ready, lifeline *os.File, cfg Config, published []Forward, lifelineEnded func()) (handedOver bool, err error) {
	// Every fd it was given is closed when it returns (sandy-net may
	// serve another container after it: internal/spare).
	defer lifeline.Close()
	defer func() {
		for _, fw := range published {
			fw.Close()
		}
	}()
	var n *Network
	tap, err := ReceiveTap(sock)
	sock.Close()
	if err == nil {
		// Closed after the network (the defers' order), and referenced
		// until then: New takes the number only, and the *os.File's
		// finalizer closed the fd under the stack at the first
		// collection (a download stopped after 5 to 20 MB).
		defer tap.Close()
		if n, err = New(int(tap.Fd()), cfg); err == nil {
			defer n.Close()
			for _, fw := range published {
				if err = n.Publish(fw); err != nil {
					break
				}
			}
		}
	}
	if err != nil {
		fmt.Fprintf(ready, "error: %v\n", err)
		ready.Close()
		return false, err
	}
	_, _ = io.WriteString(ready, "ok\n")
	ready.Close()
	handedOver = awaitEnd(lifeline)
	if !handedOver && lifelineEnded != nil {
		lifelineEnded()
	}
	// An interface that would not go (Network.Close) is an error: the
	// process must not serve again.
	return handedOver, n.Close()
}

// awaitEnd returns when the network's life ends: lifeline is a unix
// socket whose other end sandy holds. Its end (sandy closed it, or
// died) ends the network, unless sandy sent a pidfd of the container's
// init on it first (a byte with the fd as SCM_RIGHTS, before `run -d`
// of a bundle or `create` returns with the container alive:
// lifecycle's handOverUserNet); then the init's exit does, and it
// reports true.
func awaitEnd(lifeline *os.File) bool {
	buf, oob := make([]byte, 16), make([]byte, unix.CmsgSpace(4))
	for {
		n, oobn, _, _, err := unix.Recvmsg(int(lifeline.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
		if err == unix.EINTR {
			continue
		}
		if err != nil || n == 0 && oobn == 0 {
			return false
		}
		if pidfd, err := fds.FromRights(oob[:oobn]); err == nil {
			waitReadable(pidfd)
			unix.Close(pidfd)
			return true
		}
	}
}

// waitReadable waits until fd polls readable (a pidfd: its process
// exited) or fails.
func waitReadable(fd int) {
	for {
		_, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, -1)
		if err != unix.EINTR {
			return
		}
	}
}
