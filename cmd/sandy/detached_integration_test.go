//go:build integration

package main_test

import (
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// detachedEnv is an image store and a private runtime directory (the
// runtime's state and the exit files), so that what a test leaves is its
// own to count.
func detachedEnv(t *testing.T) (*imgEnv, string) {
	e := newImgEnv(t)
	// Short: the network's sockets live under it (108 bytes at most).
	xdg, err := os.MkdirTemp("/tmp", "sx")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(xdg) })
	e.env = append(e.env, "XDG_RUNTIME_DIR="+xdg, "XDG_DATA_HOME="+filepath.Join(e.dir, "data"))
	e.loadImage("localhost/bb:d", imagefix.Busybox(t))
	return e, filepath.Join(xdg, "sandy")
}

// runtimeLeft lists the runtime's state directories left in root (the
// exit files, the image store's pause record and lock and the spare
// helpers' directory excepted).
func runtimeLeft(root string) []string {
	ents, _ := os.ReadDir(root)
	var left []string
	for _, e := range ents {
		if n := e.Name(); n != ".exits" && n != "pause.pid" && n != "pause.lock" && n != ".helpers" {
			left = append(left, e.Name())
		}
	}
	return left
}

// procsWith lists the pids of this test's processes (ownTree) whose
// command line contains s.
func procsWith(s string) []int {
	var pids []int
	for _, pid := range ownTree() {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if err == nil && strings.Contains(strings.ReplaceAll(string(b), "\x00", " "), s) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// ownProcesses makes this test's process a child subreaper
// (PR_SET_CHILD_SUBREAPER, prctl(2)), so that whatever its sandy commands
// start stays in its process tree when it detaches: a detached monitor,
// the store's pause process, a container whose monitor was killed are
// orphans, and an orphan goes to its nearest subreaper ancestor, not to
// the host's init. ownTree, and so procsWith and ownPauses, then see this
// test's processes only: another test run on the machine, or a helper's
// test, runs the same commands in a tree of its own. A process sandy
// leaks is in this tree whatever it detached from, so the checks still
// catch it. Orphans that exit stay zombies until the test ends (nothing
// here reaps them; os/exec waits for its own children by pid): ownTree
// leaves them out, and alive says they are gone.
func ownProcesses(t *testing.T) {
	t.Helper()
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatalf("prctl(PR_SET_CHILD_SUBREAPER): %v", err)
	}
}

// ownTree lists the live processes below this one: its children, theirs,
// and so on (zombies left out).
func ownTree() []int {
	children := map[int][]int{}
	ents, _ := os.ReadDir("/proc")
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue // gone
		}
		s := string(b)
		f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:]) // state, ppid, …
		if len(f) < 2 || f[0] == "Z" {
			continue
		}
		if ppid, err := strconv.Atoi(f[1]); err == nil {
			children[ppid] = append(children[ppid], pid)
		}
	}
	var out []int
	for todo := children[os.Getpid()]; len(todo) > 0; {
		pid := todo[0]
		todo = append(todo[1:], children[pid]...)
		out = append(out, pid)
	}
	return out
}

func (e *imgEnv) runD(args ...string) string {
	e.t.Helper()
	id := strings.TrimSpace(e.ok(append([]string{"run", "-d"}, args...)...))
	if len(id) != 64 {
		e.t.Fatalf("run -d printed %q, want a 64-hex id", id)
	}
	return id
}

