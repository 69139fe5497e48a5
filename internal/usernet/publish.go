//go:build linux

package usernet

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"
)

// Published ports (-p). The host's sockets are bound by the caller
// (sandy, which reports a port in use before anything starts) and
// served here: each TCP connection and each UDP client accepted on one
// is dialed from inside the stack to the container's address, from the
// client's own address where the container can answer it through its
// default route (Routable), else from the gateway's (source).

// containerAddr is tap0's address in the container (slirp4netns's).
var containerAddr = netip.AddrFrom4([4]byte{10, 0, 2, 100})

// Forward is one published port: a host socket, and the container's
// port its connections and datagrams go to.
type Forward struct {
	Listener net.Listener   // a TCP listener, or
	Packet   net.PacketConn // a UDP socket
	Port     uint16
}

// ForwardFile makes the Forward of a bound host socket that another
// process handed over (a listening TCP socket or a UDP one: its type
// decides), for the container's port. f stays the caller's.
func ForwardFile(f *os.File, port uint16) (Forward, error) {
	typ, err := unix.GetsockoptInt(int(f.Fd()), unix.SOL_SOCKET, unix.SO_TYPE)
	if err != nil {
		return Forward{}, fmt.Errorf("published port %d: fd %d is not a socket: %w", port, f.Fd(), err)
	}
	fw := Forward{Port: port}
	switch typ {
	case unix.SOCK_STREAM:
		fw.Listener, err = net.FileListener(f)
	case unix.SOCK_DGRAM:
		fw.Packet, err = net.FilePacketConn(f)
	default:
		err = fmt.Errorf("socket type %d, not TCP or UDP", typ)
	}
	if err != nil {
		return Forward{}, fmt.Errorf("published port %d: %w", port, err)
	}
	return fw, nil
}

// Close closes fw's socket (a published one's is the network's to
// close: a second close does nothing).
func (fw Forward) Close() {
	if fw.Listener != nil {
		fw.Listener.Close()
	}
	if fw.Packet != nil {
		fw.Packet.Close()
	}
}

// Publish serves fw until the network closes, which closes its socket.
func (n *Network) Publish(fw Forward) error {
	var serve func()
	switch {
	case fw.Listener != nil && fw.Packet == nil:
		serve = func() { n.publishTCP(fw.Listener, fw.Port) }
	case fw.Packet != nil && fw.Listener == nil:
		serve = func() { n.publishUDP(fw.Packet, fw.Port) }
	default:
		return fmt.Errorf("published port %d: one socket, TCP or UDP", fw.Port)
	}
	if !n.goFlow(serve) {
		return errors.New("publishing a port: the network is closed")
	}
	return nil
}

// publishTCP accepts the host's connections on ln and relays each to
// the container's port.
func (n *Network) publishTCP(ln net.Listener, port uint16) {
	stop := context.AfterFunc(n.ctx, func() { ln.Close() })
	defer stop()
	defer ln.Close()
	for {
		c, err := ln.Accept()
		if err != nil {
			if n.ctx.Err() != nil {
				return
			}
			if errors.Is(err, unix.EMFILE) || errors.Is(err, unix.ENFILE) || errors.Is(err, unix.ENOBUFS) || errors.Is(err, unix.ENOMEM) {
				n.logf("usernet: published tcp port %d: %v (retrying)", port, err)
				time.Sleep(50 * time.Millisecond)
				continue
			}
			n.logf("usernet: published tcp port %d: %v (no longer forwarded)", port, err)
			return
		}
		host := c.(*net.TCPConn)
		if !n.takeFlow() {
			n.logf("usernet: published tcp port %d: %s refused: %d flows open (the limit)", port, c.RemoteAddr(), n.cfg.MaxFlows)
			reset(host)
			continue
		}
		if !n.goFlow(func() { n.inboundTCP(host, port) }) {
			n.dropFlow()
			reset(host)
			return
		}
	}
}

// inboundTCP connects to the container's port for the host's connection
// and splices the two; a container that refuses it, or does not answer
// within dialTimeout, is a reset for the client.
func (n *Network) inboundTCP(host *net.TCPConn, port uint16) {
	defer n.dropFlow()
	client := host.RemoteAddr().(*net.TCPAddr).AddrPort()
	src := source(client)
	ctx, cancel := context.WithTimeout(n.ctx, dialTimeout)
	ctr, err := n.dialContainer(ctx, src, port)
	cancel()
	if err != nil {
		n.logf("usernet: published tcp port %d: %s (as %s) to %s:%d: %v", port, client, src, containerAddr, port, err)
		reset(host)
		return
	}
	splice(n.ctx, ctr, host)
}

// reset closes c with a RST, as a refused connection ends for its
// client.
func reset(c *net.TCPConn) {
	_ = c.SetLinger(0)
	c.Close()
}

// dialContainer connects to the container's port from src, or from
// src's address and any port when src's port is taken in the stack.
func (n *Network) dialContainer(ctx context.Context, src netip.AddrPort, port uint16) (*gonet.TCPConn, error) {
	var wq waiter.Queue
	ep, terr := n.stack.NewEndpoint(tcp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		return nil, errors.New(terr.String())
	}
	if err := bindFrom(ep, src); err != nil {
		ep.Close()
		return nil, err
	}
	entry, ready := waiter.NewChannelEntry(waiter.WritableEvents)
	wq.EventRegister(&entry)
	defer wq.EventUnregister(&entry)
	terr = ep.Connect(tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(containerAddr.As4()), Port: port})
	if _, ok := terr.(*tcpip.ErrConnectStarted); ok {
		select {
		case <-ctx.Done():
			ep.Close()
			return nil, context.Cause(ctx)
		case <-ready:
		}
		terr = ep.LastError()
	}
	if terr != nil {
		ep.Close()
		return nil, errors.New(terr.String())
	}
	return gonet.NewTCPConn(&wq, ep), nil
}

