//go:build integration

package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// serveLine listens on addr and answers each connection with line.
func serveLine(t *testing.T, addr, line string) int {
	t.Helper()
	return serveBytes(t, addr, []byte(line+"\n"))
}

// serveBytes listens on addr and sends data on each connection.
func serveBytes(t *testing.T, addr string, data []byte) int {
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
			go func() {
				defer c.Close()
				_, _ = c.Write(data)
			}()
		}
	}()
	return l.Addr().(*net.TCPAddr).Port
}

// TestNetworkUsernet: --network=usernet gives the container tap0 with
// slirp4netns's addresses, served by sandy-net: a server on the outside
// answers, the host's loopback through 10.0.2.2 only with
// allow_host_loopback=true, and the fds the init used for the tap do not
// reach the container's process; with the raw init, sandy's Go init
// and a terminal (the Go init's too).
func TestNetworkUsernet(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	host := testutil.HostIPv4(t).String()
	out := serveLine(t, host+":0", "from-outside")
	lo := serveLine(t, "127.0.0.1:0", "from-host-loopback")
	// 32 MiB down: enough for sandy-net's collector to run meanwhile (a
	// tap fd left to a finalizer was closed under the stack after 5 to
	// 20 MB).
	big := bytes.Repeat([]byte("0123456789abcdef"), 2<<20)
	sum := sha256.Sum256(big)
	bigPort := serveBytes(t, host+":0", big)
	e := newEnv(t).sh(fmt.Sprintf(`ip -4 addr show tap0 | grep -o 'inet [0-9./]*'; ip route | grep default; cat /etc/resolv.conf
echo fds $(ls /proc/self/fd)
nc -w 3 %s %d </dev/null || echo unreachable-outside
nc -w 3 10.0.2.2 %d </dev/null || echo unreachable-loopback
echo big $(nc -w 10 %s %d </dev/null | sha256sum)`, host, out, lo, host, bigPort))
	before := netsNow() // other sandy-nets of this user's: not this test's
	r := e.want(0, "run", "--network", "usernet:allow_host_loopback=true", e.bundle)
	for _, want := range []string{"inet 10.0.2.100/24", "default via 10.0.2.2 dev tap0", "nameserver 10.0.2.3", "fds 0 1 2 3\n", "from-outside", "from-host-loopback", "big " + hex.EncodeToString(sum[:])} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("no %q in the container's output:\n%s\nstderr: %s", want, r.stdout, r.stderr)
		}
	}
	r = e.want(0, "run", "--network", "usernet", e.bundle)
	if !strings.Contains(r.stdout, "from-outside") || strings.Contains(r.stdout, "from-host-loopback") || !strings.Contains(r.stdout, "unreachable-loopback") {
		t.Errorf("without allow_host_loopback: %s", r.stdout)
	}
	// sandy's Go init makes tap0 with the raw init's ops: the same
	// network, the same fds.
	t.Setenv("SANDY_RAW_INIT", "0")
	r = e.want(0, "--debug", "run", "--network", "usernet:allow_host_loopback=true", e.bundle)
	for _, want := range []string{"inet 10.0.2.100/24", "default via 10.0.2.2 dev tap0", "fds 0 1 2 3\n", "from-outside", "from-host-loopback"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("with sandy's Go init: no %q in the container's output:\n%s\nstderr: %s", want, r.stdout, r.stderr)
		}
	}
	if !strings.Contains(r.stderr, "debug: the init runs ") {
		t.Errorf("SANDY_RAW_INIT=0: the Go init did not run:\n%s", r.stderr)
	}
	// A terminal takes the Go init too.
	t.Setenv("SANDY_RAW_INIT", "")
	e.spec.Process.Terminal = true
	e.write()
	r = e.want(0, "run", "--network", "usernet", e.bundle)
	if !strings.Contains(r.stdout, "inet 10.0.2.100/24") || !strings.Contains(r.stdout, "from-outside") {
		t.Errorf("a terminal container: %q\nstderr: %s", r.stdout, r.stderr)
	}
	if l := e.want(0, "list", "-q"); strings.TrimSpace(l.stdout) != "" {
		t.Errorf("containers left: %q", l.stdout)
	}
	// sandy-net ends with the run: nothing of it serves (its end comes
	// a moment after run's; it may stay as an idle spare:
	// TestNetworkUsernetSpare).
	waitFor(t, 10*time.Second, "sandy-net to end", func() bool { return len(newNets(before)) == 0 })
}

