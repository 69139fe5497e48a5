//go:build integration

package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/spare"
	"github.com/sandy-rt/sandy/internal/testutil"
)

var netSpareTook = regexp.MustCompile(`network: the spare sandy-net (\d+) took it`)

// TestNetworkUsernetSpare (as the test user): the sandy-net of a run
// that ended stays as the next run's spare (internal/spare, sandy-net's
// --spare): the next run's network is served by it, the same network (an
// outside server answers, the container's fds are its own); idle, it
// holds nothing of the runs it served; a detached container's network
// (published port included) is served by it too, after which it exits
// with the container, as delete expects; it exits after
// SANDY_HELPER_LINGER and at `system migrate`; with
// SANDY_HELPER_LINGER=0 no run uses or leaves one.
func TestNetworkUsernetSpare(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	xdg := filepath.Join(testutil.TempDir(t), "xdg")
	if err := os.Mkdir(xdg, 0o700); err != nil {
		t.Fatal(err)
	}
	t.Setenv("XDG_RUNTIME_DIR", xdg)
	t.Setenv(spare.EnvLinger, "10m")
	helpers := filepath.Join(xdg, "sandy", ".helpers")
	host := testutil.HostIPv4(t).String()
	out := serveLine(t, host+":0", "from-outside")
	e := newEnv(t).sh(fmt.Sprintf(`nc -w 3 %s %d </dev/null || echo unreachable; echo fds $(ls /proc/self/fd)`, host, out))

	// Each run's stderr stays in a file of its own: what a spare says
	// after the run (sandy-net's --debug lines, a panic) is there too.
	logs := testutil.TempDir(t)
	var nlogs int
	runLogged := func(args ...string) result {
		t.Helper()
		nlogs++
		f, err := os.Create(filepath.Join(logs, fmt.Sprintf("%02d.stderr", nlogs)))
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		// stdout a file too: run -d hands it to the container.
		o, err := os.Create(strings.TrimSuffix(f.Name(), ".stderr") + ".stdout")
		if err != nil {
			t.Fatal(err)
		}
		defer o.Close()
		c := exec.Command(e.sandy, append([]string{"--root", e.root}, args...)...)
		c.Stdout, c.Stderr = o, f
		err = c.Run()
		b, _ := os.ReadFile(f.Name())
		out, _ := os.ReadFile(o.Name())
		r := result{stdout: string(out), stderr: string(b), code: c.ProcessState.ExitCode()}
		if err != nil && r.code != 0 {
			t.Fatalf("sandy %v: %v\n%s", args, err, r.stderr)
		}
		return r
	}
	// state is what is known of sandy-net's processes and what the
	// runs' stderr got (a spare's lines after its run included).
	state := func() string {
		ps, _ := exec.Command("ps", "-u", strconv.Itoa(os.Getuid()), "-o", "pid,stat,wchan:20,args").CombinedOutput()
		var said strings.Builder
		names, _ := filepath.Glob(filepath.Join(logs, "*.stderr"))
		for _, n := range names {
			b, _ := os.ReadFile(n)
			fmt.Fprintf(&said, "== %s\n%s", filepath.Base(n), b)
		}
		return fmt.Sprintf("ps:\n%s\nthe runs' stderr:\n%s", ps, said.String())
	}
	// idle waits for spare pid to listen again, its last network closed
	// (it takes its place first, then closes the network, then puts
	// /dev/null on its stdio).
	idle := func(pid int) {
		t.Helper()
		quiet := func() bool {
			link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/2", pid))
			return link == "/dev/null" && idleNet(strconv.Itoa(pid))
		}
		for deadline := time.Now().Add(20 * time.Second); !quiet(); time.Sleep(20 * time.Millisecond) {
			if time.Now().After(deadline) {
				fds, _ := exec.Command("ls", "-l", fmt.Sprintf("/proc/%d/fd", pid)).CombinedOutput()
				t.Fatalf("spare %d not idle after 20 s; its fds:\n%s\n%s", pid, fds, state())
			}
		}
	}

	// run runs the bundle on the default network and returns the pid of
	// the spare that served it (0: a sandy-net of its own).
	run := func() int {
		t.Helper()
		r := runLogged("--debug", "run", e.bundle)
		if !strings.Contains(r.stdout, "from-outside") || !strings.Contains(r.stdout, "fds 0 1 2 3\n") {
			t.Fatalf("the container's network: %q\n%s", r.stdout, r.stderr)
		}
		if m := netSpareTook.FindStringSubmatch(r.stderr); m != nil {
			pid, _ := strconv.Atoi(m[1])
			return pid
		}
		if !strings.Contains(r.stderr, "network: no spare sandy-net: ") {
			t.Fatalf("neither a spare nor why not:\n%s", r.stderr)
		}
		return 0
	}
	sockets := func() []string {
		socks, _ := filepath.Glob(filepath.Join(helpers, "*.sock"))
		return socks
	}
	// listening waits for the spare to listen: it takes its place as its
	// run's sandy ends, a moment after this process sees the end (the
	// next run's dial, 3-5 ms after its start, can come first on a busy
	// machine: that run starts a sandy-net of its own, as any run that
	// finds no spare does).
	listening := func() {
		t.Helper()
		waitFor(t, 20*time.Second, "a spare to listen", func() bool { return len(sockets()) == 1 })
	}

	if pid := run(); pid != 0 {
		t.Fatalf("the first run was served by spare %d", pid)
	}
	listening()
	p := run()
	if p == 0 {
		t.Fatalf("the second run started a sandy-net of its own\n%s", state())
	}
	listening()
	if pid := run(); pid != p {
		t.Errorf("the third run: spare %d, want %d again", pid, p)
	}

	// Idle, it holds nothing of anybody's: stdio on /dev/null, no pipe,
	// no tap, no file but its lock and what Go's runtime reads its CPU
	// limit from; its cwd is /.
	idle(p)
	// The tap is a path too (/net/tun, from the container's /dev).
	if n := checkIdleSpare(t, p, helpers, "sandy-net"); n > 16 {
		t.Errorf("the idle spare holds %d fds after three runs", n)
	}

	// A detached container with a published port: the spare serves it,
	// then ends with its init (delete waits for the recorded sandy-net).
	port := freePort(t)
	d := newEnv(t).sh(`mkdir /www && echo spare-served > /www/index.html && exec httpd -f -p 80 -h /www`)
	d.root = e.root
	id := fmt.Sprintf("un-spare-%d", time.Now().UnixNano())
	r := runLogged("--debug", "run", "-d", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "--bundle", d.bundle, id)
	if m := netSpareTook.FindStringSubmatch(r.stderr); m == nil || m[1] != strconv.Itoa(p) {
		t.Errorf("run -d: not served by spare %d:\n%s", p, r.stderr)
	}
	if body := waitHTTP(t, port); strings.TrimSpace(body) != "spare-served" {
		t.Fatalf("GET through -p of run -d on the spare: %q", body)
	}
	d.want(0, "delete", "--force", id)
	waitGone(t, p)
	if socks := sockets(); len(socks) != 0 {
		t.Errorf("sockets left after the spare's detached container: %v", socks)
	}

	// system migrate ends the spares.
	run()
	listening()
	q := run()
	if q == 0 {
		t.Fatalf("no spare after two runs\n%s", state())
	}
	idle(q)
	e.want(0, "system", "migrate")
	waitGone(t, q)

	// The linger ends: the spare exits and removes its socket.
	t.Setenv(spare.EnvLinger, "1s")
	run()
	listening()
	q = run()
	if q == 0 {
		t.Fatalf("a run within 1 s of the last was not served by a spare\n%s", state())
	}
	waitGone(t, q)
	if socks := sockets(); len(socks) != 0 {
		t.Errorf("sockets left after the linger: %v", socks)
	}

	// SANDY_HELPER_LINGER=0: no spare at all.
	t.Setenv(spare.EnvLinger, "0")
	for range 2 {
		r := runLogged("--debug", "run", e.bundle)
		if strings.Contains(r.stderr, "spare") {
			t.Errorf("%s=0: %s", spare.EnvLinger, r.stderr)
		}
	}
	if socks := sockets(); len(socks) != 0 {
		t.Errorf("%s=0 left a spare: %v", spare.EnvLinger, socks)
	}
}
