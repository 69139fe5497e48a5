//go:build linux

package initproc

import (
	"errors"
	"flag"
	"fmt"
	"math"
	"os"
	"runtime"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/inroot"
	"github.com/sandy-rt/sandy/userns"
)

// ExecRole is the hidden argv[1] of the exec init: the process `sandy exec`
// starts in a running container's namespaces, which sets itself up as the
// new container process and execs it.
const ExecRole = "_exec"

// ExecConfig is what the exec init needs, sent by the host after hello.
type ExecConfig struct {
	Process *specs.Process      `json:"process"`
	Seccomp *specs.LinuxSeccomp `json:"seccomp,omitempty"` // nil: not filtered
}

// How the exec init gets into the container (the host side is
// internal/lifecycle/exec.go):
//
//	sandy exec ── nsenter --user --net --ipc --uts --cgroup --pid (by fd)
//	                 └─fork, execve─ sandy _exec
//
// nsenter joins the user namespace, which a multi-threaded Go process
// cannot (setns(2): EINVAL), and the others, and forks the exec init into
// the pid namespace (setns(CLONE_NEWPID) only moves the children); once
// the exec init has said hello, `sandy exec` kills nsenter, so that the
// exec init comes to it, a child subreaper (userns.Child.Adopt), which
// waits for it, or, detached, leaves it to its own subreaper. No spawn
// helper: there is no namespace left to make. The mount namespace comes last and from
// here: after setns(CLONE_NEWNS) every path, the sandy binary's included,
// resolves in the container's root, so no exec may follow it except the
// container process's own. A Go process can still enter it on one thread:
// setns(CLONE_NEWNS) refuses a caller whose fs_struct is shared (Go's
// threads share theirs: CLONE_FS), and unshare(CLONE_FS) gives the locked
// thread its own. Namespaces and credentials are per thread, and execve
// from that thread keeps them for the new program.

// ExecMain runs the exec init. It never returns: it execs the process or
// exits after sending its error to the host.
func ExecMain(args []string) {
	runtime.LockOSThread() // everything below happens on this thread
	fs := flag.NewFlagSet(ExecRole, flag.ContinueOnError)
	syncFD := fs.Int("sync-fd", -1, "the sync socket")
	mntFD := fs.Int("mnt-fd", -1, "the container's mount namespace")
	preserve := fs.Int("preserve-fds", 0, "fds from 3 on that the process keeps")
	if err := fs.Parse(args); err != nil || *syncFD < 3 || *mntFD < 3 {
		fmt.Fprintln(os.Stderr, "usage: sandy _exec --sync-fd N --mnt-fd N [--preserve-fds N]")
		os.Exit(2)
	}
	conn := userns.NewConn(*syncFD)
	conn.CloseOnExec()
	ce, code := childFailure(execRun(conn, *mntFD, *preserve))
	_ = conn.Send(userns.MsgError, ce)
	os.Exit(code)
}

func execRun(conn *userns.Conn, mntFD, preserve int) error {
	// Every fd but stdio and the preserved ones close-on-exec first, while
	// no seccomp profile can forbid close_range(2) (CVE-2024-21626).
	if err := unix.CloseRange(uint(3+preserve), math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return stepError("marking fds close-on-exec", err)
	}
	if err := conn.Send(MsgHello, nil); err != nil {
		return stepError("greeting the host", err)
	}
	var cfg ExecConfig
	if err := recvConfig(conn, &cfg); err != nil {
		return stepError("receiving the config", err)
	}
	if cfg.Process == nil {
		return stepError("receiving the config", errors.New("no process"))
	}
	filter := compileSeccomp(cfg.Seccomp) // beside entering the container; installed at the end
	// Not dumpable until execve: the container's processes, which share
	// our pid namespace now, can neither ptrace us nor open /proc/PID/exe.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return stepError("prctl(PR_SET_DUMPABLE)", err)
	}
	if !hasCap(unix.CAP_SYS_ADMIN) {
		return stepError("entering the container", errors.New("no capabilities in the container's user namespace: exec needs your uid mapped to root in the container (linux.uidMappings)"))
	}
	denied := setgroupsDenied()
	if err := enterMountNS(mntFD); err != nil {
		return stepError("entering the container's mount namespace", err)
	}
	console, err := execConsole(cfg.Process, conn)
	if err != nil {
		return stepError("allocating the pty", err)
	}
	p := newProcess(cfg.Process, console, denied, 0)
	p.preserveFDs = preserve
	if err := p.finish(filter, conn); err != nil {
		return err
	}
	if err := conn.Send(MsgReady, nil); err != nil {
		return stepError("reporting ready", err)
	}
	// The host set the rlimits during finish (before the id switch); it
	// says go once it has written the pid file (and, in the foreground,
	// set up the relay).
	if _, err := conn.Expect(MsgStart); err != nil {
		return stepError("waiting for start", err)
	}
	return p.exec(nil)
}

// setgroupsDenied reads /proc/self/setgroups ("deny" under the single-id
// map), while the host's /proc is still the one we see.
func setgroupsDenied() bool {
	data, err := os.ReadFile("/proc/self/setgroups")
	return err == nil && strings.TrimSpace(string(data)) == "deny"
}

// enterMountNS moves this thread into the mount namespace mntFD names:
// it gets its own fs_struct first (see above), and then has the
// container's root and / as its working directory.
func enterMountNS(mntFD int) error {
	if err := unix.Unshare(unix.CLONE_FS); err != nil {
		return fmt.Errorf("unshare(CLONE_FS): %w", err)
	}
	err := unix.Setns(mntFD, unix.CLONE_NEWNS)
	unix.Close(mntFD)
	if err != nil {
		return fmt.Errorf("setns: %w", err)
	}
	return unix.Chdir("/")
}

// execConsole allocates the process's pty from the container's devpts
// (resolved in the container's root like any container path: the
// container controls it) and sends the master to the host.
func execConsole(p *specs.Process, conn *userns.Conn) (*os.File, error) {
	if !p.Terminal {
		return nil, nil
	}
	root, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer root.Close()
	ptmx, err := inroot.Open(root, "/dev/pts/ptmx")
	if err != nil {
		return nil, fmt.Errorf("a terminal needs the container's devpts on /dev/pts: %w", err)
	}
	defer ptmx.Close()
	master, slave, err := openPty(ptmx)
	if err != nil {
		return nil, err
	}
	defer master.Close()
	if err := preparePty(slave, p); err != nil {
		slave.Close()
		return nil, err
	}
	if err := conn.Send(MsgPty, nil, int(master.Fd())); err != nil {
		slave.Close()
		return nil, err
	}
	return slave, nil
}

// hasCap reports whether this thread has capability c in its effective set.
func hasCap(c uint) bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	return data[c/32].Effective&(1<<(c%32)) != 0
}
