//go:build integration && linux

package slirp

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/testutil"
	"golang.org/x/sys/unix"
)

// requireNet skips (fails on CI) unless the tools these tests use are here.
func requireNet(t *testing.T) {
	t.Helper()
	testutil.RequireBinary(t, "slirp4netns", "apt-get install slirp4netns")
	testutil.RequireBinary(t, "unshare", "apt-get install util-linux")
	testutil.RequireBinary(t, "nsenter", "apt-get install util-linux")
	if err := Check(); err != nil {
		testutil.Skip(t, "%v", err)
	}
}

// container is a stand-in for a sandy container: a process in a new user
// namespace (own uid mapped to root), a new network namespace and a new pid
// namespace, where it is pid 1 (slirp refuses the builtin driver for a
// container in the caller's pid namespace). pid is its pid on the host;
// cmd is unshare, which kills it when it is killed itself.
type container struct {
	pid int
	cmd *exec.Cmd
}

func newContainer(t *testing.T) *container {
	t.Helper()
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "sleep", "120")
	if err := cmd.Start(); err != nil {
		t.Fatalf("unshare: %v", err)
	}
	c := &container{cmd: cmd}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	self, _ := os.Readlink("/proc/self/ns/pid")
	deadline := time.Now().Add(5 * time.Second)
	for {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		if f := strings.Fields(string(kids)); len(f) == 1 {
			pid, _ := strconv.Atoi(f[0])
			ns, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
			exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			if err == nil && ns != self && strings.HasSuffix(exe, "/sleep") {
				c.pid = pid
				return c
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("unshare: no sleep in new namespaces under pid %d after 5s", cmd.Process.Pid)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

// command returns argv run inside the container's user and network
// namespaces.
func (c *container) command(args ...string) *exec.Cmd {
	a := append([]string{"-t", strconv.Itoa(c.pid), "-U", "-n", "--preserve-credentials", "--"}, args...)
	return exec.Command("nsenter", a...)
}

// serve starts the test server inside the container.
func (c *container) serve(t *testing.T, args ...string) {
	t.Helper()
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := c.command(append([]string{exe, testServerCommand}, args...)...)
	stdin, _ := cmd.StdinPipe()
	out, _ := cmd.StdoutPipe()
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		t.Fatalf("test server: %v", err)
	}
	t.Cleanup(func() { stdin.Close(); _ = cmd.Process.Kill(); _ = cmd.Wait() })
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil || line != "ready\n" {
		t.Fatalf("test server: %q, %v", line, err)
	}
}

// freePort: a port free for both protocols (testutil.FreePort).
func freePort(t *testing.T, _ string) int { t.Helper(); return testutil.FreePort(t) }

func startNetwork(t *testing.T, o Options) *Network {
	t.Helper()
	if o.StateDir == "" {
		o.StateDir = t.TempDir()
	}
	if o.Exe == nil {
		o.Exe = testExe(t)
	}
	begin := time.Now()
	n, err := Start(context.Background(), o)
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	t.Logf("Start took %v (driver %q, %d ports)", time.Since(begin), o.Driver, len(o.Ports))
	t.Cleanup(func() {
		if err := n.Close(); err != nil {
			t.Errorf("Close: %v", err)
		}
		if t.Failed() || testing.Verbose() {
			log, _ := os.ReadFile(filepath.Join(o.StateDir, "slirp.log"))
			t.Logf("slirp.log:\n%s", log)
		}
	})
	return n
}

// dialFrom connects to addr from the local address src (port chosen by the
// kernel).
func dialFrom(src, addr string) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second, LocalAddr: &net.TCPAddr{IP: net.ParseIP(src)}}
	return d.Dial("tcp", addr)
}

func readPeer(t *testing.T, c net.Conn) string {
	t.Helper()
	_ = c.SetDeadline(time.Now().Add(5 * time.Second))
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		t.Fatalf("reading peer line: %v", err)
	}
	return strings.TrimPrefix(strings.TrimSpace(line), "peer=")
}

