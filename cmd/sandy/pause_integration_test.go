//go:build integration

package main_test

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/spare"
	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// pauseEnv is an imgEnv with a runtime directory of its own, so that its
// pause process (internal/imagehelper/pause.go) is its own; the test's
// clean-up ends it (sandy system migrate) after the store's own clean-up.
func pauseEnv(t *testing.T) (*imgEnv, string) {
	t.Helper()
	xdg := filepath.Join(testutil.TempDir(t), "xdg")
	if err := os.Mkdir(xdg, 0o700); err != nil {
		t.Fatal(err)
	}
	var e *imgEnv
	t.Cleanup(func() {
		// After newImgEnv's rmi, which may have started it again.
		pid := pausePid(t, xdg)
		if out, err := e.cmd("system", "migrate").CombinedOutput(); err != nil {
			t.Errorf("system migrate: %v: %s", err, out)
		}
		if pid > 0 && !gone(pid, 5*time.Second) {
			t.Errorf("the pause process %d still runs after system migrate", pid)
			_ = syscall.Kill(pid, syscall.SIGKILL)
		}
	})
	e = newImgEnv(t)
	// No spare helpers: these tests watch each run's helper start in
	// the pause's namespace (TestRunImageSpareHelper has the spares).
	e.env = append(e.env, "XDG_RUNTIME_DIR="+xdg, spare.EnvLinger+"=0")
	return e, filepath.Join(xdg, "sandy")
}

// pauseRec is pause.pid's content.
type pauseRec struct {
	Pid    int    `json:"pid"`
	Start  uint64 `json:"start"`
	Boot   string `json:"boot"`
	UserNS uint64 `json:"userns"`
}

func readPauseRec(t *testing.T, dir string) pauseRec {
	t.Helper()
	var r pauseRec
	b, err := os.ReadFile(filepath.Join(dir, "pause.pid"))
	if err == nil {
		err = json.Unmarshal(b, &r)
	}
	if err != nil {
		t.Fatalf("reading the pause record: %v", err)
	}
	return r
}

// pausePid is the pid the record of xdg's sandy names, 0 for none.
func pausePid(t *testing.T, xdg string) int {
	b, err := os.ReadFile(filepath.Join(xdg, "sandy", "pause.pid"))
	var r pauseRec
	if err != nil || json.Unmarshal(b, &r) != nil {
		return 0
	}
	return r.Pid
}

// writePauseRec forges a record naming pid, with its true start time and
// user namespace, as an attacker who can write the file would.
func writePauseRec(t *testing.T, dir string, pid int) {
	t.Helper()
	r := pauseRec{Pid: pid, Start: procStart(t, pid), UserNS: nsInode(t, pid, "user")}
	b, _ := os.ReadFile("/proc/sys/kernel/random/boot_id")
	r.Boot = strings.TrimSpace(string(b))
	data, _ := json.Marshal(r)
	if err := os.WriteFile(filepath.Join(dir, "pause.pid"), data, 0o600); err != nil {
		t.Fatal(err)
	}
}

func procStart(t *testing.T, pid int) uint64 {
	t.Helper()
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	v, _ := strconv.ParseUint(f[19], 10, 64)
	return v
}

func nsInode(t *testing.T, pid int, kind string) uint64 {
	t.Helper()
	var st syscall.Stat_t
	if err := syscall.Stat(fmt.Sprintf("/proc/%d/ns/%s", pid, kind), &st); err != nil {
		t.Fatal(err)
	}
	return st.Ino
}

func gone(pid int, within time.Duration) bool {
	for end := time.Now().Add(within); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		if !alive(pid) {
			return true
		}
	}
	return false
}

// ownPauses lists the pause processes this test's commands started that
// run now (ownTree: another sandy's are not counted).
func ownPauses() []int {
	var pids []int
	for _, pid := range ownTree() {
		b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
		if strings.HasSuffix(string(b), "\x00_pause\x00") && alive(pid) {
			pids = append(pids, pid)
		}
	}
	return pids
}

// debugImages runs `sandy --debug images` and returns its stderr.
func debugImages(e *imgEnv) string {
	e.t.Helper()
	r := e.run_(nil, "--debug", "images")
	if r.code != 0 {
		e.t.Fatalf("images: exit %d: %s", r.code, r.stderr)
	}
	return r.stderr
}

// procWithCmdline waits for a process of this test's (ownTree) whose
// command line is exactly args and returns its pid.
func procWithCmdline(t *testing.T, args ...string) int {
	t.Helper()
	want := strings.Join(args, "\x00") + "\x00"
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(50 * time.Millisecond) {
		for _, pid := range ownTree() {
			b, err := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
			if err == nil && string(b) == want {
				return pid
			}
		}
	}
	t.Fatalf("no process %q", args)
	return 0
}

