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
	"time"

	"golang.org/x/sys/unix"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
)

// The network's addresses, slirp4netns --configure's (doc.go).
var (
	subnet  = netip.PrefixFrom(netip.AddrFrom4([4]byte{10, 0, 2, 0}), 24)
	gateway = netip.AddrFrom4([4]byte{10, 0, 2, 2})
	dnsAddr = netip.AddrFrom4([4]byte{10, 0, 2, 3})
)

// gatewayMAC is the stack's link address on the tap: a locally
// administered unicast address (slirp4netns uses 52:55:0a:00:02:02).
const gatewayMAC = tcpip.LinkAddress("\x52\x55\x0a\x00\x02\x02")

const (
	// DefaultMTU is tap0's MTU, as slirp4netns's default in sandy
	// (slirp.DefaultMTU): large segments, few packets.
	DefaultMTU = 65520
	// DefaultMaxFlows bounds the TCP connections and UDP flows at once.
	DefaultMaxFlows = 4096
	// MaxInFlight bounds the TCP connections being dialed at once.
	MaxInFlight = 256
	// UDPIdle closes a UDP flow after this long without a packet either
	// way (conntrack's default for an unreplied flow is 30 s, for an
	// assured one 120 s; slirp's is 240 s).
	UDPIdle = 120 * time.Second
	// DNSIdle is UDPIdle for a flow to port 53: a resolver sends each
	// query from a port of its own, so these flows are many and short
	// (libslirp's SO_EXPIREFAST is 10 s too); with UDPIdle, 4096 lookups
	// in two minutes would fill MaxFlows.
	DNSIdle = 10 * time.Second
	// dialTimeout bounds a host dial for a container's TCP connection;
	// the container's own SYN retries run meanwhile.
	dialTimeout = 30 * time.Second
)

// nicID is the stack's one interface, the tap.
const nicID tcpip.NICID = 1

// Config is the network of one container.
type Config struct {
	// MTU of the tap; 0 is DefaultMTU. It must be the tap's own (its
	// caller configures the tap).
	MTU int
	// HostLoopback lets 10.0.2.2 reach the host's 127.0.0.1.
	HostLoopback bool
	// DNS are the resolvers 10.0.2.3:53 forwards to: a TCP connection
	// to the first that accepts it, a UDP flow to the first; nil reads
	// /etc/resolv.conf (HostResolvers).
	DNS []netip.AddrPort
	// MaxFlows bounds the TCP connections and UDP flows at once; 0 is
	// DefaultMaxFlows.
	MaxFlows int
	// UDPIdle and DNSIdle, when not 0, replace the constants of those
	// names (tests).
	UDPIdle, DNSIdle time.Duration
	// Logf, when set, receives a line for each flow refused or failed
	// (for --debug); nil: silent.
	Logf func(format string, args ...any)
}

// Network is a running user-mode network on one tap fd.
type Network struct {
	cfg    Config
	stack  *stack.Stack
	ctx    context.Context
	cancel context.CancelFunc
	flows  chan struct{} // a token per flow: MaxFlows
	ping   *pinger
	once   sync.Once
	// tap is the tap's fd (the caller's), readerDone closed when the
	// link endpoint's reader has returned, closeErr Close's result.
	tap        int
	readerDone chan struct{}
	closeErr   error

	mu     sync.Mutex
	closed bool
	wg     sync.WaitGroup // the flows' goroutines
}

// New starts the network on fd, the host end of the container's tap
// (IFF_TAP|IFF_NO_PI: Ethernet frames) or of a socketpair carrying
// frames. The fd stays the caller's: Close does not close it, and it
// must stay open until Close has returned.
func New(fd int, cfg Config) (*Network, error) {
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.MaxFlows == 0 {
		cfg.MaxFlows = DefaultMaxFlows
	}
	if cfg.UDPIdle == 0 {
		cfg.UDPIdle = UDPIdle
	}
	if cfg.DNSIdle == 0 {
		cfg.DNSIdle = DNSIdle
	}
	if cfg.DNS == nil {
		dns, err := HostResolvers("/etc/resolv.conf")
		if err != nil {
			return nil, err
		}
		cfg.DNS = dns
	}
	// The reader's end (its loop returned: the tap failed, or Close
	// stopped it).
	readerDone := make(chan struct{})
	var readerOnce sync.Once
	ep, err := fdbased.New(&fdbased.Options{
		FDs:            []int{fd},
		MTU:            uint32(cfg.MTU),
		EthernetHeader: true,
		Address:        gatewayMAC,
		ClosedFunc:     func(tcpip.Error) { readerOnce.Do(func() { close(readerDone) }) },
	})
	if err != nil {
		return nil, fmt.Errorf("the tap's link endpoint: %w", err)
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4},
	})
	ctx, cancel := context.WithCancel(context.Background())
	n := &Network{cfg: cfg, stack: s, ctx: ctx, cancel: cancel, flows: make(chan struct{}, cfg.MaxFlows), tap: fd, readerDone: readerDone}
	n.ping = &pinger{n: n, tap: fd, flows: map[pingKey]*pingFlow{}}
	if err := n.configure(ep); err != nil {
		n.Close()
		return nil, err
	}
	return n, nil
}