func TestForwardTCPKeepsClientAddress(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireNet(t)
	for _, tc := range []struct {
		driver    string
		inProcess bool
	}{{DriverBuiltin, false}, {DriverSlirp4netns, false}, {DriverBuiltin, true}} {
		driver := tc.driver
		name := driver
		if tc.inProcess {
			name += "/in-process"
		}
		t.Run(name, func(t *testing.T) {
			c := newContainer(t)
			hostPort := freePort(t, "tcp")
			startNetwork(t, Options{PID: c.pid, Driver: driver, InProcess: tc.inProcess, Ports: []PortSpec{{HostIP: "127.0.0.1", HostPort: hostPort, ContainerPort: 8080, Proto: "tcp"}}})
			c.serve(t, "-tcp=0.0.0.0:8080")
			conn, err := dialFrom("127.0.0.2", net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort)))
			if err != nil {
				t.Fatalf("dialing the forward: %v", err)
			}
			defer conn.Close()
			peer := readPeer(t, conn)
			t.Logf("client %s, the container saw %s", conn.LocalAddr(), peer)
			switch driver {
			case DriverBuiltin:
				if peer != conn.LocalAddr().String() {
					t.Errorf("container saw peer %s, want the client's own address %s", peer, conn.LocalAddr())
				}
			case DriverSlirp4netns:
				if !strings.HasPrefix(peer, GatewayIP+":") {
					t.Errorf("container saw peer %s, want %s (slirp4netns' gateway)", peer, GatewayIP)
				}
			}
			if _, err := conn.Write([]byte("hello\n")); err != nil {
				t.Fatal(err)
			}
			line, err := bufio.NewReader(conn).ReadString('\n')
			if err != nil || line != "hello\n" {
				t.Fatalf("echo: %q, %v", line, err)
			}
		})
	}
}

// TestForwardIPv6HostAddress: -p [::1]:PORT:8080 with the builtin driver.
// The container side is dialled on IPv4 127.0.0.1, where servers listen, so
// an IPv6 client's address cannot be kept: the server sees 127.0.0.1.
func TestForwardIPv6HostAddress(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireNet(t)
	l, err := net.Listen("tcp6", "[::1]:0")
	if err != nil {
		testutil.Skip(t, "no IPv6 loopback on this host: %v", err)
	}
	hostPort := l.Addr().(*net.TCPAddr).Port
	l.Close()
	c := newContainer(t)
	startNetwork(t, Options{PID: c.pid, Ports: []PortSpec{{HostIP: "::1", HostPort: hostPort, ContainerPort: 8080, Proto: "tcp"}}})
	c.serve(t, "-tcp=0.0.0.0:8080")
	conn, err := net.DialTimeout("tcp6", fmt.Sprintf("[::1]:%d", hostPort), 5*time.Second)
	if err != nil {
		t.Fatalf("dialing the IPv6 forward: %v", err)
	}
	defer conn.Close()
	peer := readPeer(t, conn)
	t.Logf("client %s, the container saw %s", conn.LocalAddr(), peer)
	if !strings.HasPrefix(peer, "127.0.0.1:") {
		t.Errorf("container saw %s, want 127.0.0.1:PORT", peer)
	}
}

func TestForwardUDP(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireNet(t)
	for _, driver := range []string{DriverBuiltin, DriverSlirp4netns} {
		t.Run(driver, func(t *testing.T) {
			c := newContainer(t)
			hostPort := freePort(t, "udp")
			// libslirp drops UDP replies to 10.0.2.2 under --disable-host-loopback,
			// so Start refuses UDP forwards through the slirp4netns driver
			// without HostLoopback (TestPortErrors).
			startNetwork(t, Options{PID: c.pid, Driver: driver, HostLoopback: driver == DriverSlirp4netns, Ports: []PortSpec{{HostIP: "127.0.0.1", HostPort: hostPort, ContainerPort: 5353, Proto: "udp"}}})
			c.serve(t, "-udp=0.0.0.0:5353")
			conn, err := net.Dial("udp", net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort)))
			if err != nil {
				t.Fatal(err)
			}
			defer conn.Close()
			buf := make([]byte, 1024)
			for i := 0; ; i++ { // UDP may drop the first datagram while the flow is set up
				if _, err := conn.Write([]byte("ping")); err != nil {
					t.Fatal(err)
				}
				_ = conn.SetReadDeadline(time.Now().Add(time.Second))
				n, err := conn.Read(buf)
				if err == nil {
					t.Logf("reply: %q", buf[:n])
					if !strings.HasSuffix(string(buf[:n]), " ping") {
						t.Fatalf("reply %q, want it to end in \" ping\"", buf[:n])
					}
					return
				}
				if i == 4 {
					t.Fatalf("no UDP reply through -p %d:5353/udp after 5 tries: %v", hostPort, err)
				}
			}
		})
	}
}

