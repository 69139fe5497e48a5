//go:build integration

package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// slowSlirp puts a slirp4netns first in PATH that runs the real one and,
// once it has exited, lingers for linger before it exits itself: a network
// whose teardown is slow. Only the run with --exit-fd lingers (not
// sandy's probe of slirp4netns). It returns the PATH to run sandy with.
func slowSlirp(t *testing.T, linger time.Duration) string {
	t.Helper()
	real := testutil.RequireBinary(t, "slirp4netns", "apt-get install slirp4netns")
	dir := testutil.TempDir(t)
	script := fmt.Sprintf("#!/bin/sh\ncase \"$*\" in\n*--exit-fd*) %s \"$@\"; sleep %g;;\n*) exec %s \"$@\";;\nesac\n", real, linger.Seconds(), real)
	if err := os.WriteFile(filepath.Join(dir, "slirp4netns"), []byte(script), 0o755); err != nil {
		t.Fatal(err)
	}
	return dir + ":" + os.Getenv("PATH")
}

// runWith is e.run with PATH set, and how long sandy took.
func runWith(e *env, path string, args ...string) (result, time.Duration) {
	return runWithFiles(e, path, nil, args...)
}

// runWithFiles is runWith with extra fds for sandy, from 3 on, inherited
// without close-on-exec as a caller may leave them.
func runWithFiles(e *env, path string, extra []*os.File, args ...string) (result, time.Duration) {
	e.t.Helper()
	cmd := exec.Command(e.sandy, append([]string{"--root", e.root}, args...)...)
	cmd.Env = append(os.Environ(), "PATH="+path)
	cmd.ExtraFiles = extra
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	t0 := time.Now()
	_ = cmd.Run()
	return result{stdout: out.String(), stderr: errb.String(), code: cmd.ProcessState.ExitCode()}, time.Since(t0)
}

