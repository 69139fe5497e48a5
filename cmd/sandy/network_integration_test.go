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
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/slirp"
)

func freePort(t *testing.T) int { t.Helper(); return testutil.FreePort(t) }

// waitHTTP GETs http://127.0.0.1:PORT/ until it answers (20 s at most,
// then the test fails) and returns the body of the first answer.
func waitHTTP(t *testing.T, port int) string {
	t.Helper()
	var body string
	waitFor(t, 20*time.Second, fmt.Sprintf("127.0.0.1:%d to answer", port), func() bool {
		resp, err := (&http.Client{Timeout: time.Second}).Get(fmt.Sprintf("http://127.0.0.1:%d/", port))
		if err != nil {
			return false
		}
		b, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body = string(b)
		return true
	})
	return body
}

// noSlirpLeft checks that no network process of e's containers is left:
// each names a socket or file in the container's state directory, in its
// arguments or (slirp4netns) through its fd 5 (helpersOf).
func noSlirpLeft(t *testing.T, e *env) {
	t.Helper()
	waitFor(t, 10*time.Second, "slirp4netns and the forwarders to exit", func() bool { return len(helpersOf(e)) == 0 })
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
	cmd := exec.Command(e.sandy, "--root", e.root, "run", "--network=slirp4netns", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), e.bundle)
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
	if body := waitHTTP(t, port); strings.TrimSpace(body) != "hello-from-container" {
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
	r = e.run("", "run", "--network=slirp4netns", e.bundle)
	if strings.Contains(r.stdout, "from-host") || !strings.Contains(r.stdout, "unreachable") {
		t.Fatalf("without host loopback the host was reached: %q", r.stdout)
	}
	noSlirpLeft(t, e)
}

// TestNetworkFallback: the default network is sandy's own where
// sandy-net is beside sandy, with or without slirp4netns; slirp4netns
// where sandy-net is not; with neither, run falls back to loopback only
// with one warning line that names both, and -p is an error, not a
// silent loss.
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
	// sandy alone, without sandy-net beside it (for below).
	alone := filepath.Join(testutil.TempDir(t), "sandy")
	if out, err := exec.Command("cp", e.sandy, alone).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	slirp, slirpErr := exec.LookPath("slirp4netns") // before PATH is bin
	// sandy-net beside sandy, no slirp4netns in PATH: tap0, no warning.
	t.Setenv("PATH", bin)
	r := e.runBundle(0)
	if strings.Contains(otherWarnings(r.stderr), "warning:") || !strings.Contains(r.stdout, "tap0") {
		t.Fatalf("the default with sandy-net and without slirp4netns: stdout %q, stderr %q; want tap0 and no warning", r.stdout, r.stderr)
	}
	// sandy alone, slirp4netns in PATH: slirp4netns's tap0.
	e.sandy = alone
	if slirpErr == nil {
		if err := os.Symlink(slirp, filepath.Join(bin, "slirp4netns")); err != nil {
			t.Fatal(err)
		}
		r = e.run("", "--debug", "run", e.bundle)
		if r.code != 0 || strings.Contains(otherWarnings(r.stderr), "warning:") || !strings.Contains(r.stdout, "tap0") || !strings.Contains(r.stderr, "slirp4netns") {
			t.Fatalf("sandy without sandy-net: exit %d, stdout %q, stderr %q; want slirp4netns's tap0", r.code, r.stdout, r.stderr)
		}
		os.Remove(filepath.Join(bin, "slirp4netns"))
	} else {
		testutil.Skip(t, "slirp4netns not installed (hack/setup.sh installs it): %v", slirpErr)
	}
	// Neither: loopback only, one warning naming both.
	r = e.runBundle(0)
	if strings.Count(otherWarnings(r.stderr), "warning:") != 1 || !strings.Contains(r.stderr, "slirp4netns") || !strings.Contains(r.stderr, "sandy's own network cannot run") {
		t.Fatalf("want one warning naming slirp4netns and sandy's own network: %q", r.stderr)
	}
	if strings.Fields(r.stdout)[1] != "lo" || len(strings.Fields(r.stdout)) != 2 {
		t.Fatalf("interfaces: %q", r.stdout)
	}
	r = e.run("", "run", "-p", "127.0.0.1:18099:80", e.bundle)
	if r.code == 0 || !strings.Contains(r.stderr, "slirp4netns") || !strings.Contains(r.stderr, "-p needs a network") {
		t.Fatalf("-p without a network: %d %q", r.code, r.stderr)
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
	if r := e.run("", "run", "-d", "--network=slirp4netns", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "--bundle", e.bundle, id); r.code != 0 {
		t.Fatalf("run -d: %s", r.stderr)
	}
	if body := waitHTTP(t, port); strings.TrimSpace(body) != "detached" {
		t.Fatalf("body %q", body)
	}
	if r := e.run("", "delete", "--force", id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
	noSlirpLeft(t, e)
	if c, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
		c.Close()
		t.Fatal("the port still listens after delete")
	}
}