// configure gives the stack its interface, addresses and route, and the
// translation of TCP and UDP.
func (n *Network) configure(ep stack.LinkEndpoint) error {
	s := n.stack
	// The handlers first, and the interface created disabled: its
	// reader starts with it, and no packet may meet a half-made stack.
	tf := tcp.NewForwarder(s, 0, MaxInFlight, n.serveTCP)
	s.SetTransportProtocolHandler(tcp.ProtocolNumber, func(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
		if _, ok := n.target(id, "tcp"); !ok {
			return false // the stack answers RST
		}
		return tf.HandlePacket(id, pkt)
	})
	uf := udp.NewForwarder(s, n.serveUDP)
	s.SetTransportProtocolHandler(udp.ProtocolNumber, func(id stack.TransportEndpointID, pkt *stack.PacketBuffer) bool {
		if _, ok := n.target(id, "udp"); !ok {
			return false // the stack answers ICMP port unreachable
		}
		return uf.HandlePacket(id, pkt)
	})
	if err := s.CreateNICWithOptions(nicID, newICMPFilter(ep, n.ping), stack.NICOptions{Disabled: true}); err != nil {
		return fmt.Errorf("creating the tap's interface: %s", err)
	}
	for _, a := range []netip.Addr{gateway, dnsAddr} {
		pa := tcpip.ProtocolAddress{
			Protocol:          ipv4.ProtocolNumber,
			AddressWithPrefix: tcpip.AddressWithPrefix{Address: tcpip.AddrFrom4(a.As4()), PrefixLen: subnet.Bits()},
		}
		if err := s.AddProtocolAddress(nicID, pa, stack.AddressProperties{}); err != nil {
			return fmt.Errorf("adding %s to the tap's interface: %s", a, err)
		}
	}
	// Promiscuous: the stack takes packets for any destination (each one
	// a flow to translate); spoofing: it answers from that destination.
	if err := s.SetPromiscuousMode(nicID, true); err != nil {
		return fmt.Errorf("promiscuous mode: %s", err)
	}
	if err := s.SetSpoofing(nicID, true); err != nil {
		return fmt.Errorf("spoofing: %s", err)
	}
	sn, err := tcpip.NewSubnet(tcpip.AddrFrom4(subnet.Addr().As4()), tcpip.MaskFromBytes(net.CIDRMask(subnet.Bits(), 32)))
	if err != nil {
		return fmt.Errorf("the subnet: %w", err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: sn, NIC: nicID}})
	if err := s.EnableNIC(nicID); err != nil {
		return fmt.Errorf("enabling the tap's interface: %s", err)
	}
	return nil
}

// Close ends the network: every flow's sockets are closed and the stack
// stops reading the fd. It waits for the flows' goroutines. One eventfd
// stays open until the process exits: gVisor's fdbased endpoint never
// closes the stop fd of its reader (its StopFD has no Close, still in
// the version go.mod names). A process runs one
// network at a time (`sandy run`, a monitor, sandy-net), and sandy-net
// as a spare serves a bounded number of them (its maxServed): a bounded
// number of fds.
//
// The tap's fd is /dev/null when it returns (the caller closes it as
// ever). gVisor's fdbased endpoint, before the fix of
// gvisor.dev/issue/11456 (in the version go.mod names since 2026-12-08),
// deadlocked when its reader delivered a packet as the interface was
// removed (Attach(nil) held the endpoint's lock while it waited for the
// reader, whose delivery takes that lock): a sandy-net stayed in
// RemoveNIC for good after one run in some hundreds. The reader is
// starved first all the same, and the removal bounded: the
// fd's number becomes /dev/null (a read returns 0, which ends the
// reader's loop, and no packet is read from then on), and the reader
// gets up to closeGrace to finish a packet it already read and return;
// one still waiting in poll on the tap is then stopped by RemoveNIC
// with nothing to deliver. If the removal still does not end within
// closeTimeout, Close returns an error and leaves it (sandy-net then
// exits rather than serve again).
func (n *Network) Close() error {
	n.once.Do(func() {
		n.mu.Lock()
		n.closed = true
		n.mu.Unlock()
		n.cancel()
		n.stack.Close()
		n.wg.Wait()
		if null, err := unix.Open(os.DevNull, unix.O_RDWR|unix.O_CLOEXEC, 0); err == nil {
			_ = unix.Dup3(null, n.tap, unix.O_CLOEXEC)
			unix.Close(null)
		}
		select {
		case <-n.readerDone:
		case <-time.After(closeGrace):
		}
		// Removing the interface stops the link endpoint's reader and
		// closes its eventfd (stack.Close alone leaves both).
		removed := make(chan struct{})
		go func() {
			_ = n.stack.RemoveNIC(nicID)
			n.stack.Wait()
			close(removed)
		}()
		select {
		case <-removed:
		case <-time.After(closeTimeout):
			n.closeErr = fmt.Errorf("the network's interface was not removed within %v", closeTimeout)
		}
	})
	return n.closeErr
}

