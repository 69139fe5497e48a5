//go:build integration

package main_test

import (
	"bufio"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// TestRunImageOverlap: `sandy run IMAGE` starts the container's init
// while the image helper makes the storage container (issue 13), and
// every way the run can fail once the init runs undoes all of it: the
// init, the runtime state and the storage container, with the error
// said once and the status podman gives (125 for sandy's own errors).
func TestRunImageOverlap(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	ownProcesses(t) // run -d's pending monitors detach: procsWith finds them in this tree
	e := newImgEnv(t)
	// Its state root holds this test's containers only.
	xdg := e.privateRuntime()
	e.loadImage("localhost/bb:overlap", imagefix.Busybox(t))
	nocmd := imagefix.Busybox(t)
	nocmd.Config.Cmd = nil
	e.loadImage("localhost/bb:nocmd", nocmd)
	before := len(e.storageContainers())
	nothingLeft := func(t *testing.T) {
		t.Helper()
		if got := len(e.storageContainers()); got != before {
			t.Errorf("%d storage containers left", got-before)
		}
		if out := strings.TrimSpace(e.ok("list", "-q")); out != "" {
			t.Errorf("runtime state left: %q", out)
		}
		ents, _ := os.ReadDir(filepath.Join(xdg, "sandy"))
		for _, ent := range ents {
			if regexp.MustCompile(`[0-9a-f]{64}`).MatchString(ent.Name()) {
				t.Errorf("state directory left: %s", ent.Name())
			}
		}
		if p := procsWith("_monitor --pending"); len(p) > 0 {
			t.Errorf("pending monitors left: %v", p)
		}
	}

	t.Run("debug shows the overlap", func(t *testing.T) {
		r := e.run_(nil, "--debug", "run", "--rm", "--network=none", "localhost/bb:overlap", "echo", "ran")
		if r.code != 0 || r.stdout != "ran\n" {
			t.Fatalf("exit %d, stdout %q\n%s", r.code, r.stdout, r.stderr)
		}
		m := regexp.MustCompile(`creation starts while the image helper makes the storage container ([0-9a-f]{64})\n`).FindStringSubmatch(r.stderr)
		if m == nil {
			t.Fatalf("no overlap line in:\n%s", r.stderr)
		}
		if !strings.Contains(r.stderr, "creating storage container "+m[1]+" ") {
			t.Errorf("the helper made another container than %s:\n%s", m[1], r.stderr)
		}
		// create's own order: the init starts before the bundle is waited for.
		initAt, bundleAt := strings.Index(r.stderr, "debug: starting the init: "), strings.Index(r.stderr, "debug: waiting for the bundle: ")
		if initAt < 0 || bundleAt < initAt {
			t.Errorf("want `starting the init` before `waiting for the bundle`:\n%s", r.stderr)
		}
		nothingLeft(t)
	})
	t.Run("run -d: the monitor's init starts while the helper works", func(t *testing.T) {
		r := e.run_(nil, "--debug", "run", "-d", "--rm", "--network=none", "localhost/bb:overlap", "sleep", "100")
		if r.code != 0 {
			t.Fatalf("exit %d\n%s", r.code, r.stderr)
		}
		id := strings.TrimSpace(r.stdout)
		m := regexp.MustCompile(`the container's monitor starts while the image helper makes the storage container ([0-9a-f]{64})\n`).FindStringSubmatch(r.stderr)
		if m == nil || m[1] != id {
			t.Fatalf("no monitor overlap line for %s in:\n%s", id, r.stderr)
		}
		// The monitor's set-up lines come once its process runs: its init
		// started before it waited for the bundle, which came after the
		// helper made the storage container.
		made := strings.Index(r.stderr, "creating storage container "+id+" ")
		initAt, bundleAt := strings.Index(r.stderr, "debug: starting the init: "), strings.Index(r.stderr, "debug: waiting for the bundle: ")
		if made < 0 || initAt < 0 || bundleAt < initAt {
			t.Errorf("want the storage container made, and the monitor's `starting the init` before its `waiting for the bundle`:\n%s", r.stderr)
		}
		if out := e.ok("container", "exec", id, "echo", "in"); out != "in\n" {
			t.Errorf("exec: %q", out)
		}
		e.ok("container", "rm", "-f", id)
		nothingLeft(t)
	})
	t.Run("terminal", func(t *testing.T) {
		// process.terminal is in the start spec: the pty the init makes
		// once configured is relayed.
		if out := e.ok("run", "--rm", "-t", "--network=none", "localhost/bb:overlap", "sh", "-c", "tty; echo ok"); !strings.Contains(out, "/dev/pts/") || !strings.Contains(out, "ok") {
			t.Errorf("-t: %q", out)
		}
		nothingLeft(t)
	})
	t.Run("detached and kept", func(t *testing.T) {
		id := strings.TrimSpace(e.ok("run", "-d", "--network=none", "localhost/bb:overlap", "sleep", "100"))
		if out := e.ok("container", "exec", id, "echo", "in"); out != "in\n" {
			t.Errorf("exec: %q", out)
		}
		e.ok("container", "rm", "-f", id)
		e.ok("run", "--name", "kept", "--network=none", "localhost/bb:overlap", "true")
		if out := e.ok("container", "ls", "-a", "--format", "{{.Names}}"); !strings.Contains(out, "kept") {
			t.Errorf("kept container not listed: %q", out)
		}
		e.ok("container", "rm", "kept")
		nothingLeft(t)
	})
	for _, tc := range []struct {
		name string
		code int
		args []string
		want string
	}{
		// The helper's answer comes after the init started: each of
		// these fails then.
		{"a user the image does not have", 125, []string{"-u", "nosuch", "localhost/bb:overlap", "true"}, `user "nosuch"`},
		{"no command", 125, []string{"localhost/bb:nocmd"}, "no command or entrypoint provided"},
		{"an image that cannot be made", 125, []string{"--pull=never", "localhost/no-such-image", "true"}, "no-such-image"},
		{"a seccomp profile that is not there", 125, []string{"--security-opt", "seccomp=" + filepath.Join(os.TempDir(), "no-such-profile.json"), "localhost/bb:overlap", "true"}, "no-such-profile.json: no such file"},
		{"an unknown command", 127, []string{"localhost/bb:overlap", "no-such-command"}, "no-such-command"},
		// Before anything starts: the flags alone.
		{"a bad limit", 125, []string{"--memory", "1x", "localhost/bb:overlap", "true"}, `--memory "1x"`},
	} {
		for _, mode := range []string{"", "--rm", "-d", "-d --rm"} {
			name := tc.name
			if mode != "" {
				name += "/" + mode
			}
			// Under -d the monitor's init starts while the helper works,
			// and every failure undoes the monitor's work too.
			args := append(append([]string{"run"}, strings.Fields(mode)...), "--network=none")
			args = append(args, tc.args...)
			t.Run(name, func(t *testing.T) {
				msg := e.fails(tc.code, args...)
				if !strings.Contains(msg, tc.want) {
					t.Errorf("stderr lacks %q:\n%s", tc.want, msg)
				}
				if n := strings.Count(msg, tc.want); n != 1 {
					t.Errorf("the error is said %d times:\n%s", n, msg)
				}
				nothingLeft(t)
			})
		}
	}
	// The Go init's start overlaps the helper's work (SANDY_RAW_INIT=0);
	// the raw init's starts once the bundle is in.
	for _, at := range []string{"image helper: opening the image store", "starting the init: ", "waiting for the init's hello: ", "raw: starting the init on the bundle: "} {
		for _, rm := range []bool{true, false} {
			raw := strings.HasPrefix(at, "raw: ")
			at := strings.TrimPrefix(at, "raw: ")
			t.Run("SIGINT at "+strings.TrimSuffix(at, ": ")+map[bool]string{true: "/--rm"}[rm], func(t *testing.T) {
				// Ctrl-C while the helper and the init's start overlap:
				// the set-up stops and is undone, the helper's work too.
				args := []string{"--debug", "run", "--network=none", "localhost/bb:overlap", "true"}
				if rm {
					args = append(args[:2], append([]string{"--rm"}, args[2:]...)...)
				}
				c := e.cmd(args...)
				if !raw {
					c.Env = append(c.Env, "SANDY_RAW_INIT=0")
				}
				// sandy catches its signals in the background
				// (lifecycle.relaySignals: a synchronous
				// signal.Notify costs a run 5 %); before that, a
				// SIGINT ends it at once, as kill -9 does (the tests
				// below). This one is about the undo: the signal goes
				// once the line has come and sandy catches it. (A Go
				// program's SigCgt has SIGINT from its start, handled
				// by the runtime as a kill until signal.Notify: it
				// cannot tell.)
				said, sent := atLines(t, c, []string{at, "catching signals"}, func() {
					_ = c.Process.Signal(syscall.SIGINT)
				})
				waitOrKill(t, c, func() string { return "sandy run did not end after SIGINT:\n" + said.String() })
				switch code := c.ProcessState.ExitCode(); {
				case !sent:
					t.Fatalf("no %q line:\n%s", at, said.String())
				case code == 130 && strings.Contains(said.String(), "interrupted by SIGINT during set-up"):
				case code == 0:
					t.Logf("the set-up ended before the signal: the container ran")
				default:
					t.Fatalf("exit %d:\n%s", code, said.String())
				}
				if !rm && c.ProcessState.ExitCode() == 0 {
					e.ok("container", "prune", "-f")
				}
				nothingLeft(t)
			})
		}
	}
	t.Run("kill -9 of run -d while the helper works", func(t *testing.T) {
		// The pending monitor's orders end without the container's
		// directory: it undoes its init and runtime state and exits; the
		// helper removes the --rm container no one reads the answer of.
		c := e.cmd("--debug", "run", "-d", "--rm", "--network=none", "localhost/bb:overlap", "sleep", "765432")
		said, killed := atLine(t, c, "image helper: opening the image store", func() { _ = c.Process.Kill() })
		_ = c.Wait()
		if !killed {
			t.Fatalf("no helper line:\n%s", said.String())
		}
		waitFor(t, 20*time.Second, "the pending monitor and its init to end", func() bool {
			return len(procsWith("_monitor --pending")) == 0 && len(procsWith("sleep 765432")) == 0
		})
		waitFor(t, 20*time.Second, "the storage container's removal", func() bool { return len(e.storageContainers()) == before })
		if out := strings.TrimSpace(e.ok("list", "-q")); out != "" {
			t.Errorf("the pending monitor left runtime state: %q", out)
		}
		e.ok("run", "--rm", "--network=none", "localhost/bb:overlap", "true")
		nothingLeft(t)
	})
	// "the init is forked": the raw init, forked once the bundle is in,
	// dies with sandy too (its parent-death signal), its mounts with its
	// mount namespace.
	for _, at := range []string{"image helper: opening the image store", "starting the init: ", "the init is forked: "} {
		t.Run("kill -9 at "+strings.TrimSuffix(at, ": "), func(t *testing.T) {
			// sandy killed while the helper works: the init dies with
			// sandy (its parent-death signal), the helper, whose answer
			// no one reads, removes the --rm container (it must not die
			// of SIGPIPE on that answer), and the next run collects the
			// runtime state.
			c := e.cmd("--debug", "run", "--rm", "--network=none", "localhost/bb:overlap", "true")
			if at == "starting the init: " {
				c.Env = append(c.Env, "SANDY_RAW_INIT=0") // the Go init's start, beside the helper
			}
			said, killed := atLine(t, c, at, func() { _ = c.Process.Kill() })
			_ = c.Wait()
			if !killed {
				t.Fatalf("no %q line:\n%s", at, said.String())
			}
			if got := e.storageContainersBack(before); got != before {
				t.Errorf("kill -9 of sandy run --rm while the helper worked left %d storage containers:\n%s", got-before, said.String())
			}
			e.ok("run", "--rm", "--network=none", "localhost/bb:overlap", "true")
			nothingLeft(t)
		})
	}
	// A seccomp profile that is a FIFO no one writes: sandy, once the
	// helper has answered, waits in its open, before it writes the
	// record. Both cases use it: a kill meant for the helper's work that
	// lands late (a loaded machine: the test reads the line after the
	// answer came) still finds sandy before its record.
	stall := filepath.Join(e.dir, "stall.json")
	if err := syscall.Mkfifo(stall, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, at := range []string{"image helper: opening the image store", "creating storage container "} {
		t.Run("kill -9 without --rm at "+strings.TrimSpace(at), func(t *testing.T) {
			// sandy killed before it wrote the container's record (while
			// the helper works, or once it answered): the helper, which
			// outlives sandy, removes the storage container it made,
			// which nothing refers to (a record written at the last
			// moment keeps it: "held, its record written" in
			// TestExternalContainers; "while it runs" below).
			c := e.cmd("--debug", "run", "--network=none", "--security-opt", "seccomp="+stall, "localhost/bb:overlap", "true")
			said, killed := atLine(t, c, at, func() { _ = c.Process.Kill() })
			_ = c.Wait()
			if !killed {
				t.Fatalf("no %q line:\n%s", at, said.String())
			}
			if strings.Contains(said.String(), "writing the bundle and the record") {
				t.Fatalf("sandy wrote the record before the kill:\n%s", said.String())
			}
			if !strings.Contains(said.String(), "image helper: removing the storage container: ") {
				t.Errorf("the helper did not remove the container:\n%s", said.String())
			}
			if got := len(e.storageContainers()); got != before {
				t.Errorf("kill -9 of sandy run before its record left %d storage containers:\n%s", got-before, said.String())
			}
			// The next run collects the runtime state the killed one left.
			e.ok("run", "--rm", "--network=none", "localhost/bb:overlap", "true")
			nothingLeft(t)
		})
	}
	t.Run("kill -9 of run -d --rm as the monitor gets the container", func(t *testing.T) {
		// sandy lets its helper go before the monitor has the directory:
		// a killed sandy's helper, which removes a --rm container, never
		// removes one a monitor runs.
		c := e.cmd("--debug", "run", "-d", "--rm", "--network=none", "localhost/bb:overlap", "sleep", "876543")
		said, killed := atLine(t, c, "the monitor has the container's directory", func() { _ = c.Process.Kill() })
		_ = c.Wait()
		if !killed {
			t.Fatalf("no monitor line:\n%s", said.String())
		}
		id := regexp.MustCompile(`storage container ([0-9a-f]{64})`).FindStringSubmatch(said.String())
		if id == nil {
			t.Fatalf("no storage container in:\n%s", said.String())
		}
		waitFor(t, 20*time.Second, "the container to run", func() bool { return len(procsWith("sleep 876543")) > 0 })
		if !slices.Contains(e.storageContainers(), id[1]) {
			t.Errorf("the container runs, and the killed sandy's helper removed its storage container:\n%s", said.String())
		}
		if out := e.ok("container", "exec", id[1], "echo", "in"); out != "in\n" {
			t.Errorf("exec: %q", out)
		}
		e.ok("run", "--rm", "--network=none", "localhost/bb:overlap", "true")
		if slices.Contains(e.storageContainers(), id[1]) {
			e.ok("container", "rm", "-f", id[1])
		}
		nothingLeft(t)
	})
	t.Run("kill -9 without --rm while it runs", func(t *testing.T) {
		// The record is written before the container's process runs: a
		// kill then keeps the container, the helper let go by sandy's end.
		c := e.cmd("run", "--name", "killed-kept", "--network=none", "localhost/bb:overlap", "sh", "-c", "echo up; sleep 100")
		startUntilUp(t, c)
		_ = c.Process.Kill()
		_ = c.Wait()
		waitFor(t, 20*time.Second, "the image helper to let go", func() bool { return len(helpersInSession()) == 0 })
		if out := e.ok("ps", "-a", "--format", "{{.Names}}"); !strings.Contains(out, "killed-kept") {
			t.Errorf("the killed run's container is gone: ps -a %q", out)
		}
		e.ok("rm", "-f", "killed-kept")
		nothingLeft(t)
	})
}

// helpersInSession lists this test's _create-container helpers that are
// in a run's session: all but the idle spares (internal/spare),
// whose stdin is /dev/null.
func helpersInSession() []int {
	var busy []int
	for _, pid := range procsWith(imagehelper.CreateRole) {
		if in, err := os.Readlink(fmt.Sprintf("/proc/%d/fd/0", pid)); err == nil && in != "/dev/null" {
			busy = append(busy, pid)
		}
	}
	return busy
}

// atLine starts c and reads its stderr to the end; at the first line that
// holds at it calls act (a signal to c, at that moment of the set-up). It
// returns everything c said and whether the line came.
func atLine(t *testing.T, c *exec.Cmd, at string, act func()) (*strings.Builder, bool) {
	t.Helper()
	return atLines(t, c, []string{at}, act)
}

// atLines is atLine with act called once a line holding each of ats has
// come, in any order.
func atLines(t *testing.T, c *exec.Cmd, ats []string, act func()) (*strings.Builder, bool) {
	t.Helper()
	stderr, err := c.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	said := &strings.Builder{}
	sc := bufio.NewScanner(stderr)
	seen := make([]bool, len(ats))
	hit := false
	for sc.Scan() {
		said.WriteString(sc.Text() + "\n")
		if hit {
			continue
		}
		all := true
		for i, at := range ats {
			seen[i] = seen[i] || strings.Contains(sc.Text(), at)
			all = all && seen[i]
		}
		if all {
			act()
			hit = true
		}
	}
	return said, hit
}
