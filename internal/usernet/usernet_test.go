//go:build linux

package usernet

import (
	"bytes"
	"context"
	"crypto/sha256"
	"io"
	"net"
	"net/netip"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"
	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/header"
	"gvisor.dev/gvisor/pkg/tcpip/link/fdbased"
	"gvisor.dev/gvisor/pkg/tcpip/network/arp"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"
	"gvisor.dev/gvisor/pkg/tcpip/stack"
	"gvisor.dev/gvisor/pkg/tcpip/transport/icmp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/tcp"
	"gvisor.dev/gvisor/pkg/tcpip/transport/udp"
	"gvisor.dev/gvisor/pkg/waiter"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// guest is the container's side of a test network: a second gVisor
// stack, configured as slirp4netns --configure configures tap0
// (10.0.2.100/24, default route through 10.0.2.2), on the other end of
// a socketpair that carries Ethernet frames as a tap's fd does.
type guest struct {
	s *stack.Stack
}

var guestAddr = tcpip.AddrFrom4([4]byte{10, 0, 2, 100})

// newNetwork starts a Network on one end of a socketpair and a guest on
// the other; both end with the test.
func newNetwork(t *testing.T, cfg Config) (*Network, *guest) {
	t.Helper()
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	// A connected pair's sender may queue up to its send buffer (the
	// peer's max_dgram_qlen is not checked between the two), 208 KiB by
	// default: about 90 frames, less than one TCP window, and gVisor's
	// link endpoint drops what does not fit (EAGAIN). Two gVisor stacks
	// starved of CPU then lost a window update and a retransmission
	// after another until a flow stalled past a minute (TestTCPOutside,
	// once in 22 runs beside three busy loops). A tap, which the real
	// network has, takes a write whole. So the pair gets a send buffer
	// of 8 MiB where it may (SO_SNDBUFFORCE: root), else the most the
	// system allows.
	for _, fd := range fds {
		if unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUFFORCE, 8<<20) != nil {
			_ = unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_SNDBUF, 8<<20)
		}
	}
	if cfg.MTU == 0 {
		cfg.MTU = DefaultMTU
	}
	if cfg.DNS == nil {
		cfg.DNS = []netip.AddrPort{}
	}
	cfg.Logf = t.Logf
	n, err := New(fds[0], cfg)
	if err != nil {
		t.Fatal(err)
	}
	ep, err := fdbased.New(&fdbased.Options{FDs: []int{fds[1]}, MTU: uint32(cfg.MTU), EthernetHeader: true, Address: tcpip.LinkAddress("\x02\x00\x0a\x00\x02\x64")})
	if err != nil {
		t.Fatal(err)
	}
	s := stack.New(stack.Options{
		NetworkProtocols:   []stack.NetworkProtocolFactory{ipv4.NewProtocol, arp.NewProtocol},
		TransportProtocols: []stack.TransportProtocolFactory{tcp.NewProtocol, udp.NewProtocol, icmp.NewProtocol4},
	})
	if err := s.CreateNIC(1, ep); err != nil {
		t.Fatal(err)
	}
	if err := s.AddProtocolAddress(1, tcpip.ProtocolAddress{Protocol: ipv4.ProtocolNumber, AddressWithPrefix: tcpip.AddressWithPrefix{Address: guestAddr, PrefixLen: 24}}, stack.AddressProperties{}); err != nil {
		t.Fatal(err)
	}
	s.SetRouteTable([]tcpip.Route{{Destination: header4Any(), Gateway: tcpip.AddrFrom4(gateway.As4()), NIC: 1}})
	t.Cleanup(func() {
		s.Close()
		n.Close()
		s.Wait()
		unix.Close(fds[0])
		unix.Close(fds[1])
	})
	return n, &guest{s: s}
}

func header4Any() tcpip.Subnet {
	sn, _ := tcpip.NewSubnet(tcpip.AddrFrom4([4]byte{}), tcpip.MaskFromBytes(make([]byte, 4)))
	return sn
}

func fullAddr(ap netip.AddrPort) tcpip.FullAddress {
	return tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(ap.Addr().As4()), Port: ap.Port()}
}

func (g *guest) dialTCP(ctx context.Context, to netip.AddrPort) (*gonet.TCPConn, error) {
	return gonet.DialContextTCP(ctx, g.s, fullAddr(to), ipv4.ProtocolNumber)
}