// TestBusyboxHTTPD is the host → container case: busybox httpd in
// the container behind -p 127.0.0.1:PORT:80, fetched from the host from
// 127.0.0.2; httpd's log shows the client's real address.
func TestBusyboxHTTPD(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireNet(t)
	if _, err := os.Stat(testutil.BusyboxPath); err != nil {
		testutil.Skip(t, "%s missing (apt-get install busybox-static)", testutil.BusyboxPath)
	}
	c := newContainer(t)
	hostPort := freePort(t, "tcp")
	startNetwork(t, Options{PID: c.pid, Ports: []PortSpec{{HostIP: "127.0.0.1", HostPort: hostPort, ContainerPort: 80, Proto: "tcp"}}})
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("hello from the container\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	httpd := c.command(testutil.BusyboxPath, "httpd", "-f", "-vv", "-p", "80", "-h", www)
	var log syncBuffer
	httpd.Stderr = &log
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = httpd.Process.Kill(); _ = httpd.Wait() })
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext,
	}}
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", hostPort)
	var body []byte
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err := client.Get(url)
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v (httpd log: %s)", url, err, log.String())
		}
		time.Sleep(20 * time.Millisecond) // httpd may not listen yet
	}
	if string(body) != "hello from the container\n" {
		t.Fatalf("GET %s: %q", url, body)
	}
	time.Sleep(50 * time.Millisecond)
	t.Logf("httpd log:\n%s", log.String())
	if !strings.Contains(log.String(), "127.0.0.2") {
		t.Errorf("httpd did not log the client address 127.0.0.2")
	}
}

type syncBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (s *syncBuffer) Write(p []byte) (int, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.Write(p)
}

func (s *syncBuffer) String() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.b.String()
}

func TestParallelConnections(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireNet(t)
	const conns, size = 200, 64 << 10
	c := newContainer(t)
	hostPort := freePort(t, "tcp")
	startNetwork(t, Options{PID: c.pid, Ports: []PortSpec{{HostIP: "127.0.0.1", HostPort: hostPort, ContainerPort: 8080, Proto: "tcp"}}})
	c.serve(t, "-tcp=127.0.0.1:8080")
	addr := net.JoinHostPort("127.0.0.1", strconv.Itoa(hostPort))
	payload := make([]byte, size)
	for i := range payload {
		payload[i] = byte('a' + i%26)
	}
	payload[size-1] = '\n'
	begin := time.Now()
	errs := make(chan error, conns)
	var wg sync.WaitGroup
	for i := 0; i < conns; i++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- echoOnce(addr, payload)
		}()
	}
	wg.Wait()
	close(errs)
	failed := 0
	for err := range errs {
		if err != nil {
			failed++
			if failed <= 3 {
				t.Error(err)
			}
		}
	}
	took := time.Since(begin)
	t.Logf("%d parallel connections of %d KiB each way: %v, %d failed", conns, size>>10, took, failed)
	if took > 20*time.Second {
		t.Errorf("%d parallel connections took %v, want < 20s", conns, took)
	}
}

func echoOnce(addr string, payload []byte) error {
	c, err := net.DialTimeout("tcp", addr, 10*time.Second)
	if err != nil {
		return err
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(15 * time.Second))
	r := bufio.NewReaderSize(c, len(payload))
	if _, err := r.ReadString('\n'); err != nil { // peer line
		return fmt.Errorf("reading peer line: %w", err)
	}
	go func() { _, _ = c.Write(payload) }()
	got := make([]byte, len(payload))
	if _, err := io.ReadFull(r, got); err != nil {
		return fmt.Errorf("reading echo: %w", err)
	}
	if string(got) != string(payload) {
		return errors.New("echo differs")
	}
	return nil
}