// helperPid finds the process of the network of the containers under
// root whose command line has role (slirp.PortChildCommand or
// slirp.MonitorCommand): every helper names a path in the state root.
func helperPid(root, role string) int {
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil {
			continue
		}
		cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		args := strings.Split(string(cmdline), "\x00")
		if len(args) > 1 && args[1] == role && strings.Contains(string(cmdline), root) {
			return pid
		}
	}
	return 0
}

// TestNetworkHelpersRunSealedBinary (CVE-2019-5736, issue 11): with a sandy
// binary the user owns (one built into $HOME), the network's helpers run
// the protected handle that the init runs (the binary through a read-only
// overlayfs mount made in a user namespace, or its sealed memfd copy where
// that fails), never the file on disk: the port
// child, which runs inside the container's user namespace, and the monitor,
// which outlives `run -d` next to the container. Neither /proc/PID/exe
// opens for writing, for the user who is the container's root on the host.
func TestNetworkHelpersRunSealedBinary(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "slirp4netns", "apt-get install slirp4netns")
	e := newEnv(t, "sleep", "100")
	own := ownSandy(t, e.sandy)
	for _, tc := range []struct {
		name    string
		detach  bool
		helpers []string
	}{
		{"foreground", false, []string{slirp.PortChildCommand}}, // the caller owns the network (InProcess)
		{"detached", true, []string{slirp.PortChildCommand, slirp.MonitorCommand}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			id := fmt.Sprintf("sealed-%d", time.Now().UnixNano())
			args := []string{"--root", e.root, "run", "--network=slirp4netns", "-p", fmt.Sprintf("127.0.0.1:%d:80", freePort(t)), "--bundle", e.bundle, id}
			if tc.detach {
				args = append(args[:3], append([]string{"-d"}, args[3:]...)...)
			}
			cmd := exec.Command(own, args...)
			// A file, not a pipe: the detached container keeps its stdio.
			out, err := os.CreateTemp(testutil.TempDir(t), "out-")
			if err != nil {
				t.Fatal(err)
			}
			defer out.Close()
			cmd.Stdout, cmd.Stderr = out, out
			if tc.detach {
				if err := cmd.Run(); err != nil {
					b, _ := os.ReadFile(out.Name())
					t.Fatalf("run -d: %v: %s", err, b)
				}
			} else if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			defer func() {
				_ = exec.Command(own, "--root", e.root, "delete", "--force", id).Run()
				if !tc.detach {
					_ = cmd.Process.Kill()
					_ = cmd.Wait()
				}
				noSlirpLeft(t, e)
			}()
			var pid int
			waitFor(t, 20*time.Second, "the container's init", func() bool {
				st := e.run("", "state", id)
				if !strings.Contains(st.stdout, `"status": "running"`) {
					return false
				}
				pid = statePid(t, e, id)
				return pid > 0
			})
			initUserns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", pid))
			for _, role := range tc.helpers {
				var hp int
				waitFor(t, 20*time.Second, role, func() bool { hp = helperPid(e.root, role); return hp > 0 })
				exe, target, err := writeOpenExe(hp)
				userns, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/user", hp))
				t.Logf("%s: pid %d, exe %s, %s (the init's: %s)", role, hp, target, userns, initUserns)
				if role == slirp.PortChildCommand && userns != initUserns {
					t.Errorf("port child in %s, want the container's user namespace %s", userns, initUserns)
				}
				if target == own {
					t.Errorf("%s of a user-owned sandy runs from %q, the file on disk", role, target)
				}
				if err == nil {
					t.Errorf("%s (%s) opened for writing", exe, target)
				}
				if !overlayOrMemfd(target, err) {
					t.Errorf("%s (%s): open for writing: %v, want EROFS (the overlay) or a sealed memfd", exe, target, err)
				}
			}
		})
	}
}

