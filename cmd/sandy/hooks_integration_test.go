//go:build integration

package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestHooks: each hook kind runs at its moment, in its namespaces, with the
// state on stdin; a failing createRuntime hook aborts the create and leaves
// nothing behind; poststop failures are reported, not fatal.
func TestHooks(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	out := testutil.TempDir(t)
	sh := "/bin/sh"
	host := func(name string) specs.Hook {
		// Runs with the host's /bin/sh: state to a file, plus the mount ns.
		return specs.Hook{Path: sh, Args: []string{"sh", "-c", `cat > ` + out + `/` + name + `.json; readlink /proc/self/ns/mnt > ` + out + `/` + name + `.mnt`}}
	}
	e := newEnv(t).sh(`cat /tmp/started-by-hook`)
	e.spec.Hooks = &specs.Hooks{
		//lint:ignore SA1019 deprecated, not gone: runtimes still run prestart hooks
		Prestart:        []specs.Hook{host("prestart")},
		CreateRuntime:   []specs.Hook{host("createRuntime")},
		CreateContainer: []specs.Hook{host("createContainer")},
		// In the container, after pivot_root: the container's /bin/sh.
		StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo yes > /tmp/started-by-hook"}}},
		Poststart:      []specs.Hook{host("poststart")},
		Poststop:       []specs.Hook{host("poststop")},
	}
	e.write()
	r := e.runBundle(0)
	if strings.TrimSpace(r.stdout) != "yes" {
		t.Fatalf("startContainer hook did not run in the container: %q %q", r.stdout, r.stderr)
	}
	hostMnt, _ := os.Readlink("/proc/self/ns/mnt")
	for _, name := range []string{"prestart", "createRuntime", "createContainer", "poststart", "poststop"} {
		data, err := os.ReadFile(filepath.Join(out, name+".json"))
		if err != nil {
			t.Fatalf("%s hook did not run: %v", name, err)
		}
		var st specs.State
		if err := json.Unmarshal(data, &st); err != nil || st.Bundle != e.bundle || st.ID == "" {
			t.Fatalf("%s hook state: %s (%v)", name, data, err)
		}
		mnt, _ := os.ReadFile(filepath.Join(out, name+".mnt"))
		inContainer := strings.TrimSpace(string(mnt)) != hostMnt
		if inContainer != (name == "createContainer") {
			t.Errorf("%s hook ran in the container's mount namespace: %v", name, inContainer)
		}
		want := map[string]specs.ContainerState{"prestart": "creating", "createRuntime": "creating", "createContainer": "creating", "poststart": "running", "poststop": "stopped"}[name]
		if st.Status != want {
			t.Errorf("%s hook saw status %q, want %q", name, st.Status, want)
		}
	}

	e.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: sh, Args: []string{"sh", "-c", "echo hook-failed >&2; exit 3"}}}}
	e.write()
	r = e.run("", "run", e.bundle)
	if r.code == 0 || !strings.Contains(r.stderr, "createRuntime") {
		t.Fatalf("failing createRuntime hook: %d %q", r.code, r.stderr)
	}
	assertNothingLeft(t, e)

	e.spec.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: sh, Args: []string{"sh", "-c", "exit 4"}}}}
	e.sh("true")
	r = e.runBundle(0)
	if !strings.Contains(r.stderr, "poststop") {
		t.Fatalf("poststop failure not reported: %q", r.stderr)
	}
	assertNothingLeft(t, e)
}