func (g *guest) dialUDP(to netip.AddrPort) (*gonet.UDPConn, error) {
	return gonet.DialUDP(g.s, nil, &tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(to.Addr().As4()), Port: to.Port()}, ipv4.ProtocolNumber)
}

// hostListener listens on addr (host:0) and serves each connection with
// serve.
func hostListener(t *testing.T, addr string, serve func(net.Conn)) netip.AddrPort {
	t.Helper()
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	serveConns(t, l, serve)
	return l.Addr().(*net.TCPAddr).AddrPort()
}

// serveConns serves each connection l accepts with serve, on a
// goroutine of its own, until the test ends (which closes l).
func serveConns(t *testing.T, l net.Listener, serve func(net.Conn)) {
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				serve(c)
			}()
		}
	}()
}

// echo answers each connection with what it reads, then half closes.
func echo(c net.Conn) {
	_, _ = io.Copy(c, c)
	_ = c.(*net.TCPConn).CloseWrite()
}

func ctxTimeout(t *testing.T) context.Context {
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Second)
	t.Cleanup(cancel)
	return ctx
}

// TestTCPOutside: a connection to an address outside reaches it, both
// directions carry 4 MiB intact, and a half close passes through (the
// host side answers after the guest's end of stream).
func TestTCPOutside(t *testing.T) {
	host := testutil.HostIPv4(t)
	sum := func(r io.Reader) ([32]byte, int64) {
		h := sha256.New()
		n, _ := io.Copy(h, r)
		var s [32]byte
		copy(s[:], h.Sum(nil))
		return s, n
	}
	// The server reads to the end, then answers with the digest and
	// 4 MiB of its own.
	payload := bytes.Repeat([]byte("sandy-usernet-"), 4<<20/14)
	srv := hostListener(t, host.String()+":0", func(c net.Conn) {
		s, _ := sum(c)
		_, _ = c.Write(s[:])
		_, _ = c.Write(payload)
	})
	_, g := newNetwork(t, Config{})
	c, err := g.dialTCP(ctxTimeout(t), srv)
	if err != nil {
		t.Fatalf("dialing %s from the guest: %v", srv, err)
	}
	defer c.Close()
	sent := bytes.Repeat([]byte{0, 1, 2, 3, 5, 8, 13}, 4<<20/7)
	go func() {
		_, _ = c.Write(sent)
		_ = c.CloseWrite()
	}()
	// Generous: a frame the socketpair drops under load is TCP's to
	// send again after a backed-off retransmission timeout (newNetwork).
	_ = c.SetReadDeadline(time.Now().Add(90 * time.Second))
	got, err := io.ReadAll(c)
	if err != nil {
		t.Fatalf("reading the answer: %v (%d bytes)", err, len(got))
	}
	want := sha256.Sum256(sent)
	if len(got) != 32+len(payload) || !bytes.Equal(got[:32], want[:]) || !bytes.Equal(got[32:], payload) {
		t.Fatalf("answer: %d bytes, digest match %v, want %d bytes", len(got), len(got) >= 32 && bytes.Equal(got[:32], want[:]), 32+len(payload))
	}
}

// TestTCPRefusedAndUnreachable: a closed port on the outside is a RST,
// as the guest would see it directly.
func TestTCPRefusedAndUnreachable(t *testing.T) {
	host := testutil.HostIPv4(t)
	l, err := net.Listen("tcp4", host.String()+":0")
	if err != nil {
		t.Fatal(err)
	}
	closed := l.Addr().(*net.TCPAddr).AddrPort()
	l.Close()
	_, g := newNetwork(t, Config{})
	if _, err := g.dialTCP(ctxTimeout(t), closed); err == nil || !strings.Contains(err.Error(), "refused") {
		t.Fatalf("dialing a closed port %s: %v, want connection refused", closed, err)
	}
}