// bindFrom binds ep to src, or to src's address and a port of the
// stack's choice when src's port is taken.
func bindFrom(ep tcpip.Endpoint, src netip.AddrPort) error {
	a := tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(src.Addr().As4()), Port: src.Port()}
	err := ep.Bind(a)
	if _, ok := err.(*tcpip.ErrPortInUse); ok {
		a.Port = 0
		err = ep.Bind(a)
	}
	if err != nil {
		return fmt.Errorf("binding %s in the stack: %s", src, err)
	}
	return nil
}

// source is where the container sees a published port's client come
// from: the client itself when the container can answer it through its
// default route (a Routable address: the answer comes back to the
// stack, which binds any address on its spoofing interface), else the
// gateway, 10.0.2.2, with the client's port (the host's loopback and
// 10.0.2.0/24, which tap0 would take for its own link, and IPv6
// clients).
func source(client netip.AddrPort) netip.AddrPort {
	if a := client.Addr().Unmap(); Routable(a) {
		return netip.AddrPortFrom(a, client.Port())
	}
	return netip.AddrPortFrom(gateway, client.Port())
}

// publishUDP relays the datagrams of each host client on pc to the
// container's port, and the container's answers back, one flow per
// client address, each ended after UDPIdle without a datagram.
func (n *Network) publishUDP(pc net.PacketConn, port uint16) {
	stop := context.AfterFunc(n.ctx, func() { pc.Close() })
	defer stop()
	defer pc.Close()
	var mu sync.Mutex
	flows := map[netip.AddrPort]*inboundUDP{}
	buf := make([]byte, maxDatagram)
	for {
		m, addr, err := pc.ReadFrom(buf)
		if err != nil {
			if n.ctx.Err() == nil {
				n.logf("usernet: published udp port %d: %v (no longer forwarded)", port, err)
			}
			return
		}
		ua, ok := addr.(*net.UDPAddr)
		if !ok {
			continue
		}
		client := ua.AddrPort()
		mu.Lock()
		f := flows[client]
		mu.Unlock()
		if f == nil {
			if f = n.newInboundUDP(client, port); f == nil {
				continue
			}
			mu.Lock()
			flows[client] = f
			mu.Unlock()
			end := func() {
				mu.Lock()
				delete(flows, client)
				mu.Unlock()
			}
			if !n.goFlow(func() { f.answer(n.ctx, pc, addr, n.cfg.UDPIdle, end) }) {
				f.close()
				return
			}
		}
		f.last.Store(time.Now().UnixNano())
		_, _ = f.ctr.Write(buf[:m])
	}
}

// inboundUDP is one host client's flow to a published UDP port.
type inboundUDP struct {
	ctr  *gonet.UDPConn
	last atomic.Int64 // when a datagram last passed, either way
	drop func()       // the flow's token
	once sync.Once
}

// newInboundUDP makes client's flow to the container's port: its flow
// token, its source (source) and an endpoint from there connected to
// the container; nil when it cannot be made (said in the log).
func (n *Network) newInboundUDP(client netip.AddrPort, port uint16) *inboundUDP {
	if !n.takeFlow() {
		n.logf("usernet: published udp port %d: %s dropped: %d flows open (the limit)", port, client, n.cfg.MaxFlows)
		return nil
	}
	src := source(client)
	var wq waiter.Queue
	ep, terr := n.stack.NewEndpoint(udp.ProtocolNumber, ipv4.ProtocolNumber, &wq)
	var err error
	if terr == nil {
		if err = bindFrom(ep, src); err == nil {
			if terr = ep.Connect(tcpip.FullAddress{NIC: nicID, Addr: tcpip.AddrFrom4(containerAddr.As4()), Port: port}); terr != nil {
				err = errors.New(terr.String())
			}
		}
		if err != nil {
			ep.Close()
		}
	} else {
		err = errors.New(terr.String())
	}
	if err != nil {
		n.dropFlow()
		n.logf("usernet: published udp port %d: %s (as %s): %v", port, client, src, err)
		return nil
	}
	f := &inboundUDP{ctr: gonet.NewUDPConn(&wq, ep), drop: n.dropFlow}
	f.last.Store(time.Now().UnixNano())
	return f
}

// answer sends the container's datagrams on the flow back to the client
// from the published socket until the flow is idle, or pc or the
// network closes (ctx); then it ends the flow (end forgets it first, so
// that the client's next datagram makes a new one).
func (f *inboundUDP) answer(ctx context.Context, pc net.PacketConn, client net.Addr, idle time.Duration, end func()) {
	defer f.close()
	defer end()
	stop := context.AfterFunc(ctx, func() { f.ctr.Close() })
	defer stop()
	buf := make([]byte, maxDatagram)
	for {
		_ = f.ctr.SetReadDeadline(time.Unix(0, f.last.Load()).Add(idle))
		m, err := f.ctr.Read(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() && time.Since(time.Unix(0, f.last.Load())) < idle {
				continue // the client's datagrams kept the flow alive
			}
			return
		}
		f.last.Store(time.Now().UnixNano())
		if _, err := pc.WriteTo(buf[:m], client); err != nil && errors.Is(err, net.ErrClosed) {
			return
		}
	}
}

func (f *inboundUDP) close() {
	f.once.Do(func() {
		f.ctr.Close()
		f.drop()
	})
}
