//go:build integration

package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestRunContainer: the container's process is pid 1 of its own pid
// namespace, root in a user namespace with the subordinate range mapped,
// sees no host process, has its hostname, and passes stdio through.
func TestRunContainer(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh(`echo "pid=$$"; id -u; id -g; hostname; cat /proc/self/uid_map; ps -o pid= | wc -l; read line; echo "stdin=$line"; echo to-stderr >&2; echo "lo=$(cat /sys/class/net/lo/flags)"; grep -c . /proc/mounts`)
	r := e.run("hello\n", "run", e.bundle)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	want := map[int]string{0: "pid=1", 1: "0", 2: "0", 3: "sandy"}
	for i, w := range want {
		if i >= len(lines) || lines[i] != w {
			t.Fatalf("line %d: got %q, want %q\n%s", i, lines, w, r.stdout)
		}
	}
	uidMap := strings.Fields(lines[4] + " " + lines[5])
	if len(uidMap) != 6 || uidMap[0] != "0" || uidMap[1] != strconv.Itoa(os.Getuid()) || uidMap[2] != "1" || uidMap[3] != "1" {
		t.Fatalf("uid_map: %q", uidMap)
	}
	// ps itself and the shell: nothing from the host.
	if n, _ := strconv.Atoi(lines[6]); n > 3 {
		t.Fatalf("container sees %d processes", n)
	}
	if !strings.Contains(r.stdout, "lo=0x9") { // IFF_UP|IFF_LOOPBACK
		t.Fatalf("loopback not up in the container's network namespace: %s", r.stdout)
	}
	if !strings.Contains(r.stdout, "stdin=hello") {
		t.Fatalf("stdin not passed: %s", r.stdout)
	}
	if !strings.Contains(r.stderr, "to-stderr") || strings.Contains(r.stdout, "to-stderr") {
		t.Fatalf("stderr not separate: out=%q err=%q", r.stdout, r.stderr)
	}
	if n, _ := strconv.Atoi(lines[len(lines)-1]); n > 40 || n == 0 {
		t.Fatalf("container sees %d mounts: host mounts leak in", n)
	}
}

func TestRunExitStatus(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t)
	e.sh("exit 42").runBundle(42)

	// Killed by a signal: 128+N, as runc run. SIGKILL reaches pid 1 of a
	// pid namespace only from outside it: send it with sandy kill.
	e.sh("echo up; sleep 100")
	id := "sig-" + strconv.Itoa(os.Getpid())
	cmd := exec.Command(e.sandy, "--root", e.root, "run", "--bundle", e.bundle, id)
	out := &strings.Builder{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "the container to run", func() bool {
		return strings.Contains(e.run("", "state", id).stdout, `"running"`)
	})
	if r := e.run("", "kill", id, "KILL"); r.code != 0 {
		t.Fatalf("kill: %s", r.stderr)
	}
	_ = cmd.Wait()
	if got := cmd.ProcessState.ExitCode(); got != 137 {
		t.Fatalf("exit %d, want 137", got)
	}
}

// TestRunSignalForwarding: a signal sent to `sandy run` reaches the
// container's process.
func TestRunSignalForwarding(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh(`trap 'echo got-term; exit 3' TERM; echo ready; while true; do sleep 0.1; done`)
	cmd := exec.Command(e.sandy, "--root", e.root, "run", e.bundle)
	out := &syncBuffer{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "ready", func() bool { return strings.Contains(out.String(), "ready") })
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	if got := cmd.ProcessState.ExitCode(); got != 3 || !strings.Contains(out.String(), "got-term") {
		t.Fatalf("exit %d, output %q; want 3 and got-term", got, out.String())
	}
}