// TestHostLoopback: a server on the host's 127.0.0.1 is reachable from the
// container through 10.0.2.2 only with HostLoopback.
func TestHostLoopback(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireNet(t)
	l, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			fmt.Fprintln(c, "hello from the host")
			c.Close()
		}
	}()
	port := strconv.Itoa(l.Addr().(*net.TCPAddr).Port)
	for _, hostLoopback := range []bool{true, false} {
		t.Run(fmt.Sprintf("HostLoopback=%v", hostLoopback), func(t *testing.T) {
			c := newContainer(t)
			startNetwork(t, Options{PID: c.pid, HostLoopback: hostLoopback})
			out, err := c.command(testutil.BusyboxPath, "nc", "-w", "3", GatewayIP, port).CombinedOutput()
			reached := err == nil && strings.Contains(string(out), "hello from the host")
			t.Logf("nc %s %s from the container: %q, %v", GatewayIP, port, out, err)
			if reached != hostLoopback {
				t.Errorf("container reached the host's loopback: %v, want %v", reached, hostLoopback)
			}
			// The container's side as configured by --configure.
			routes, err := c.command("cat", "/proc/net/route").Output()
			if err != nil || !strings.Contains(string(routes), "tap0") {
				t.Errorf("no tap0 route in the container: %q, %v", routes, err)
			}
		})
	}
}

func TestPortErrors(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireNet(t)
	c := newContainer(t)
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	free := freePort(t, "tcp")
	// With net.ipv4.ip_unprivileged_port_start=0 no port is privileged:
	// then a port below 1024 must not be refused as one (it may be in use).
	low, privileged := unprivilegedPortStart()-1, unprivilegedPortStart() > 1
	if !privileged {
		low = 1023
	}
	tests := []struct {
		name    string
		o       Options
		want    error
		wantMsg string
	}{
		{name: "in use", o: Options{Ports: []PortSpec{{HostIP: "127.0.0.1", HostPort: busyPort, ContainerPort: 80, Proto: "tcp"}}}, want: ErrPortInUse, wantMsg: "address already in use"},
		{name: "privileged", o: Options{Ports: []PortSpec{{HostIP: "127.0.0.1", HostPort: low, ContainerPort: 80, Proto: "tcp"}}}, want: ErrPrivilegedPort, wantMsg: "sysctl -w net.ipv4.ip_unprivileged_port_start=" + strconv.Itoa(low)},
		{name: "duplicate", o: Options{Ports: []PortSpec{{HostPort: free, ContainerPort: 80, Proto: "tcp"}, {HostIP: "127.0.0.1", HostPort: free, ContainerPort: 81, Proto: "tcp"}}}, want: ErrBadPort, wantMsg: "both use host port"},
		{name: "ipv6 with slirp4netns driver", o: Options{Driver: DriverSlirp4netns, Ports: []PortSpec{{HostIP: "::1", HostPort: free, ContainerPort: 80, Proto: "tcp"}}}, want: ErrBadPort, wantMsg: "no IPv6"},
		{name: "udp with slirp4netns driver without host loopback", o: Options{Driver: DriverSlirp4netns, Ports: []PortSpec{{HostIP: "127.0.0.1", HostPort: free, ContainerPort: 53, Proto: "udp"}}}, want: ErrBadPort, wantMsg: "use the builtin driver"},
		{name: "address not on host", o: Options{Ports: []PortSpec{{HostIP: "198.51.100.1", HostPort: free, ContainerPort: 80, Proto: "tcp"}}}, want: ErrBadPort, wantMsg: "not on this host"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			tt.o.PID = c.pid
			tt.o.StateDir = t.TempDir()
			tt.o.Exe = testExe(t)
			n, err := Start(context.Background(), tt.o)
			if tt.want == ErrPrivilegedPort && !privileged {
				t.Logf("net.ipv4.ip_unprivileged_port_start is 0: port %d is not privileged; Start: %v", low, err)
				if err == nil {
					n.Close()
				} else if errors.Is(err, ErrPrivilegedPort) {
					t.Errorf("port %d refused as privileged with net.ipv4.ip_unprivileged_port_start=0: %v", low, err)
				}
				return
			}
			if err == nil {
				n.Close()
				t.Fatalf("Start succeeded, want %v", tt.want)
			}
			t.Logf("error: %v", err)
			if !errors.Is(err, tt.want) || !strings.Contains(err.Error(), tt.wantMsg) {
				t.Errorf("Start: %v; want %v containing %q", err, tt.want, tt.wantMsg)
			}
			assertNoState(t, tt.o.StateDir)
		})
	}
}

