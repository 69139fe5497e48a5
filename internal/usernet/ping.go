//go:build linux

package usernet

import (
	"errors"
	"net"
	"net/netip"
	"os"
	"sync"
	"sync/atomic"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/checksum"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
)

// Pings to the outside. The container's ICMP echo requests to a
// Routable address are taken off the link before the stack sees them
// (icmpFilter) and sent from the host's unprivileged ICMP sockets
// (socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), which the host's
// net.ipv4.ping_group_range must allow one of the user's groups, as
// for slirp4netns's own ping forwarding): one socket per destination
// and echo id, ended after PingIdle without a request or reply. Each
// reply is written back to the tap as the destination's echo reply to
// the container, with the container's id (the kernel gives each socket
// an id of its own). The stack itself answers nothing but 10.0.2.2 and
// 10.0.2.3: no reply comes for a host that did not answer.

// PingIdle ends a ping flow after this long without an echo either way
// (ping sends one a second).
const PingIdle = 10 * time.Second

type pingKey struct {
	dst netip.Addr
	id  uint16
}

// pinger is the network's ping flows.
type pinger struct {
	n     *Network
	tap   int // the tap's fd, where the replies are written
	mu    sync.Mutex
	flows map[pingKey]*pingFlow
}

type pingFlow struct {
	sock *net.UDPConn // the kernel's ICMP datagram socket, connected to the destination
	mac  tcpip.LinkAddress
	last atomic.Int64
}

// request sends pkt, an IPv4 ICMP packet off the tap that the stack
// does not get (icmpFilter), on its flow's socket (made on the first)
// when it is an echo request to a Routable destination; anything else,
// or one that cannot be sent (said in the log), is dropped. It runs on
// the link's reader and must not block.
func (p *pinger) request(pkt *stack.PacketBuffer) {
	b := pkt.Data().AsRange().ToSlice()
	if len(b) < header.IPv4MinimumSize {
		return
	}
	ip := header.IPv4(b)
	if !ip.IsValid(len(b)) || ip.TransportProtocol() != header.ICMPv4ProtocolNumber || ip.More() || ip.FragmentOffset() != 0 {
		return
	}
	msg := header.ICMPv4(ip.Payload())
	if len(msg) < header.ICMPv4MinimumSize || msg.Type() != header.ICMPv4Echo || msg.Code() != 0 {
		return
	}
	dst := netip.AddrFrom4(ip.DestinationAddress().As4())
	if !Routable(dst) {
		return
	}
	key := pingKey{dst: dst, id: msg.Ident()}
	f, err := p.flow(key, header.Ethernet(pkt.LinkHeader().Slice()))
	if err != nil {
		p.n.logf("usernet: ping to %s dropped: %v", dst, err)
		return
	}
	if f == nil {
		return // the limit, said by flow
	}
	f.last.Store(time.Now().UnixNano())
	// The kernel sets the id and the checksum.
	if _, err := f.sock.Write(msg); err != nil {
		p.n.logf("usernet: ping to %s: %v", dst, err)
	}
}

// flow is key's flow, made on the first request (eth is its frame's
// link header: the container's link address, for the replies); nil
// without error when MaxFlows are open.
func (p *pinger) flow(key pingKey, eth header.Ethernet) (*pingFlow, error) {
	p.mu.Lock()
	defer p.mu.Unlock()
	if f := p.flows[key]; f != nil {
		return f, nil
	}
	if len(eth) < header.EthernetMinimumSize {
		return nil, errors.New("a frame without its Ethernet header")
	}
	if !p.n.takeFlow() {
		p.n.logf("usernet: ping to %s dropped: %d flows open (the limit)", key.dst, p.n.cfg.MaxFlows)
		return nil, nil
	}
	sock, err := pingSocket(key.dst)
	if err != nil {
		p.n.dropFlow()
		return nil, err
	}
	f := &pingFlow{sock: sock, mac: eth.SourceAddress()}
	f.last.Store(time.Now().UnixNano())
	if !p.n.goFlow(func() { p.replies(key, f) }) {
		sock.Close()
		p.n.dropFlow()
		return nil, errors.New("the network is closed")
	}
	p.flows[key] = f
	return f, nil
}

