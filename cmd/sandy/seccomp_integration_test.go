//go:build integration

package main_test

import (
	"encoding/json"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
)

func errnoRet(n uint) *uint { return &n }

// TestSeccompInContainer: linux.seccomp is compiled and loaded, with and
// without no_new_privs, for the actions and argument filters users rely on.
func TestSeccompInContainer(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	tests := []struct {
		name     string
		nnp      bool
		rules    []specs.LinuxSyscall
		script   string
		wantCode int
		wantOut  string
	}{
		{name: "errno EPERM on mkdir", nnp: true,
			rules:  []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
			script: `mkdir /tmp/x 2>&1; echo rc=$?`, wantOut: "Operation not permitted"},
		{name: "errnoRet without no_new_privs", nnp: false,
			rules:  []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: errnoRet(uint(unix.EROFS))}},
			script: `mkdir /tmp/x 2>&1; echo rc=$?`, wantOut: "Read-only file system"},
		{name: "kill process", nnp: true,
			rules:  []specs.LinuxSyscall{{Names: []string{"sethostname"}, Action: specs.ActKillProcess}},
			script: `echo before; exec hostname x`, wantCode: 128 + int(unix.SIGSYS), wantOut: "before"},
		{name: "argument filter", nnp: true,
			rules: []specs.LinuxSyscall{{Names: []string{"kill"}, Action: specs.ActErrno,
				Args: []specs.LinuxSeccompArg{{Index: 1, Value: uint64(unix.SIGUSR1), Op: specs.OpEqualTo}}}},
			// kill(pid, SIGUSR1) is refused; kill(pid, 0) is not.
			script: `trap '' USR1; kill -USR1 $$ 2>/dev/null; echo usr1=$?; kill -0 $$; echo zero=$?`, wantOut: "usr1=1\nzero=0"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t).sh(tt.script)
			e.spec.Process.NoNewPrivileges = tt.nnp
			e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
				DefaultAction: specs.ActAllow,
				Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchX86, specs.ArchX32},
				Syscalls:      tt.rules,
			}
			e.write()
			r := e.runBundle(tt.wantCode)
			if !strings.Contains(r.stdout, tt.wantOut) {
				t.Fatalf("stdout %q, want it to contain %q (stderr %q)", r.stdout, tt.wantOut, r.stderr)
			}
			if tt.wantCode != 0 && strings.Contains(r.stdout, "after") {
				t.Fatalf("the process went on after a killing syscall: %q", r.stdout)
			}
		})
	}
}

// TestSeccompNotify: SCMP_ACT_NOTIFY hands a working listener to the agent
// at listenerPath, with the container's state, before the process runs.
func TestSeccompNotify(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	dir := testutil.TempDir(t)
	sock := filepath.Join(dir, "agent.sock")
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: sock, Net: "unix"})
	if err != nil {
		t.Fatal(err)
	}
	defer l.Close()
	type got struct {
		state specs.ContainerProcessState
		fds   int
		err   error
	}
	ch := make(chan got, 1)
	go func() {
		c, err := l.AcceptUnix()
		if err != nil {
			ch <- got{err: err}
			return
		}
		defer c.Close()
		buf, oob := make([]byte, 64<<10), make([]byte, 1024)
		n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
		if err != nil {
			ch <- got{err: err}
			return
		}
		var g got
		g.err = json.Unmarshal(buf[:n], &g.state)
		msgs, _ := unix.ParseSocketControlMessage(oob[:oobn])
		for _, m := range msgs {
			fds, _ := unix.ParseUnixRights(&m)
			g.fds += len(fds)
			for _, fd := range fds {
				// A real agent would answer notifications; this one shows
				// the fd is a seccomp listener and lets the kernel fail the
				// notified syscalls when it closes.
				unix.Close(fd)
			}
		}
		ch <- g
	}()
	e := newEnv(t).sh(`mkdir /tmp/notified 2>&1; echo rc=$?`)
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{
		DefaultAction:    specs.ActAllow,
		ListenerPath:     sock,
		ListenerMetadata: "meta-1",
		Syscalls:         []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActNotify}},
	}
	e.write()
	r := e.runBundle(0)
	select {
	case g := <-ch:
		if g.err != nil {
			t.Fatal(g.err)
		}
		if g.fds != 1 || g.state.Metadata != "meta-1" || len(g.state.Fds) != 1 || g.state.Fds[0] != "seccompFd" || g.state.State.Bundle != e.bundle {
			t.Fatalf("agent got %d fds and %+v", g.fds, g.state)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("the agent got nothing")
	}
	// With the listener closed, the notified mkdir fails (ENOSYS).
	if !strings.Contains(r.stdout, "rc=1") {
		t.Fatalf("mkdir under a closed listener: %q", r.stdout)
	}
	_ = os.Remove(sock)
}

// TestSeccompDefaultProfile: --seccomp=default filters a config without a
// profile: namespace creation is refused, ordinary tools work.
func TestSeccompDefaultProfile(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh(`ls / >/dev/null && echo tools-ok; unshare -U true 2>/dev/null; echo unshare=$?`)
	r := e.run("", "run", e.bundle)
	if !strings.Contains(r.stdout, "tools-ok") {
		t.Fatalf("without a profile: %q %q", r.stdout, r.stderr)
	}
	r = e.run("", "run", "--seccomp=default", e.bundle)
	if r.code != 0 || !strings.Contains(r.stdout, "tools-ok") || !strings.Contains(r.stdout, "unshare=1") {
		t.Fatalf("--seccomp=default: %d %q %q", r.code, r.stdout, r.stderr)
	}
}