// TestPortInUseInMonitor: a port taken between Start's check and the
// monitor's bind reports the same error, and leaves nothing behind.
func TestPortInUseInMonitor(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireNet(t)
	c := newContainer(t)
	free := freePort(t, "tcp")
	busy, err := net.Listen("tcp4", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer busy.Close()
	busyPort := busy.Addr().(*net.TCPAddr).Port
	o := Options{PID: c.pid, StateDir: t.TempDir(), Driver: DriverBuiltin, Exe: testExe(t)}
	o, err = o.withDefaults()
	if err != nil {
		t.Fatal(err)
	}
	o.Ports = []PortSpec{{HostIP: "127.0.0.1", HostPort: free, ContainerPort: 80, Proto: "tcp"}, {HostIP: "127.0.0.1", HostPort: busyPort, ContainerPort: 81, Proto: "tcp"}}
	before := childrenOf(os.Getpid())
	n, err := launch(o) // Launch without its preflight check of the ports
	if err == nil {
		err = n.Ready(context.Background())
	}
	t.Logf("error: %v", err)
	if !errors.Is(err, ErrPortInUse) {
		t.Fatalf("launch+Ready: %v, want ErrPortInUse", err)
	}
	if after := childrenOf(os.Getpid()); len(after) > len(before) {
		t.Errorf("processes left: %v", after)
	}
	if l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", free)); err != nil {
		t.Errorf("the first forward's port is still held: %v", err)
	} else {
		l.Close()
	}
	if out := pgrepSlirp(t, c.pid); out != "" {
		t.Errorf("slirp4netns left for pid %d: %s", c.pid, out)
	}
}

func assertNoState(t *testing.T, dir string) {
	t.Helper()
	for _, f := range []string{"monitor.sock", "slirp-api.sock", ".bp.sock", ".bp-ready.pipe", "slirp.json"} {
		if _, err := os.Lstat(filepath.Join(dir, f)); err == nil {
			t.Errorf("%s left in the state directory", f)
		}
	}
}

// childrenOf lists the pids whose parent is pid.
func childrenOf(pid int) []int {
	var out []int
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		p, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+2:])
		if len(f) > 1 && f[1] == strconv.Itoa(pid) && f[0] != "Z" {
			out = append(out, p)
		}
	}
	return out
}

// pgrepSlirp returns the slirp4netns processes serving pid.
func pgrepSlirp(t *testing.T, pid int) string {
	out, _ := exec.Command("pgrep", "-a", "-f", fmt.Sprintf("^[^ ]*slirp4netns .* %d tap0$", pid)).Output()
	return strings.TrimSpace(string(out))
}

// alive reports whether pid exists and is not a zombie.
func alive(pid int) bool {
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return false
	}
	s := string(b)
	return !strings.HasPrefix(s[strings.LastIndexByte(s, ')')+2:], "Z")
}