// helpersOf lists the processes left by e's containers: sandy's helpers
// name the state root in their arguments; slirp4netns names its state
// directory through its fd 5 (slirp.slirpArgs).
func helpersOf(e *env) []string {
	var left []string
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		pid, err := strconv.Atoi(ent.Name())
		if err != nil || pid == os.Getpid() {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		if err != nil || len(cmdline) == 0 {
			continue // gone, or a zombie: it holds nothing
		}
		fd5, _ := os.Readlink(filepath.Join("/proc", ent.Name(), "fd", "5"))
		if strings.Contains(string(cmdline), e.root) || strings.HasPrefix(fd5, e.root) {
			left = append(left, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
		}
	}
	return left
}

// waitStateRootEmpty waits until e's state root is empty: the teardown
// (the run's own, or its reaper's) has removed everything it held.
func waitStateRootEmpty(t *testing.T, e *env) {
	t.Helper()
	waitFor(t, 10*time.Second, "the state root to be empty", func() bool {
		ents, _ := os.ReadDir(e.root)
		return len(ents) == 0
	})
}

// mountsOf lists the mounts of this (the user's) mount namespace under
// e's state root.
func mountsOf(e *env) []string {
	data, _ := os.ReadFile("/proc/self/mountinfo")
	var out []string
	for _, l := range strings.Split(string(data), "\n") {
		if strings.Contains(l, e.root) {
			out = append(out, l)
		}
	}
	return out
}

// TestRunReturnsBeforeTeardown: `sandy run` with the default network
// returns the container's status without waiting for slirp4netns to exit
// (a slirp4netns that lingers 3 s after its exit fd closes held every run
// for 2 s, then was killed); the id is free at once for a second run; and
// within a bounded poll nothing of either run is left: no helper process,
// no mount, no state, no layer (the container wrote files as a subordinate
// id, whose removal needs a user-namespace helper).
func TestRunReturnsBeforeTeardown(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	path := slowSlirp(t, 3*time.Second)
	e := newEnv(t)
	e.spec.Process.User.UID, e.spec.Process.User.GID = 1000, 1000
	e.sh(`mkdir /tmp/d && echo x > /tmp/d/f && exit 7`)
	id := "td-" + strconv.Itoa(os.Getpid())
	r, took := runWith(e, path, "run", "--bundle", e.bundle, id)
	if r.code != 7 {
		t.Fatalf("run: exit %d, want 7\n%s", r.code, r.stderr)
	}
	if took > 1500*time.Millisecond {
		t.Fatalf("run took %v: it waited for the network's teardown (slirp4netns lingers 3 s)", took.Round(time.Millisecond))
	}
	t.Logf("run returned after %v", took.Round(time.Millisecond))
	// The id is free at once, while the first run's reaper still waits.
	e.sh(`echo second`)
	r2, took2 := runWith(e, path, "run", "--bundle", e.bundle, id)
	if r2.code != 0 || !strings.Contains(r2.stdout, "second") {
		t.Fatalf("second run of id %s: exit %d\n%s", id, r2.code, r2.stderr)
	}
	t.Logf("second run returned after %v", took2.Round(time.Millisecond))
	waitFor(t, 10*time.Second, "the teardowns to finish (no helper process left)", func() bool { return len(helpersOf(e)) == 0 })
	if m := mountsOf(e); len(m) > 0 {
		t.Fatalf("mounts left in the user's mount namespace:\n%s", strings.Join(m, "\n"))
	}
	waitStateRootEmpty(t, e)
	assertNothingLeft(t, e)
}

// TestReaperKilled: the reaper holds no fd of its caller's but the ones
// it is given (a pipe sandy inherited without close-on-exec would keep
// the caller's reader waiting); kill -9 of the reaper while it waits for
// slirp4netns leaves a retired state directory that nothing holds; `sandy
// list` finishes it (the layer, the state), a run of the same id works
// before and after, and no process is left once slirp4netns has lingered
// out.
func TestReaperKilled(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	path := slowSlirp(t, 3*time.Second)
	e := newEnv(t)
	e.spec.Process.User.UID, e.spec.Process.User.GID = 1000, 1000
	e.sh(`mkdir /tmp/d && echo x > /tmp/d/f`)
	id := "rk-" + strconv.Itoa(os.Getpid())
	pr, pw, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer pr.Close()
	// At fd 20, above those sandy gives its children (nil entries are
	// closed in sandy).
	extra := make([]*os.File, 18)
	extra[17] = pw
	r, _ := runWithFiles(e, path, extra, "run", "--bundle", e.bundle, id)
	pw.Close()
	if r.code != 0 {
		t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
	}
	var st syscall.Stat_t
	if err := syscall.Fstat(int(pr.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	pipe := fmt.Sprintf("pipe:[%d]", st.Ino)
	var reaper int
	waitFor(t, 5*time.Second, "the reaper", func() bool {
		for _, h := range helpersOf(e) {
			if f := strings.Fields(h); len(f) > 2 && f[2] == "_reap" {
				reaper, _ = strconv.Atoi(f[0])
				return true
			}
		}
		return false
	})
	fds, _ := os.ReadDir(fmt.Sprintf("/proc/%d/fd", reaper))
	for _, fd := range fds {
		if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", reaper, fd.Name())); l == pipe {
			t.Errorf("the reaper holds the caller's pipe (fd %s)", fd.Name())
		}
	}
	if err := syscall.Kill(reaper, syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 5*time.Second, "the reaper to die", func() bool { return !alive(reaper) })
	ents, _ := os.ReadDir(e.root)
	if len(ents) != 1 || !strings.HasPrefix(ents[0].Name(), ".gone-"+id+"-") {
		t.Fatalf("state root after the reaper's death: %v, want one retired directory of %s", ents, id)
	}
	if r := e.run("", "list", "-q"); r.code != 0 || strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("list: exit %d, %q %s", r.code, r.stdout, r.stderr)
	}
	if ents, _ := os.ReadDir(e.root); len(ents) != 0 {
		t.Fatalf("list did not finish the dead reaper's directory: %v", ents)
	}
	e.sh("echo again")
	if r, _ := runWith(e, path, "run", "--bundle", e.bundle, id); r.code != 0 {
		t.Fatalf("run after: exit %d\n%s", r.code, r.stderr)
	}
	waitFor(t, 10*time.Second, "no helper process left", func() bool { return len(helpersOf(e)) == 0 })
	assertNothingLeft(t, e)
}

// TestRunTeardownHere: a run with nothing slow left to tear down (nothing
// written in the layer; the network's processes, if any, killed) removes
// its state itself, with no reaper: the state root is empty and no
// slirp4netns is left when `run` returns. A run whose container wrote in
// its layer still hands the rest to the reaper; within a bounded poll
// nothing is left either way.
func TestRunTeardownHere(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	for _, tc := range []struct {
		name     string
		script   string
		readonly bool
		args     []string
		here     bool
	}{
		{"read-only root, no network", "true", true, []string{"--network=none"}, true},
		{"writable root left untouched, no network", "true", false, []string{"--network=none"}, true},
		{"a file written in the layer", "echo x > /written", false, []string{"--network=none"}, false},
		{"the default network (its processes killed)", "true", true, nil, true},
		{"the default network and a file in the layer", "echo x > /written", false, nil, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t)
			e.spec.Root.Readonly = tc.readonly
			e.sh(tc.script)
			args := append(append([]string{"--debug", "run"}, tc.args...), "--bundle", e.bundle, uniqueID("here"))
			r := e.run("", args...)
			if r.code != 0 {
				t.Fatalf("run: exit %d\n%s", r.code, r.stderr)
			}
			here := strings.Contains(r.stderr, "the teardown is finished here")
			reaper := strings.Contains(r.stderr, "the reaper finishes the teardown")
			if here != tc.here || reaper == tc.here {
				t.Fatalf("finished here %v, by the reaper %v; want here %v:\n%s", here, reaper, tc.here, r.stderr)
			}
			if tc.here {
				if ents, _ := os.ReadDir(e.root); len(ents) != 0 {
					t.Fatalf("state root when run returned: %v, want it empty", ents)
				}
				waitFor(t, 2*time.Second, "the killed network processes to go", func() bool { return len(helpersOf(e)) == 0 })
			}
			waitStateRootEmpty(t, e)
			waitFor(t, 10*time.Second, "no helper process left", func() bool { return len(helpersOf(e)) == 0 })
			assertNothingLeft(t, e)
		})
	}
}