// pingSocket is an unprivileged ICMP socket connected to dst.
func pingSocket(dst netip.Addr) (*net.UDPConn, error) {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC|unix.SOCK_NONBLOCK, unix.IPPROTO_ICMP)
	if err != nil {
		if errors.Is(err, unix.EACCES) {
			return nil, errors.New("the host's net.ipv4.ping_group_range allows none of your groups ICMP sockets (as root: sysctl -w net.ipv4.ping_group_range='0 2147483647')")
		}
		return nil, os.NewSyscallError("socket(IPPROTO_ICMP)", err)
	}
	if err := unix.Connect(fd, &unix.SockaddrInet4{Addr: dst.As4()}); err != nil {
		unix.Close(fd)
		return nil, os.NewSyscallError("connect", err)
	}
	f := os.NewFile(uintptr(fd), "ping")
	defer f.Close()
	c, err := net.FileConn(f)
	if err != nil {
		return nil, err
	}
	uc, ok := c.(*net.UDPConn)
	if !ok {
		c.Close()
		return nil, errors.New("an ICMP socket the net package does not take as a datagram socket")
	}
	return uc, nil
}

// replies writes the echo replies of key's flow back to the container
// until the flow is idle or the network closes.
func (p *pinger) replies(key pingKey, f *pingFlow) {
	defer p.n.dropFlow()
	defer func() {
		p.mu.Lock()
		delete(p.flows, key)
		p.mu.Unlock()
		f.sock.Close()
	}()
	stop := make(chan struct{})
	defer close(stop)
	go func() {
		select {
		case <-p.n.ctx.Done():
			f.sock.Close()
		case <-stop:
		}
	}()
	buf := make([]byte, maxDatagram)
	for {
		_ = f.sock.SetReadDeadline(time.Unix(0, f.last.Load()).Add(PingIdle))
		m, err := f.sock.Read(buf)
		if err != nil {
			if ne, ok := err.(net.Error); ok && ne.Timeout() && time.Since(time.Unix(0, f.last.Load())) < PingIdle {
				continue
			}
			return
		}
		msg := header.ICMPv4(buf[:m])
		if len(msg) < header.ICMPv4MinimumSize || msg.Type() != header.ICMPv4EchoReply {
			continue
		}
		f.last.Store(time.Now().UnixNano())
		frame := echoReplyFrame(f.mac, key, msg)
		if len(frame)-header.EthernetMinimumSize > p.n.cfg.MTU {
			continue
		}
		if _, err := unix.Write(p.tap, frame); err != nil && !errors.Is(err, unix.EAGAIN) {
			return
		}
	}
}

// echoReplyFrame is reply, an echo reply from key's destination, as the
// frame the container gets: with the container's echo id, from the
// destination to 10.0.2.100, through the gateway's link address.
func echoReplyFrame(mac tcpip.LinkAddress, key pingKey, reply header.ICMPv4) []byte {
	const ipLen = header.IPv4MinimumSize
	frame := make([]byte, header.EthernetMinimumSize+ipLen+len(reply))
	header.Ethernet(frame).Encode(&header.EthernetFields{SrcAddr: gatewayMAC, DstAddr: mac, Type: header.IPv4ProtocolNumber})
	ip := header.IPv4(frame[header.EthernetMinimumSize:])
	ip.Encode(&header.IPv4Fields{
		TotalLength: uint16(ipLen + len(reply)),
		TTL:         64,
		Protocol:    uint8(header.ICMPv4ProtocolNumber),
		SrcAddr:     tcpip.AddrFrom4(key.dst.As4()),
		DstAddr:     tcpip.AddrFrom4(containerAddr.As4()),
	})
	ip.SetChecksum(^ip.CalculateChecksum())
	msg := header.ICMPv4(ip.Payload())
	copy(msg, reply)
	msg.SetIdent(key.id)
	msg.SetChecksum(0)
	msg.SetChecksum(^checksum.Checksum(msg, 0))
	return frame
}