func waitGone(t *testing.T, what string, pids ...int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Errorf("%s: pid %d still alive after 5s", what, pid)
				break
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestTeardown: slirp4netns, the port child and the forwarders are gone
// after Close, after Stop from another "process" (state dir only), after the
// container's process exits, and after kill -9 of the monitor.
func TestTeardown(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireNet(t)
	cases := []struct {
		name      string
		inProcess bool
		end       func(t *testing.T, n *Network, c *container, stateDir string)
	}{
		{"Close", false, func(t *testing.T, n *Network, c *container, _ string) {
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
			if err := n.Close(); err != nil {
				t.Fatalf("second Close: %v", err)
			}
		}},
		{"Stop", false, func(t *testing.T, n *Network, c *container, dir string) {
			if err := Stop(dir); err != nil {
				t.Fatal(err)
			}
			if err := Stop(dir); err != nil {
				t.Fatalf("second Stop: %v", err)
			}
		}},
		{"container exits", false, func(t *testing.T, n *Network, c *container, _ string) {
			_ = c.cmd.Process.Kill()
		}},
		{"kill -9 monitor", false, func(t *testing.T, n *Network, c *container, _ string) {
			_ = syscall.Kill(n.MonitorPID(), syscall.SIGKILL)
		}},
		{"in-process Close", true, func(t *testing.T, n *Network, c *container, _ string) {
			if err := n.Close(); err != nil {
				t.Fatal(err)
			}
		}},
		{"in-process Stop", true, func(t *testing.T, n *Network, c *container, dir string) {
			if err := Stop(dir); err != nil {
				t.Fatal(err)
			}
			<-n.owner.done
		}},
		{"in-process container exits", true, func(t *testing.T, n *Network, c *container, _ string) {
			_ = c.cmd.Process.Kill()
			select {
			case <-n.owner.done:
			case <-time.After(5 * time.Second):
				t.Error("in-process owner still running 5s after the container exited")
			}
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			c := newContainer(t)
			hostPort := freePort(t, "tcp")
			dir := t.TempDir()
			n, err := Start(context.Background(), Options{PID: c.pid, StateDir: dir, Exe: testExe(t), InProcess: tc.inProcess, Ports: []PortSpec{{HostIP: "127.0.0.1", HostPort: hostPort, ContainerPort: 80, Proto: "tcp"}}})
			if err != nil {
				t.Fatal(err)
			}
			defer n.Close()
			kids := []int{n.slirp.cmd.Process.Pid, n.child.cmd.Process.Pid}
			tc.end(t, n, c, dir)
			if tc.name == "kill -9 monitor" {
				// Nothing closes the listeners first: wait for the whole
				// thread group (wait4), not just for the leader to be a
				// zombie.
				<-n.monitor.done
			} else if !tc.inProcess {
				waitGone(t, "monitor", n.MonitorPID())
			}
			waitGone(t, "slirp4netns and port child", kids...)
			if l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", hostPort)); err != nil {
				out, _ := exec.Command("ss", "-ltnpe", fmt.Sprintf("sport = :%d", hostPort)).CombinedOutput()
				t.Errorf("forwarded port still held: %v\n%s", err, out)
			} else {
				l.Close()
			}
			if out := pgrepSlirp(t, c.pid); out != "" {
				t.Errorf("slirp4netns left: %s", out)
			}
			if tc.name != "kill -9 monitor" {
				assertNoState(t, dir)
			}
		})
	}
}