// TestHostLoopback: 10.0.2.2 reaches the host's 127.0.0.1 only with
// HostLoopback; a frame addressed to 127.0.0.1 itself (a raw socket in
// the container can write one) never does.
func TestHostLoopback(t *testing.T) {
	srv := hostListener(t, "127.0.0.1:0", echo)
	viaGateway := netip.AddrPortFrom(gateway, srv.Port())
	for _, tc := range []struct {
		name     string
		loopback bool
		to       netip.AddrPort
		reach    bool
	}{
		{"gateway, loopback on", true, viaGateway, true},
		{"gateway, loopback off", false, viaGateway, false},
		{"127.0.0.1, loopback on", true, srv, false},
		{"127.0.0.1, loopback off", false, srv, false},
		{"10.0.2.7 (the subnet)", true, netip.AddrPortFrom(netip.AddrFrom4([4]byte{10, 0, 2, 7}), srv.Port()), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_, g := newNetwork(t, Config{HostLoopback: tc.loopback})
			ctx, cancel := context.WithTimeout(context.Background(), time.Second)
			defer cancel()
			c, err := g.dialTCP(ctx, tc.to)
			if !tc.reach {
				if err == nil {
					c.Close()
					t.Fatalf("dialing %s reached the host", tc.to)
				}
				t.Logf("dialing %s: %v", tc.to, err)
				return
			}
			if err != nil {
				t.Fatalf("dialing %s: %v", tc.to, err)
			}
			defer c.Close()
			if _, err := c.Write([]byte("ping")); err != nil {
				t.Fatal(err)
			}
			_ = c.CloseWrite()
			got, err := io.ReadAll(c)
			if err != nil || string(got) != "ping" {
				t.Fatalf("echo: %q, %v", got, err)
			}
		})
	}
}

// TestTarget: where a flow goes, by its destination alone (the stack's
// view: Local is the container's destination): 127.0.0.1 is never
// dialed, whatever HostLoopback says; a guest stack cannot send that
// frame (TestHostLoopback), a container's raw socket can.
func TestTarget(t *testing.T) {
	dns := []netip.AddrPort{netip.MustParseAddrPort("192.0.2.53:53")}
	for _, tc := range []struct {
		dst      string
		port     uint16
		loopback bool
		want     string // "" refused
	}{
		{"10.0.2.2", 8080, true, "127.0.0.1:8080"},
		{"10.0.2.2", 8080, false, ""},
		{"127.0.0.1", 8080, true, ""},
		{"127.0.0.1", 8080, false, ""},
		{"127.9.9.9", 22, true, ""},
		{"0.0.0.0", 22, true, ""},
		{"10.0.2.3", 53, false, "10.0.2.3:53"},
		{"10.0.2.3", 80, true, ""},
		{"10.0.2.100", 80, true, ""},
		{"10.0.2.255", 80, true, ""},
		{"224.0.0.251", 5353, true, ""},
		{"255.255.255.255", 67, true, ""},
		{"198.51.100.7", 443, false, "198.51.100.7:443"},
	} {
		n := &Network{cfg: Config{HostLoopback: tc.loopback, DNS: dns}}
		id := stack.TransportEndpointID{
			LocalAddress: tcpip.AddrFrom4(netip.MustParseAddr(tc.dst).As4()), LocalPort: tc.port,
			RemoteAddress: guestAddr, RemotePort: 40000,
		}
		got, ok := n.target(id, "tcp")
		s := ""
		if ok {
			s = got.String()
		}
		if s != tc.want {
			t.Errorf("target(%s:%d, loopback %v) = %q, want %q", tc.dst, tc.port, tc.loopback, s, tc.want)
		}
	}
	n := &Network{cfg: Config{DNS: []netip.AddrPort{}}}
	if got, ok := n.target(stack.TransportEndpointID{LocalAddress: tcpip.AddrFrom4(dnsAddr.As4()), LocalPort: 53}, "udp"); ok {
		t.Errorf("10.0.2.3:53 without a resolver = %s, want refused", got)
	}
}

// udpEcho serves UDP on addr, answering each datagram with prefix+it.
func udpEcho(t *testing.T, addr, prefix string) netip.AddrPort {
	t.Helper()
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { pc.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			m, from, err := pc.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = pc.WriteTo(append([]byte(prefix), buf[:m]...), from)
		}
	}()
	return pc.LocalAddr().(*net.UDPAddr).AddrPort()
}

func udpRoundTrip(g *guest, to netip.AddrPort, msg string) (string, error) {
	c, err := g.dialUDP(to)
	if err != nil {
		return "", err
	}
	defer c.Close()
	// The first datagram can go before the guest has the gateway's
	// link address: udpAsk retries as a resolver does.
	return udpAsk(c, msg)
}

