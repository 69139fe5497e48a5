//go:build linux

package usernet

import (
	"errors"
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
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
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("receiving tap0: a message without one fd (%d control messages): %v", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("receiving tap0: a message without one fd: %v", err)
	}
	return os.NewFile(uintptr(fds[0]), "tap0"), nil
}

// Serve is the network program's life (cmd sandy-net): tap0 from the
// init on sock, the network on it with the published ports, "ok" (or
// the error) on ready, then the network until lifeline ends (its
// writer, sandy, closed it or died).
func Serve(sock, ready, lifeline *os.File, cfg Config, published []Forward) error {
	tap, err := ReceiveTap(sock)
	sock.Close()
	if err == nil {
		// Closed after the network (the defers' order), and referenced
		// until then: New takes the number only, and the *os.File's
		// finalizer closed the fd under the stack at the first
		// collection (a download stopped after 5 to 20 MB).
		defer tap.Close()
		var n *Network
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
		return err
	}
	_, _ = io.WriteString(ready, "ok\n")
	ready.Close()
	_, _ = io.Copy(io.Discard, lifeline)
	return nil
}
