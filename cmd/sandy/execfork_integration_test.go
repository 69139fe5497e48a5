//go:build integration

package main_test

import (
	"fmt"
	"net"
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

// The fork path of exec (userns/forkexec.go): `sandy exec` forks the
// process itself; the nsenter chain remains for a terminal and a seccomp
// NOTIFY listener.

const (
	forkedPath   = "exec: path: forked by sandy exec"
	fallbackPath = "exec: path: nsenter and the exec init"
)

// TestExecPathTaken: --debug says which path ran: the fork for a plain
// exec, the exec init for --tty and for a profile with SCMP_ACT_NOTIFY.
func TestExecPathTaken(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sleep", "100")
	id := uniqueID("path")
	startDetached(t, e, id)
	r := e.run("", "--debug", "exec", id, "true")
	if r.code != 0 || !strings.Contains(r.stderr, forkedPath) || strings.Contains(r.stderr, "starting the exec init") {
		t.Fatalf("plain exec: %d, want the fork path: %s", r.code, r.stderr)
	}
	r = e.run("", "--debug", "exec", "-t", id, "true")
	if r.code != 0 || !strings.Contains(r.stderr, fallbackPath+" (process.terminal") {
		t.Fatalf("exec -t: %d, want the exec init: %s", r.code, r.stderr)
	}

	// A NOTIFY profile: an agent that takes every listener and closes it.
	sock := filepath.Join(testutil.TempDir(t), "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	go func() {
		for {
			c, err := l.AcceptUnix()
			if err != nil {
				return
			}
			buf, oob := make([]byte, 64<<10), make([]byte, 1024)
			_, oobn, _, _, _ := c.ReadMsgUnix(buf, oob)
			msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
			for _, m := range msgs {
				fds, _ := unix.ParseUnixRights(&m)
				for _, fd := range fds {
					unix.Close(fd)
				}
			}
			c.Close()
		}
	}()
	n := newEnv(t, "sleep", "100")
	n.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		ListenerPath:  sock,
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
	}
	n.write()
	nid := uniqueID("notify")
	startDetached(t, n, nid)
	r = n.run("", "--debug", "exec", nid, "sh", "-c", "mkdir /tmp/n 2>/dev/null; echo rc=$?")
	if r.code != 0 || r.stdout != "rc=1\n" || !strings.Contains(r.stderr, fallbackPath+" (a seccomp NOTIFY listener") {
		t.Fatalf("exec with a NOTIFY profile: %d %q, want the exec init: %s", r.code, r.stdout, r.stderr)
	}
}

// childrenOf lists the children of pid (all its threads').
func childrenOf(t *testing.T, pid int) []int {
	t.Helper()
	tasks, _ := filepath.Glob(fmt.Sprintf("/proc/%d/task/*/children", pid))
	var out []int
	for _, f := range tasks {
		data, _ := os.ReadFile(f)
		for _, s := range strings.Fields(string(data)) {
			n, _ := strconv.Atoi(s)
			out = append(out, n)
		}
	}
	return out
}

// TestExecForkedShape: the process is the child of `sandy exec` itself,
// in every namespace of the container and in its cgroup.
func TestExecForkedShape(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sleep", "100")
	id := uniqueID("shape")
	initPid := startDetached(t, e, id)
	cmd := exec.Command(e.sandy, "--root", e.root, "exec", id, "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	var kids []int
	waitFor(t, 10*time.Second, "the exec'd sleep", func() bool {
		kids = childrenOf(t, cmd.Process.Pid)
		if len(kids) != 1 {
			return false
		}
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", kids[0]))
		return strings.TrimSpace(string(comm)) == "sleep"
	})
	pid := kids[0]
	for _, ns := range []string{"user", "mnt", "pid", "net", "ipc", "uts", "cgroup"} {
		want, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", initPid, ns))
		if err != nil {
			t.Fatal(err)
		}
		got, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, ns))
		if err != nil || got != want {
			t.Errorf("%s namespace %s (%v), want the container's %s", ns, got, err, want)
		}
	}
	cg := func(p int) string {
		data, err := os.ReadFile(fmt.Sprintf("/proc/%d/cgroup", p))
		if err != nil {
			t.Fatal(err)
		}
		return string(data)
	}
	if got, want := cg(pid), cg(initPid); got != want {
		t.Errorf("cgroup %q, want the container's %q", got, want)
	}
	// Its parent is sandy exec, which waits for it: kill it, and sandy
	// exec returns 128+9.
	if err := unix.Kill(pid, unix.SIGKILL); err != nil {
		t.Fatal(err)
	}
	err := cmd.Wait()
	if cmd.ProcessState.ExitCode() != 137 {
		t.Errorf("sandy exec: %v, want exit 137", err)
	}
}

