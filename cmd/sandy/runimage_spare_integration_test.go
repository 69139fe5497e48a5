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
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

var spareTook = regexp.MustCompile(`the spare sandy-create (\d+) took the request`)

// TestRunImageSpareHelper (as the test user): the sandy-create of a
// finished `run IMAGE` stays as the next run's spare (imagehelper's
// spare.go): the next run of the same environment has it make the
// storage container, with the run's output, exit status and --rm as
// with a helper of its own; it holds nothing of the runs it served; a
// run in another environment, or one that comes while the spare serves,
// starts a helper of its own; a spare hands a name it does not know to
// sandy-store; it exits after SANDY_HELPER_LINGER, and at `system
// migrate`.
func TestRunImageSpareHelper(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	xdg := e.privateRuntime()
	e.env = append(e.env, spare.EnvLinger+"=10m")
	e.loadImage("localhost/bb:spare", imagefix.Busybox(t))
	helpers := filepath.Join(xdg, "sandy", ".helpers")

	// run runs args, wants code and stdout, and returns the pid of the
	// spare that served it (0: a helper of its own).
	run := func(env []string, code int, stdout string, args ...string) int {
		t.Helper()
		saved := e.env
		e.env = append(append([]string(nil), e.env...), env...)
		defer func() { e.env = saved }()
		// stderr is a pipe: a helper that kept it open would keep this
		// call waiting until the linger ends (10 minutes: the
		// 3 minutes' timeout of run_ says so).
		r := e.run_(nil, append([]string{"--debug", "run", "--rm", "--network=none"}, args...)...)
		if r.code != code || r.stdout != stdout {
			t.Fatalf("run %v: exit %d, stdout %q; want %d, %q\n%s", args, r.code, r.stdout, code, stdout, r.stderr)
		}
		if m := spareTook.FindStringSubmatch(r.stderr); m != nil {
			pid, _ := strconv.Atoi(m[1])
			return pid
		}
		if !strings.Contains(r.stderr, "image helper: no spare") {
			t.Fatalf("run %v: neither a spare nor why not:\n%s", args, r.stderr)
		}
		return 0
	}

	if pid := run(nil, 0, "one\n", "localhost/bb:spare", "echo", "one"); pid != 0 {
		t.Fatalf("the first run was served by spare %d", pid)
	}
	sparePid := run(nil, 7, "two\n", "localhost/bb:spare", "sh", "-c", "echo two; exit 7")
	if sparePid == 0 {
		t.Fatal("the second run in the same environment started a helper of its own")
	}
	if pid := run(nil, 0, "three\n", "localhost/bb:spare", "echo", "three"); pid != sparePid {
		t.Errorf("the third run: spare %d, want %d again", pid, sparePid)
	}
	if got := e.storageContainers(); len(got) != 0 {
		t.Errorf("--rm through the spare left storage containers: %v", got)
	}

	// Idle, it holds nothing of anybody's: stdio on /dev/null, no pipe,
	// no directory of the user's as its cwd; its files are its lock,
	// its binary (fd 4, which it was started from) and what Go's
	// runtime reads its CPU limit from.
	waitIdle := func(pid int) {
		t.Helper()
		deadline := time.Now().Add(20 * time.Second)
		for {
			b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
			if strings.Contains(string(b), ") S ") {
				if link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/1", pid)); link == "/dev/null" {
					return
				}
			}
			if time.Now().After(deadline) {
				t.Fatalf("spare %d: not idle after 20 s: %s", pid, b)
			}
			time.Sleep(20 * time.Millisecond)
		}
	}
	waitIdle(sparePid)
	checkIdleSpare(t, sparePid, helpers, "sandy-create")

	// Another environment: a helper of its own (which then stays as that
	// environment's spare); the first spare is still there for its own.
	if pid := run([]string{"SANDY_TEST_OTHER=1"}, 0, "four\n", "localhost/bb:spare", "echo", "four"); pid != 0 {
		t.Errorf("a run in another environment was served by spare %d", pid)
	}
	if pid := run(nil, 0, "five\n", "localhost/bb:spare", "echo", "five"); pid != sparePid {
		t.Errorf("back in the first environment: spare %d, want %d", pid, sparePid)
	}

	// A run that keeps its container, and a detached one: their
	// sessions end at once ("keep"), and sandy returns without waiting
	// for the spare (a wait would last the 10 minutes' linger: run_'s
	// timeout says so).
	e.ok("run", "--network=none", "--name", "kept", "localhost/bb:spare", "true")
	id := e.runD("--network=none", "localhost/bb:spare", "sleep", "100")
	e.ok("rm", "-f", "kept", id)

	// While the spare serves a run, the next starts a helper of its own;
	// whichever ends first is the spare after (one place per
	// environment: the other exits).
	waitIdle(sparePid)
	long := e.cmd("--debug", "run", "--rm", "-i", "--network=none", "localhost/bb:spare", "sh", "-c", "echo up; read x; true")
	stdin, err := long.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	longOut := &strings.Builder{}
	long.Stderr = longOut
	startUntilUp(t, long)
	if pid := run(nil, 0, "six\n", "localhost/bb:spare", "echo", "six"); pid != 0 {
		t.Errorf("a run while the spare serves another: spare %d, want a helper of its own", pid)
	}
	stdin.Close()
	if err := long.Wait(); err != nil {
		t.Errorf("the long run: %v\n%s", err, longOut)
	}
	if m := spareTook.FindStringSubmatch(longOut.String()); m == nil || m[1] != strconv.Itoa(sparePid) {
		t.Errorf("the long run was not served by spare %d:\n%s", sparePid, longOut)
	}
	if sparePid = run(nil, 0, "seven\n", "localhost/bb:spare", "echo", "seven"); sparePid == 0 {
		t.Fatal("after two runs at once, no spare")
	}

	// A name the spare does not serve: sandy-store, as sandy-create's
	// exec of it would.
	waitIdle(sparePid)
	r := e.run_(nil, "--debug", "run", "--rm", "--network=none", "--pull=never", "localhost/bb:nope")
	if r.code == 0 || !spareTook.MatchString(r.stderr) || !strings.Contains(r.stderr, "handing _create-container to sandy-store") || !strings.Contains(r.stderr, "image helper: sandy-store") {
		t.Errorf("a missing image through the spare: exit %d, want the spare's hand-over to sandy-store:\n%s", r.code, r.stderr)
	}
	if pid := run(nil, 0, "eight\n", "localhost/bb:spare", "echo", "eight"); pid != sparePid {
		t.Errorf("after a hand-over: spare %d, want %d", pid, sparePid)
	}

	// system migrate ends the spares with the pause.
	waitIdle(sparePid)
	e.ok("system", "migrate")
	waitGone(t, sparePid)
	if socks, _ := filepath.Glob(filepath.Join(helpers, "*.sock")); len(socks) != 0 {
		t.Errorf("sockets left after system migrate: %v", socks)
	}

	// The linger ends: the spare exits and removes its socket.
	short := []string{spare.EnvLinger + "=1s"}
	run(short, 0, "nine\n", "localhost/bb:spare", "echo", "nine")
	pid := run(short, 0, "ten\n", "localhost/bb:spare", "echo", "ten")
	if pid == 0 {
		t.Fatal("a run within 1 s of the last was not served by a spare")
	}
	waitGone(t, pid)
	if socks, _ := filepath.Glob(filepath.Join(helpers, "*.sock")); len(socks) != 0 {
		t.Errorf("sockets left after the linger: %v", socks)
	}

	// SANDY_HELPER_LINGER=0: no spare at all.
	off := []string{spare.EnvLinger + "=0"}
	for range 2 {
		if pid := run(off, 0, "", "localhost/bb:spare", "true"); pid != 0 {
			t.Errorf("%s=0: served by spare %d", spare.EnvLinger, pid)
		}
	}
	if socks, _ := filepath.Glob(filepath.Join(helpers, "*.sock")); len(socks) != 0 {
		t.Errorf("%s=0 left a spare: %v", spare.EnvLinger, socks)
	}
}

