//go:build linux

package initproc

import (
	"errors"
	"fmt"
	"math"
	"os"
	"runtime"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/userns"
)

// Main runs the init. It never returns: it execs the container process or
// exits 1 after sending its error to the host.
func Main() {
	// Mounts through /proc/thread-self, prctl and setns-like calls act on
	// the calling thread: keep the whole init on one.
	runtime.LockOSThread()
	conn := userns.NewConn(SyncFD)
	var started *os.File // the exec fifo, once `start` has released us
	ce, code := childFailure(run(conn, &started))
	_ = conn.Send(userns.MsgError, ce)
	if started != nil {
		// After `start` nobody may be reading the sync socket (create
		// returned long ago): say it where the container's output goes,
		// and tell `start`, which reads the fifo until execve, that
		// there will be none.
		fmt.Fprintf(os.Stderr, "sandy init: %v\n", ce)
		_, _ = started.Write([]byte{FifoFailed})
	}
	os.Exit(code)
}

// childFailure is what a failed init (or exec init) sends to the host and
// exits with: the ChildError in err, or one made of its text, and the
// ChildError's exit code (127: not found, 126: not executable, as a shell
// says them), else 1.
func childFailure(err error) (*userns.ChildError, int) {
	var ce *userns.ChildError
	if !errors.As(err, &ce) {
		ce = &userns.ChildError{Message: err.Error()}
	}
	return ce, userns.ExitStatus(ce)
}

// stepError names the step that failed.
func stepError(step string, err error) error {
	var ce *userns.ChildError
	if errors.As(err, &ce) {
		if ce.Step == "" {
			ce.Step = step
		}
		return ce
	}
	return &userns.ChildError{Step: step, Message: err.Error()}
}

func run(conn *userns.Conn, released **os.File) error {
	// First run: wait for the maps, then re-exec with capabilities
	// (GainCaps does not return then). Second run: straight on.
	if os.Getenv(EnvMarker) == "" {
		if err := conn.Send(MsgHello, nil); err != nil {
			return stepError("greeting the host", err)
		}
		if _, err := conn.Expect(MsgMaps); err != nil {
			return stepError("waiting for the id maps", err)
		}
		if err := userns.GainCaps(EnvMarker); err != nil {
			return stepError("gaining capabilities", err)
		}
	}
	conn.CloseOnExec()
	// Every inherited fd (the sync socket, the fifo, the sandy binary, the
	// gate) close-on-exec now, before a seccomp profile could forbid
	// close_range(2): none may reach the container (CVE-2024-21626); fds
	// the init opens later are O_CLOEXEC (Go's default).
	if err := unix.CloseRange(3, math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC); err != nil {
		return stepError("marking fds close-on-exec", err)
	}
	var cfg Config
	if err := recvConfig(conn, &cfg); err != nil {
		return stepError("receiving the config", err)
	}
	filter, err := compiledSeccomp(&cfg)
	if err != nil {
		return stepError("receiving the config", err)
	}

	if cfg.Pdeathsig != 0 {
		// Started through the spawn helper, the init has none yet (see
		// userns/spawn.go); setUser sets it again after the id change.
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(cfg.Pdeathsig), 0, 0, 0); err != nil {
			return stepError("prctl(PR_SET_PDEATHSIG)", err)
		}
	}
	// Not dumpable until execve: no process in the container can ptrace
	// the init or open its /proc/PID files (exe, fd/, environ).
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return stepError("prctl(PR_SET_DUMPABLE)", err)
	}
	fifo := openStartAsync(cfg.StartSocket)
	if cfg.UnshareCgroupNS {
		// Rooted at the container cgroup, where the host put us.
		if err := unix.Unshare(unix.CLONE_NEWCGROUP); err != nil {
			return stepError("creating the cgroup namespace", err)
		}
	}
	if err := bringUpLoopback(cfg.Spec); err != nil {
		return stepError("bringing up lo", err)
	}
	if cfg.Tap != nil {
		if err := makeTap(cfg.Spec, cfg.Tap); err != nil {
			return stepError("making tap0 for sandy's network", err)
		}
	}
	if err := setOOMScoreAdj(&cfg); err != nil {
		return stepError("setting oom_score_adj", err)
	}

	// A joined user namespace may deny setgroups too (its creator's
	// choice): ask the kernel, while the host's /proc is ours to read.
	cfg.SetgroupsDenied = cfg.SetgroupsDenied || setgroupsDenied()
	if cfg.MountNS != "" {
		if err := joinMountNS(cfg.MountNS); err != nil {
			return stepError("joining the mount namespace "+cfg.MountNS, err)
		}
	}
	t0 := time.Now()
	r, err := setupRootfs(&cfg, conn)
	if err != nil {
		return stepError("setting up the root filesystem", err)
	}
	st, err := createHooks(&cfg, conn, r.root)
	if err != nil {
		return err
	}
	if err := r.pivotRoot(); err != nil {
		return stepError("pivot_root", err)
	}
	debugf(&cfg, conn, "init: root filesystem, hooks and pivot_root: %v", time.Since(t0))
	if cfg.NoProcess {
		if err := conn.Send(MsgReady, nil); err != nil {
			return stepError("reporting ready", err)
		}
		f, err := waitStart(fifo)
		if err != nil {
			return stepError("waiting for start", err)
		}
		*released = f
		return stepError("starting", errors.New("config.json has no process"))
	}
	p := newProcess(cfg.Spec.Process, r.console, cfg.SetgroupsDenied, cfg.Pdeathsig)
	t0 = time.Now()
	if err := p.finish(filter, conn); err != nil {
		return err
	}
	debugf(&cfg, conn, "init: process set-up and seccomp: %v", time.Since(t0))
	if err := conn.Send(MsgReady, nil); err != nil {
		return stepError("reporting ready", err)
	}
	started, err := waitStart(fifo)
	if err != nil {
		return stepError("waiting for start", err)
	}
	// Open until execve closes it (see waitStart), held by Main.
	*released = started
	if err := startHooks(&cfg, st); err != nil {
		return err
	}
	if p.selfInit(r.selfCopies) {
		return p.exec(started)
	}
	return p.exec(nil)
}