// TestPoststartAfterExec: poststart hooks run after the process is
// executed (runtime spec, lifecycle step 9), not merely after start
// released the init: the hook sees the process's own command line at
// the pid in its state, never sandy's init.
func TestPoststartAfterExec(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	out := testutil.TempDir(t)
	e := newEnv(t, "sleep", "100")
	e.spec.Hooks = &specs.Hooks{
		// Between start's release and the execve: a slow startContainer
		// hook, in the container.
		StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 0.3"}}},
		Poststart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c",
			`pid=$(sed 's/.*"pid":\([0-9]*\).*/\1/'); tr '\0' ' ' < /proc/$pid/cmdline > ` + out + `/cmdline`}}},
	}
	e.write()
	for i := range 3 {
		id := uniqueID("poststart")
		if r := e.run("", "create", "--bundle", e.bundle, id); r.code != 0 {
			t.Fatalf("create: %s", r.stderr)
		}
		if r := e.run("", "start", id); r.code != 0 {
			t.Fatalf("start: %s", r.stderr)
		}
		data, err := os.ReadFile(filepath.Join(out, "cmdline"))
		if err != nil || strings.TrimSpace(string(data)) != "sleep 100" {
			t.Fatalf("try %d: the poststart hook saw %q (%v), want the process's command line", i, data, err)
		}
		e.run("", "delete", "--force", id)
	}
}

// TestStartContainerHookFailure: a failing startContainer hook (it runs in
// the init after start released it) makes start fail, with no poststart
// hook, and the container stops.
func TestStartContainerHookFailure(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	out := testutil.TempDir(t)
	e := newEnv(t, "sleep", "100")
	e.spec.Hooks = &specs.Hooks{
		StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "exit 5"}}},
		Poststart:      []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + out + "/poststart"}}},
	}
	e.write()
	id := uniqueID("schook")
	if r := e.run("", "create", "--bundle", e.bundle, id); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	defer e.run("", "delete", "--force", id)
	if r := e.run("", "start", id); r.code == 0 || !strings.Contains(r.stderr, "failed after start") {
		t.Fatalf("start: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(out + "/poststart"); err == nil {
		t.Error("poststart hook ran after a failed start")
	}
	waitFor(t, 10*time.Second, "stopped", func() bool { return ociState(t, e, id).Status == "stopped" })
}

