//go:build integration

package main_test

import (
	"fmt"
	"net"
	"net/netip"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/usernet"
)

// serveLine listens on addr and answers each connection with line.
func serveLine(t *testing.T, addr, line string) int {
	t.Helper()
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			_, _ = c.Write([]byte(line + "\n"))
			c.Close()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// outsideAddr is a non-loopback IPv4 address of this host: a
// destination on the outside that the test can serve.
func outsideAddr(t *testing.T) string {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok && usernet.Routable(ip.Unmap()) {
				return ip.Unmap().String()
			}
		}
	}
	testutil.Skip(t, "no non-loopback IPv4 address on this host (%v): nothing on the outside to reach (give the host a network interface)", addrs)
	return ""
}

// TestNetworkUsernet: --network=usernet gives the container tap0 with
// slirp4netns's addresses, served in sandy's own process: a server on
// the outside answers, the host's loopback through 10.0.2.2 only with
// allow_host_loopback=true, and the fds the init used for the tap do not
// reach the container's process.
func TestNetworkUsernet(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	host := outsideAddr(t)
	out := serveLine(t, host+":0", "from-outside")
	lo := serveLine(t, "127.0.0.1:0", "from-host-loopback")
	e := newEnv(t).sh(fmt.Sprintf(`ip -4 addr show tap0 | grep -o 'inet [0-9./]*'; ip route | grep default; cat /etc/resolv.conf
echo fds $(ls /proc/self/fd)
nc -w 3 %s %d </dev/null || echo unreachable-outside
nc -w 3 10.0.2.2 %d </dev/null || echo unreachable-loopback`, host, out, lo))
	r := e.want(0, "run", "--network", "usernet:allow_host_loopback=true", e.bundle)
	for _, want := range []string{"inet 10.0.2.100/24", "default via 10.0.2.2 dev tap0", "nameserver 10.0.2.3", "fds 0 1 2 3\n", "from-outside", "from-host-loopback"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("no %q in the container's output:\n%s\nstderr: %s", want, r.stdout, r.stderr)
		}
	}
	r = e.want(0, "run", "--network", "usernet", e.bundle)
	if !strings.Contains(r.stdout, "from-outside") || strings.Contains(r.stdout, "from-host-loopback") || !strings.Contains(r.stdout, "unreachable-loopback") {
		t.Errorf("without allow_host_loopback: %s", r.stdout)
	}
	if l := e.want(0, "list", "-q"); strings.TrimSpace(l.stdout) != "" {
		t.Errorf("containers left: %q", l.stdout)
	}
}

// TestNetworkUsernetRefuses: what --network=usernet does not serve yet
// is an error that says so, before anything starts.
func TestNetworkUsernetRefuses(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "true")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-d", "--network", "usernet", "--bundle", e.bundle, "un-d"}, "foreground only"},
		{[]string{"run", "--network", "usernet", "-p", "8080:80", e.bundle}, "-p with --network=usernet"},
		{[]string{"run", "--network", "usernet:port_handler=builtin", e.bundle}, "port_handler is slirp4netns's option"},
	} {
		r := e.run("", tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("sandy %s: exit %d, stderr %q; want an error with %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
	e.spec.Process.Terminal = true
	e.write()
	if r := e.run("", "run", "--network", "usernet", e.bundle); r.code == 0 || !strings.Contains(r.stderr, "needs sandy's raw init") {
		t.Errorf("a terminal container with usernet: exit %d, stderr %q", r.code, r.stderr)
	}
	if l := e.want(0, "list", "-q"); strings.TrimSpace(l.stdout) != "" {
		t.Errorf("containers left: %q", l.stdout)
	}
}
