//go:build integration

package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"fmt"
	"net"
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
// slirp4netns's addresses, served in sandy's own process: a server on
// the outside answers, the host's loopback through 10.0.2.2 only with
// allow_host_loopback=true, and the fds the init used for the tap do not
// reach the container's process.
func TestNetworkUsernet(t *testing.T) {
	testutil.SandyWithNet(t)
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
	before := map[string]bool{} // other sandy-nets of this user's: not this test's
	for _, p := range processesNamed("sandy-net") {
		before[p] = true
	}
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
	if l := e.want(0, "list", "-q"); strings.TrimSpace(l.stdout) != "" {
		t.Errorf("containers left: %q", l.stdout)
	}
	// sandy-net ends with the run: nothing of it is left (its exit comes
	// a moment after run's).
	waitFor(t, 10*time.Second, "sandy-net to exit", func() bool {
		for _, p := range processesNamed("sandy-net") {
			if !before[p] {
				return false
			}
		}
		return true
	})
}

// processesNamed are the pids of this user's processes whose comm is
// name.
func processesNamed(name string) []string {
	var pids []string
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		comm, err := os.ReadFile(filepath.Join("/proc", d.Name(), "comm"))
		if err != nil || strings.TrimSpace(string(comm)) != name {
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
	testutil.SandyWithNet(t)
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "true")
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"run", "-d", "--network", "usernet", "--bundle", e.bundle, "un-d"}, "run -d of a bundle, create: --network=slirp4netns"},
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
	// A sandy without sandy-net beside it says where it looked and how
	// to build it.
	e.spec.Process.Terminal = false
	e.write()
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
// `sandy run` does.
func TestRunImageUsernet(t *testing.T) {
	testutil.SandyWithImages(t)
	testutil.SandyWithNet(t)
	if testutil.AsUser(t) {
		return
	}
	host := testutil.HostIPv4(t).String()
	port := serveLine(t, host+":0", "from-outside")
	e := newImgEnv(t)
	e.loadImage("localhost/bb:net", imagefix.Busybox(t))
	script := fmt.Sprintf(`ip -4 addr show tap0 | grep -o 'inet [0-9./]*'; nc -w 3 %s %d </dev/null || echo unreachable`, host, port)
	out := e.ok("run", "--rm", "--network=usernet", "localhost/bb:net", "sh", "-c", script)
	if !strings.Contains(out, "inet 10.0.2.100/24") || !strings.Contains(out, "from-outside") {
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
}
