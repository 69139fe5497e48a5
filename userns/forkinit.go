//go:build linux

package userns

import (
	"errors"
	"fmt"
	"io"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Starting a container's init with a raw fork: new namespaces, a program
// of system calls, then the process, with no second Go runtime.
//
// ForkExec (forkexec.go) starts a process in a running container's
// namespaces. ForkInit starts the first one, in namespaces it makes:
//
//	caller ── clone(plan.Cloneflags, CLONE_NEWUSER among them) ── child:
//	             fds into place, every other fd closed, setsid and the
//	             parent-death signal if asked;
//	caller writes the child's uid and gid maps (writeMaps), then one
//	byte on the go pipe;
//	             child: not dumpable, plan.Program (the root filesystem:
//	             mounts, /dev, pivot_root, the hostname ...), a StepReady
//	             record on the status pipe, then ForkExec's child 2 from
//	             the bounding set on: it waits for Release, and so on to
//	             execve.
//
// The caller learns the child's pid from the clone (it is the caller's
// own child), waits for StepReady with AwaitReady (a failure record
// instead: the op of the program that failed, ProgramError), does what
// must precede the process (its rlimits, the state, the pid file), and
// releases it.
//
// The child stays dumpable until its maps are written: newuidmap and the
// kernel refuse to write the maps of a process whose /proc files are
// root's, which a process that is not dumpable has. Nothing of the
// container exists yet then (no mount, no process in its namespaces), and
// the only processes that could ptrace it are the caller's user's own,
// which could ptrace the caller. Where the child shares the caller's
// memory (forkvm_amd64.go), its dumpability is the caller's: ForkInit
// then takes the vmShares lock as the overlay's child does
// (dumpableForOverlay: no other raw child shares the memory meanwhile),
// and the child makes itself, and so the caller, not dumpable before it
// reads anything of the container.
//
// The capabilities: a child cloned with CLONE_NEWUSER has every
// capability in its new user namespace, whatever its ids; once the maps
// make it uid 0 there, the program runs as root of the container, and
// ForkExec's steps then drop what plan asks (bounding set, ids, capset).

// ForkInit starts plan's process in new namespaces (see the top of this
// file). writeMaps writes the child's uid and gid maps, given its pid.
// It returns once the child runs its program: AwaitReady waits for it.
//
// In a user namespace that has its maps already (the image store's, which
// its pause process holds, where the caller is uid 0), plan.Joins is
// that namespace alone and plan.Unshare the namespaces to make: see
// forkInitJoined. writeMaps then writes no maps; it does what must
// precede the program (nil: nothing).
func ForkInit(plan *ForkPlan, writeMaps func(pid int) error) (*Forked, error) {
	if len(plan.Joins) > 0 {
		return forkInitJoined(plan, writeMaps)
	}
	if plan.Cloneflags&unix.CLONE_NEWUSER == 0 {
		return nil, errors.New("starting the init: ForkInit needs CLONE_NEWUSER")
	}
	if len(plan.Joins) > 0 || plan.Unshare != 0 || plan.JoinAsRoot {
		return nil, errors.New("starting the init: ForkInit makes its namespaces: no joins")
	}
	if len(plan.Program) == 0 {
		return nil, errNoProgram
	}
	r, err := prepare(plan)
	if err != nil {
		return nil, err
	}
	r.init, r.cloneflags = true, plan.Cloneflags
	goR, goW, statusR, statusW, err := forkPipes(plan, r)
	if err != nil {
		return nil, err
	}
	defer goR.Close()
	unlock := dumpableForOverlay()
	syscall.ForkLock.Lock()
	pid, errno := forkInitChild(r)
	syscall.ForkLock.Unlock()
	statusW.Close()
	runtime.KeepAlive(plan)
	if errno != 0 {
		unlock()
		goW.Close()
		statusR.Close()
		return nil, explainCloneError(fmt.Errorf("clone: %w", errno), plan.Cloneflags)
	}
	f := &Forked{Pid: pid, goW: goW, status: statusR, raw: r, unshare: func() {}}
	if err := writeMaps(pid); err != nil {
		unlock()
		f.Kill()
		return nil, err
	}
	// From the go byte on the child is not dumpable, and so is this
	// process where the child shares its memory: counted as ForkExec's
	// children are, under the lock still held.
	if forkVM {
		f.unshare = vmShareLocked()
	}
	unlock()
	if _, err := goW.Write([]byte{0}); err != nil {
		// The child is gone: its record (or none) says why.
		return nil, f.failed()
	}
	return f, nil
}

// forkInitJoined is ForkInit in a joined user namespace: ForkExec's two
// children, child 1 not dumpable from its first instruction (the
// namespace's other processes, a container's among them, could ptrace
// it otherwise: it holds the caller's memory), joining the namespace,
// where the caller's ids are 0 and it has every capability, making
// plan.Unshare's namespaces (CLONE_NEWPID among them: child 2 is pid 1
// of the new one), and child 2 running the program, as ForkInit's child
// does once its maps are written. No maps to wait for: the go byte goes
// once setUp (if any) has run.
//
// Child 2 is not dumpable from its start, so its namespaces cannot be
// opened by its pid (/proc/PID/ns is root's): whoever needs them
// (slirp4netns) must get them another way.
func forkInitJoined(plan *ForkPlan, setUp func(pid int) error) (*Forked, error) {
	switch {
	case plan.Cloneflags != 0:
		return nil, errors.New("starting the init: in a joined user namespace the new namespaces are plan.Unshare, not clone flags")
	case len(plan.Joins) != 1 || plan.Joins[0].Flag != unix.CLONE_NEWUSER:
		return nil, errors.New("starting the init: only a user namespace may be joined, and it alone")
	case plan.Unshare&unix.CLONE_NEWUSER != 0:
		return nil, errors.New("starting the init: a joined user namespace and a new one")
	case plan.Unshare&unix.CLONE_NEWPID == 0 || plan.Unshare&unix.CLONE_NEWNS == 0:
		return nil, errors.New("starting the init: it needs a pid and a mount namespace of its own (plan.Unshare)")
	case plan.JoinAsRoot:
		return nil, errors.New("starting the init: the joined user namespace must map the caller to root (JoinAsRoot is for exec)")
	case len(plan.Program) == 0:
		return nil, errNoProgram
	}
	f, err := forkExec(plan, true)
	if err != nil {
		return nil, err
	}
	if setUp != nil {
		if err := setUp(f.Pid); err != nil {
			f.Kill()
			return nil, err
		}
	}
	if _, err := f.goW.Write([]byte{0}); err != nil {
		// Child 2 is gone: its record (or none) says why.
		return nil, f.failed()
	}
	return f, nil
}

// AwaitReady waits until ForkInit's child has run its program (nil), or
// failed: a *ProgramError for an op of the program, a *ForkError for
// another step. A child that failed has exited, and is reaped.
func (f *Forked) AwaitReady() error {
	var rec [12]byte
	if _, err := io.ReadFull(f.status, rec[:]); err != nil {
		f.Kill()
		return fmt.Errorf("starting the init: it exited before it was ready (%v)", err)
	}
	fe := decodeRecord(rec)
	if fe.Step == StepReady {
		return nil
	}
	ops := f.raw.progOps
	f.reap()
	if fe.Step == StepProgram {
		return programError(ops, fe)
	}
	return fe
}

// failed reads the record of a child that ended before it was released,
// and reaps it.
func (f *Forked) failed() error {
	var rec [12]byte
	_, err := io.ReadFull(f.status, rec[:])
	ops := f.raw.progOps
	f.reap()
	if err != nil {
		return fmt.Errorf("starting the init: it exited without a word (%v)", err)
	}
	fe := decodeRecord(rec)
	if fe.Step == StepProgram {
		return programError(ops, fe)
	}
	return fe
}

// reap waits for a child that failed (it exits after its record), or
// was killed (Kill), and lets go of what it used.
func (f *Forked) reap() {
	if f.goW != nil {
		f.goW.Close()
		f.goW = nil
	}
	var ws unix.WaitStatus
	_, _ = unix.Wait4(f.Pid, &ws, 0, nil)
	f.raw, f.done = nil, true
	f.unshare()
	f.status.Close()
}

// forkInitChild clones ForkInit's child; in the caller it returns the
// child's pid. It runs with syscall.ForkLock held, and follows the rules
// at the top of forkexec.go.
//
//go:noinline
//go:norace
//go:nocheckptr
func forkInitChild(r *forkRaw) (pid int, err syscall.Errno) {
	var (
		p uintptr
		e syscall.Errno
	)
	runtimeBeforeFork()
	if r.vm {
		p, e = cloneOnStack(unix.CLONE_VM|r.cloneflags|uintptr(syscall.SIGCHLD), r.stack2Top, unsafe.Pointer(r), 2)
		runtimeAfterFork()
		return int(p), e
	}
	p, e = rawClone(r.cloneflags)
	if e != 0 || p != 0 {
		runtimeAfterFork()
		return int(p), e
	}
	runtimeAfterForkInChild()
	child2(r)
	return 0, 0
}

// initProgram is ForkInit's part of child 2 (after its fds, session and
// parent-death signal): the maps, not dumpable, the program, ready. A
// failure is reported and ends the child.
//
//go:nosplit
//go:norace
//go:nocheckptr
func initProgram(r *forkRaw, fd int) {
	var (
		e syscall.Errno
		i int
	)
	awaitGo(r) // the maps
	if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_DUMPABLE, 0, 0, 0, 0, 0); e != 0 {
		report(r, fd, StepDumpable, e, 0)
	}
	if i, e = runProgram(r); i >= 0 {
		report(r, fd, StepProgram, e, i)
	}
	putU32(&r.rec2, 0, uint32(StepReady))
	putU32(&r.rec2, 4, 0)
	putU32(&r.rec2, 8, 0)
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&r.rec2[0])), uintptr(len(r.rec2)))
}
