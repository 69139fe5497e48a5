//go:build integration

package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestContainerExecPodmanFlags: `sandy container exec` takes podman's
// flags: -u by name (the container's own /etc/passwd and /etc/group,
// read in-root), -w, -e (K=V and the host's K), --env-file, -i (stdin
// only with it), -d (no stdio of the caller's), and podman's statuses
// (126, 127, 125, also for a name nobody holds).
func TestContainerExecPodmanFlags(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e, _ := detachedEnv(t)
	id := e.runD("--name", "ex", "localhost/bb:d", "sleep", "1000")
	t.Cleanup(func() { _ = e.cmd("rm", "-f", "ex").Run() })
	e.ok("container", "exec", "ex", "sh", "-c", `echo "tester:x:1234:2345:T:/home/tester:/bin/sh" >> /etc/passwd; echo "grp:x:2345:" >> /etc/group; echo "extra:x:3456:tester" >> /etc/group`)

	if out := e.ok("container", "exec", "-u", "tester", "ex", "sh", "-c", "id -u; id -g; id -G; echo $HOME"); out != "1234\n2345\n2345 3456\n/home/tester\n" {
		t.Errorf("-u tester: %q, want its uid, gid, groups and home", out)
	}
	if out := e.ok("container", "exec", "-u", "tester:extra", "ex", "id", "-g"); out != "3456\n" {
		t.Errorf("-u tester:extra: %q", out)
	}
	if out := e.ok("container", "exec", "-u", "4321:77", "ex", "sh", "-c", "id -u; id -g"); out != "4321\n77\n" {
		t.Errorf("-u 4321:77: %q", out)
	}
	if msg := e.fails(125, "container", "exec", "-u", "nosuch", "ex", "true"); !strings.Contains(msg, "unable to find user nosuch") {
		t.Errorf("-u nosuch: %s", msg)
	}
	// --privileged: every capability sandy holds, for root; a non-root
	// user gets them in the bounding set only (podman's).
	capEff := func(args ...string) string {
		out := e.ok(append(append([]string{"container", "exec"}, args...), "ex", "sh", "-c", "grep -E '^Cap(Eff|Bnd)' /proc/self/status")...)
		return strings.Join(strings.Fields(out), " ")
	}
	status, err := os.ReadFile("/proc/self/status")
	if err != nil {
		t.Fatal(err)
	}
	_, bnd, _ := strings.Cut(string(status), "CapBnd:")
	all := strings.Fields(bnd)[0] // sandy's own bounding set: what the user namespace can hold
	plain, priv, privUser := capEff(), capEff("--privileged"), capEff("--privileged", "-u", "4321")
	if plain == priv || priv != "CapEff: "+all+" CapBnd: "+all {
		t.Errorf("exec --privileged: %q (without: %q), want every capability (%s) effective", priv, plain, all)
	}
	if privUser != "CapEff: 0000000000000000 CapBnd: "+all {
		t.Errorf("exec --privileged -u 4321: %q, want the bounding set %s and nothing effective", privUser, all)
	}
	if out := e.ok("container", "exec", "-w", "/tmp", "ex", "pwd"); out != "/tmp\n" {
		t.Errorf("-w /tmp: %q", out)
	}
	envFile := filepath.Join(e.dir, "env")
	e.write(envFile, "# comment\nFROMFILE=file\nFOO=overridden\n")
	e.env = append(e.env, "HOSTVAR=fromhost")
	if out := e.ok("container", "exec", "--env-file", envFile, "-e", "FOO=bar", "-e", "HOSTVAR", "ex", "sh", "-c", "echo $FOO $HOSTVAR $FROMFILE"); out != "bar fromhost file\n" {
		t.Errorf("-e, --env-file: %q", out)
	}
	if r := e.run_([]byte("hello"), "container", "exec", "-i", "ex", "cat"); r.code != 0 || r.stdout != "hello" {
		t.Errorf("-i: %+v", r)
	}
	if r := e.run_([]byte("hello"), "container", "exec", "ex", "cat"); r.code != 0 || r.stdout != "" {
		t.Errorf("without -i, stdin is not passed: %+v", r)
	}
	if r := e.run_(nil, "container", "exec", "-d", "ex", "sh", "-c", "echo lost; sleep 1000"); r.code != 0 || r.stdout != "" {
		t.Errorf("-d: %+v", r)
	}
	// The short form: a name is podman's exec, the runtime's id runc's
	// (stdin always passed, runc's --cwd).
	if r := e.run_([]byte("hi"), "exec", "-i", "-w", "/tmp", "ex", "sh", "-c", "pwd; cat"); r.code != 0 || r.stdout != "/tmp\nhi" {
		t.Errorf("exec -i -w /tmp NAME: %+v", r)
	}
	if r := e.run_([]byte("hi"), "exec", "--cwd", "/tmp", id, "sh", "-c", "pwd; cat"); r.code != 0 || r.stdout != "/tmp\nhi" {
		t.Errorf("exec --cwd /tmp ID (runc's): %+v", r)
	}
	if msg := e.fails(125, "exec", "-u", "nosuch", "ex", "true"); !strings.Contains(msg, "unable to find user nosuch") {
		t.Errorf("exec -u nosuch NAME: %s", msg)
	}
	// A name nobody holds: podman's error and status, unless the call
	// has runc's shape (an engine's: --pid-file, --process), which gets
	// runc's ("container does not exist", 255); kill likewise with -s.
	for _, args := range [][]string{{"exec", "no-such", "true"}, {"exec", "-it", "no-such", "true"}, {"kill", "-s", "KILL", "no-such"}} {
		if msg := e.fails(125, args...); !strings.Contains(msg, `no container with name or id "no-such"`) {
			t.Errorf("%q: %s", args, msg)
		}
	}
	if msg := e.fails(255, "exec", "--pid-file", filepath.Join(e.dir, "pid"), "no-such", "true"); !strings.Contains(msg, "container does not exist") {
		t.Errorf("exec --pid-file FILE no-such (runc's shape): %s", msg)
	}
	if msg := e.fails(1, "kill", "no-such", "KILL"); !strings.Contains(msg, "container does not exist") {
		t.Errorf("kill no-such KILL (runc's shape): %s", msg)
	}
	// --detach-keys "": accepted, no key is taken (ctrl-p passes); other
	// keys are refused, since nothing would hold a detached session.
	if r := e.run_([]byte("a\x10b"), "exec", "-i", "--detach-keys", "", "ex", "cat"); r.code != 0 || r.stdout != "a\x10b" {
		t.Errorf("exec --detach-keys \"\": %+v", r)
	}
	if msg := e.fails(125, "exec", "--detach-keys", "ctrl-p,ctrl-q", "ex", "true"); !strings.Contains(msg, "cannot be detached from") {
		t.Errorf("exec --detach-keys ctrl-p,ctrl-q: %s", msg)
	}
	e.fails(127, "container", "exec", "ex", "no-such-command")
	e.fails(126, "container", "exec", "ex", "/etc/passwd")
	if r := e.run_(nil, "container", "exec", "ex", "sh", "-c", "exit 3"); r.code != 3 {
		t.Errorf("exit 3: %+v", r)
	}

	// A name resolved through a symlink the container made to a host
	// file: the host's names are never the container's.
	host := filepath.Join(e.dir, "host-passwd")
	e.write(host, "evil:x:0:0::/:/bin/sh\n")
	if err := os.Chmod(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	e.ok("container", "exec", "ex", "ln", "-sf", host, "/etc/passwd")
	if msg := e.fails(125, "container", "exec", "-u", "evil", "ex", "true"); !strings.Contains(msg, "unable to find user evil") {
		t.Errorf("-u evil through a link to a host file: %s", msg)
	}
}