// TestExecExeNotReachable (CVE-2019-5736, on the fork path): until its
// execve the forked process runs the host's sandy binary, with no sealed
// copy; a container process that tries to open /proc/PID/exe of every
// process that appears while 50 execs run gets EACCES or EPERM (the
// process is not dumpable and its memory belongs to the host's user
// namespace), never the binary.
func TestExecExeNotReachable(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sh", "-c", `
		touch /tmp/denied /tmp/leaked /tmp/opened
		while [ ! -e /tmp/stop ]; do
			for p in /proc/[0-9]*; do
				[ "$p" = /proc/1 ] && continue
				# The open holds the file: its link names what was opened.
				if t=$(readlink /proc/self/fd/3 2>/tmp/err 3<$p/exe); then
					case "$t" in /bin/*|/sbin/*|/usr/*) echo "$t" >>/tmp/opened;; *) echo "$p $t" >>/tmp/leaked;; esac
				elif grep -q "denied\|not permitted" /tmp/err; then
					echo "$p" >>/tmp/denied
				fi
			done
		done
		exec sleep 100`)
	id := uniqueID("exe")
	startDetached(t, e, id)
	for i := 0; i < 50; i++ {
		if r := e.run("", "exec", id, "true"); r.code != 0 {
			t.Fatalf("exec %d: %d %s", i, r.code, r.stderr)
		}
	}
	r := e.run("", "exec", id, "sh", "-c", "touch /tmp/stop; sleep 0.2; cat /tmp/leaked; echo END; wc -l </tmp/denied; wc -l </tmp/opened")
	leaked, counts, ok := strings.Cut(r.stdout, "END\n")
	if r.code != 0 || !ok {
		t.Fatalf("reading the racer's results: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if leaked != "" {
		t.Fatalf("a container process opened a forked sandy's exe: %q", leaked)
	}
	t.Logf("racer: %q (opens denied, opens of container programs)", strings.Fields(counts))
}

// TestExecCwdFdRefused (CVE-2024-21626, on the fork path): a cwd of
// /proc/self/fd/N never leads out of the container: the forked process
// has closed every fd of the host's but stdio before it enters the
// directory, and a stdio fd that is a host directory is refused as
// outside the root.
func TestExecCwdFdRefused(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sleep", "100")
	id := uniqueID("cwdfd")
	startDetached(t, e, id)
	hostDir, err := os.Open(testutil.TempDir(t))
	if err != nil {
		t.Fatal(err)
	}
	defer hostDir.Close()
	for n := 0; n <= 8; n++ {
		cmd := exec.Command(e.sandy, "--root", e.root, "exec", "--cwd", fmt.Sprintf("/proc/self/fd/%d", n), id, "sh", "-c", "echo ran; pwd")
		cmd.Stdin = hostDir // a host directory as fd 0
		out, err := cmd.CombinedOutput()
		if err == nil || strings.Contains(string(out), "ran") {
			t.Errorf("cwd /proc/self/fd/%d: ran (%v): %s", n, err, out)
			continue
		}
		if code := cmd.ProcessState.ExitCode(); code != 255 {
			t.Errorf("cwd /proc/self/fd/%d: exit %d, want 255: %s", n, code, out)
		}
		if n == 0 && !strings.Contains(string(out), "outside the container's root") {
			t.Errorf("cwd /proc/self/fd/0 (a host directory): %s, want it refused as outside the root", out)
		}
	}
}

// TestExecKilledLeavesNothing: `sandy exec` killed with SIGKILL at any
// moment of its set-up leaves no process: the forked children exit when
// its pipe closes (a process that already ran ends by itself).
func TestExecKilledLeavesNothing(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sleep", "100")
	id := uniqueID("kill")
	startDetached(t, e, id)
	for _, d := range []time.Duration{0, time.Millisecond, 2 * time.Millisecond, 4 * time.Millisecond, 8 * time.Millisecond, 15 * time.Millisecond, 30 * time.Millisecond} {
		marker := fmt.Sprintf("kill-marker-%d", d.Microseconds())
		cmd := exec.Command(e.sandy, "--root", e.root, "exec", id, "sh", "-c", "sleep 0.3", marker)
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		time.Sleep(d)
		_ = cmd.Process.Signal(syscall.SIGKILL)
		_ = cmd.Wait()
		waitFor(t, 10*time.Second, "no process with "+marker, func() bool {
			return len(processesWith(marker)) == 0
		})
	}
}

// processesWith lists the pids whose command line contains s.
func processesWith(s string) []string {
	var out []string
	dirs, _ := filepath.Glob("/proc/[0-9]*")
	for _, d := range dirs {
		data, err := os.ReadFile(d + "/cmdline")
		if err == nil && strings.Contains(string(data), s) {
			out = append(out, filepath.Base(d))
		}
	}
	return out
}