// TestRunSignalDuringHook: a prestart or createRuntime hook with no
// timeout that never returns does not make `sandy run` (nor `run -d`, nor
// `create`) deaf: SIGTERM or SIGINT aborts the set-up promptly with the
// status 128+N, kills the hook's whole process group and the init, and
// leaves no state or layer.
func TestRunSignalDuringHook(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	for _, tc := range []struct {
		verb string
		kind string
		sig  syscall.Signal
	}{
		{"run", "prestart", syscall.SIGTERM},
		{"run", "createRuntime", syscall.SIGINT},
		{"run", "prestart", syscall.SIGINT},
		{"run", "createRuntime", syscall.SIGTERM},
		{"run -d", "prestart", syscall.SIGTERM},
		{"create", "createRuntime", syscall.SIGTERM},
		{"create", "prestart", syscall.SIGINT},
	} {
		t.Run(tc.verb+"-"+tc.kind+"-"+unix.SignalName(tc.sig), func(t *testing.T) {
			out := testutil.TempDir(t)
			e := newEnv(t).sh("true")
			// The hook's state (for the init's pid), a child in its process
			// group, then the hook itself becomes `sleep 1000`.
			hook := specs.Hook{Path: "/bin/sh", Args: []string{"sh", "-c",
				`cat > ` + out + `/state.json; sleep 1001 & echo $! > ` + out + `/child; echo $$ > ` + out + `/tmp.pid; mv ` + out + `/tmp.pid ` + out + `/pid; exec sleep 1000`}}
			e.spec.Hooks = &specs.Hooks{}
			if tc.kind == "prestart" {
				//lint:ignore SA1019 deprecated, not gone: runtimes still run prestart hooks
				e.spec.Hooks.Prestart = []specs.Hook{hook}
			} else {
				e.spec.Hooks.CreateRuntime = []specs.Hook{hook}
			}
			e.write()
			args := map[string][]string{
				"run":    {"run", e.bundle},
				"run -d": {"run", "-d", e.bundle},
				"create": {"create", "--bundle", e.bundle, uniqueID("sig")},
			}[tc.verb]
			cmd := exec.Command(e.sandy, append([]string{"--root", e.root}, args...)...)
			var stderr syncBuffer
			cmd.Stderr = &stderr
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			var pids []int
			t.Cleanup(func() {
				_ = cmd.Process.Kill()
				for _, p := range pids {
					_ = syscall.Kill(p, syscall.SIGKILL)
				}
			})
			waitFor(t, 20*time.Second, "the hook to run", func() bool {
				_, err := os.Stat(filepath.Join(out, "pid"))
				return err == nil
			})
			for _, f := range []string{"pid", "child"} {
				data, _ := os.ReadFile(filepath.Join(out, f))
				p, err := strconv.Atoi(strings.TrimSpace(string(data)))
				if err != nil {
					t.Fatalf("%s: %q", f, data)
				}
				pids = append(pids, p)
			}
			var st specs.State
			data, _ := os.ReadFile(filepath.Join(out, "state.json"))
			if err := json.Unmarshal(data, &st); err != nil || st.Pid <= 0 {
				t.Fatalf("hook state %q: %v", data, err)
			}
			pids = append(pids, st.Pid) // the init

			t0 := time.Now()
			if err := cmd.Process.Signal(tc.sig); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			select {
			case <-done:
			case <-time.After(10 * time.Second):
				t.Fatalf("sandy run still runs %v after %v (hung in the hook)\nstderr: %s", time.Since(t0).Round(time.Millisecond), unix.SignalName(tc.sig), stderr.String())
			}
			if code := cmd.ProcessState.ExitCode(); code != 128+int(tc.sig) {
				t.Fatalf("sandy %s: %v after %v, want exit %d\nstderr: %s", tc.verb, cmd.ProcessState, unix.SignalName(tc.sig), 128+int(tc.sig), stderr.String())
			}
			t.Logf("exited %d after %v: %s", cmd.ProcessState.ExitCode(), time.Since(t0).Round(time.Millisecond), strings.TrimSpace(stderr.String()))
			for i, p := range pids {
				what := []string{"the hook", "the hook's child", "the init"}[i]
				waitFor(t, 5*time.Second, what+" (pid "+strconv.Itoa(p)+") to be gone", func() bool { return !alive(p) })
			}
			// Before any sandy command, which would collect leftovers.
			if ents, _ := os.ReadDir(e.root); len(ents) != 0 {
				t.Fatalf("state left in %s: %v", e.root, ents)
			}
			assertNothingLeft(t, e)
		})
	}
}

// alive reports whether pid runs (and is not a zombie).
func alive(pid int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	s := string(data)
	f := strings.Fields(s[strings.LastIndexByte(s, ')')+1:])
	return len(f) > 0 && f[0] != "Z"
}

