//go:build integration

package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// startDetached creates and starts e's bundle as id and deletes it at the end.
func startDetached(t *testing.T, e *env, id string) int {
	t.Helper()
	if r := e.run("", "create", "--bundle", e.bundle, id); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	t.Cleanup(func() { e.run("", "delete", "--force", id) })
	if r := e.run("", "start", id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	return statePid(t, e, id)
}

func uniqueID(prefix string) string {
	return prefix + "-" + strconv.FormatInt(time.Now().UnixNano(), 36)
}

// TestExec: sandy exec runs a process in every namespace of a running
// container, with the container's process settings changed by runc's
// flags, and returns its exit status.
func TestExec(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sleep", "100")
	e.spec.Process.Env = append(e.spec.Process.Env, "FROM_CONFIG=1", "FOO=config")
	e.write()
	id := uniqueID("exec")
	pid := startDetached(t, e, id)

	t.Run("namespaces, env, cwd, exit status", func(t *testing.T) {
		r := e.run("", "exec", "-e", "FOO=flag", "--cwd", "/tmp", id, "sh", "-c",
			`for n in user mnt pid net ipc uts cgroup; do readlink /proc/self/ns/$n; done; echo "$FROM_CONFIG $FOO"; pwd; id -u; cat /proc/1/cmdline | tr '\0' ' '; echo; exit 5`)
		if r.code != 5 {
			t.Fatalf("exit %d, want 5; stderr %s", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		if len(lines) != 11 {
			t.Fatalf("output %q", r.stdout)
		}
		for i, n := range []string{"user", "mnt", "pid", "net", "ipc", "uts", "cgroup"} {
			want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, n))
			if err != nil {
				t.Fatal(err)
			}
			if lines[i] != want {
				t.Errorf("%s namespace %s, want the container's %s", n, lines[i], want)
			}
		}
		if lines[7] != "1 flag" || lines[8] != "/tmp" || lines[9] != "0" || strings.TrimSpace(lines[10]) != "sleep 100" {
			t.Errorf("env/cwd/uid/pid 1: %q", lines[7:])
		}
	})
	t.Run("user and additional gids", func(t *testing.T) {
		r := e.run("", "exec", "-u", "1000:1001", "-g", "1002", id, "id")
		if r.code != 0 || strings.TrimSpace(r.stdout) != "uid=1000 gid=1001 groups=1002" {
			t.Fatalf("exit %d: %q %s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("process file", func(t *testing.T) {
		p := specs.Process{Args: []string{"sh", "-c", "echo from-file $X; pwd"}, Env: []string{"PATH=/bin", "X=y"}, Cwd: "/etc"}
		data, _ := json.Marshal(p)
		f := filepath.Join(testutil.TempDir(t), "process.json")
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
		r := e.run("", "exec", "--process", f, id)
		if r.code != 0 || r.stdout != "from-file y\n/etc\n" {
			t.Fatalf("exit %d: %q %s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("stdin passes through", func(t *testing.T) {
		r := e.run("piped\n", "exec", id, "cat")
		if r.code != 0 || r.stdout != "piped\n" {
			t.Fatalf("exit %d: %q %s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("no host fd, no host cwd", func(t *testing.T) {
		// CVE-2024-21626: nothing of sandy's may reach the process.
		r := e.run("", "exec", id, "sh", "-c", `ls /proc/self/fd | tr '\n' ' '; readlink /proc/self/cwd`)
		if r.code != 0 || r.stdout != "0 1 2 3 /\n" {
			t.Fatalf("exit %d: %q (want fds 0 1 2 and ls's own 3; cwd /) %s", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("not found is 255, as with runc exec", func(t *testing.T) {
		r := e.run("", "exec", id, "no-such-command")
		if r.code != 255 || !strings.Contains(r.stderr, `exec: "no-such-command": executable file not found in $PATH`) {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
	})
	t.Run("signals reach the process", func(t *testing.T) {
		cmd := exec.Command(e.sandy, "--root", e.root, "exec", id, "sh", "-c", `trap 'echo got-term; exit 9' TERM; echo ready; while :; do sleep 0.1; done`)
		var out syncBuffer
		cmd.Stdout = &out
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		waitFor(t, 10*time.Second, "ready", func() bool { return strings.Contains(out.String(), "ready") })
		_ = cmd.Process.Signal(unix.SIGTERM)
		err := cmd.Wait()
		if cmd.ProcessState.ExitCode() != 9 || !strings.Contains(out.String(), "got-term") {
			t.Fatalf("exit %v, output %q", err, out.String())
		}
	})
	t.Run("bad flags", func(t *testing.T) {
		for _, args := range [][]string{
			{"exec", id},
			{"exec", "-u", "root", id, "true"},
			{"exec", "-t", "-d", id, "true"},
		} {
			if r := e.run("", args...); r.code == 0 {
				t.Errorf("sandy %v succeeded", args)
			}
		}
	})
}

// TestExecStates: exec works in a created container (before start), and is
// refused in a stopped or paused one.
func TestExecStates(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sh", "-c", "exit 0")
	id := uniqueID("states")
	if r := e.run("", "create", "--bundle", e.bundle, id); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	defer e.run("", "delete", "--force", id)
	if r := e.run("", "exec", id, "echo", "in-created"); r.code != 0 || r.stdout != "in-created\n" {
		t.Fatalf("exec in a created container: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if r := e.run("", "start", id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	waitFor(t, 10*time.Second, "stopped", func() bool { return ociState(t, e, id).Status == "stopped" })
	if r := e.run("", "exec", id, "true"); r.code == 0 || !strings.Contains(r.stderr, "stopped") {
		t.Fatalf("exec in a stopped container: %d %s", r.code, r.stderr)
	}
	if r := e.run("", "exec", "nonexistent", "true"); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Fatalf("exec in a missing container: %d %s", r.code, r.stderr)
	}
}

// TestExecDetach: exec --detach returns once the process runs, writes its
// pid, and leaves the process to the caller's subreaper (as conmon is),
// which reaps it and sees its exit status.
func TestExecDetach(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	e := newEnv(t, "sleep", "100")
	id := uniqueID("detach")
	startDetached(t, e, id)
	pidFile := filepath.Join(testutil.TempDir(t), "exec.pid")
	t0 := time.Now()
	r := e.run("", "exec", "-d", "--pid-file", pidFile, id, "sh", "-c", "sleep 1; exit 3")
	if r.code != 0 {
		t.Fatalf("exec -d: %d %s", r.code, r.stderr)
	}
	if time.Since(t0) > 900*time.Millisecond {
		t.Errorf("exec -d took %v: it waited for the process", time.Since(t0))
	}
	data, err := os.ReadFile(pidFile)
	if err != nil {
		t.Fatal(err)
	}
	pid, _ := strconv.Atoi(strings.TrimSpace(string(data)))
	var ws unix.WaitStatus
	done := make(chan error, 1)
	go func() { _, err := unix.Wait4(pid, &ws, 0, nil); done <- err }()
	select {
	case err := <-done:
		if err != nil || !ws.Exited() || ws.ExitStatus() != 3 {
			t.Fatalf("reaping pid %d: %v, status %v", pid, err, ws)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("the detached process never came to its subreaper")
	}
}

// TestExecPreserveFDs: --preserve-fds N passes fds 3..3+N-1 and nothing
// else.
func TestExecPreserveFDs(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sleep", "100")
	id := uniqueID("fds")
	startDetached(t, e, id)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	cmd := exec.Command(e.sandy, "--root", e.root, "exec", "--preserve-fds", "1", id, "sh", "-c", `echo via-fd3 >&3; ls /proc/self/fd | tr '\n' ' '`)
	cmd.ExtraFiles = []*os.File{w}
	out, err := cmd.Output()
	w.Close()
	if err != nil {
		t.Fatalf("exec: %v", err)
	}
	got, _ := io.ReadAll(r)
	if string(got) != "via-fd3\n" || string(out) != "0 1 2 3 4 " {
		t.Fatalf("fd 3 gave %q; fds %q (want 0 1 2 3 and ls's own 4)", got, out)
	}
}

// TestExecSeccomp: the exec'd process is filtered by the container's
// profile.
func TestExecSeccomp(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sleep", "100")
	e.spec.Process.NoNewPrivileges = true
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
	}
	e.write()
	id := uniqueID("scmp")
	startDetached(t, e, id)
	r := e.run("", "exec", id, "sh", "-c", "mkdir /tmp/x 2>&1; grep Seccomp: /proc/self/status")
	if !strings.Contains(r.stdout, "Operation not permitted") || !strings.Contains(r.stdout, "Seccomp:\t2") {
		t.Fatalf("exec'd process not filtered: %q %s", r.stdout, r.stderr)
	}
}

// TestExecTerminal: exec --tty with --console-socket hands the pty master
// of a pty from the container's devpts to the socket (runc's protocol);
// without a socket, sandy relays it.
func TestExecTerminal(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sleep", "100")
	id := uniqueID("tty")
	startDetached(t, e, id)

	sock, masters := consoleSocket(t)
	r := e.run("", "exec", "-t", "--console-socket", sock, id, "sh", "-c", "tty; echo done")
	if r.code != 0 {
		t.Fatalf("exec -t: %d %s", r.code, r.stderr)
	}
	master := <-masters
	defer master.Close()
	out := readUntil(t, master, "done")
	if !strings.Contains(out, "/dev/pts/") {
		t.Fatalf("console output %q", out)
	}

	// Relayed: sandy's own stdout is not a terminal; the process's is.
	r = e.run("", "exec", "-t", id, "sh", "-c", "tty; exit 4")
	if r.code != 4 || !strings.Contains(r.stdout, "/dev/pts/") {
		t.Fatalf("relayed exec -t: %d %q %s", r.code, r.stdout, r.stderr)
	}
}

// consoleSocket listens on a unix socket for one runc console message and
// returns the pty master it carries.
func consoleSocket(t *testing.T) (string, <-chan *os.File) {
	t.Helper()
	path := filepath.Join(testutil.TempDir(t), "console.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { l.Close() })
	ch := make(chan *os.File, 1)
	go func() {
		c, err := l.AcceptUnix()
		if err != nil {
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 4096), make([]byte, unix.CmsgSpace(4))
		_, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			return
		}
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			if fds, err := unix.ParseUnixRights(&m); err == nil && len(fds) == 1 {
				ch <- os.NewFile(uintptr(fds[0]), "pty-master")
			}
		}
	}()
	return path, ch
}

func readUntil(t *testing.T, f *os.File, marker string) string {
	t.Helper()
	var out syncBuffer
	go func() { _, _ = io.Copy(&out, f) }()
	waitFor(t, 10*time.Second, marker, func() bool { return strings.Contains(out.String(), marker) })
	return out.String()
}
