package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/internal/usernet"
)

// userNet is sandy's own network for a container (--network=usernet,
// internal/usernet): the raw init makes tap0 in the container's network
// namespace and sends its fd on a socket (initproc.RawTap); this process
// serves it with the user-mode stack for as long as the container runs.
// No process is started for it.
//
// This slice serves `sandy run` in the foreground on the raw init's path
// only: planNetwork and rawPlan refuse the rest with the reason.
type userNet struct {
	cfg usernet.Config
	// host is this process's end of the socket; child and placeholder
	// are the child's fds (RawTap), closed here once it is forked.
	host, child, placeholder *os.File
	started                  bool          // startUserNet ran
	done                     chan struct{} // closed once net or err is set
	net                      *usernet.Network
	tap                      *os.File
	err                      error
}

// planUserNet checks that --network=usernet can serve this container.
func (cr *creation) planUserNet(cfg usernet.Config, ports int) error {
	switch {
	case !cr.o.owned:
		return errors.New("--network=usernet serves `sandy run` in the foreground only, for now (run -d, create: --network=slirp4netns)")
	case ports > 0:
		return errors.New("-p with --network=usernet: not yet (use --network=slirp4netns)")
	}
	cr.unet = &userNet{cfg: cfg, done: make(chan struct{})}
	cr.undo.add(cr.closeUserNet)
	cr.g.Debugf("network: sandy's own (usernet), in this process")
	return nil
}

// userNetTap adds the socket and the placeholder to the raw init's files
// and returns what the program needs (rawPlan).
func (cr *creation) userNetTap(files []*os.File) ([]*os.File, *initproc.RawTap, error) {
	u := cr.unet
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return nil, nil, fmt.Errorf("the tap's socket: %w", err)
	}
	u.host, u.child = os.NewFile(uintptr(fds[0]), "usernet-host"), os.NewFile(uintptr(fds[1]), "usernet-child")
	if u.placeholder, err = os.Open(os.DevNull); err != nil {
		return nil, nil, fmt.Errorf("the tap's placeholder fd: %w", err)
	}
	mtu := u.cfg.MTU
	if mtu == 0 {
		mtu = usernet.DefaultMTU
	}
	files = append(files, u.child, u.placeholder)
	return files, &initproc.RawTap{Socket: len(files) - 2, FD: len(files) - 1, MTU: mtu}, nil
}

// startUserNet, once the raw init is forked, receives tap0 and starts
// the stack on it, beside the init's program (networkReady waits).
func (cr *creation) startUserNet() {
	u := cr.unet
	// The child has its copies: with ours closed, its exit is our EOF.
	u.child.Close()
	u.placeholder.Close()
	u.child, u.placeholder = nil, nil
	u.started = true
	go func() {
		defer close(u.done)
		tap, err := receiveTap(u.host)
		if err != nil {
			u.err = fmt.Errorf("receiving tap0 from the init: %w", err)
			return
		}
		u.tap = tap
		cfg := u.cfg
		if cr.g.Debug {
			cfg.Logf = func(format string, args ...any) { cr.g.Debugf(format, args...) }
		}
		if u.net, err = usernet.New(int(tap.Fd()), cfg); err != nil {
			u.err = fmt.Errorf("starting the network on tap0: %w", err)
		}
	}()
}

// receiveTap reads the one message the raw init sends: a byte and
// tap0's fd.
func receiveTap(sock *os.File) (*os.File, error) {
	buf, oob := make([]byte, 1), make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := unix.Recvmsg(int(sock.Fd()), buf, oob, unix.MSG_CMSG_CLOEXEC)
	if err != nil {
		return nil, err
	}
	if n == 0 && oobn == 0 {
		return nil, errors.New("the init ended before sending it (its error follows)")
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		return nil, fmt.Errorf("a message without one fd (%d control messages): %v", len(msgs), err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		for _, fd := range fds {
			unix.Close(fd)
		}
		return nil, fmt.Errorf("a message without one fd: %v", err)
	}
	return os.NewFile(uintptr(fds[0]), "tap0"), nil
}

// userNetReady waits until the stack serves tap0.
func (cr *creation) userNetReady(ctx context.Context) error {
	u := cr.unet
	select {
	case <-u.done:
		return u.err
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(30 * time.Second):
		return errors.New("tap0 from the init: nothing after 30 s")
	}
}

// closeUserNet ends the network: its flows' sockets closed, the stack
// and the tap's fd with them.
func (cr *creation) closeUserNet() {
	u := cr.unet
	if u == nil {
		return
	}
	for _, f := range []*os.File{u.child, u.placeholder} {
		if f != nil {
			f.Close()
		}
	}
	u.child, u.placeholder = nil, nil
	if u.started {
		// The receive ends with the init: sent, or gone (EOF), as the
		// init is ended before this (the undo stack's order, the run's
		// end).
		<-u.done
	}
	if u.host != nil {
		u.host.Close()
		u.host = nil
	}
	if u.net != nil {
		u.net.Close()
		u.net = nil
	}
	if u.tap != nil {
		u.tap.Close()
		u.tap = nil
	}
}