// joinMountNS moves the init's thread, on which the whole set-up runs,
// into the mount namespace at path (see enterMountNS): the container's
// root is then built in there, as runc builds it.
func joinMountNS(path string) error {
	fd, err := unix.Open(path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	return enterMountNS(fd)
}

type fifoResult struct {
	f   *os.File
	err error
}

// openStartAsync waits in the background for the start: the exec fifo's
// open (openFifoAsync), or one byte from the start socket (Config.
// StartSocket), which `sandy run` writes when it releases the init. An
// end of file there is a run that went away: no start.
func openStartAsync(socket bool) <-chan fifoResult {
	if !socket {
		return openFifoAsync()
	}
	ch := make(chan fifoResult, 1)
	go func() {
		var b [1]byte
		n, err := unix.Read(FifoFD, b[:])
		for errors.Is(err, unix.EINTR) {
			n, err = unix.Read(FifoFD, b[:])
		}
		switch {
		case err != nil:
			ch <- fifoResult{nil, fmt.Errorf("reading the start socket: %w", err)}
		case n != 1:
			ch <- fifoResult{nil, errors.New("sandy run went away before it started the process")}
		default:
			ch <- fifoResult{os.NewFile(uintptr(FifoFD), "start-socket"), nil}
		}
	}()
	return ch
}

// openFifoAsync reopens the exec fifo write-only in the background: the
// open blocks until `start` opens the read side. It goes through a handle on
// the host's /proc/self/fd taken now, before pivot_root hides the host's
// /proc, so it works whether or not the container mounts a /proc. Both fds
// are closed once the open returns.
func openFifoAsync() <-chan fifoResult {
	ch := make(chan fifoResult, 1)
	dir, err := unix.Open("/proc/self/fd", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		ch <- fifoResult{nil, fmt.Errorf("opening /proc/self/fd: %w", err)}
		return ch
	}
	go func() {
		fd, err := unix.Openat(dir, fmt.Sprint(FifoFD), unix.O_WRONLY|unix.O_CLOEXEC, 0)
		unix.Close(dir)
		unix.Close(FifoFD)
		if err != nil {
			ch <- fifoResult{nil, err}
			return
		}
		ch <- fifoResult{os.NewFile(uintptr(fd), "exec.fifo"), nil}
	}()
	return ch
}

// waitStart blocks until `start` opens the fifo, then writes the one byte
// it reads. The fifo stays open, close-on-exec: `start` reads on until
// EOF, which comes with the execve of the process (or the init's death),
// so that it runs the poststart hooks after the process is executed, as
// the runtime spec orders.
func waitStart(ch <-chan fifoResult) (*os.File, error) {
	r := <-ch
	if errors.Is(r.err, unix.EMFILE) {
		// process.rlimits hold for the init from before the id switch.
		return nil, fmt.Errorf("opening the exec fifo: %w (process.rlimits: RLIMIT_NOFILE is below the fds the init holds until execve; raise it to 32 or more)", r.err)
	}
	if r.err != nil {
		return nil, fmt.Errorf("opening the exec fifo: %w", r.err)
	}
	if _, err := r.f.Write([]byte{FifoReleased}); err != nil {
		r.f.Close()
		return nil, fmt.Errorf("writing the exec fifo: %w", err)
	}
	return r.f, nil
}