// TestNetworkUsernetPublish: -p with --network=usernet forwards in
// sandy-net's stack: the container's httpd answers on the host's
// loopback and on an outside address, and sees a client on the host's
// loopback as 10.0.2.2 and one on the outside address as itself; a port
// in use is the second run's error before it starts; the ports are free
// again once the run ends.
func TestNetworkUsernetPublish(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	host := testutil.HostIPv4(t)
	lo, out := freePort(t), freePort(t)
	// A shell as pid 1 that ends on SIGINT (httpd as pid 1 ignores it).
	// The published sockets stay the host's: the container's process
	// has fds 0-2 (3 is ls's own).
	e := newEnv(t).sh(`echo fds $(ls /proc/self/fd); mkdir /www && echo hello-from-usernet > /www/index.html; trap 'kill $!; exit 0' INT; httpd -f -vv -p 80 -h /www & wait`)
	cmd := exec.Command(e.sandy, "--root", e.root, "run", "--network=usernet",
		"-p", fmt.Sprintf("127.0.0.1:%d:80", lo), "-p", fmt.Sprintf("%s:%d:80", host, out), e.bundle)
	var log syncBuffer
	cmd.Stdout, cmd.Stderr = &log, &log
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	exited := false
	defer func() {
		if !exited {
			_ = cmd.Process.Kill() // the container ends with it (its parent-death signal)
		}
	}()
	if body := waitHTTP(t, lo); strings.TrimSpace(body) != "hello-from-usernet" {
		t.Fatalf("GET through -p 127.0.0.1:%d:80: %q; output %s", lo, body, log.String())
	}
	client := &http.Client{Timeout: 5 * time.Second, Transport: &http.Transport{
		DialContext: (&net.Dialer{LocalAddr: &net.TCPAddr{IP: host.AsSlice()}}).DialContext,
	}}
	resp, err := client.Get(fmt.Sprintf("http://%s:%d/", host, out))
	if err != nil {
		t.Fatalf("GET through -p %s:%d:80: %v; output %s", host, out, err, log.String())
	}
	body, _ := io.ReadAll(resp.Body)
	resp.Body.Close()
	if strings.TrimSpace(string(body)) != "hello-from-usernet" {
		t.Fatalf("GET through -p %s:%d:80: %q", host, out, body)
	}
	defer func() {
		if t.Failed() {
			t.Logf("sandy run's output:\n%s", log.String())
		}
	}()
	if !strings.Contains(log.String(), "fds 0 1 2 3\n") {
		t.Errorf("the container's fds: want 0 1 2 (and ls's 3)")
	}
	waitFor(t, 5*time.Second, "httpd's log of both clients", func() bool {
		// httpd -vv logs "[::ffff:ADDRESS]:PORT: url:/".
		return strings.Contains(log.String(), "[::ffff:10.0.2.2]:") && strings.Contains(log.String(), "[::ffff:"+host.String()+"]:")
	})

	r := e.run("", "run", "--network=usernet", "-p", fmt.Sprintf("127.0.0.1:%d:80", lo), e.bundle)
	if r.code == 0 || !strings.Contains(r.stderr, "host port already in use") {
		t.Errorf("a second run on the same host port: exit %d, stderr %q; want the port in use", r.code, r.stderr)
	}

	_ = cmd.Process.Signal(os.Interrupt)
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		exited = true
		if err != nil {
			t.Errorf("sandy run after SIGINT: %v", err)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("sandy run did not end 20 s after SIGINT")
	}
	for _, addr := range []string{fmt.Sprintf("127.0.0.1:%d", lo), fmt.Sprintf("%s:%d", host, out)} {
		waitFor(t, 10*time.Second, addr+" to be free", func() bool {
			l, err := net.Listen("tcp4", addr)
			if err != nil {
				return false
			}
			l.Close()
			return true
		})
	}
}