// closeGrace is how long Close lets the tap's reader finish a packet it
// read; closeTimeout how long it waits for the interface's removal.
const (
	closeGrace   = time.Millisecond
	closeTimeout = 5 * time.Second
)

// target is where the flow id (as the stack sees it: Local is the
// container's destination, Remote the container) goes on the host, or
// false when it is refused (doc.go, What it refuses).
func (n *Network) target(id stack.TransportEndpointID, proto string) (netip.AddrPort, bool) {
	dst, ok := netip.AddrFromSlice(id.LocalAddress.AsSlice())
	if !ok {
		return netip.AddrPort{}, false
	}
	dst = dst.Unmap()
	switch {
	case dst == gateway:
		if !n.cfg.HostLoopback {
			n.logf("usernet: %s to %s:%d refused: the host's loopback is off (allow_host_loopback)", proto, dst, id.LocalPort)
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(netip.AddrFrom4([4]byte{127, 0, 0, 1}), id.LocalPort), true
	case dst == dnsAddr:
		if id.LocalPort != 53 || len(n.cfg.DNS) == 0 {
			return netip.AddrPort{}, false
		}
		return netip.AddrPortFrom(dnsAddr, 53), true // resolved by dial
	}
	if !Routable(dst) {
		n.logf("usernet: %s to %s:%d refused: not a destination on the outside", proto, dst, id.LocalPort)
		return netip.AddrPort{}, false
	}
	return netip.AddrPortFrom(dst, id.LocalPort), true
}

// Routable reports whether the container may reach dst through the
// host's sockets: a unicast IPv4 address outside loopback, "this
// network" (0.0.0.0/8) and the container's own subnet.
func Routable(dst netip.Addr) bool {
	dst = dst.Unmap()
	return dst.Is4() && !dst.IsLoopback() && !dst.IsMulticast() && !dst.IsUnspecified() &&
		dst.As4()[0] != 0 && dst != netip.AddrFrom4([4]byte{255, 255, 255, 255}) && !subnet.Contains(dst)
}

// dial connects to t for the container: t itself, or for 10.0.2.3:53 the
// resolvers in order.
func (n *Network) dial(ctx context.Context, network string, t netip.AddrPort) (net.Conn, error) {
	d := net.Dialer{Timeout: dialTimeout}
	if t.Addr() != dnsAddr {
		return d.DialContext(ctx, network, t.String())
	}
	var errs []error
	for _, r := range n.cfg.DNS {
		c, err := d.DialContext(ctx, network, r.String())
		if err == nil {
			return c, nil
		}
		errs = append(errs, err)
	}
	return nil, fmt.Errorf("no resolver answered: %w", errors.Join(errs...))
}

// goFlow runs f on a goroutine Close waits for; false (f not run) once
// Close has begun.
func (n *Network) goFlow(f func()) bool {
	n.mu.Lock()
	defer n.mu.Unlock()
	if n.closed {
		return false
	}
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		f()
	}()
	return true
}

// takeFlow takes a flow's token, false when MaxFlows are open.
func (n *Network) takeFlow() bool {
	select {
	case n.flows <- struct{}{}:
		return true
	default:
		return false
	}
}

func (n *Network) dropFlow() { <-n.flows }

// openFlows is how many TCP connections and UDP flows are open.
func (n *Network) openFlows() int { return len(n.flows) }

func (n *Network) logf(format string, args ...any) {
	if n.cfg.Logf != nil {
		n.cfg.Logf(format, args...)
	}
}