// TestAbandon: an in-process network ended with Abandon frees its host
// port and its state files before Abandon returns, and hands back pidfds
// on which EndProcesses waits for slirp4netns and the port child. The
// state directory may be renamed meanwhile and a new one made at its path
// (the lifecycle's hand-off to a reaper): slirp4netns' unlink of its API
// socket at exit must not reach the new directory.
func TestAbandon(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireNet(t)
	c := newContainer(t)
	hostPort := freePort(t, "tcp")
	base := t.TempDir()
	dir := filepath.Join(base, "ctr")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	n, err := Start(context.Background(), Options{PID: c.pid, StateDir: dir, Exe: testExe(t), InProcess: true, Ports: []PortSpec{{HostIP: "127.0.0.1", HostPort: hostPort, ContainerPort: 80, Proto: "tcp"}}})
	if err != nil {
		t.Fatal(err)
	}
	defer n.Close()
	kids := []int{n.slirp.cmd.Process.Pid, n.child.cmd.Process.Pid}
	pidfds, err := n.Abandon()
	if err != nil {
		t.Fatal(err)
	}
	if len(pidfds) != 2 {
		t.Fatalf("Abandon returned %d pidfds, want 2 (slirp4netns, port child)", len(pidfds))
	}
	if l, err := net.Listen("tcp4", fmt.Sprintf("127.0.0.1:%d", hostPort)); err != nil {
		t.Errorf("forwarded port still held after Abandon: %v", err)
	} else {
		l.Close()
	}
	assertNoState(t, dir)
	// The id is reused: a new directory at the old path, with its own
	// API socket (a plain file stands in for it).
	if err := os.Rename(dir, filepath.Join(base, "retired")); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	newSock := filepath.Join(dir, "slirp-api.sock")
	if err := os.WriteFile(newSock, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	EndProcesses(pidfds)
	// Their pidfds said they exited; /proc may lag a moment behind on a
	// loaded machine (one fresh-clone run saw the port child not yet a
	// zombie), so the state is logged and then waited for.
	for _, p := range kids {
		if alive(p) {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", p))
			t.Logf("pid %d not yet shown exited when EndProcesses returned: %s", p, b)
		}
	}
	waitGone(t, "after EndProcesses", kids...)
	if out := pgrepSlirp(t, c.pid); out != "" {
		t.Errorf("slirp4netns left: %s", out)
	}
	if _, err := os.Lstat(newSock); err != nil {
		t.Errorf("the new directory's API socket is gone: the old slirp4netns unlinked it by path: %v", err)
	}
}

// TestBindBypass: with a bind notifier, busybox httpd's own listening
// socket becomes a host socket on -p's address: no forwarder, no port
// child, and httpd logs the client's real address.
func TestBindBypass(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireNet(t)
	c := newContainer(t)
	hostPort := freePort(t, "tcp")
	sock := filepath.Join(t.TempDir(), "notify.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	www := t.TempDir()
	if err := os.WriteFile(filepath.Join(www, "index.html"), []byte("bypassed\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	exe, _ := os.Executable()
	httpd := c.command(exe, testNotifyExecCommand, "--connect="+sock, "--", testutil.BusyboxPath, "httpd", "-f", "-vv", "-p", "8080", "-h", www)
	var log syncBuffer
	httpd.Stderr = &log
	if err := httpd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = httpd.Process.Kill(); _ = httpd.Wait() })
	_ = l.SetDeadline(time.Now().Add(10 * time.Second))
	conn, err := l.AcceptUnix()
	if err != nil {
		t.Fatalf("waiting for the notifier: %v (helper: %s)", err, log.String())
	}
	defer conn.Close()
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := conn.ReadMsgUnix(make([]byte, 1), oob)
	if err != nil {
		t.Fatal(err)
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		t.Fatalf("no fd from the helper: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		t.Fatalf("no fd from the helper: %v", err)
	}
	notifier := os.NewFile(uintptr(fds[0]), "notifier")
	defer notifier.Close()
	n := startNetwork(t, Options{PID: c.pid, BindNotifier: notifier, Ports: []PortSpec{{HostIP: "127.0.0.1", HostPort: hostPort, ContainerPort: 8080, Proto: "tcp"}}})
	if n.child != nil {
		t.Errorf("a port child was started although every port is bypassed")
	}
	if _, err := conn.Write([]byte{1}); err != nil {
		t.Fatal(err)
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: net.ParseIP("127.0.0.2")}}).DialContext,
	}}
	url := fmt.Sprintf("http://127.0.0.1:%d/index.html", hostPort)
	var body []byte
	for deadline := time.Now().Add(5 * time.Second); ; {
		resp, err := client.Get(url)
		if err == nil {
			body, err = io.ReadAll(resp.Body)
			resp.Body.Close()
			if err == nil && resp.StatusCode == 200 {
				break
			}
		}
		if time.Now().After(deadline) {
			t.Fatalf("GET %s: %v (httpd: %s)", url, err, log.String())
		}
		time.Sleep(20 * time.Millisecond)
	}
	if string(body) != "bypassed\n" {
		t.Fatalf("GET %s: %q", url, body)
	}
	time.Sleep(50 * time.Millisecond)
	t.Logf("httpd log:\n%s", log.String())
	if !strings.Contains(log.String(), "127.0.0.2") {
		t.Errorf("httpd did not log the client address 127.0.0.2")
	}
	out, _ := exec.Command("ss", "-Hltnp", fmt.Sprintf("sport = :%d", hostPort)).CombinedOutput()
	t.Logf("host listener: %s", out)
	if !strings.Contains(string(out), "busybox") {
		t.Errorf("the host port is not held by busybox httpd itself: %s", out)
	}
	// Every process under the filter gone (the listener hangs up), then
	// Close: the supervisor must not hold the teardown.
	_ = httpd.Process.Kill()
	_ = httpd.Wait()
	time.Sleep(50 * time.Millisecond)
	begin := time.Now()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > 3*time.Second {
		t.Errorf("Close after the bypassed server exited took %v", took)
	}
}