// TestUDP: a flow to the outside and to the host's loopback through
// 10.0.2.2 gets its answers from the address it sent to; loopback off,
// no answer.
func TestUDP(t *testing.T) {
	host := testutil.HostIPv4(t)
	outside := udpEcho(t, host.String()+":0", "out:")
	loop := udpEcho(t, "127.0.0.1:0", "lo:")
	_, g := newNetwork(t, Config{HostLoopback: true})
	if got, err := udpRoundTrip(g, outside, "hello"); err != nil || got != "out:hello" {
		t.Fatalf("udp to %s: %q, %v", outside, got, err)
	}
	if got, err := udpRoundTrip(g, netip.AddrPortFrom(gateway, loop.Port()), "hi"); err != nil || got != "lo:hi" {
		t.Fatalf("udp to the gateway: %q, %v", got, err)
	}
	_, g2 := newNetwork(t, Config{})
	if got, err := udpRoundTrip(g2, netip.AddrPortFrom(gateway, loop.Port()), "hi"); err == nil {
		t.Fatalf("udp to the gateway with loopback off: answered %q", got)
	}
}

// TestDNS: 10.0.2.3:53 reaches the configured resolver over UDP and TCP
// (a loopback resolver too: it is the host's), any other port of it
// nothing.
func TestDNS(t *testing.T) {
	resolver := udpEcho(t, "127.0.0.1:0", "dns:")
	tcpResolver := hostListener(t, "127.0.0.1:"+itoa(resolver.Port()), echo)
	if tcpResolver.Port() != resolver.Port() {
		t.Fatal("port mismatch")
	}
	_, g := newNetwork(t, Config{DNS: []netip.AddrPort{resolver}})
	dns := netip.AddrPortFrom(dnsAddr, 53)
	if got, err := udpRoundTrip(g, dns, "query"); err != nil || got != "dns:query" {
		t.Fatalf("udp to 10.0.2.3:53: %q, %v", got, err)
	}
	c, err := g.dialTCP(ctxTimeout(t), dns)
	if err != nil {
		t.Fatalf("tcp to 10.0.2.3:53: %v", err)
	}
	_, _ = c.Write([]byte("tcp-query"))
	_ = c.CloseWrite()
	got, err := io.ReadAll(c)
	c.Close()
	if err != nil || string(got) != "tcp-query" {
		t.Fatalf("tcp to 10.0.2.3:53: %q, %v", got, err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := g.dialTCP(ctx, netip.AddrPortFrom(dnsAddr, resolver.Port())); err == nil {
		c.Close()
		t.Fatal("10.0.2.3 on another port than 53 reached the host")
	}
}

func itoa(p uint16) string {
	return netip.AddrPortFrom(netip.IPv4Unspecified(), p).String()[len("0.0.0.0:"):]
}

// TestMaxFlows: past MaxFlows open connections a new one is refused, and
// once one closes another gets through.
func TestMaxFlows(t *testing.T) {
	srv := hostListener(t, "127.0.0.1:0", echo)
	_, g := newNetwork(t, Config{HostLoopback: true, MaxFlows: 2})
	to := netip.AddrPortFrom(gateway, srv.Port())
	var open []*gonet.TCPConn
	for i := 0; i < 2; i++ {
		c, err := g.dialTCP(ctxTimeout(t), to)
		if err != nil {
			t.Fatalf("connection %d: %v", i, err)
		}
		open = append(open, c)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if c, err := g.dialTCP(ctx, to); err == nil {
		c.Close()
		t.Fatal("a third connection got through with MaxFlows 2")
	}
	// Closing one ends its flow (both halves), and frees a token.
	_ = open[0].CloseWrite()
	_, _ = io.ReadAll(open[0])
	open[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Second)
		c, err := g.dialTCP(ctx, to)
		cancel()
		if err == nil {
			c.Close()
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("no connection after one closed: %v", err)
		}
		time.Sleep(50 * time.Millisecond)
	}
	open[1].Close()
}

// TestCloseEndsFlows: Close ends the host side of every flow and
// returns.
func TestCloseEndsFlows(t *testing.T) {
	var mu sync.Mutex
	var ended []error
	got := make(chan struct{}, 1)
	srv := hostListener(t, "127.0.0.1:0", func(c net.Conn) {
		got <- struct{}{}
		_, err := io.Copy(io.Discard, c)
		mu.Lock()
		ended = append(ended, err)
		mu.Unlock()
	})
	n, g := newNetwork(t, Config{HostLoopback: true})
	c, err := g.dialTCP(ctxTimeout(t), netip.AddrPortFrom(gateway, srv.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	<-got
	done := make(chan struct{})
	go func() { n.Close(); close(done) }()
	select {
	case <-done:
	case <-time.After(10 * time.Second):
		t.Fatal("Close did not return in 10 s with a flow open")
	}
	deadline := time.Now().Add(5 * time.Second)
	for {
		mu.Lock()
		k := len(ended)
		mu.Unlock()
		if k == 1 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("the host side of the flow is still open after Close")
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func TestRoutable(t *testing.T) {
	for _, tc := range []struct {
		addr string
		want bool
	}{
		{"93.184.216.34", true},
		{"192.168.1.10", true},
		{"169.254.169.254", true},
		{"127.0.0.1", false},
		{"127.1.2.3", false},
		{"0.0.0.0", false},
		{"0.1.2.3", false},
		{"224.0.0.1", false},
		{"255.255.255.255", false},
		{"10.0.2.2", false},
		{"10.0.2.100", false},
		{"10.0.3.1", true},
		{"::1", false},
		{"2001:db8::1", false},
		{"::ffff:127.0.0.1", false},
		{"::ffff:8.8.8.8", true},
	} {
		if got := Routable(netip.MustParseAddr(tc.addr)); got != tc.want {
			t.Errorf("Routable(%s) = %v, want %v", tc.addr, got, tc.want)
		}
	}
}

func TestParseResolvConf(t *testing.T) {
	got := ParseResolvConf([]byte("# comment\nsearch example.org\nnameserver 127.0.0.53\nnameserver  ::1\nnameserver fe80::1%eth0\nnameserver bogus\noptions edns0\nnameserver 8.8.8.8 # trailing\n"))
	want := []netip.AddrPort{
		netip.MustParseAddrPort("127.0.0.53:53"),
		netip.MustParseAddrPort("[::1]:53"),
		netip.MustParseAddrPort("[fe80::1%eth0]:53"),
		netip.MustParseAddrPort("8.8.8.8:53"),
	}
	if len(got) != len(want) {
		t.Fatalf("got %v, want %v", got, want)
	}
	for i := range got {
		if got[i] != want[i] {
			t.Fatalf("got %v, want %v", got, want)
		}
	}
	if r, err := HostResolvers(t.TempDir() + "/none"); err != nil || len(r) != 0 {
		t.Fatalf("missing resolv.conf: %v, %v", r, err)
	}
}

// BenchmarkNew is the network's set-up and end on a socketpair: what a
// container's start pays for it in the caller's process (its package
// inits aside: GODEBUG=inittrace=1).
func BenchmarkNew(b *testing.B) {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		b.Fatal(err)
	}
	defer unix.Close(fds[0])
	defer unix.Close(fds[1])
	before := eventfds()
	for b.Loop() {
		n, err := New(fds[0], Config{DNS: []netip.AddrPort{}})
		if err != nil {
			b.Fatal(err)
		}
		n.Close()
		// The reader's stop fd that gVisor leaves open (Close).
		for fd := range eventfds() {
			if !before[fd] {
				unix.Close(fd)
			}
		}
	}
}

// ping sends one ICMP echo request from the guest to dst and reports
// whether a reply came within wait.
func (g *guest) ping(t *testing.T, dst netip.Addr, wait time.Duration) bool {
	t.Helper()
	var wq waiter.Queue
	ep, terr := g.s.NewEndpoint(icmp.ProtocolNumber4, ipv4.ProtocolNumber, &wq)
	if terr != nil {
		t.Fatalf("ping endpoint: %s", terr)
	}
	defer ep.Close()
	we, ch := waiter.NewChannelEntry(waiter.ReadableEvents)
	wq.EventRegister(&we)
	defer wq.EventUnregister(&we)
	to := tcpip.FullAddress{NIC: 1, Addr: tcpip.AddrFrom4(dst.As4())}
	req := make([]byte, header.ICMPv4MinimumSize+4)
	icmpHdr := header.ICMPv4(req)
	icmpHdr.SetType(header.ICMPv4Echo)
	icmpHdr.SetSequence(1)
	copy(req[header.ICMPv4MinimumSize:], "ping")
	deadline := time.After(wait)
	for try := 0; ; try++ {
		var r bytes.Reader
		r.Reset(req)
		if _, terr := ep.Write(&r, tcpip.WriteOptions{To: &to}); terr != nil {
			t.Fatalf("ping write: %s", terr)
		}
		select {
		case <-ch:
			var b bytes.Buffer
			if _, terr := ep.Read(&b, tcpip.ReadOptions{}); terr == nil {
				return true
			}
		case <-time.After(200 * time.Millisecond):
			continue // the first may go before the gateway's address is resolved
		case <-deadline:
			return false
		}
	}
}

// TestPing: the gateway and the resolver answer pings; a host on the
// outside answers through the host's ICMP sockets, with the guest's own
// echo id and payload; an address that does not answer gets no reply
// from the stack itself (a reply would say it is reachable when nothing
// answered); the loopback is not pinged.
func TestPing(t *testing.T) {
	n, g := newNetwork(t, Config{})
	for _, a := range []netip.Addr{gateway, dnsAddr} {
		if !g.ping(t, a, 3*time.Second) {
			t.Errorf("no reply from %s", a)
		}
	}
	if g.ping(t, netip.MustParseAddr("198.51.100.1"), time.Second) {
		t.Error("198.51.100.1 answered a ping: the stack replied for an address it is not")
	}
	if g.ping(t, netip.MustParseAddr("127.0.0.1"), time.Second) {
		t.Error("127.0.0.1 answered a ping: the host's loopback was pinged")
	}
	host := testutil.HostIPv4(t)
	if s, err := pingSocket(host); err != nil {
		testutil.Skip(t, "no ICMP socket for this test's groups (%v): hack/setup.sh sets net.ipv4.ping_group_range", err)
	} else {
		s.Close()
	}
	if !g.ping(t, host, 3*time.Second) {
		t.Errorf("no reply from %s, a host on the outside", host)
	}
	if n.openFlows() == 0 {
		t.Error("no ping flow open after the reply")
	}
}

// eventfds are this process's open eventfds.
func eventfds() map[int]bool {
	out := map[int]bool{}
	ents, _ := os.ReadDir("/proc/self/fd")
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		if l, _ := os.Readlink("/proc/self/fd/" + e.Name()); l == "anon_inode:[eventfd]" {
			out[fd] = true
		}
	}
	return out
}

// TestUDPIdle: a UDP flow stays while datagrams pass and ends UDPIdle
// after the last one; a flow to port 53 ends after DNSIdle (a resolver
// sends each query from a new port: MaxFlows would fill otherwise).
func TestUDPIdle(t *testing.T) {
	loop := udpEcho(t, "127.0.0.1:0", "lo:")
	resolver := udpEcho(t, "127.0.0.1:0", "dns:")
	waitFlows := func(n *Network, want int, within time.Duration) {
		t.Helper()
		deadline := time.Now().Add(within)
		for n.openFlows() != want {
			if time.Now().After(deadline) {
				t.Fatalf("%d flows open after %v, want %d", n.openFlows(), within, want)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
	n, g := newNetwork(t, Config{HostLoopback: true, UDPIdle: 400 * time.Millisecond})
	c, err := g.dialUDP(netip.AddrPortFrom(gateway, loop.Port()))
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	buf := make([]byte, 64)
	for i := 0; i < 8; i++ { // 8 × 150 ms: three times UDPIdle, with traffic
		_ = c.SetReadDeadline(time.Now().Add(2 * time.Second))
		if _, err := c.Write([]byte("x")); err != nil {
			t.Fatal(err)
		}
		if _, err := c.Read(buf); err != nil {
			t.Fatalf("round %d: %v (the flow ended with traffic on it)", i, err)
		}
		if n.openFlows() != 1 {
			t.Fatalf("round %d: %d flows open, want 1", i, n.openFlows())
		}
		time.Sleep(150 * time.Millisecond)
	}
	waitFlows(n, 0, 5*time.Second)

	// UDPIdle far longer than the wait: only DNSIdle can end the flow
	// to port 53 in it, and the other flow stays.
	n, g = newNetwork(t, Config{HostLoopback: true, DNS: []netip.AddrPort{resolver}, UDPIdle: time.Minute, DNSIdle: 100 * time.Millisecond})
	if got, err := udpRoundTrip(g, netip.AddrPortFrom(gateway, loop.Port()), "a"); err != nil || got != "lo:a" {
		t.Fatalf("udp: %q, %v", got, err)
	}
	if got, err := udpRoundTrip(g, netip.AddrPortFrom(dnsAddr, 53), "q"); err != nil || got != "dns:q" {
		t.Fatalf("dns: %q, %v", got, err)
	}
	waitFlows(n, 1, 10*time.Second)
}
