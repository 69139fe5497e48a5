//go:build integration

package main_test

import (
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/testutil"
)

func freePort(t *testing.T) int {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port
}

// noSlirpLeft checks that no network process of e's containers is left:
// each names a socket or file in the container's state directory.
func noSlirpLeft(t *testing.T, e *env) {
	t.Helper()
	waitFor(t, 10*time.Second, "slirp4netns and the forwarders to exit", func() bool {
		out, _ := exec.Command("pgrep", "-u", fmt.Sprint(os.Getuid()), "-f", e.root).Output()
		return strings.TrimSpace(string(out)) == ""
	})
}

// TestNetworkPublish: `sandy run -p 127.0.0.1:PORT:80` serves the
// container's httpd on the host's loopback; the network ends with the run.
func TestNetworkPublish(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "slirp4netns", "apt-get install slirp4netns")
	port := freePort(t)
	e := newEnv(t).sh(`mkdir /www && echo hello-from-container > /www/index.html && cat /etc/resolv.conf && exec httpd -f -p 80 -h /www`)
	cmd := exec.Command(e.sandy, "--root", e.root, "run", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), e.bundle)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Signal(os.Interrupt)
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		noSlirpLeft(t, e)
	}()
	var body string
	waitFor(t, 20*time.Second, "the forwarded port to answer", func() bool {
		resp, err := (&http.Client{Timeout: time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return true
	})
	if strings.TrimSpace(body) != "hello-from-container" {
		t.Fatalf("body %q; output %s", body, out.String())
	}
	if !strings.Contains(out.String(), "nameserver 10.0.2.3") {
		t.Fatalf("resolv.conf not written: %s", out.String())
	}
}

// TestNetworkHostLoopback: 10.0.2.2 reaches a server on the host's
// loopback only with allow_host_loopback=true.
func TestNetworkHostLoopback(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "slirp4netns", "apt-get install slirp4netns")
	l, err := net.Listen("tcp", "127.0.0.1:0")
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
			_, _ = c.Write([]byte("from-host\n"))
			c.Close()
		}
	}()
	port := l.Addr().(*net.TCPAddr).Port
	e := newEnv(t).sh(fmt.Sprintf(`nc -w 3 10.0.2.2 %d </dev/null || echo unreachable`, port))
	r := e.run("", "run", "--network", "slirp4netns:allow_host_loopback=true", e.bundle)
	if !strings.Contains(r.stdout, "from-host") {
		t.Fatalf("with host loopback: %q %q", r.stdout, r.stderr)
	}
	r = e.run("", "run", e.bundle)
	if strings.Contains(r.stdout, "from-host") || !strings.Contains(r.stdout, "unreachable") {
		t.Fatalf("without host loopback the host was reached: %q", r.stdout)
	}
	noSlirpLeft(t, e)
}

// TestNetworkFallback: without slirp4netns, run falls back to loopback only
// with one warning line; -p is then an error, not a silent loss.
func TestNetworkFallback(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh(`cat /sys/class/net/lo/flags; ls /sys/class/net`)
	bin := testutil.TempDir(t)
	for _, tool := range []string{"newuidmap", "newgidmap", "getsubids", "nsenter"} {
		if p, err := exec.LookPath(tool); err == nil {
			_ = os.Symlink(p, filepath.Join(bin, tool))
		}
	}
	t.Setenv("PATH", bin)
	r := e.runBundle(0)
	if strings.Count(r.stderr, "warning:") != 1 || !strings.Contains(r.stderr, "slirp4netns") {
		t.Fatalf("want one warning naming slirp4netns: %q", r.stderr)
	}
	if strings.Fields(r.stdout)[1] != "lo" || len(strings.Fields(r.stdout)) != 2 {
		t.Fatalf("interfaces: %q", r.stdout)
	}
	r = e.run("", "run", "-p", "127.0.0.1:18099:80", e.bundle)
	if r.code == 0 || !strings.Contains(r.stderr, "slirp4netns") {
		t.Fatalf("-p without slirp4netns: %d %q", r.code, r.stderr)
	}
}

// TestNetworkDetached: after `run --detach` exits, the monitor keeps the
// network and the forwarded port; `delete --force` ends them.
func TestNetworkDetached(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "slirp4netns", "apt-get install slirp4netns")
	port := freePort(t)
	e := newEnv(t).sh(`mkdir /www && echo detached > /www/index.html && exec httpd -f -p 80 -h /www`)
	id := fmt.Sprintf("net-%d", time.Now().UnixNano())
	if r := e.run("", "run", "-d", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "--bundle", e.bundle, id); r.code != 0 {
		t.Fatalf("run -d: %s", r.stderr)
	}
	waitFor(t, 20*time.Second, "the forwarded port", func() bool {
		resp, err := (&http.Client{Timeout: time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		return strings.TrimSpace(string(b)) == "detached"
	})
	if r := e.run("", "delete", "--force", id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
	noSlirpLeft(t, e)
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Fatal("the port still listens after delete")
	}
}