// TestRunSigtermDuringSetup: SIGTERM at any moment of `sandy run` ends it
// promptly: during the set-up it is undone and nothing is left (before
// sandy catches signals at all, the default action kills it and the next
// command collects what it left); once the process runs, the signal is
// forwarded to it (again every 2 s: see the wait).
func TestRunSigtermDuringSetup(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh(`trap "exit 3" TERM; while :; do sleep 0.05; done`)
	for _, delay := range []time.Duration{2 * time.Millisecond, 5 * time.Millisecond, 10 * time.Millisecond, 20 * time.Millisecond, 40 * time.Millisecond, 80 * time.Millisecond, 300 * time.Millisecond} {
		cmd := exec.Command(e.sandy, "--root", e.root, "run", e.bundle)
		var stderr syncBuffer
		cmd.Stderr = &stderr
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(delay)
		_ = cmd.Process.Signal(syscall.SIGTERM)
		done := make(chan error, 1)
		go func() { done <- cmd.Wait() }()
		// A SIGTERM forwarded in the moment between the exec of the
		// container's pid 1 and its `trap` is dropped by the kernel (a pid
		// namespace's init gets no signal from outside without a handler;
		// runc's forwarding has the same window): sent again every 2 s, it
		// then reaches the trap. A sandy that neither undoes nor forwards
		// still runs after 10 s.
		resend := time.NewTicker(2 * time.Second)
		deadline := time.After(10 * time.Second)
	wait:
		for {
			select {
			case <-done:
				break wait
			case <-resend.C:
				_ = cmd.Process.Signal(syscall.SIGTERM)
			case <-deadline:
				_ = cmd.Process.Kill()
				<-done
				t.Fatalf("after %v: sandy run still runs 10s after SIGTERM\nstderr: %s", delay, stderr.String())
			}
		}
		resend.Stop()
		ws := cmd.ProcessState.Sys().(syscall.WaitStatus)
		t.Logf("after %v: %v: %s", delay, cmd.ProcessState, strings.TrimSpace(stderr.String()))
		switch {
		case ws.Signaled():
			// Killed before it caught signals: the next command collects.
		case ws.ExitStatus() == 143:
			// Interrupted set-up: undone before sandy exits.
			if ents, _ := os.ReadDir(e.root); len(ents) != 0 {
				t.Fatalf("after %v: state left in %s: %v", delay, e.root, ents)
			}
		case ws.ExitStatus() == 3:
			// The process's own trap: the run ended, and its teardown
			// ends in a reaper, which assertNothingLeft's `list` awaits.
		default:
			t.Fatalf("after %v: exit %d, want 143 (set-up interrupted) or 3 (the process's trap)", delay, ws.ExitStatus())
		}
		assertNothingLeft(t, e)
	}
}

// TestHookWorkingDirectory: a createContainer hook runs in the container's
// root (runc's init changes into the rootfs before running them, and
// hooks such as runc's hooks.bats "touch ./lib/…" rely on it); a
// startContainer hook runs in process.cwd, where the process starts.
func TestHookWorkingDirectory(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	out := testutil.TempDir(t)
	e := newEnv(t).sh(`cat /tmp/start-cwd`)
	e.spec.Process.Cwd = "/tmp"
	e.spec.Hooks = &specs.Hooks{
		CreateContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", `ls ./bin/sh ./etc > ` + out + `/create-cwd 2>&1; true`}}},
		StartContainer:  []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", `pwd > /tmp/start-cwd`}}},
	}
	e.write()
	r := e.runBundle(0)
	if got, _ := os.ReadFile(filepath.Join(out, "create-cwd")); !strings.HasPrefix(string(got), "./bin/sh\n") {
		t.Errorf("createContainer hook's working directory is not the container's root: ls ./bin/sh ./etc said %q", got)
	}
	if r.stdout != "/tmp\n" {
		t.Errorf("startContainer hook's working directory: %q, want process.cwd /tmp\nstderr: %s", r.stdout, r.stderr)
	}
}

// TestHostHookWorkingDirectory: prestart and createRuntime hooks run in
// the bundle directory, whatever sandy's own working directory, as runc
// runs them (runc create and run change into the bundle first).
func TestHostHookWorkingDirectory(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	out := testutil.TempDir(t)
	e := newEnv(t, "true")
	pwd := func(name string) []specs.Hook {
		return []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", `pwd -P > ` + out + `/` + name}}}
	}
	e.spec.Hooks = &specs.Hooks{
		//lint:ignore SA1019 deprecated, not gone: runtimes still run prestart hooks
		Prestart:      pwd("prestart"),
		CreateRuntime: pwd("createRuntime"),
	}
	e.write()
	if wd, _ := os.Getwd(); wd == e.bundle {
		t.Fatalf("the test runs sandy in the bundle directory %s: it proves nothing", wd)
	}
	e.runBundle(0)
	bundle, err := filepath.EvalSymlinks(e.bundle)
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"prestart", "createRuntime"} {
		got, _ := os.ReadFile(filepath.Join(out, name))
		if strings.TrimSpace(string(got)) != bundle {
			t.Errorf("%s hook's working directory: %q, want the bundle %s", name, got, bundle)
		}
	}
}