// waitGone waits up to 20 s for pid to exit (a zombie counts: this
// machine's pid 1 may not reap it).
func waitGone(t *testing.T, pid int) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for {
		b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
		if err != nil || strings.Contains(string(b), ") Z ") {
			return
		}
		if time.Now().After(deadline) {
			out, _ := exec.Command("ps", "-o", "pid,stat,args", "-p", strconv.Itoa(pid)).CombinedOutput()
			t.Fatalf("process %d still there after 20 s:\n%s", pid, out)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

// checkIdleSpare checks that the idle spare pid holds nothing of
// anybody's: its cwd is /, stdio on /dev/null, no pipe, terminal or tap,
// no file but its own in helpers (its lock), its binary (base name exe:
// an image helper runs from the fd it was started with) and what Go's
// runtime reads its CPU limit from. It returns how many fds it holds.
func checkIdleSpare(t *testing.T, pid int, helpers, exe string) int {
	t.Helper()
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); cwd != "/" {
		t.Errorf("the idle spare's cwd is %s, want /", cwd)
	}
	fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	for _, fd := range fds {
		link, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
		n, _ := strconv.Atoi(fd.Name())
		switch {
		case n <= 2 && link != "/dev/null":
			t.Errorf("the idle spare's fd %d is %s, not /dev/null", n, link)
		case strings.HasPrefix(link, "pipe:"), strings.HasPrefix(link, "/dev/pts"):
			t.Errorf("the idle spare holds fd %d: %s", n, link)
		case strings.HasPrefix(link, "/") && link != "/dev/null" && !strings.HasPrefix(link, helpers+"/") &&
			!strings.HasPrefix(link, "/sys/fs/cgroup/") && filepath.Base(link) != exe:
			t.Errorf("the idle spare holds fd %d: %s", n, link)
		}
	}
	return len(fds)
}