// TestRunDetached is the detached lifecycle: run -d returns once the
// process runs and prints the id; the monitor logs the output (logs, -f,
// -t, --tail), records the status (wait, ls), stops (the stop signal,
// SIGKILL after the timeout), starts again on the same layer, and cleans
// up after --rm; a killed monitor is reported and rm -f removes
// everything.
func TestRunDetached(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	ownProcesses(t)
	e, root := detachedEnv(t)
	before := len(e.storageContainers())

	t.Run("logs and wait", func(t *testing.T) {
		id := e.runD("--name", "greeter", "localhost/bb:d", "sh", "-c", "echo out; echo err >&2; sleep 0.3; echo two; printf partial; exit 3")
		if out := e.ok("wait", "greeter"); out != "3\n" {
			t.Errorf("wait: %q, want 3", out)
		}
		out := e.ok("logs", id[:12])
		// stdout and stderr are two pipes: each in its order.
		for _, want := range []string{"out\n", "two\n", "err\n", "partial"} {
			if !strings.Contains(out, want) {
				t.Errorf("logs: %q lacks %q", out, want)
			}
		}
		if strings.Index(out, "out\n") > strings.Index(out, "two\n") {
			t.Errorf("logs: %q: stdout out of order", out)
		}
		if !strings.HasSuffix(out, "partial") {
			t.Errorf("logs: %q: the last line has no newline and gets none", out)
		}
		if out := e.ok("logs", "--tail", "1", "greeter"); out != "partial" {
			t.Errorf("logs --tail 1: %q", out)
		}
		ts := e.ok("logs", "-t", "--tail", "2", "greeter")
		if lines := strings.Split(ts, "\n"); len(lines) != 2 || !strings.HasSuffix(lines[0], " two") || !strings.HasPrefix(lines[0], time.Now().UTC().Format("2006-")) && !strings.HasPrefix(lines[0], time.Now().Format("2006-")) {
			t.Errorf("logs -t --tail 2: %q", ts)
		}
		if out := e.ok("logs", "--since", "1h", "greeter"); !strings.Contains(out, "out\n") {
			t.Errorf("logs --since 1h: %q", out)
		}
		if out := e.ok("logs", "--since", time.Now().Add(time.Hour).Format(time.RFC3339), "greeter"); out != "" {
			t.Errorf("logs --since an hour ahead: %q", out)
		}
		if out := e.ok("container", "ls", "-a"); !strings.Contains(out, "Exited (3)") {
			t.Errorf("ls -a:\n%s", out)
		}
		e.ok("container", "rm", "greeter")
	})
	t.Run("a command that cannot run", func(t *testing.T) {
		if msg := e.fails(127, "run", "-d", "--rm", "localhost/bb:d", "no-such-command"); !strings.Contains(msg, "no-such-command") {
			t.Errorf("127: %s", msg)
		}
		e.fails(126, "run", "-d", "localhost/bb:d", "/etc/passwd")
		if got := len(e.storageContainers()); got != before {
			t.Errorf("a run -d that failed left %d storage containers", got-before)
		}
		if left := runtimeLeft(root); len(left) > 0 {
			t.Errorf("a run -d that failed left runtime state: %v", left)
		}
	})
	t.Run("logs -f", func(t *testing.T) {
		e.runD("--name", "talker", "localhost/bb:d", "sh", "-c", "echo early; sleep 1; echo late; sleep 0.5; echo later")
		c := e.cmd("logs", "-f", "talker")
		var out syncBuffer
		c.Stdout = &out
		t0 := time.Now()
		if err := c.Run(); err != nil {
			t.Fatal(err)
		}
		if got := out.String(); got != "early\nlate\nlater\n" {
			t.Errorf("logs -f: %q", got)
		}
		if d := time.Since(t0); d > 10*time.Second {
			t.Errorf("logs -f returned %v after it started: it must end with the container", d)
		}
		e.ok("container", "rm", "talker")
	})
	t.Run("stop", func(t *testing.T) {
		// sleep as pid 1 has no handler: SIGTERM does nothing to it.
		e.runD("--name", "stubborn", "localhost/bb:d", "sleep", "1000")
		t0 := time.Now()
		e.ok("stop", "-t", "1", "stubborn")
		if d := time.Since(t0); d < time.Second || d > 8*time.Second {
			t.Errorf("stop -t 1 of a pid 1 that ignores SIGTERM took %v: want the timeout, then SIGKILL", d)
		}
		if out := e.ok("wait", "stubborn"); out != "137\n" {
			t.Errorf("wait after SIGKILL: %q", out)
		}
		// With --init, the init passes SIGTERM on to sleep, which dies.
		e.runD("--name", "polite", "--init", "localhost/bb:d", "sleep", "1000")
		t0 = time.Now()
		e.ok("stop", "-t", "10", "polite")
		if d := time.Since(t0); d > 5*time.Second {
			t.Errorf("stop of --init sleep took %v", d)
		}
		if out := e.ok("container", "ls", "-a"); !strings.Contains(out, "Exited (143)") || !strings.Contains(out, "Exited (137)") {
			t.Errorf("ls -a after stop:\n%s", out)
		}
		e.ok("container", "rm", "stubborn", "polite")
	})
	t.Run("kill, wait and restart", func(t *testing.T) {
		e.runD("--name", "k", "localhost/bb:d", "sh", "-c", "trap 'exit 3' USR1; echo run; sleep 1000 & wait")
		time.Sleep(200 * time.Millisecond) // the trap is set once sh runs
		e.ok("container", "kill", "-s", "USR1", "k")
		if out := e.ok("wait", "k"); out != "3\n" {
			t.Errorf("wait after kill -s USR1: %q", out)
		}
		e.ok("restart", "-t", "1", "k")
		if out := e.ok("container", "ls"); !strings.Contains(out, " k\n") || !strings.Contains(out, "Up") {
			t.Errorf("ls after restart:\n%s", out)
		}
		// The restarted process runs; its echo may take a moment more.
		out := e.ok("logs", "k")
		for end := time.Now().Add(5 * time.Second); out != "run\nrun\n" && time.Now().Before(end); out = e.ok("logs", "k") {
			time.Sleep(50 * time.Millisecond)
		}
		if out != "run\nrun\n" {
			t.Errorf("logs of two runs: %q", out)
		}
		e.ok("container", "rm", "-f", "k")
	})
	t.Run("httpd, stop, start", func(t *testing.T) {
		port := freePort(t)
		e.runD("--name", "web", "--init", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), "localhost/bb:d", "sh", "-c",
			"mkdir -p /www && echo served > /www/index.html && exec httpd -f -p 8080 -h /www")
		if got := waitHTTP(t, port); got != "served\n" {
			t.Fatalf("GET through -p of a detached httpd: %q", got)
		}
		e.ok("stop", "web")
		if _, err := net.DialTimeout("tcp", fmt.Sprintf("127.0.0.1:%d", port), time.Second); err == nil {
			t.Errorf("the port is still open after stop")
		}
		e.ok("container", "start", "web")
		if got := waitHTTP(t, port); got != "served\n" {
			t.Errorf("GET after start: %q", got)
		}
		e.ok("container", "rm", "-f", "web")
	})
	t.Run("--rm leaves nothing after stop", func(t *testing.T) {
		id := e.runD("--rm", "--init", "-v", "/data", "localhost/bb:d", "sleep", "1000")
		e.ok("stop", id)
		if got := len(e.storageContainers()); got != before {
			t.Errorf("run -d --rm, stopped, left %d storage containers", got-before)
		}
		if out := e.ok("volume", "ls", "-q"); strings.TrimSpace(out) != "" {
			t.Errorf("run -d --rm left volumes: %q", out)
		}
		if out := e.ok("wait", id); out != "143\n" {
			t.Errorf("wait of a removed --rm container: %q (from the exit file)", out)
		}
	})
	for _, rm := range []bool{false, true} {
		t.Run(fmt.Sprintf("kill -9 of the monitor, --rm=%v", rm), func(t *testing.T) {
			// The container dies with its monitor, as with a foreground
			// sandy run: ls says so, start runs it again, rm -f leaves
			// nothing (under --rm too: the monitor died before it could
			// remove it).
			id := e.runD("--name", "orphan", fmt.Sprintf("--rm=%v", rm), "-p", fmt.Sprintf("127.0.0.1:%d:80", freePort(t)), "localhost/bb:d", "sleep", "987654")
			killMonitor := func() {
				t.Helper()
				var mon int
				for _, p := range procsWith("_monitor") {
					if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p)); strings.Contains(string(b), id) {
						mon = p
					}
				}
				if mon == 0 {
					t.Fatalf("no monitor process for %s", id)
				}
				if err := syscall.Kill(mon, syscall.SIGKILL); err != nil {
					t.Fatal(err)
				}
				// Its process, and its init, which may outlive it by a
				// moment on a loaded machine: ls asks the runtime.
				waitFor(t, 10*time.Second, "the container to die with its monitor, and ls -a to say so", func() bool {
					return len(procsWith("sleep 987654")) == 0 && strings.Contains(e.ok("container", "ls", "-a"), "monitor was killed")
				})
			}
			killMonitor()
			if msg := e.fails(125, "wait", "orphan"); !strings.Contains(msg, "monitor was killed") {
				t.Errorf("wait: %s", msg)
			}
			if !rm {
				e.ok("container", "start", "orphan")
				if out := e.ok("container", "ls"); !strings.Contains(out, "orphan") {
					t.Errorf("ls after start of a container whose monitor was killed:\n%s", out)
				}
				killMonitor()
			}
			e.ok("container", "rm", "-f", "orphan")
			if got := len(e.storageContainers()); got != before {
				t.Errorf("rm -f left %d storage containers", got-before)
			}
			if left := runtimeLeft(root); len(left) > 0 {
				t.Errorf("rm -f left runtime state: %v", left)
			}
			if p := procsWith(id); len(p) > 0 {
				t.Errorf("processes of the container left: %v", p)
			}
			if b, _ := os.ReadFile("/proc/self/mountinfo"); strings.Contains(string(b), id) {
				t.Errorf("mounts of the container left:\n%s", b)
			}
		})
	}
	t.Run("--log-opt max-size", func(t *testing.T) {
		// A line is an entry of about 50 bytes: 400 bytes hold 8.
		e.runD("--name", "chatty", "--log-opt", "max-size=400", "localhost/bb:d", "sh", "-c",
			"sleep 0.5; i=0; while [ $i -lt 60 ]; do i=$((i+1)); echo line $i; sleep 0.02; done")
		c := e.cmd("logs", "-f", "chatty")
		var followed syncBuffer
		c.Stdout = &followed
		if err := c.Run(); err != nil {
			t.Fatal(err)
		}
		var want strings.Builder
		for i := 1; i <= 60; i++ {
			fmt.Fprintf(&want, "line %d\n", i)
		}
		if followed.String() != want.String() {
			t.Errorf("logs -f across rotations: %q", followed.String())
		}
		out := e.ok("logs", "chatty")
		if !strings.HasSuffix(want.String(), out) || len(out) == 0 || len(out) == len(want.String()) {
			t.Errorf("logs of a rotated log: %q, want the last lines only", out)
		}
		if n := strings.Count(out, "\n"); n < 8 || n > 16 {
			t.Errorf("logs of a rotated log kept %d lines, want 8 to 16 (one to two 400-byte files)", n)
		}
		if msg := e.fails(125, "run", "-d", "--log-opt", "max-file=3", "localhost/bb:d", "true"); !strings.Contains(msg, "max-size=SIZE only") {
			t.Errorf("--log-opt max-file: %s", msg)
		}
		e.ok("container", "rm", "chatty")
	})
	for _, delay := range []time.Duration{0, 40 * time.Millisecond, 120 * time.Millisecond} {
		t.Run(fmt.Sprintf("kill -9 of the monitor %v into the set-up", delay), func(t *testing.T) {
			// The monitor is killed delay after it shows: run -d says so,
			// exit 125, and nothing is left (when the kill comes after the
			// process ran, the container is there and rm -f removes it).
			seen := map[int]bool{}
			for _, p := range procsWith("_monitor") {
				seen[p] = true
			}
			stop := make(chan struct{})
			killed := make(chan bool, 1)
			go func() {
				for {
					select {
					case <-stop:
						killed <- false
						return
					default:
					}
					for _, p := range procsWith("_monitor") {
						if !seen[p] {
							time.Sleep(delay)
							_ = syscall.Kill(p, syscall.SIGKILL)
							killed <- true
							return
						}
					}
					time.Sleep(time.Millisecond)
				}
			}()
			r := e.run_(nil, "run", "-d", "-p", fmt.Sprintf("127.0.0.1:%d:80", freePort(t)), "localhost/bb:d", "sleep", "654321")
			close(stop)
			if !<-killed {
				t.Fatalf("the monitor was not seen: run -d exit %d", r.code)
			}
			switch {
			case r.code == 125 && strings.Contains(r.stderr, "monitor exited before the container ran"):
			case r.code == 0:
				t.Logf("the kill came after the process ran")
				e.ok("container", "rm", "-f", strings.TrimSpace(r.stdout))
			default:
				t.Errorf("run -d whose monitor was killed: exit %d: %s", r.code, r.stderr)
			}
			waitFor(t, 10*time.Second, "the container's processes to end", func() bool { return len(procsWith("sleep 654321")) == 0 })
			if got := len(e.storageContainers()); got != before {
				t.Errorf("%d storage containers left", got-before)
			}
			if left := runtimeLeft(root); len(left) > 0 {
				t.Errorf("runtime state left: %v", left)
			}
		})
	}
	t.Run("start -a of a container run in the foreground", func(t *testing.T) {
		e.fails(2, "run", "--name", "fg", "localhost/bb:d", "sh", "-c", "echo hello; exit 2")
		r := e.run_(nil, "container", "start", "-a", "fg")
		if r.code != 2 || r.stdout != "hello\n" {
			t.Errorf("container start -a: exit %d, %q (%s)", r.code, r.stdout, r.stderr)
		}
		e.ok("container", "rm", "fg")
		// A start whose command is gone fails as run does, and the
		// container is exited with that status.
		e.ok("run", "--name", "nosh", "localhost/bb:d", "sh", "-c", "rm /bin/sh")
		if msg := e.fails(127, "container", "start", "nosh"); !strings.Contains(msg, "sh") {
			t.Errorf("start of a container whose command is gone: %s", msg)
		}
		if out := e.ok("container", "ls", "-a"); !strings.Contains(out, "Exited (127)") {
			t.Errorf("ls -a after a failed start:\n%s", out)
		}
		e.ok("container", "rm", "nosh")
	})
	t.Run("--log-driver none and -t", func(t *testing.T) {
		e.runD("--name", "quiet", "--log-driver", "none", "localhost/bb:d", "echo", "lost")
		e.ok("wait", "quiet")
		if msg := e.fails(125, "logs", "quiet"); !strings.Contains(msg, "--log-driver none") {
			t.Errorf("logs of --log-driver none: %s", msg)
		}
		e.fails(125, "run", "-d", "--log-driver", "journald", "localhost/bb:d", "true")
		// Under -t the output is the pty's: one stream, \r\n lines.
		e.runD("--name", "tty", "-t", "localhost/bb:d", "sh", "-c", "tty; echo done")
		e.ok("wait", "tty")
		if out := e.ok("logs", "tty"); !strings.Contains(out, "/dev/pts/0") || !strings.Contains(out, "done") {
			t.Errorf("logs of run -d -t: %q", out)
		}
		e.ok("container", "rm", "quiet", "tty")
	})
	t.Run("two run -d --name x", func(t *testing.T) {
		var wg sync.WaitGroup
		res := make([]result, 2)
		for i := range res {
			wg.Add(1)
			go func() {
				defer wg.Done()
				res[i] = e.run_(nil, "run", "-d", "--name", "twin", "localhost/bb:d", "sleep", "1000")
			}()
		}
		wg.Wait()
		won, lost := 0, 0
		for _, r := range res {
			switch {
			case r.code == 0:
				won++
			case strings.Contains(r.stderr, "twin"):
				lost++
			default:
				t.Errorf("the loser's error does not name the name: exit %d, %s", r.code, r.stderr)
			}
		}
		if won != 1 || lost != 1 {
			t.Errorf("two run -d --name twin: %d won, %d lost: %+v", won, lost, res)
		}
		e.ok("container", "rm", "-f", "twin")
	})
	t.Run("parallel", func(t *testing.T) {
		// Started in parallel, removed in parallel: nothing left.
		const n = 20
		ids := make([]string, n)
		var wg sync.WaitGroup
		for i := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				r := e.run_(nil, "run", "-d", "-p", fmt.Sprintf("127.0.0.1:%d:80", freePort(t)), "localhost/bb:d", "sleep", "876543")
				if r.code != 0 {
					t.Errorf("run -d: exit %d: %s", r.code, r.stderr)
				}
				ids[i] = strings.TrimSpace(r.stdout)
			}()
		}
		wg.Wait()
		if got := len(procsWith("sleep 876543")); got != n {
			t.Errorf("%d of %d containers run", got, n)
		}
		for _, id := range ids {
			wg.Add(1)
			go func() {
				defer wg.Done()
				if id == "" {
					return
				}
				if r := e.run_(nil, "container", "rm", "-f", id); r.code != 0 {
					t.Errorf("rm -f: exit %d: %s", r.code, r.stderr)
				}
			}()
		}
		wg.Wait()
		if p := procsWith("sleep 876543"); len(p) > 0 {
			t.Errorf("processes left: %v", p)
		}
		// No mount of the store is left in the host's view (a kernel
		// overlay lives and dies in the container's mount namespace; a
		// fuse-overlayfs or a bind would show here).
		if mi, err := os.ReadFile("/proc/self/mountinfo"); err != nil {
			t.Error(err)
		} else if strings.Contains(string(mi), e.dir) {
			t.Errorf("mounts of the store left:\n%s", mi)
		}
		if p := procsWith("_monitor"); len(p) > 0 {
			for _, id := range ids {
				for _, q := range p {
					if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", q)); id != "" && strings.Contains(string(b), id) {
						t.Errorf("monitor of %s left: pid %d", id, q)
					}
				}
			}
		}
	})
	if got := len(e.storageContainers()); got != before {
		t.Errorf("%d storage containers left", got-before)
	}
	// list waits (up to 5 s) for the reapers still removing what the
	// removed containers' runs left (.gone-ID-… directories).
	e.ok("list")
	if left := runtimeLeft(root); len(left) > 0 {
		t.Errorf("runtime state left: %v", left)
	}
	// The exit files of the containers rm removed are gone; that of the
	// --rm container that ended stays (wait reads it).
	if ents, _ := os.ReadDir(filepath.Join(root, ".exits")); len(ents) != 1 {
		var names []string
		for _, e := range ents {
			names = append(names, e.Name())
		}
		t.Errorf("exit files: %v, want the --rm container's only", names)
	}
	t.Run("after a reboot", func(t *testing.T) {
		// A reboot: the processes and the runtime directory are gone,
		// the store and the records are not. The container is exited,
		// start and rm work.
		id := e.runD("--name", "boot", "localhost/bb:d", "sleep", "765432")
		for _, p := range procsWith("_monitor") {
			if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p)); strings.Contains(string(b), id) {
				_ = syscall.Kill(p, syscall.SIGKILL)
			}
		}
		waitFor(t, 10*time.Second, "the container to die with its monitor", func() bool {
			return len(procsWith("sleep 765432")) == 0 && strings.Contains(e.ok("container", "ls", "-a"), "monitor was killed")
		})
		if err := os.RemoveAll(root); err != nil {
			t.Fatal(err)
		}
		if out := e.ok("container", "ls", "-a"); !strings.Contains(out, "boot") || !strings.Contains(out, "Exited") {
			t.Errorf("ls -a after a reboot:\n%s", out)
		}
		e.ok("container", "start", "boot")
		if out := e.ok("container", "ls"); !strings.Contains(out, "boot") {
			t.Errorf("ls after start:\n%s", out)
		}
		e.ok("container", "rm", "-f", "boot")
		if got := len(e.storageContainers()); got != before {
			t.Errorf("%d storage containers left", got-before)
		}
		if left := runtimeLeft(root); len(left) > 0 {
			t.Errorf("runtime state left: %v", left)
		}
	})
}