// TestCloseBeforeReady: a container that fails between Launch and Ready
// must not leave the network behind nor wait for it.
func TestCloseBeforeReady(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireNet(t)
	c := newContainer(t)
	dir := t.TempDir()
	n, err := Launch(context.Background(), Options{PID: c.pid, StateDir: dir, Exe: testExe(t), Ports: []PortSpec{{HostIP: "127.0.0.1", HostPort: freePort(t, "tcp"), ContainerPort: 80, Proto: "tcp"}}})
	if err != nil {
		t.Fatal(err)
	}
	begin := time.Now()
	if err := n.Close(); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(begin); took > time.Second {
		t.Errorf("Close before Ready took %v", took)
	}
	if err := n.Ready(context.Background()); err == nil {
		t.Errorf("Ready after Close succeeded")
	}
	for _, p := range []*proc{n.monitor, n.slirp, n.child} {
		if alive(p.cmd.Process.Pid) {
			t.Errorf("pid %d (%s) alive after Close", p.cmd.Process.Pid, p.cmd.Path)
		}
	}
	assertNoState(t, dir)
}

// TestCallerKilled is `sandy run --detach` or `create`, whose process exits
// (here: is killed with SIGKILL) while the container runs: the network
// stays up as long as the container's process, then goes away with it.
func TestCallerKilled(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireNet(t)
	t.Run("monitor", func(t *testing.T) { testCallerKilled(t, false) })
	t.Run("in-process", func(t *testing.T) { testCallerKilled(t, true) })
}

// testCallerKilled: with a monitor, the network outlives the killed caller
// and ends with the container; in-process, it ends with the caller.
func testCallerKilled(t *testing.T, inProcess bool) {
	c := newContainer(t)
	c.serve(t, "-tcp=127.0.0.1:8080")
	hostPort := freePort(t, "tcp")
	dir := t.TempDir()
	exe, _ := os.Executable()
	caller := exec.Command(exe, testStarterCommand, strconv.Itoa(c.pid), dir, fmt.Sprintf("127.0.0.1:%d:8080", hostPort), strconv.FormatBool(inProcess))
	out, _ := caller.StdoutPipe()
	caller.Stderr = os.Stderr
	if err := caller.Start(); err != nil {
		t.Fatal(err)
	}
	line, err := bufio.NewReader(out).ReadString('\n')
	if err != nil {
		t.Fatalf("starter: %v", err)
	}
	var monitor, slirp, child int
	if _, err := fmt.Sscanf(line, "up %d %d %d", &monitor, &slirp, &child); err != nil {
		t.Fatalf("starter said %q: %v", line, err)
	}
	_ = caller.Process.Kill()
	_ = caller.Wait()
	if inProcess {
		waitGone(t, "slirp4netns and port child after the in-process caller was killed", slirp, child)
		if out := pgrepSlirp(t, c.pid); out != "" {
			t.Errorf("slirp4netns left: %s", out)
		}
		return
	}
	time.Sleep(100 * time.Millisecond)
	conn, err := dialFrom("127.0.0.2", fmt.Sprintf("127.0.0.1:%d", hostPort))
	if err != nil {
		t.Fatalf("forward gone after the caller was killed: %v", err)
	}
	if peer := readPeer(t, conn); peer != conn.LocalAddr().String() {
		t.Errorf("peer %s, want %s", peer, conn.LocalAddr())
	}
	conn.Close()
	for _, pid := range []int{monitor, slirp, child} {
		if !alive(pid) {
			t.Errorf("pid %d gone after the caller was killed", pid)
		}
	}
	_ = c.cmd.Process.Kill()
	waitGone(t, "monitor, slirp4netns, port child after the container exited", monitor, slirp, child)
	assertNoState(t, dir)
}

// runTestStarter calls Start as a separate process would (sandy create):
// args are the container pid, the state dir and one -p spec. It prints
// "up MONITOR SLIRP CHILD" and waits to be killed.
func runTestStarter(args []string) error {
	pid, _ := strconv.Atoi(args[0])
	p, err := ParsePort(args[2])
	if err != nil {
		return err
	}
	inProcess, _ := strconv.ParseBool(args[3])
	exe, err := sealedTestExe()
	if err != nil {
		return err
	}
	n, err := Start(context.Background(), Options{PID: pid, StateDir: args[1], Exe: exe, Ports: []PortSpec{p}, InProcess: inProcess})
	if err != nil {
		return err
	}
	fmt.Printf("up %d %d %d\n", n.MonitorPID(), n.slirp.cmd.Process.Pid, n.child.cmd.Process.Pid)
	os.Stdout.Sync()
	select {}
}

func init() { testStarter = runTestStarter }