// newNets are the sandy-net processes of this user's that serve a
// network and are not in before. An idle spare (internal/spare: its
// stdio on /dev/null) serves none: it is the next run's.
func newNets(before map[string]bool) []string {
	var nets []string
	for _, p := range processesNamed("sandy-net") {
		if !before[p] && !idleNet(p) {
			nets = append(nets, p)
		}
	}
	return nets
}

// netsNow are the sandy-net processes of this user's that serve a
// network now.
func netsNow() map[string]bool {
	m := map[string]bool{}
	for _, p := range processesNamed("sandy-net") {
		if !idleNet(p) {
			m[p] = true
		}
	}
	return m
}

// idleNet: sandy-net pid is an idle spare: it holds the socket it
// listens on in a .helpers directory (internal/spare), which it closes
// as it takes a request.
func idleNet(pid string) bool {
	tab, err := os.ReadFile("/proc/" + pid + "/net/unix")
	if err != nil {
		return false
	}
	listening := map[string]bool{}
	for _, line := range strings.Split(string(tab), "\n") {
		// Num RefCount Protocol Flags Type St Inode Path; a listening
		// socket's flags are __SO_ACCEPTCON (a connection accepted on it
		// has the same path).
		if f := strings.Fields(line); len(f) == 8 && f[3] == "00010000" && strings.Contains(f[7], "/.helpers/") {
			listening["socket:["+f[6]+"]"] = true
		}
	}
	fds, _ := os.ReadDir("/proc/" + pid + "/fd")
	for _, fd := range fds {
		if link, _ := os.Readlink("/proc/" + pid + "/fd/" + fd.Name()); listening[link] {
			return true
		}
	}
	return false
}

// TestNetworkUsernetDetached: `run -d` of a bundle and `create` return
// with the container running (or waiting): sandy-net outlives them and
// ends with the init (kill), and delete leaves none of it, nor the
// published port.
func TestNetworkUsernetDetached(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	port := freePort(t)
	e := newEnv(t).sh(`mkdir /www && echo detached-usernet > /www/index.html && exec httpd -f -p 80 -h /www`)
	before := netsNow()
	id := fmt.Sprintf("un-d-%d", time.Now().UnixNano())
	e.want(0, "run", "-d", "--network=usernet", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "--bundle", e.bundle, id)
	if body := waitHTTP(t, port); strings.TrimSpace(body) != "detached-usernet" {
		t.Fatalf("GET through -p of run -d: %q", body)
	}
	if nets := newNets(before); len(nets) != 1 {
		t.Errorf("sandy-net processes of the detached container: %v, want one", nets)
	}
	e.want(0, "delete", "--force", id)
	if nets := newNets(before); len(nets) != 0 {
		t.Errorf("sandy-net left after delete: %v", nets)
	}
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Error("the published port still listens after delete")
	}

	// create, start: the network serves from create on; the init's end
	// (kill) ends sandy-net before delete.
	id2 := id + "-c"
	e.want(0, "create", "--network=usernet", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "--bundle", e.bundle, id2)
	if nets := newNets(before); len(nets) != 1 {
		t.Errorf("sandy-net processes of the created container: %v, want one", nets)
	}
	e.want(0, "start", id2)
	if body := waitHTTP(t, port); strings.TrimSpace(body) != "detached-usernet" {
		t.Fatalf("GET through -p of create and start: %q", body)
	}
	e.want(0, "kill", id2, "KILL")
	waitFor(t, 10*time.Second, "sandy-net to end with the init", func() bool { return len(newNets(before)) == 0 })
	e.want(0, "delete", id2)
}