// TestNetworkSharedPidNamespace: a container in the host's pid namespace
// could see and ptrace the builtin driver's port child, which runs in its
// user namespace (slirp/doc.go, Security): -p then uses the slirp4netns
// port driver, which has no such process, and an explicit
// port_handler=builtin is refused with the fix.
func TestNetworkSharedPidNamespace(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "slirp4netns", "apt-get install slirp4netns")
	e := newEnv(t).sh(`mkdir /www && echo shared-pidns > /www/index.html && exec httpd -f -p 80 -h /www`)
	var kept []specs.LinuxNamespace
	for _, ns := range e.spec.Linux.Namespaces {
		if ns.Type != specs.PIDNamespace {
			kept = append(kept, ns)
		}
	}
	e.spec.Linux.Namespaces = kept
	// Without a pid namespace of its own, a user namespace may not mount
	// a new proc: the host's is bound instead, as runc's rootless tests do.
	for i, m := range e.spec.Mounts {
		if m.Type == "proc" {
			e.spec.Mounts[i] = specs.Mount{Destination: "/proc", Type: "bind", Source: "/proc", Options: []string{"rbind", "nosuid", "nodev", "noexec"}}
		}
	}
	e.write()
	port := freePort(t)
	publish := fmt.Sprintf("127.0.0.1:%d:80", port)
	r := e.run("", "run", "--network", "slirp4netns:port_handler=builtin", "-p", publish, e.bundle)
	if r.code == 0 || !strings.Contains(r.stderr, "port_handler=slirp4netns") || !strings.Contains(r.stderr, "pid namespace") {
		t.Fatalf("builtin driver without a pid namespace: exit %d, %q; want the refusal with the fix", r.code, r.stderr)
	}
	t.Logf("port_handler=builtin: %s", r.stderr)
	noSlirpLeft(t, e)
	id := fmt.Sprintf("pidns-%d", time.Now().UnixNano())
	if r := e.run("", "run", "-d", "--network=slirp4netns", "-p", publish, "--bundle", e.bundle, id); r.code != 0 {
		t.Fatalf("run -d -p without a pid namespace: %s", r.stderr)
	}
	defer func() {
		_ = e.run("", "delete", "--force", id)
		noSlirpLeft(t, e)
	}()
	if body := waitHTTP(t, port); strings.TrimSpace(body) != "shared-pidns" {
		t.Fatalf("body %q", body)
	}
	if hp := helperPid(e.root, slirp.PortChildCommand); hp != 0 {
		t.Errorf("a port child (pid %d) runs for a container in the host's pid namespace", hp)
	}
}

// TestNetworkLongStateDir: a state directory whose sockets' paths do not
// fit in a unix socket address (a 64-hex container id, as every image
// container has, under a long $XDG_RUNTIME_DIR or --root) still gets its
// network and its forwarded ports, with either port driver: the sockets
// are named through an fd of the directory. It failed with "state
// directory … too long for a unix socket path" before.
func TestNetworkLongStateDir(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "slirp4netns", "apt-get install slirp4netns")
	for _, handler := range []string{"builtin", "slirp4netns"} {
		t.Run(handler, func(t *testing.T) {
			e := newEnv(t).sh(`mkdir /www && echo long > /www/index.html && exec httpd -f -p 80 -h /www`)
			e.root = filepath.Join(e.root, strings.Repeat("r", 30))
			id := fmt.Sprintf("%064x", time.Now().UnixNano())
			if n := len(filepath.Join(e.root, id, "slirp-api.sock")); n <= 107 {
				t.Fatalf("the state directory is not long enough (%d bytes)", n)
			}
			port := freePort(t)
			if r := e.run("", "run", "-d", "--network", "slirp4netns:port_handler="+handler, "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "--bundle", e.bundle, id); r.code != 0 {
				t.Fatalf("run -d: %s", r.stderr)
			}
			defer e.run("", "delete", "--force", id)
			if body := waitHTTP(t, port); strings.TrimSpace(body) != "long" {
				t.Fatalf("body %q", body)
			}
			if r := e.run("", "delete", "--force", id); r.code != 0 {
				t.Fatalf("delete: %s", r.stderr)
			}
			noSlirpLeft(t, e)
		})
	}
}
