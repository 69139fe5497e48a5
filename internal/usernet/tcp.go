//go:build linux

package usernet

import (
	"context"
	"io"
	"net"
	"net/netip"
	"sync"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// serveTCP translates one TCP connection of the container's (its SYN,
// on the forwarder's goroutine): the host's dial first, and only once
// it has succeeded the handshake with the container, so that a refused
// or unreachable destination is a RST, as the container would see it
// without a translation in between.
func (n *Network) serveTCP(r *tcp.ForwarderRequest) {
	id := r.ID()
	t, ok := n.target(id, "tcp")
	if !ok || !n.takeFlow() {
		if ok {
			n.logf("usernet: tcp to %s refused: %d flows open (the limit)", t, n.cfg.MaxFlows)
		}
		r.Complete(true)
		return
	}
	if !n.goFlow(func() { n.relayTCP(r, t) }) {
		n.dropFlow()
		r.Complete(true)
	}
}

func (n *Network) relayTCP(r *tcp.ForwarderRequest, t netip.AddrPort) {
	defer n.dropFlow()
	c, err := n.dial(n.ctx, "tcp", t)
	if err != nil {
		n.logf("usernet: tcp to %s: %v", t, err)
		r.Complete(true)
		return
	}
	host := c.(*net.TCPConn)
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	r.Complete(false)
	if terr != nil {
		host.Close()
		return
	}
	ep.SocketOptions().SetKeepAlive(true)
	splice(n.ctx, gonet.NewTCPConn(&wq, ep), host)
}

// halfCloser is a connection whose write side closes alone (TCP's FIN).
type halfCloser interface {
	net.Conn
	CloseWrite() error
}

// splice copies a to b and b to a until both directions have ended,
// passing each end-of-stream on as a half close, then closes both; ctx's
// end closes both at once.
func splice(ctx context.Context, a, b halfCloser) {
	stop := context.AfterFunc(ctx, func() {
		a.Close()
		b.Close()
	})
	defer stop()
	var wg sync.WaitGroup
	copyHalf := func(dst, src halfCloser) {
		defer wg.Done()
		if _, err := io.Copy(dst, src); err != nil {
			// A reset or a close: the other direction ends too.
			dst.Close()
			src.Close()
			return
		}
		_ = dst.CloseWrite()
	}
	wg.Add(2)
	go copyHalf(a, b)
	go copyHalf(b, a)
	wg.Wait()
	a.Close()
	b.Close()
}