// TestRunErrors: bad input gets a clear error, and nothing is left behind.
func TestRunErrors(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	tests := []struct {
		name     string
		edit     func(e *env)
		wantCode int
		wantErr  string
	}{
		{"not found", func(e *env) { e.spec.Process.Args = []string{"no-such-program"} }, 127, `"no-such-program": executable file not found`},
		{"empty args", func(e *env) { e.spec.Process.Args = []string{} }, 1, "process.args: empty"},
		{"unknown namespace", func(e *env) {
			e.spec.Linux.Namespaces = append(e.spec.Linux.Namespaces, specs.LinuxNamespace{Type: "bogus"})
		}, 1, `unknown namespace type "bogus"`},
		{"namespace path of another type", func(e *env) {
			for i, n := range e.spec.Linux.Namespaces {
				if n.Type == specs.NetworkNamespace {
					e.spec.Linux.Namespaces[i].Path = "/proc/self/ns/ipc"
				}
			}
		}, 1, "is a ipc namespace, not a network namespace"},
		{"unmappable user", func(e *env) { e.spec.Process.User.UID = 900000 }, 1, "process.user.uid 900000 is not mapped in the container's user namespace (uid map: "},
		{"missing rootfs", func(e *env) { e.spec.Root.Path = "nope" }, 1, `root.path "nope"`},
		{"bad seccomp profile fails closed", func(e *env) {
			e.spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: "SCMP_ACT_BOGUS"}
		}, 1, "linux.seccomp"},
		{"notifying seccomp profile without a listener", func(e *env) {
			e.spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
				Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
		}, 1, "linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t)
			tt.edit(e)
			e.write()
			before := treeHash(t, e.bundle)
			r := e.run("", "run", e.bundle)
			if r.code != tt.wantCode || !strings.Contains(r.stderr, tt.wantErr) {
				t.Fatalf("exit %d, stderr %q; want %d and %q", r.code, r.stderr, tt.wantCode, tt.wantErr)
			}
			if n := strings.Count(r.stderr, "\n"); n > 3 {
				t.Errorf("error is %d lines; want it said once:\n%s", n, r.stderr)
			}
			assertNothingLeft(t, e)
			if treeHash(t, e.bundle) != before {
				t.Fatal("the bundle changed")
			}
		})
	}
	t.Run("missing config", func(t *testing.T) {
		e := newEnv(t)
		_ = os.Remove(filepath.Join(e.bundle, "config.json"))
		r := e.run("", "run", "--bundle", e.bundle, "x")
		if r.code != 1 || !strings.Contains(r.stderr, "has no config.json") {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
	t.Run("malformed config names the line", func(t *testing.T) {
		e := newEnv(t)
		_ = os.WriteFile(filepath.Join(e.bundle, "config.json"), []byte("{\n\"process\": {\n  \"args\": [\"sh\",]\n}}"), 0o644)
		r := e.run("", "run", "--bundle", e.bundle, "x")
		if r.code != 1 || !strings.Contains(r.stderr, "config.json:3:") {
			t.Fatalf("exit %d, stderr %q", r.code, r.stderr)
		}
	})
}

// assertNothingLeft: no state, no process of the test user besides the test.
func assertNothingLeft(t *testing.T, e *env) {
	t.Helper()
	r := e.run("", "list", "-q")
	if strings.TrimSpace(r.stdout) != "" {
		t.Fatalf("containers left: %q", r.stdout)
	}
	ents, _ := os.ReadDir(e.root)
	if len(ents) != 0 {
		t.Fatalf("state left in %s: %v", e.root, ents)
	}
}

// TestRunKill9 kills `sandy run` at several moments: the container dies with
// it, and the next sandy command collects what was left.
func TestRunKill9(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	for _, delay := range []time.Duration{0, 5 * time.Millisecond, 20 * time.Millisecond, 300 * time.Millisecond} {
		t.Run(delay.String(), func(t *testing.T) {
			e := newEnv(t).sh("echo $$ > /dev/null; sleep 100")
			// The rootfs only: the test itself rewrites config.json below.
			rootfs := filepath.Join(e.bundle, "rootfs")
			before := treeHash(t, rootfs)
			cmd := exec.Command(e.sandy, "--root", e.root, "run", e.bundle)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(delay)
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			// Anchored at the end: another test's "sleep 1000" is no survivor.
			waitFor(t, 10*time.Second, "the container's processes to die", func() bool {
				out, _ := exec.Command("pgrep", "-u", strconv.Itoa(os.Getuid()), "-f", "sleep 100$").Output()
				return strings.TrimSpace(string(out)) == ""
			})
			e.sh("echo again").runBundle(0)
			assertNothingLeft(t, e)
			if treeHash(t, rootfs) != before {
				t.Fatal("the bundle's rootfs changed")
			}
		})
	}
}