// isHelper reports whether p, a line of pullProcs, is a run's storage
// helper: the helper itself, forked (or exec'd by nsenter and unshare, the
// same pid), whose argv[0] is its fd.
func isHelper(p string) bool {
	f := strings.Fields(p)
	return len(f) > 2 && f[1] == "/proc/self/fd/4" && strings.Contains(p, "_create-container")
}

// runHelper waits up to 20 s for a run's storage helper among the
// processes of dir (pullProcs) and returns its pid; 0 when none was seen.
func runHelper(dir string) int {
	for end := time.Now().Add(20 * time.Second); time.Now().Before(end); time.Sleep(20 * time.Millisecond) {
		for _, p := range pullProcs(dir) {
			var pid int
			if _, err := fmt.Sscan(p, &pid); err == nil && isHelper(p) {
				return pid
			}
		}
	}
	return 0
}

// TestImagePauseProcess: the first image command starts the pause
// process, which holds the store's user namespace; the next commands'
// helpers join it (their /proc/PID/ns/user is the pause's, and --debug
// says so); a killed pause is replaced; a record naming another process
// of the user, a container's process in a pause's role, or a namespace
// with other maps (an /etc/subuid edited since) is never joined; files
// the store makes through the joined namespace belong to the same host
// ids as through a new one (0 → the user, 1..N → the subordinate range);
// a pause its record no longer names exits by itself; system migrate
// ends the pause.
func TestImagePauseProcess(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "nsenter", "apt-get install util-linux")
	ownProcesses(t)
	e, dir := pauseEnv(t)
	e.loadImage("localhost/bb:pause", imagefix.Busybox(t))
	first := readPauseRec(t, dir)
	if !alive(first.Pid) {
		t.Fatalf("the pause process %d of the record does not run", first.Pid)
	}
	if b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", first.Pid)); !strings.HasSuffix(string(b), "\x00_pause\x00") {
		t.Errorf("the pause process's command line: %q", b)
	}
	if env, _ := os.ReadFile(fmt.Sprintf("/proc/%d/environ", first.Pid)); strings.Contains(string(env), e.dir) {
		t.Errorf("the pause process's environment names the test's directory: %q", env)
	}
	if cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", first.Pid)); cwd != "/" {
		t.Errorf("the pause process's cwd is %q, want /", cwd)
	}

	t.Run("joined", func(t *testing.T) {
		if got := debugImages(e); !strings.Contains(got, fmt.Sprintf("joined the pause process %d's user namespace", first.Pid)) {
			t.Errorf("images --debug does not say it joined %d:\n%s", first.Pid, got)
		}
		// The held helper of a running container, seen from the host.
		run := e.cmd("run", "--rm", "--network", "none", "localhost/bb:pause", "sleep", "3")
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		helper := runHelper(e.dir)
		if helper == 0 {
			t.Error("no image helper seen during run")
		} else if got := nsInode(t, helper, "user"); got != first.UserNS {
			t.Errorf("the helper %d is in user namespace %d, the pause process's is %d", helper, got, first.UserNS)
		}
		if err := run.Wait(); err != nil {
			t.Errorf("run: %v", err)
		}
	})

	t.Run("forked without nsenter", func(t *testing.T) {
		// nsenter and unshare that fail, first in PATH: the helper of
		// run still starts, in the pause's user namespace, with a mount
		// namespace of its own (neither the pause's nor run's).
		bin := testutil.TempDir(t)
		ran := filepath.Join(bin, "ran")
		for _, name := range []string{"nsenter", "unshare"} {
			if err := os.WriteFile(filepath.Join(bin, name), []byte("#!/bin/sh\necho "+name+" >>"+ran+"\nexit 1\n"), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		// The held helper of the run before may still be removing its
		// container (it answers once it holds the removals lock): wait
		// until it is gone, so that the helper found below is this run's.
		waitFor(t, 20*time.Second, "the helpers of the runs before to exit", func() bool {
			return !slices.ContainsFunc(pullProcs(e.dir), isHelper)
		})
		run := e.cmd("--debug", "run", "--rm", "--network", "none", "localhost/bb:pause", "sleep", "3")
		for i, kv := range run.Env {
			if v, ok := strings.CutPrefix(kv, "PATH="); ok {
				run.Env[i] = "PATH=" + bin + ":" + v
			}
		}
		var stderr strings.Builder
		run.Stderr = &stderr
		if err := run.Start(); err != nil {
			t.Fatal(err)
		}
		helper := runHelper(e.dir)
		if helper == 0 {
			t.Error("no image helper seen during run")
		} else {
			if got := nsInode(t, helper, "user"); got != first.UserNS {
				t.Errorf("the helper %d is in user namespace %d, the pause process's is %d", helper, got, first.UserNS)
			}
			// Read while the helper runs (run's rm ends it).
			mnt, err1 := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", helper))
			// run's mount namespace is the host's: this test's.
			runMnt, err2 := os.Readlink("/proc/self/ns/mnt")
			pauseMnt, err3 := os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", first.Pid))
			if err := errors.Join(err1, err2, err3); err != nil {
				t.Errorf("reading the mount namespaces of the helper %d and the pause %d: %v", helper, first.Pid, err)
			} else if mnt == runMnt || mnt == pauseMnt {
				t.Errorf("the helper %d has no mount namespace of its own (%s; the host's %s, the pause's %s)", helper, mnt, runMnt, pauseMnt)
			}
		}
		if err := run.Wait(); err != nil {
			t.Errorf("run: %v\n%s", err, stderr.String())
		}
		if b, err := os.ReadFile(ran); err == nil {
			t.Errorf("ran %q", b)
		}
		if !strings.Contains(stderr.String(), "(forked: no nsenter, no unshare)") {
			t.Errorf("run --debug does not say the helper was forked:\n%s", stderr.String())
		}
	})

	t.Run("killed pause replaced", func(t *testing.T) {
		_ = syscall.Kill(first.Pid, syscall.SIGKILL)
		if !gone(first.Pid, 5*time.Second) {
			t.Fatal("the pause process outlived SIGKILL")
		}
		got := debugImages(e)
		next := readPauseRec(t, dir)
		if next.Pid == first.Pid || !alive(next.Pid) || !strings.Contains(got, "starting one") {
			t.Errorf("after the pause's kill: record %+v; --debug:\n%s", next, got)
		}
	})

	// refused: a forged record naming pid is not joined: a new pause
	// process takes its place.
	// It returns the pause process the forged record replaced.
	refused := func(t *testing.T, pid int, because string) (forgotten int) {
		t.Helper()
		forgotten = readPauseRec(t, dir).Pid
		writePauseRec(t, dir, pid)
		got := debugImages(e)
		next := readPauseRec(t, dir)
		if strings.Contains(got, fmt.Sprintf("joined the pause process %d's", pid)) || next.Pid == pid || !alive(next.Pid) {
			t.Errorf("a record naming %d was joined (record now %+v):\n%s", pid, next, got)
		}
		if !strings.Contains(got, because) {
			t.Errorf("--debug does not say %q:\n%s", because, got)
		}
		return forgotten
	}

	t.Run("another process of the user", func(t *testing.T) {
		sleep := exec.Command("sleep", "60")
		if err := sleep.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = sleep.Process.Kill(); _ = sleep.Wait() }()
		forgotten := refused(t, sleep.Process.Pid, "not in sandy's pause role")
		if !alive(sleep.Process.Pid) {
			t.Error("the process the record named was ended")
		}
		// A pause its record no longer names exits by itself.
		if !gone(forgotten, 15*time.Second) {
			t.Errorf("the forgotten pause process %d still runs", forgotten)
			_ = syscall.Kill(forgotten, syscall.SIGKILL)
		}
	})

	t.Run("a container's process in the pause role", func(t *testing.T) {
		// Same maps, a user namespace owned by the user and a child of
		// the host's, and argv "sh _pause": only its namespaces tell.
		e.ok("run", "-d", "--name", "fake-pause", "--network", "none", "localhost/bb:pause",
			"sh", "-c", "cd /tmp && echo 'sleep 60' >_pause && exec sh _pause")
		defer e.ok("rm", "-f", "fake-pause")
		pid := procWithCmdline(t, "sh", "_pause")
		defer syscall.Kill(refused(t, pid, "in another mnt namespace"), syscall.SIGTERM)
		if !alive(pid) {
			t.Error("the container's process the record named was ended")
		}
	})

	t.Run("other maps", func(t *testing.T) {
		// A pause-like process in a user namespace of the user's with the
		// single mapping: what a pause made before /etc/subuid changed
		// looks like. Not joined, and ended as a stale pause.
		testutil.RequireBinary(t, "unshare", "apt-get install util-linux")
		tmp := testutil.TempDir(t)
		if err := os.WriteFile(filepath.Join(tmp, "_pause"), []byte("sleep 60\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		u := exec.Command("unshare", "--user", "--map-root-user", "sh", "_pause")
		u.Dir = tmp
		if err := u.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { _ = u.Process.Kill(); _ = u.Wait() }()
		pid := procWithCmdline(t, "sh", "_pause")
		defer syscall.Kill(refused(t, pid, "subordinate ids changed?"), syscall.SIGTERM)
	})

	t.Run("ownership", func(t *testing.T) {
		// Written as the image's user app (1000:1000), committed,
		// inspected in the new image and on the host.
		e.ok("run", "--network", "none", "-u", "1000:1000", "--name", "owner", "localhost/bb:pause",
			"sh", "-c", "echo hi >/tmp/by-app && mkdir /home/app/dir")
		defer e.ok("rm", "-f", "owner")
		e.ok("commit", "owner", "localhost/bb:owned")
		got := e.ok("run", "--rm", "--network", "none", "localhost/bb:owned", "stat", "-c", "%u:%g %n", "/tmp/by-app", "/home/app/dir", "/home/app")
		if want := "1000:1000 /tmp/by-app\n1000:1000 /home/app/dir\n1000:1000 /home/app\n"; got != want {
			t.Errorf("owners in the committed image: %q, want %q", got, want)
		}
		host := subID(t, "/etc/subuid", 1000)
		matches, _ := filepath.Glob(filepath.Join(e.dir, "graph", "overlay", "*", "diff", "tmp", "by-app"))
		if len(matches) == 0 {
			t.Fatal("the written file is in no layer of the store")
		}
		for _, m := range matches {
			var st syscall.Stat_t
			if err := syscall.Lstat(m, &st); err != nil {
				t.Fatal(err)
			}
			if int(st.Uid) != host || int(st.Gid) != subID(t, "/etc/subgid", 1000) {
				t.Errorf("%s belongs to %d:%d on the host, want %d:%d", m, st.Uid, st.Gid, host, subID(t, "/etc/subgid", 1000))
			}
		}
	})

	t.Run("concurrent starts make one", func(t *testing.T) {
		e.ok("system", "migrate")
		before := ownPauses()
		// Held here until every command waits for it, having found no
		// pause: all of them then want to start one.
		lock, err := os.OpenFile(filepath.Join(dir, "pause.lock"), os.O_RDWR|os.O_CREATE, 0o600)
		if err != nil {
			t.Fatal(err)
		}
		defer lock.Close()
		if err := syscall.Flock(int(lock.Fd()), syscall.LOCK_EX); err != nil {
			t.Fatal(err)
		}
		const n = 4
		type res struct {
			out string
			err error
		}
		results := make(chan res, n)
		for range n {
			go func() {
				out, err := e.cmd("--debug", "images", "-q").CombinedOutput()
				results <- res{string(out), err}
			}()
		}
		time.Sleep(2 * time.Second)
		_ = syscall.Flock(int(lock.Fd()), syscall.LOCK_UN)
		starts := 0
		for range n {
			r := <-results
			if r.err != nil {
				t.Errorf("images: %v: %s", r.err, r.out)
			}
			starts += strings.Count(r.out, "): starting one")
		}
		if starts != 1 {
			t.Errorf("%d image commands at once started %d pause processes, want 1", n, starts)
		}
		var started []int
		for _, pid := range ownPauses() {
			if !slices.Contains(before, pid) {
				started = append(started, pid)
			}
		}
		if rec := readPauseRec(t, dir); len(started) != 1 || started[0] != rec.Pid {
			t.Errorf("%d image commands at once started the pause processes %v (record: %d), want one", n, started, rec.Pid)
		}
	})

	t.Run("join refused", func(t *testing.T) {
		// An nsenter that fails, as setns(2) refused by a seccomp filter
		// or an LSM would: found once when the pause starts (the record
		// says so); the commands take the old path, and the next ones
		// do not start a pause each.
		e.ok("system", "migrate")
		fake := testutil.TempDir(t)
		if err := os.WriteFile(filepath.Join(fake, "nsenter"), []byte("#!/bin/sh\necho 'nsenter: reassociate to namespace: Operation not permitted' >&2\nexit 1\n"), 0o755); err != nil {
			t.Fatal(err)
		}
		env := e.env
		defer func() { e.env = env }()
		e.env = append(append([]string(nil), env...), "PATH="+fake+":"+os.Getenv("PATH"))
		got := debugImages(e)
		rec := readPauseRec(t, dir)
		if !strings.Contains(got, "cannot be joined here") || !strings.Contains(got, "Operation not permitted") {
			t.Errorf("the first command with a failing nsenter: --debug:\n%s", got)
		}
		got = debugImages(e)
		if next := readPauseRec(t, dir); next.Pid != rec.Pid || strings.Contains(got, "starting one") || !strings.Contains(got, "cannot be joined here") {
			t.Errorf("the second command: record %+v (was %+v), --debug:\n%s", next, rec, got)
		}
	})

	t.Run("system migrate", func(t *testing.T) {
		pid := readPauseRec(t, dir).Pid
		e.ok("system", "migrate")
		if !gone(pid, 5*time.Second) {
			t.Errorf("the pause process %d runs after system migrate", pid)
		}
		if _, err := os.Stat(filepath.Join(dir, "pause.pid")); err == nil {
			t.Error("the pause record is left after system migrate")
		}
		e.ok("images") // and a new one starts
		if next := readPauseRec(t, dir); next.Pid == pid || !alive(next.Pid) {
			t.Errorf("no new pause process after system migrate: %+v", next)
		}
	})
}
