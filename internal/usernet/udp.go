//go:build linux

package usernet

import (
	"net"
	"net/netip"
	"sync/atomic"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// maxDatagram is the largest UDP payload relayed (IPv4's).
const maxDatagram = 65507

// serveUDP translates a new UDP flow of the container's (its first
// datagram, on the stack's goroutine, which must not block): an endpoint
// bound to the destination and connected to the container, and a host
// socket connected to the destination, relayed both ways until UDPIdle
// (DNSIdle for port 53) passes without a datagram or the network closes.
// It reports the datagram handled whatever became of it: a flow dropped
// at the limit is dropped silently, as a full NAT table drops it (a
// target sandy refuses is answered before, by the protocol handler).
func (n *Network) serveUDP(r *udp.ForwarderRequest) (handled bool) {
	id := r.ID()
	t, ok := n.target(id, "udp")
	if !ok {
		return true
	}
	if !n.takeFlow() {
		n.logf("usernet: udp to %s dropped: %d flows open (the limit)", t, n.cfg.MaxFlows)
		return true
	}
	var wq waiter.Queue
	ep, terr := r.CreateEndpoint(&wq)
	if terr != nil {
		n.dropFlow()
		n.logf("usernet: udp to %s: %s", t, terr)
		return true
	}
	ctr := gonet.NewUDPConn(&wq, ep)
	if !n.goFlow(func() { n.relayUDP(ctr, t) }) {
		ctr.Close()
		n.dropFlow()
	}
	return true
}

func (n *Network) relayUDP(ctr *gonet.UDPConn, t netip.AddrPort) {
	idle := n.cfg.UDPIdle
	if t.Port() == 53 {
		idle = n.cfg.DNSIdle
	}
	defer n.dropFlow()
	defer ctr.Close()
	host, err := n.dial(n.ctx, "udp", t)
	if err != nil {
		n.logf("usernet: udp to %s: %v", t, err)
		return
	}
	defer host.Close()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-n.ctx.Done():
		case <-stop:
		}
		ctr.Close()
		host.Close()
	}()
	// last is when a datagram last passed, either way: each side's read
	// deadline is idle after it, so a flow that answers stays.
	var last atomic.Int64
	last.Store(time.Now().UnixNano())
	done := make(chan struct{})
	go func() {
		defer close(done)
		relayDatagrams(host, ctr, &last, idle)
	}()
	relayDatagrams(ctr, host, &last, idle)
	ctr.Close()
	host.Close()
	<-done
}

// relayDatagrams copies datagrams from src to dst until src fails or
// stays silent for idle after the flow's last datagram either way.
func relayDatagrams(dst, src net.Conn, last *atomic.Int64, idle time.Duration) {
	buf := make([]byte, maxDatagram)
	for {
		_ = src.SetReadDeadline(time.Unix(0, last.Load()).Add(idle))
		m, err := src.Read(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() && time.Since(time.Unix(0, last.Load())) < idle {
				continue // the other direction kept the flow alive
			}
			return
		}
		last.Store(time.Now().UnixNano())
		if _, err := dst.Write(buf[:m]); err != nil {
			return
		}
	}
}
