//go:build linux

package usernet

import (
	"errors"
	"io"
	"net"
	"net/netip"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	"gvisor.dev/gvisor/pkg/tcpip"
	"gvisor.dev/gvisor/pkg/tcpip/adapters/gonet"
	"gvisor.dev/gvisor/pkg/tcpip/network/ipv4"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// guestServeTCP listens on the guest's port and answers each connection
// with the address it came from, then what it reads.
func (g *guest) serveTCP(t *testing.T, port uint16) {
	t.Helper()
	l, err := gonet.ListenTCP(g.s, tcpip.FullAddress{NIC: 1, Addr: guestAddr, Port: port}, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	serveConns(t, l, func(c net.Conn) {
		_, _ = io.WriteString(c, c.RemoteAddr().String()+"\n")
		_, _ = io.Copy(c, c)
	})
}

// publishTCP publishes a host listener on addr (host:0) for the
// guest's port and returns where it listens.
func publishTCP(t *testing.T, n *Network, addr string, port uint16) string {
	t.Helper()
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Publish(Forward{Listener: l, Port: port}); err != nil {
		t.Fatal(err)
	}
	return l.Addr().String()
}

// askTCP connects from local (host:0) to addr and returns the first
// line the guest's server says (the client it saw) and the local
// address.
func askTCP(t *testing.T, local, addr string) (string, netip.AddrPort) {
	t.Helper()
	la, err := net.ResolveTCPAddr("tcp4", local)
	if err != nil {
		t.Fatal(err)
	}
	d := net.Dialer{LocalAddr: la, Timeout: 10 * time.Second}
	c, err := d.Dial("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := io.WriteString(c, "ping"); err != nil {
		t.Fatal(err)
	}
	buf := make([]byte, 256)
	var got string
	for !strings.HasSuffix(got, "ping") {
		m, err := c.Read(buf)
		if err != nil {
			t.Fatalf("reading from the published port: %v (got %q)", err, got)
		}
		got += string(buf[:m])
	}
	line, _, _ := strings.Cut(got, "\n")
	return line, c.LocalAddr().(*net.TCPAddr).AddrPort()
}

// TestPublishTCP: a published TCP port reaches the container's, which
// sees a client on the host's loopback as the gateway with the client's
// port, and a client on an outside address as itself.
func TestPublishTCP(t *testing.T) {
	n, g := newNetwork(t, Config{})
	g.serveTCP(t, 80)

	got, local := askTCP(t, "127.0.0.1:0", publishTCP(t, n, "127.0.0.1:0", 80))
	if want := netip.AddrPortFrom(gateway, local.Port()).String(); got != want {
		t.Errorf("a loopback client seen as %s, want %s", got, want)
	}

	host := testutil.HostIPv4(t)
	got, local = askTCP(t, host.String()+":0", publishTCP(t, n, host.String()+":0", 80))
	if want := netip.AddrPortFrom(host, local.Port()).String(); got != want {
		t.Errorf("a client at %s seen as %s, want %s", local, got, want)
	}
	waitFor(t, "the flows to end", func() bool { return n.openFlows() == 0 })
}

// TestPublishTCPRefused: a published port the container does not serve
// resets the client, and its flow ends.
func TestPublishTCPRefused(t *testing.T) {
	n, _ := newNetwork(t, Config{})
	c, err := net.DialTimeout("tcp4", publishTCP(t, n, "127.0.0.1:0", 81), 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	_, err = c.Read(make([]byte, 1))
	if !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("reading from a port the container does not serve: %v, want a reset", err)
	}
	waitFor(t, "the flow to end", func() bool { return n.openFlows() == 0 })
}

// guestServeUDP answers each datagram on the guest's port with the
// address it came from and the datagram.
func (g *guest) serveUDP(t *testing.T, port uint16) {
	t.Helper()
	c, err := gonet.DialUDP(g.s, &tcpip.FullAddress{NIC: 1, Addr: guestAddr, Port: port}, nil, ipv4.ProtocolNumber)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	go func() {
		buf := make([]byte, 65536)
		for {
			m, from, err := c.ReadFrom(buf)
			if err != nil {
				return
			}
			_, _ = c.WriteTo([]byte(from.String()+" "+string(buf[:m])), from)
		}
	}()
}

// TestPublishUDP: a published UDP port relays each client's datagrams
// to the container's port and its answers back; the container sees the
// client as TCP's do; a flow ends after UDPIdle.
func TestPublishUDP(t *testing.T) {
	n, g := newNetwork(t, Config{UDPIdle: 300 * time.Millisecond})
	g.serveUDP(t, 53)
	host := testutil.HostIPv4(t)
	for _, ip := range []netip.Addr{netip.MustParseAddr("127.0.0.1"), host} {
		pc, err := net.ListenPacket("udp4", ip.String()+":0")
		if err != nil {
			t.Fatal(err)
		}
		if err := n.Publish(Forward{Packet: pc, Port: 53}); err != nil {
			t.Fatal(err)
		}
		c, err := net.Dial("udp4", pc.LocalAddr().String())
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close()
		local := c.LocalAddr().(*net.UDPAddr).AddrPort()
		want := netip.AddrPortFrom(host, local.Port()).String() + " hello"
		if ip.IsLoopback() {
			want = netip.AddrPortFrom(gateway, local.Port()).String() + " hello"
		}
		got, err := udpAsk(c, "hello")
		if err != nil {
			t.Fatalf("a datagram from %s: %v", local, err)
		}
		if got != want {
			t.Errorf("a datagram from %s: answer %q, want %q", local, got, want)
		}
	}
	waitFor(t, "the idle flows to end", func() bool { return n.openFlows() == 0 })
}

// udpAsk sends msg on c until an answer comes (the first can go before
// a stack has the other side's link address), at most 3 s.
func udpAsk(c net.Conn, msg string) (string, error) {
	buf := make([]byte, 2048)
	for try := 0; try < 10; try++ {
		if _, err := c.Write([]byte(msg)); err != nil {
			return "", err
		}
		_ = c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
		m, err := c.Read(buf)
		if err == nil {
			return string(buf[:m]), nil
		}
		var ne net.Error
		if !errors.As(err, &ne) || !ne.Timeout() {
			return "", err
		}
	}
	return "", errors.New("no answer in 3 s")
}

// TestForwardFile: a handed-over socket becomes a listener or a packet
// socket by its type; anything else is refused.
func TestForwardFile(t *testing.T) {
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	lf, err := l.(*net.TCPListener).File()
	if err != nil {
		t.Fatal(err)
	}
	defer lf.Close()
	fw, err := ForwardFile(lf, 80)
	if err != nil || fw.Listener == nil || fw.Packet != nil || fw.Port != 80 {
		t.Fatalf("a TCP listener: %+v, %v", fw, err)
	}
	fw.Listener.Close()

	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	pf, err := pc.(*net.UDPConn).File()
	if err != nil {
		t.Fatal(err)
	}
	defer pf.Close()
	fw, err = ForwardFile(pf, 53)
	if err != nil || fw.Packet == nil || fw.Listener != nil {
		t.Fatalf("a UDP socket: %+v, %v", fw, err)
	}
	fw.Packet.Close()

	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if _, err := ForwardFile(r, 80); err == nil || !strings.Contains(err.Error(), "not a socket") {
		t.Errorf("a pipe: %v, want not a socket", err)
	}
}

func waitFor(t *testing.T, what string, ok func() bool) {
	t.Helper()
	for deadline := time.Now().Add(10 * time.Second); !ok(); {
		if time.Now().After(deadline) {
			t.Fatalf("waiting for %s: not after 10 s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestPublishClose: the network's end closes the published sockets
// (their host ports are free again) and the connections through them.
func TestPublishClose(t *testing.T) {
	n, g := newNetwork(t, Config{})
	g.serveTCP(t, 80)
	addr := publishTCP(t, n, "127.0.0.1:0", 80)
	pc, err := net.ListenPacket("udp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	if err := n.Publish(Forward{Packet: pc, Port: 53}); err != nil {
		t.Fatal(err)
	}
	c, err := net.DialTimeout("tcp4", addr, 10*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Read(make([]byte, 1)); err != nil {
		t.Fatalf("reading the guest's first line: %v", err)
	}
	n.Close()
	if _, err := io.Copy(io.Discard, c); err != nil && !errors.Is(err, syscall.ECONNRESET) {
		t.Errorf("a connection at the network's end: %v, want its end", err)
	}
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatalf("the published TCP port after Close: %v", err)
	}
	l.Close()
	u, err := net.ListenPacket("udp4", pc.LocalAddr().String())
	if err != nil {
		t.Fatalf("the published UDP port after Close: %v", err)
	}
	u.Close()
	if err := n.Publish(Forward{Listener: l, Port: 80}); err == nil {
		t.Error("Publish after Close: no error")
	}
}