// processesNamed are the pids of this user's live processes whose comm
// is name. Zombies are not counted: an exited one whose parent is gone
// waits for pid 1 to reap it, which some machines' pid 1 (a container's
// shell) never does.
func processesNamed(name string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		comm, err := os.ReadFile(filepath.Join("/proc", d.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != name {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", d.Name(), "stat"))
		if i := strings.LastIndexByte(string(stat), ')'); err != nil || i < 0 || strings.HasPrefix(string(stat[i+1:]), " Z") {
			continue
		}
		if fi, err := os.Stat(filepath.Join("/proc", d.Name())); err == nil {
			if st, ok := fi.Sys().(*syscall.Stat_t); ok && int(st.Uid) == os.Getuid() {
				pids = append(pids, d.Name())
			}
		}
	}
	return pids
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
		{[]string{"run", "--network", "usernet:port_handler=builtin", e.bundle}, "port_handler is slirp4netns's option"},
	} {
		r := e.run("", tc.args...)
		if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
			t.Errorf("sandy %s: exit %d, stderr %q; want an error with %q", strings.Join(tc.args, " "), r.code, r.stderr, tc.want)
		}
	}
	if l := e.want(0, "list", "-q"); strings.TrimSpace(l.stdout) != "" {
		t.Errorf("containers left: %q", l.stdout)
	}
	// A sandy without sandy-net beside it says where it looked and how
	// to build it.
	alone := filepath.Join(testutil.TempDir(t), "sandy")
	if out, err := exec.Command("cp", e.sandy, alone).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	e.sandy = alone
	if r := e.run("", "run", "--network", "usernet", e.bundle); r.code == 0 || !strings.Contains(r.stderr, "needs sandy-net, which is not installed beside sandy") {
		t.Errorf("sandy without sandy-net: exit %d, stderr %q", r.code, r.stderr)
	}
}

// TestRunImageUsernet: a container from an image gets the same network
// (its raw init runs in the image store's user namespace), in the
// foreground and detached, where its monitor holds sandy-net as
// `sandy run` does, with its published ports.
func TestRunImageUsernet(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	host := testutil.HostIPv4(t).String()
	port := serveLine(t, host+":0", "from-outside")
	e := newImgEnv(t)
	e.loadImage("localhost/bb:net", imagefix.Busybox(t))
	script := fmt.Sprintf(`ip -4 addr show tap0 | grep -o 'inet [0-9./]*'; nc -w 3 %s %d </dev/null || echo unreachable`, host, port)
	// ping (busybox's needs a raw socket: NET_RAW): sandy-net sends the
	// echo from the host's ICMP sockets.
	out := e.ok("run", "--rm", "--network=usernet", "--cap-add=NET_RAW", "localhost/bb:net", "sh", "-c", script+"; ping -c 1 -W 5 "+host+" >/dev/null && echo ping-answered")
	if !strings.Contains(out, "inet 10.0.2.100/24") || !strings.Contains(out, "from-outside") || !strings.Contains(out, "ping-answered") {
		t.Fatalf("run --rm --network=usernet: %q", out)
	}
	id := e.runD("--network=usernet", "localhost/bb:net", "sh", "-c", "sleep 0.5; "+script+"; echo done")
	waitFor(t, 20*time.Second, "the detached container's output", func() bool {
		return strings.Contains(e.ok("logs", id), "done")
	})
	if logs := e.ok("logs", id); !strings.Contains(logs, "inet 10.0.2.100/24") || !strings.Contains(logs, "from-outside") {
		t.Fatalf("run -d --network=usernet: logs %q", logs)
	}
	e.ok("rm", "-f", id)

	// A detached server behind -p: its monitor holds the published
	// port with the network, through stop and start.
	web := freePort(t)
	before := netsNow()
	// --init: sandy's Go init makes tap0 (the raw init does not take
	// --init).
	e.runD("--name", "web-un", "--init", "--network=usernet", "-p", fmt.Sprintf("127.0.0.1:%d:8080", web), "localhost/bb:net", "sh", "-c",
		"mkdir -p /www && echo served-by-usernet > /www/index.html && exec httpd -f -p 8080 -h /www")
	if got := waitHTTP(t, web); got != "served-by-usernet\n" {
		t.Fatalf("GET through -p of a detached httpd on usernet: %q", got)
	}
	if got := e.ok("port", "web-un"); got != fmt.Sprintf("8080/tcp -> 127.0.0.1:%d\n", web) {
		t.Errorf("port: %q", got)
	}
	if nets := newNets(before); len(nets) != 1 {
		t.Errorf("sandy-net processes of the detached container: %v, want one", nets)
	}
	e.ok("stop", "web-un")
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", web), time.Second); err == nil {
		c.Close()
		t.Errorf("the published port is still open after stop")
	}
	e.ok("start", "web-un")
	if got := waitHTTP(t, web); got != "served-by-usernet\n" {
		t.Errorf("GET after start: %q", got)
	}
	e.ok("rm", "-f", "web-un")
}
