//go:build linux

package userns

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/nofile"
)

// Starting a process in running namespaces with a raw fork, no helper.
//
// `sandy exec` used to go through nsenter (C) and a second start of the
// sandy binary (the exec init) to put a process into a container: about
// half of its time went to that second Go runtime start. ForkExec does it
// from the calling process, the way runc's nsexec does in C and Go's own
// syscall.forkAndExecInChild1 does in Go: everything the new process needs
// is computed first, into memory allocated before the fork (a ForkPlan
// turned into forkRaw: NUL-terminated strings, arrays of pointers to
// them, capability bitmasks, the compiled seccomp program, the fd moves);
// then two forks run the plan with raw system calls only:
//
//	caller ── fork ── child 1: PR_SET_DUMPABLE 0, setns user (then
//	   ^                  setresgid/setresuid 0 with JoinAsRoot), ipc,
//	   |                  uts, net, cgroup, pid, mnt (by fd, in that
//	   |                  order), unshare(Unshare) if asked,
//	   |                  (ForkInit's Handles: its namespaces opened
//	   |                  in the caller's fd table, CLONE_FILES),
//	   |                  clone(CLONE_PARENT|SIGCHLD), writes the
//	   |                  pid of child 2 to the status pipe, exits 0
//	   └──────────────── child 2 (the caller's child, in the container's
//	                      pid namespace): fds into place, every other fd
//	                      closed, setsid and the parent-death signal
//	                      if asked, bounding set dropped, waits for the
//	                      go pipe; then seccomp (without no_new_privs),
//	                      chdir and its check, setgroups, setresgid,
//	                      setresuid (KEEPCAPS around them), capset,
//	                      ambient, umask, the plan's rlimits,
//	                      no_new_privs, seccomp (with no_new_privs),
//	                      execve over the candidate paths
//
// A multi-threaded process cannot setns(2) into a user namespace, and
// setns(CLONE_NEWPID) moves only the children; a freshly forked child has
// one thread, and its clone is born in the pid namespace. CLONE_PARENT
// makes child 2 the caller's own child: the caller waits for it with
// wait4 and signals it directly.
//
// The rules of the code after the fork (forkChildren), which are Go's own
// for forkAndExecInChild1:
//   - the fork is made under syscall.ForkLock held for writing, between
//     the runtime's BeforeFork and AfterFork (the parent) or
//     AfterForkInChild (the child), pulled by go:linkname from package
//     syscall, where the runtime provides them (runtime/proc.go lists
//     gVisor, which does the same, in its "hall of shame"). BeforeFork
//     blocks signals and spoils the goroutine's stack guard, so that any
//     stack growth in the child crashes at once rather than corrupting
//     memory;
//   - the child calls only functions that cannot grow the stack: the
//     assembly system call stubs (syscall.RawSyscall, RawSyscall6) and
//     this file's go:nosplit helpers. forkChildren's own frame is set up
//     by its prologue, before the fork, and every variable it uses after
//     the fork is declared at its top (no := after BeforeFork);
//   - no allocation, no write barriers (only integers and bytes are
//     stored after the fork, never a pointer into the heap), no defer, no
//     panic: loops range over slices, the record buffer is a fixed array
//     indexed by constants, so no bounds check can fail; the norace and
//     nocheckptr directives, because the race detector's and checkptr's
//     hooks are Go code;
//   - a failure is written as a record {step, errno, value} (three
//     little-endian uint32) to the close-on-exec status pipe, and the
//     child exits; the caller turns the record into a message. EOF on
//     the pipe after child 1's record means the execve succeeded.
//
// Security, in the order the code meets it:
//   - child 1 makes itself non-dumpable before anything else: until its
//     execve, /proc/PID/exe of both children is the caller's binary, and
//     a non-dumpable process whose mm belongs to the caller's user
//     namespace cannot be ptraced nor have /proc/PID/exe opened by
//     anything in the container (CVE-2019-5736). Child 2 inherits it; the
//     execve of the container's program resets it. No sealed copy of the
//     binary is needed: nothing is exec'd from it;
//   - child 2, visible in the container's pid namespace from its first
//     instruction, puts its fds into place and then closes (not marks
//     close-on-exec) every fd above them but its two pipes, before it
//     reads anything from the container: nothing of the caller's is
//     reachable through /proc/self/fd while it enters process.cwd, and
//     getcwd(2) (or a ".." walk to the root when getcwd is filtered)
//     proves the directory is under the container's root
//     (CVE-2024-21626);
//   - the seccomp filter is the one seccomp.Compile made, installed with
//     the flags seccomp.Filter.Load passes; first when no_new_privs is
//     off (seccomp(2) needs CAP_SYS_ADMIN then), last otherwise, as the
//     exec init does.

//go:linkname runtimeBeforeFork syscall.runtime_BeforeFork
func runtimeBeforeFork()

//go:linkname runtimeAfterFork syscall.runtime_AfterFork
func runtimeAfterFork()

//go:linkname runtimeAfterForkInChild syscall.runtime_AfterForkInChild
func runtimeAfterForkInChild()

// ForkPlan is a process to start in running namespaces (ForkExec).
type ForkPlan struct {
	// Joins are the namespace files to setns(2), in order: the user
	// namespace first, the mount namespace last.
	Joins []NSJoin
	// JoinAsRoot: become uid and gid 0 right after joining the user
	// namespace (a caller that is not root in it).
	JoinAsRoot bool
	// Unshare are the CLONE_NEW* flags of namespaces child 1 makes with
	// unshare(2) after the joins (0: none): CLONE_NEWNS gives the process
	// a mount namespace of its own, a copy of the one it is in, its
	// propagation unchanged (as `unshare --mount --propagation
	// unchanged`), owned by the joined user namespace.
	Unshare uintptr
	// Setsid: child 2 starts a session of its own (setsid(2)).
	Setsid bool
	// Pdeathsig: child 2's parent-death signal (0: none), as
	// syscall.SysProcAttr's.
	Pdeathsig syscall.Signal
	// Files become fds 0, 1, 2, 3, ... of the process; every other fd
	// is closed.
	Files []*os.File
	// KeepBounding is the bounding set to keep (bit N: capability N);
	// LastCap the kernel's highest capability.
	KeepBounding uint64
	LastCap      int
	// Seccomp is the BPF program (nil: none), loaded with SeccompFlags,
	// before the id switch unless NoNewPrivs.
	Seccomp      []unix.SockFilter
	SeccompFlags uintptr
	Cwd          string
	// SetGroups: call setgroups(2) with Groups (false where it is denied).
	SetGroups bool
	Groups    []uint32
	UID, GID  uint32
	// Effective, Permitted, Inheritable and Ambient are capability
	// bitmasks; Ambient only those permitted and inheritable.
	Effective, Permitted, Inheritable, Ambient uint64
	Umask                                      int
	Rlimits                                    []Rlimit
	NoNewPrivs                                 bool
	// Paths are the candidates for execve, tried in order (execvp's
	// rules: EACCES is remembered and the search goes on, ENOENT and
	// ENOTDIR go on, anything else stops it).
	Paths []string
	Args  []string
	Env   []string
	// Cloneflags and Program are ForkInit's: the CLONE_NEW* flags of the
	// namespaces the child is cloned in (CLONE_NEWUSER among them), and
	// what it runs once its maps are written, before it reports ready.
	Cloneflags uintptr
	Program    []Op
	// Handles, in a joined user namespace (ForkInit with Joins): child 1
	// opens the network namespace it made, and with HandlesPid the pid
	// namespace of child 2 too, in the caller's fd table (it shares it:
	// CLONE_FILES), so that the caller has them although child 2 is not
	// dumpable (Forked.NetNS, Forked.PidNS: slirp4netns's and the port
	// child's).
	Handles, HandlesPid bool
}

// NSJoin is a namespace file to join and its CLONE_NEW* flag.
type NSJoin struct {
	File *os.File
	Flag int
	Name string // "user", "net", ...: for the errors
}

// Rlimit is a limit the process sets on itself with prlimit(2).
type Rlimit struct {
	Resource int
	Soft     uint64
	Hard     uint64
}

// ForkStep is where a forked child failed.
type ForkStep uint32

// The steps of the forked children, in their order.
const (
	StepStarted          ForkStep = iota + 1 // child 1's report: Value is child 2's pid
	StepDumpable                             // prctl(PR_SET_DUMPABLE, 0)
	StepJoin                                 // setns: Value is the index in Joins
	StepBecomeRoot                           // setresgid/setresuid 0 after the user namespace
	StepUnshare                              // unshare(2) of ForkPlan.Unshare after the joins
	StepNetNS                                // ForkPlan.Handles: opening the network namespace; as a report, Value is its fd
	StepClone                                // child 1's clone of child 2
	StepPidNS                                // ForkPlan.HandlesPid: opening child 2's pid namespace; as a report, Value is its fd
	StepFDs                                  // dup3/fcntl: moving the fds into place
	StepCloseFDs                             // close_range
	StepSetsid                               // setsid(2)
	StepPdeathsig                            // prctl(PR_SET_PDEATHSIG)
	StepBounding                             // PR_CAPBSET_DROP: Value is the capability
	StepSeccomp                              // seccomp(2)
	StepChdir                                // chdir(Cwd) as root
	StepCwdOutside                           // getcwd: unreachable, or the ".." walk never met the root
	StepCwdWalk                              // the ".." walk failed: Value is getcwd's errno
	StepChdirAsUser                          // chdir(Cwd) as the user, after EACCES/EPERM as root
	StepCwdOutsideAsUser                     // as StepCwdOutside, after StepChdirAsUser
	StepCwdWalkAsUser                        // as StepCwdWalk, after StepChdirAsUser
	StepSetgroups                            // setgroups(2)
	StepKeepCaps                             // PR_SET_KEEPCAPS
	StepSetresgid                            // setresgid(2)
	StepSetresuid                            // setresuid(2)
	StepCapset                               // capset(2)
	StepAmbient                              // PR_CAP_AMBIENT: Value is the capability
	StepRlimit                               // prlimit(2): Value is the index in Rlimits
	StepNoNewPrivs                           // PR_SET_NO_NEW_PRIVS
	StepExec                                 // execve: Value is the index in Paths, or -1: all ENOENT/ENOTDIR; Errno EACCES: one was denied
	StepProgram                              // ForkInit's program: Value is the index of the op that failed
	StepReady                                // ForkInit's report: the program ran, the process waits for Release
)

// ForkError is a forked child's failure: the step, the errno, and the
// step's value (see the Step constants).
type ForkError struct {
	Step  ForkStep
	Errno syscall.Errno
	Value int32
}

func (e *ForkError) Error() string {
	return fmt.Sprintf("starting the process: step %d (value %d): %v", e.Step, e.Value, e.Errno)
}

// Forked is a process ForkExec started, stopped before its set-up in the
// container (waiting for Release).
type Forked struct {
	Pid int
	// NetNS and PidNS are the namespaces ForkPlan.Handles asked for
	// (nil otherwise), the caller's to close.
	NetNS, PidNS *os.File
	goW          *os.File // the go pipe's write end
	status       *os.File // the status pipe's read end
	// raw is the plan the process runs from, kept alive until it has
	// exec'd or exited: where the children share this process's memory
	// (forkvm_amd64.go), child 2 runs on a stack of raw's until then.
	raw *forkRaw
	// done: Release has seen the process exec (it is no longer ours to
	// kill here) or exit (reaped: its pid may be another's now).
	done bool
	// unshare ends vmShare's count once the process no longer shares
	// this process's memory.
	unshare func()
}

// Release lets the process go on and waits until it has exec'd (nil) or
// failed (*ForkError; it has exited then, and is reaped).
func (f *Forked) Release() error {
	if f.goW == nil {
		return errors.New("starting the process: released twice")
	}
	_, err := f.goW.Write([]byte{0})
	f.goW.Close()
	f.goW = nil
	if err != nil {
		// The child exited already: its record says why.
		if rerr := f.readResult(); rerr != nil {
			return rerr
		}
		return fmt.Errorf("starting the process: %w", err)
	}
	return f.readResult()
}

func (f *Forked) readResult() error {
	defer f.status.Close()
	var rec [12]byte
	_, err := io.ReadFull(f.status, rec[:])
	if err == io.EOF {
		// exec'd: the close-on-exec pipe closed after the process left
		// the shared memory (or it was killed: exit_mm comes before
		// exit_files).
		f.raw, f.done = nil, true
		f.unshare()
		return nil
	}
	if err != nil {
		// Unknown: the process may still use raw; leave it alive.
		return fmt.Errorf("starting the process: reading its status: %w", err)
	}
	fe := decodeRecord(rec)
	var ws unix.WaitStatus
	_, _ = unix.Wait4(f.Pid, &ws, 0, nil)
	f.raw, f.done = nil, true // exited and reaped
	f.unshare()
	return fe
}

// Kill ends a process that was not released, or whose release failed
// to say how it ended (and reaps it); a no-op once Release has seen it
// exec or exit.
func (f *Forked) Kill() {
	if f.done {
		return
	}
	_ = unix.Kill(f.Pid, unix.SIGKILL)
	f.reap()
}

func decodeRecord(rec [12]byte) *ForkError {
	return &ForkError{
		Step:  ForkStep(binary.LittleEndian.Uint32(rec[0:4])),
		Errno: syscall.Errno(binary.LittleEndian.Uint32(rec[4:8])),
		Value: int32(binary.LittleEndian.Uint32(rec[8:12])),
	}
}

// fdOp is one move of the fd shuffle: dup3(From, To, flags), or, where
// From == To, fcntl(F_SETFD) of To; StatusFD is where the status pipe is
// before it (a failure of the op is reported there).
type fdOp struct {
	From, To int
	Cloexec  bool
	StatusFD int
}

// shuffleFDs plans the moves that put src[i] at fd i, as Go's
// forkAndExecInChild1 does: first every src[i] < i (which a move to a
// lower target could overwrite) is copied above all of them, then each
// goes to its place in ascending order, so no move overwrites a source
// still needed. cloexec[i] marks the targets that stay close-on-exec.
// status is the status pipe's fd, among src: each op says where it is
// before the op.
func shuffleFDs(src []int, cloexec []bool, status int) []fdOp {
	fds := append([]int(nil), src...)
	next := len(fds)
	for _, f := range fds {
		next = max(next, f)
	}
	next++
	// holds[fd] is the original fd whose file fd holds now.
	holds := map[int]int{}
	for _, f := range src {
		holds[f] = f
	}
	var targets []int
	where := func() int {
		for _, fd := range append([]int{status}, targets...) {
			if f, ok := holds[fd]; ok && f == status {
				return fd
			}
		}
		return -1 // not reached: a copy of the status pipe is always open
	}
	var ops []fdOp
	move := func(from, to int, cloexec bool) {
		ops = append(ops, fdOp{From: from, To: to, Cloexec: cloexec, StatusFD: where()})
		holds[to] = holds[from]
		targets = append(targets, to)
	}
	for i := range fds {
		if fds[i] < i {
			move(fds[i], next, true)
			fds[i] = next
			next++
		}
	}
	for i := range fds {
		move(fds[i], i, cloexec[i])
	}
	return ops
}

// forkRaw is a ForkPlan in the form the children use: only memory
// allocated before the fork, read after it.
type forkRaw struct {
	joins        []rawJoin
	asRoot       bool
	unshare      uintptr
	setsid       bool
	pdeathsig    uintptr
	status       int // the status pipe's write end, before the shuffle
	ops          []fdOp
	keepFrom     int // the first fd closed: everything above ops' targets
	goFD         int // after the shuffle
	statusFD     int // after the shuffle
	keepBounding uint64
	lastCap      int
	seccomp      *unix.SockFprog
	secFlags     uintptr
	nnp          bool
	cwd          *byte
	setgroups    bool
	groups       []uint32
	uid, gid     uintptr
	capHdr       unix.CapUserHeader
	capData      [2]unix.CapUserData
	ambient      uint64
	umask        uintptr
	rlimits      []rawRlimit
	paths        []*byte
	argv, envv   []*byte
	argvp, envvp unsafe.Pointer // &argv[0], &envv[0]
	groupsp      unsafe.Pointer // &groups[0], or nil
	slash, dot   *byte
	dotdot       *byte
	// ForkInit's: the child is cloned in new namespaces (cloneflags), waits
	// for its maps, then runs prog (ops for the errors, keep the buffers
	// it points to), keeping results in slots.
	// nofile: the soft RLIMIT_NOFILE this process started with
	// (nofileOrig), to put back where the process would get the one the
	// Go runtime raised it to (nofileRaised), as os/exec does.
	nofile       bool
	nofileRaised uint64
	nofileOrig   unix.Rlimit
	nofileNow    unix.Rlimit
	init         bool
	cloneflags   uintptr
	// handles: child 1 shares the caller's fd table and opens its
	// network (and, handlesPid, child 2's pid) namespace there.
	handles, handlesPid bool
	netPath, pidPath    *byte
	prog                []rawOp
	progOps             []Op
	keep                [][]byte
	slots               [MaxSlots]uintptr
	statfs              unix.Statfs_t
	empty               [1]byte
	// vm: the children share the caller's memory (cloneOnStack), each
	// on its own stack.
	vm                   bool
	stack1, stack2       []byte
	stack1Top, stack2Top uintptr
	// Buffers the children write into: child 1 rec1, child 2 the rest.
	rec1, rec2         [12]byte
	sigOld, sigDfl     [4]uintptr // struct sigaction: the old one, SIG_DFL (and an empty mask)
	gobuf              [1]byte
	cwdBuf             [4096]byte
	stRoot, st, stPrev unix.Stat_t
}

// atFDCWD is AT_FDCWD as a system call argument.
const atFDCWD = ^uintptr(99) // -100

type rawJoin struct{ fd, flag int }

type rawRlimit struct {
	resource uintptr
	lim      unix.Rlimit
}

// ForkExec starts plan's process (see the top of this file) and returns
// once it is in the container's namespaces, waiting for Release. The
// plan's files stay open in the caller (the process has its own).
func ForkExec(plan *ForkPlan) (*Forked, error) {
	if plan.Cloneflags != 0 || len(plan.Program) > 0 {
		return nil, errors.New("starting the process: ForkExec runs in joined namespaces: new ones and a program are ForkInit's")
	}
	return forkExec(plan, false)
}

// forkExec is ForkExec; with init, child 2 runs plan.Program first
// (initProgram: ForkInit in a joined user namespace).
func forkExec(plan *ForkPlan, init bool) (*Forked, error) {
	r, err := prepare(plan)
	if err != nil {
		return nil, err
	}
	r.init = init
	goR, goW, statusR, statusW, err := forkPipes(plan, r)
	if err != nil {
		return nil, err
	}
	defer goR.Close()

	unshare := vmShare() // ended once no child shares this memory (dumpable.go)
	syscall.ForkLock.Lock()
	pid1, errno := forkChildren(r)
	syscall.ForkLock.Unlock()
	statusW.Close()
	runtime.KeepAlive(r)
	runtime.KeepAlive(plan)
	if errno != 0 {
		unshare()
		goW.Close()
		statusR.Close()
		return nil, fmt.Errorf("starting the process: fork: %w", errno)
	}
	var ws unix.WaitStatus
	_, _ = unix.Wait4(pid1, &ws, 0, nil) // it exits at once
	// Child 1's record, its pid of child 2 or its failure; child 2 may
	// have failed before child 1 wrote it, and then its record comes
	// first.
	var early *ForkError
	// The handles child 1 opened in this process's fd table, by their
	// reports (ForkPlan.Handles): closed unless the fork succeeds.
	var netNS, pidNS *os.File
	fail := func() {
		for _, f := range []*os.File{netNS, pidNS} {
			if f != nil {
				f.Close()
			}
		}
	}
	for {
		var rec [12]byte
		if _, err := io.ReadFull(statusR, rec[:]); err != nil {
			unshare() // every writer closed: the children exited or exec'd
			goW.Close()
			statusR.Close()
			fail()
			if early != nil {
				return nil, early
			}
			return nil, fmt.Errorf("starting the process: the forked child ended (%v) without a word: %w", ws, err)
		}
		fe := decodeRecord(rec)
		switch {
		case fe.Errno == 0 && (fe.Step == StepNetNS || fe.Step == StepPidNS):
			if fe.Step == StepNetNS {
				netNS = os.NewFile(uintptr(fe.Value), "netns")
			} else {
				pidNS = os.NewFile(uintptr(fe.Value), "pidns")
			}
		case fe.Step == StepStarted && early != nil:
			_, _ = unix.Wait4(int(fe.Value), &ws, 0, nil)
			unshare()
			goW.Close()
			statusR.Close()
			fail()
			runtime.KeepAlive(r) // until child 2 has exited
			return nil, early
		case fe.Step == StepStarted:
			return &Forked{Pid: int(fe.Value), NetNS: netNS, PidNS: pidNS, goW: goW, status: statusR, raw: r, unshare: unshare}, nil
		case fe.Step < StepFDs:
			unshare() // child 1 failed before child 2
			goW.Close()
			statusR.Close()
			fail()
			return nil, fe
		default:
			early = fe
		}
	}
}

// forkPipes makes the go and status pipes and plans the child's fds:
// plan.Files at 0, 1, 2, ..., then the two pipes' child ends.
func forkPipes(plan *ForkPlan, r *forkRaw) (goR, goW, statusR, statusW *os.File, err error) {
	goR, goW, err = os.Pipe()
	if err != nil {
		return nil, nil, nil, nil, fmt.Errorf("starting the process: %w", err)
	}
	statusR, statusW, err = os.Pipe()
	if err != nil {
		goR.Close()
		goW.Close()
		return nil, nil, nil, nil, fmt.Errorf("starting the process: %w", err)
	}
	src := make([]int, 0, len(plan.Files)+2)
	cloexec := make([]bool, 0, len(plan.Files)+2)
	for _, f := range plan.Files {
		src = append(src, int(f.Fd()))
		cloexec = append(cloexec, false)
	}
	n := len(src)
	src = append(src, int(goR.Fd()), int(statusW.Fd()))
	cloexec = append(cloexec, true, true)
	r.status = int(statusW.Fd())
	r.ops = shuffleFDs(src, cloexec, r.status)
	r.keepFrom, r.goFD, r.statusFD = n+2, n, n+1
	return goR, goW, statusR, statusW, nil
}

// prepare turns plan into forkRaw, allocating everything now.
func prepare(plan *ForkPlan) (*forkRaw, error) {
	r := &forkRaw{
		asRoot: plan.JoinAsRoot, unshare: plan.Unshare, setsid: plan.Setsid, pdeathsig: uintptr(plan.Pdeathsig),
		keepBounding: plan.KeepBounding, lastCap: plan.LastCap,
		nnp: plan.NoNewPrivs, setgroups: plan.SetGroups, groups: plan.Groups,
		uid: uintptr(plan.UID), gid: uintptr(plan.GID), ambient: plan.Ambient, umask: uintptr(plan.Umask),
	}
	if plan.LastCap > 63 {
		return nil, fmt.Errorf("the kernel's highest capability is %d: more than 64 are not supported", plan.LastCap)
	}
	for _, j := range plan.Joins {
		r.joins = append(r.joins, rawJoin{fd: int(j.File.Fd()), flag: j.Flag})
	}
	if len(plan.Seccomp) > 0 {
		r.seccomp = &unix.SockFprog{Len: uint16(len(plan.Seccomp)), Filter: &plan.Seccomp[0]}
		r.secFlags = plan.SeccompFlags
	}
	var err error
	str := func(s string) *byte {
		if err != nil {
			return nil
		}
		var p *byte
		p, err = syscall.BytePtrFromString(s)
		return p
	}
	r.cwd, r.slash, r.dot, r.dotdot = str(plan.Cwd), str("/"), str("."), str("..")
	if plan.Handles {
		r.handles, r.handlesPid = true, plan.HandlesPid
		r.netPath, r.pidPath = str("/proc/self/ns/net"), str("/proc/self/ns/pid_for_children")
	}
	for _, p := range plan.Paths {
		r.paths = append(r.paths, str(p))
	}
	if err != nil {
		return nil, fmt.Errorf("starting the process: %w", err)
	}
	if len(plan.Paths) == 0 {
		return nil, errors.New("starting the process: no path to execute")
	}
	if r.argv, err = syscall.SlicePtrFromStrings(plan.Args); err != nil {
		return nil, fmt.Errorf("starting the process: %w", err)
	}
	if r.envv, err = syscall.SlicePtrFromStrings(plan.Env); err != nil {
		return nil, fmt.Errorf("starting the process: %w", err)
	}
	r.argvp, r.envvp = unsafe.Pointer(&r.argv[0]), unsafe.Pointer(&r.envv[0])
	if len(r.groups) > 0 {
		r.groupsp = unsafe.Pointer(&r.groups[0])
	}
	if forkVM {
		r.vm = true
		r.stack1, r.stack2 = make([]byte, forkStack), make([]byte, forkStack)
		r.stack1Top = stackTop(r.stack1)
		r.stack2Top = stackTop(r.stack2)
	}
	r.capHdr = unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	r.capData[0] = unix.CapUserData{Effective: uint32(plan.Effective), Permitted: uint32(plan.Permitted), Inheritable: uint32(plan.Inheritable)}
	r.capData[1] = unix.CapUserData{Effective: uint32(plan.Effective >> 32), Permitted: uint32(plan.Permitted >> 32), Inheritable: uint32(plan.Inheritable >> 32)}
	for _, rl := range plan.Rlimits {
		r.rlimits = append(r.rlimits, rawRlimit{resource: uintptr(rl.Resource), lim: unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}})
	}
	if len(plan.Program) > 0 {
		if r.prog, r.keep, err = prepareProgram(plan.Program); err != nil {
			return nil, err
		}
		r.progOps = plan.Program
	}
	var now unix.Rlimit
	if nofile.OK && unix.Getrlimit(unix.RLIMIT_NOFILE, &now) == nil && now.Cur != nofile.Soft {
		r.nofile, r.nofileRaised = true, now.Cur
		r.nofileOrig = unix.Rlimit{Cur: nofile.Soft, Max: nofile.Hard}
	}
	return r, nil
}

// forkStack is the size of each child's stack when they share the
// caller's memory: ample for the nosplit code they run (the linker
// bounds a nosplit chain to well under a kilobyte).
const forkStack = 64 << 10

// stackTop is the 16-byte aligned top of a stack in b, below a margin.
func stackTop(b []byte) uintptr {
	return (uintptr(unsafe.Pointer(&b[0])) + uintptr(len(b)) - 64) &^ 15
}

// awaitGo waits for the caller's byte on the go pipe; at EOF (the caller
// gave up, or died) the child exits quietly.
//
//go:nosplit
//go:norace
//go:nocheckptr
func awaitGo(r *forkRaw) {
	var (
		n uintptr
		e syscall.Errno
	)
	for {
		n, _, e = syscall.RawSyscall(syscall.SYS_READ, uintptr(r.goFD), uintptr(unsafe.Pointer(&r.gobuf[0])), 1)
		if e != syscall.EINTR {
			break
		}
	}
	if e != 0 || n != 1 {
		for {
			syscall.RawSyscall(syscall.SYS_EXIT_GROUP, 1, 0, 0)
		}
	}
}

// report writes a record to fd and exits the child. It never returns.
//
//go:nosplit
//go:norace
//go:nocheckptr
func report(r *forkRaw, fd int, step ForkStep, errno syscall.Errno, value int) {
	rec := &r.rec2 // child 2's; child 1 and child 2 may share memory
	if step < StepFDs {
		rec = &r.rec1
	}
	putU32(rec, 0, uint32(step))
	putU32(rec, 4, uint32(errno))
	putU32(rec, 8, uint32(value))
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&rec[0])), uintptr(len(rec)))
	for {
		syscall.RawSyscall(syscall.SYS_EXIT, 1, 0, 0)
	}
}

// putU32 stores v little-endian at rec[off:off+4]; off is 0, 4 or 8.
//
//go:nosplit
//go:norace
func putU32(rec *[12]byte, off int, v uint32) {
	switch off {
	case 0:
		rec[0], rec[1], rec[2], rec[3] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	case 4:
		rec[4], rec[5], rec[6], rec[7] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	case 8:
		rec[8], rec[9], rec[10], rec[11] = byte(v), byte(v>>8), byte(v>>16), byte(v>>24)
	}
}

// rawClone forks (clone with SIGCHLD and flags, no new stack).
//
//go:nosplit
//go:norace
func rawClone(flags uintptr) (uintptr, syscall.Errno) {
	var pid uintptr
	var e syscall.Errno
	if runtime.GOARCH == "s390x" {
		pid, _, e = syscall.RawSyscall6(syscall.SYS_CLONE, 0, flags|uintptr(syscall.SIGCHLD), 0, 0, 0, 0)
	} else {
		pid, _, e = syscall.RawSyscall6(syscall.SYS_CLONE, flags|uintptr(syscall.SIGCHLD), 0, 0, 0, 0, 0)
	}
	return pid, e
}

// verifyCwd checks that the working directory is under the root:
// getcwd(2) says "(unreachable)" or ENOENT otherwise; where getcwd
// itself fails (a seccomp profile may deny it), the ".." chain from the
// directory must meet the root (".." stops at the process's root). It
// returns the step that failed (0: none), its errno and value.
//
//go:nosplit
//go:norace
//go:nocheckptr
func verifyCwd(r *forkRaw, outside, walk ForkStep) (ForkStep, syscall.Errno, int) {
	_, _, e := syscall.RawSyscall(syscall.SYS_GETCWD, uintptr(unsafe.Pointer(&r.cwdBuf[0])), uintptr(len(r.cwdBuf)), 0)
	if e == syscall.ENOENT {
		return outside, 0, 0
	}
	if e == 0 {
		if r.cwdBuf[0] != '/' {
			return outside, 0, 0
		}
		return 0, 0, 0
	}
	ge := e
	var fd, parent uintptr
	fd, _, e = syscall.RawSyscall6(syscall.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(r.slash)), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0, 0, 0)
	if e != 0 {
		return walk, e, int(ge)
	}
	_, _, e = syscall.RawSyscall(syscall.SYS_FSTAT, fd, uintptr(unsafe.Pointer(&r.stRoot)), 0)
	syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
	if e != 0 {
		return walk, e, int(ge)
	}
	fd, _, e = syscall.RawSyscall6(syscall.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(r.dot)), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0, 0, 0)
	if e != 0 {
		return walk, e, int(ge)
	}
	for i := 0; i < 4096; i++ {
		_, _, e = syscall.RawSyscall(syscall.SYS_FSTAT, fd, uintptr(unsafe.Pointer(&r.st)), 0)
		if e != 0 {
			syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
			return walk, e, int(ge)
		}
		if r.st.Dev == r.stRoot.Dev && r.st.Ino == r.stRoot.Ino {
			syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
			return 0, 0, 0
		}
		if i > 0 && r.st.Dev == r.stPrev.Dev && r.st.Ino == r.stPrev.Ino {
			syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
			return outside, 0, 1
		}
		r.stPrev = r.st
		parent, _, e = syscall.RawSyscall6(syscall.SYS_OPENAT, fd, uintptr(unsafe.Pointer(r.dotdot)), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0, 0, 0)
		syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
		if e != 0 {
			return walk, e, int(ge)
		}
		fd = parent
	}
	syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
	return walk, syscall.ELOOP, int(ge)
}

// forkChildren forks child 1, which forks child 2 (see the top of this
// file); in the caller it returns child 1's pid. It runs with
// syscall.ForkLock held. Everything after the fork follows the rules at
// the top of this file. Where cloneOnStack exists (amd64), child 1 and
// child 2 share the caller's memory instead (forkvm_amd64.go).
//
//go:noinline
//go:norace
//go:nocheckptr
func forkChildren(r *forkRaw) (pid1 int, err syscall.Errno) {
	if r.vm {
		return forkChildrenVM(r)
	}
	var (
		pid uintptr
		e   syscall.Errno
	)
	runtimeBeforeFork()
	pid, e = rawClone(r.child1Files())
	if e != 0 || pid != 0 {
		runtimeAfterFork()
		return int(pid), e
	}
	runtimeAfterForkInChild()
	child1(r)
	return 0, 0
}

// child1Files is CLONE_FILES where child 1 opens handles for the caller
// (ForkPlan.Handles), else 0.
//
//go:nosplit
//go:norace
func (r *forkRaw) child1Files() uintptr {
	if r.handles {
		return unix.CLONE_FILES
	}
	return 0
}

// child1 joins the namespaces and starts child 2; it never returns.
//
//go:nosplit
//go:norace
//go:nocheckptr
func child1(r *forkRaw) {
	var (
		pid   uintptr
		e     syscall.Errno
		i     int
		fd    int
		joins = r.joins
	)
	// Child 1.
	fd = r.status
	if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_DUMPABLE, 0, 0, 0, 0, 0); e != 0 {
		report(r, fd, StepDumpable, e, 0)
	}
	for i = range joins {
		_, _, e = syscall.RawSyscall(unix.SYS_SETNS, uintptr(joins[i].fd), uintptr(joins[i].flag), 0)
		if e != 0 {
			report(r, fd, StepJoin, e, i)
		}
		if joins[i].flag == unix.CLONE_NEWUSER && r.asRoot {
			if _, _, e = syscall.RawSyscall(syscall.SYS_SETRESGID, 0, 0, 0); e != 0 {
				report(r, fd, StepBecomeRoot, e, 0)
			}
			if _, _, e = syscall.RawSyscall(syscall.SYS_SETRESUID, 0, 0, 0); e != 0 {
				report(r, fd, StepBecomeRoot, e, 1)
			}
		}
	}
	if r.unshare != 0 {
		if _, _, e = syscall.RawSyscall(syscall.SYS_UNSHARE, r.unshare, 0, 0); e != 0 {
			report(r, fd, StepUnshare, e, 0)
		}
	}
	if r.handles {
		openHandle(r, fd, r.netPath, StepNetNS)
	}
	if r.vm {
		pid, e = cloneOnStack(unix.CLONE_VM|unix.CLONE_PARENT|uintptr(syscall.SIGCHLD), r.stack2Top, unsafe.Pointer(r), 2)
	} else {
		pid, e = rawClone(unix.CLONE_PARENT)
	}
	if e != 0 {
		report(r, fd, StepClone, e, 0)
	}
	if pid == 0 {
		child2(r) // the fork: child 2 goes on here
	}
	if r.handlesPid {
		openHandle(r, fd, r.pidPath, StepPidNS)
	}
	putU32(&r.rec1, 0, uint32(StepStarted))
	putU32(&r.rec1, 4, 0)
	putU32(&r.rec1, 8, uint32(pid))
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&r.rec1[0])), uintptr(len(r.rec1)))
	for {
		syscall.RawSyscall(syscall.SYS_EXIT, 0, 0, 0)
	}
}

// openHandle opens one of child 1's namespaces (path, /proc/self/ns/...)
// in the fd table it shares with the caller and reports its fd as step;
// a failure is reported as the step's, and ends child 1.
//
//go:nosplit
//go:norace
//go:nocheckptr
func openHandle(r *forkRaw, fd int, path *byte, step ForkStep) {
	h, _, e := syscall.RawSyscall6(syscall.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(path)), unix.O_RDONLY|unix.O_CLOEXEC, 0, 0, 0)
	if e != 0 {
		report(r, fd, step, e, 0)
	}
	putU32(&r.rec1, 0, uint32(step))
	putU32(&r.rec1, 4, 0)
	putU32(&r.rec1, 8, uint32(h))
	syscall.RawSyscall(syscall.SYS_WRITE, uintptr(fd), uintptr(unsafe.Pointer(&r.rec1[0])), uintptr(len(r.rec1)))
}

// child2 sets the process up in the container and execs it; it never
// returns.
//
//go:nosplit
//go:norace
//go:nocheckptr
func child2(r *forkRaw) {
	child2Setup(r)
	if r.init {
		// Apart: the program's calls must not stack on the frames of
		// the halves (the linker's bound on a nosplit chain).
		initProgram(r, r.statusFD)
	}
	child2Exec(r)
}

// child2Setup is child 2's first half: its fds, session and parent-death
// signal.
//
//go:nosplit
//go:norace
//go:nocheckptr
func child2Setup(r *forkRaw) {
	var (
		e     syscall.Errno
		i     int
		fd    int
		flags uintptr
		op    *fdOp
		ops   = r.ops
	)
	// Child 2: in the container's namespaces, the caller's child. The fds
	// first: the caller's must be gone before anything else.
	for i = range ops {
		op = &ops[i]
		if op.From == op.To {
			flags = 0
			if op.Cloexec {
				flags = syscall.FD_CLOEXEC
			}
			_, _, e = syscall.RawSyscall(syscall.SYS_FCNTL, uintptr(op.To), syscall.F_SETFD, flags)
		} else {
			flags = 0
			if op.Cloexec {
				flags = syscall.O_CLOEXEC
			}
			_, _, e = syscall.RawSyscall(syscall.SYS_DUP3, uintptr(op.From), uintptr(op.To), flags)
		}
		if e != 0 {
			report(r, op.StatusFD, StepFDs, e, i)
		}
	}
	fd = r.statusFD
	if _, _, e = syscall.RawSyscall(unix.SYS_CLOSE_RANGE, uintptr(r.keepFrom), uintptr(^uint32(0)), 0); e != 0 {
		report(r, fd, StepCloseFDs, e, 0)
	}
	if r.setsid {
		if _, _, e = syscall.RawSyscall(syscall.SYS_SETSID, 0, 0, 0); e != 0 {
			report(r, fd, StepSetsid, e, 0)
		}
	}
	if r.pdeathsig != 0 {
		if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, syscall.PR_SET_PDEATHSIG, r.pdeathsig, 0, 0, 0, 0); e != 0 {
			report(r, fd, StepPdeathsig, e, 0)
		}
	}
}

// child2Exec is child 2's second half: the bounding set, the wait for
// the caller, and the process's set-up to its execve.
//
//go:nosplit
//go:norace
//go:nocheckptr
func child2Exec(r *forkRaw) {
	var (
		e       syscall.Errno
		i       int
		fd      = r.statusFD
		c       int
		step    ForkStep
		value   int
		later   bool
		denied  bool
		rlimits = r.rlimits
		paths   = r.paths
	)
	for c = 0; c <= r.lastCap; c++ {
		if r.keepBounding&(1<<uint(c)) != 0 {
			continue
		}
		_, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAPBSET_DROP, uintptr(c), 0, 0, 0, 0)
		if e != 0 && e != syscall.EINVAL {
			report(r, fd, StepBounding, e, c)
		}
	}
	// Wait for the caller: its prlimit, cgroup and pid file.
	awaitGo(r)
	syscall.RawSyscall(syscall.SYS_CLOSE, uintptr(r.goFD), 0, 0)

	if r.seccomp != nil && !r.nnp {
		if _, _, e = syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, r.secFlags, uintptr(unsafe.Pointer(r.seccomp))); e != 0 {
			report(r, fd, StepSeccomp, e, 0)
		}
	}
	_, _, e = syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(r.cwd)), 0, 0)
	if e == syscall.EACCES || e == syscall.EPERM {
		later = true
	} else if e != 0 {
		report(r, fd, StepChdir, e, 0)
	} else if step, e, value = verifyCwd(r, StepCwdOutside, StepCwdWalk); step != 0 {
		report(r, fd, step, e, value)
	}
	if r.setgroups {
		if _, _, e = syscall.RawSyscall(syscall.SYS_SETGROUPS, uintptr(len(r.groups)), uintptr(r.groupsp), 0); e != 0 {
			report(r, fd, StepSetgroups, e, 0)
		}
	}
	if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, syscall.PR_SET_KEEPCAPS, 1, 0, 0, 0, 0); e != 0 {
		report(r, fd, StepKeepCaps, e, 1)
	}
	if _, _, e = syscall.RawSyscall(syscall.SYS_SETRESGID, r.gid, r.gid, r.gid); e != 0 {
		report(r, fd, StepSetresgid, e, 0)
	}
	if _, _, e = syscall.RawSyscall(syscall.SYS_SETRESUID, r.uid, r.uid, r.uid); e != 0 {
		report(r, fd, StepSetresuid, e, 0)
	}
	if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, syscall.PR_SET_KEEPCAPS, 0, 0, 0, 0, 0); e != 0 {
		report(r, fd, StepKeepCaps, e, 0)
	}
	if later {
		if _, _, e = syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(r.cwd)), 0, 0); e != 0 {
			report(r, fd, StepChdirAsUser, e, 0)
		}
		if step, e, value = verifyCwd(r, StepCwdOutsideAsUser, StepCwdWalkAsUser); step != 0 {
			report(r, fd, step, e, value)
		}
	}
	if _, _, e = syscall.RawSyscall(syscall.SYS_CAPSET, uintptr(unsafe.Pointer(&r.capHdr)), uintptr(unsafe.Pointer(&r.capData[0])), 0); e != 0 {
		report(r, fd, StepCapset, e, 0)
	}
	if r.ambient != 0 {
		if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_CLEAR_ALL, 0, 0, 0, 0); e != 0 {
			report(r, fd, StepAmbient, e, -1)
		}
		for c = 0; c <= r.lastCap; c++ {
			if r.ambient&(1<<uint(c)) == 0 {
				continue
			}
			if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c), 0, 0, 0); e != 0 {
				report(r, fd, StepAmbient, e, c)
			}
		}
	}
	syscall.RawSyscall(syscall.SYS_UMASK, r.umask, 0, 0)
	// The caller's open-file limit, as os/exec and syscall.Exec put it
	// back, unless it was changed since the runtime raised it (the
	// caller's prlimit of process.rlimits).
	if r.nofile {
		_, _, e = syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, 0, uintptr(unsafe.Pointer(&r.nofileNow)), 0, 0)
		if e == 0 && r.nofileNow.Cur == r.nofileRaised {
			syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, unix.RLIMIT_NOFILE, uintptr(unsafe.Pointer(&r.nofileOrig)), 0, 0, 0)
		}
	}
	for i = range rlimits {
		_, _, e = syscall.RawSyscall6(syscall.SYS_PRLIMIT64, 0, rlimits[i].resource, uintptr(unsafe.Pointer(&rlimits[i].lim)), 0, 0, 0)
		if e != 0 {
			report(r, fd, StepRlimit, e, i)
		}
	}
	if r.nnp {
		if _, _, e = syscall.RawSyscall6(syscall.SYS_PRCTL, unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0, 0); e != 0 {
			report(r, fd, StepNoNewPrivs, e, 0)
		}
		if r.seccomp != nil {
			if _, _, e = syscall.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, r.secFlags, uintptr(unsafe.Pointer(r.seccomp))); e != 0 {
				report(r, fd, StepSeccomp, e, 0)
			}
		}
	}
	for i = range paths {
		_, _, e = syscall.RawSyscall(syscall.SYS_EXECVE, uintptr(unsafe.Pointer(paths[i])), uintptr(r.argvp), uintptr(r.envvp))
		switch e {
		case syscall.EACCES:
			denied = true
		case syscall.ENOENT, syscall.ENOTDIR:
		default:
			report(r, fd, StepExec, e, i)
		}
	}
	if denied {
		report(r, fd, StepExec, syscall.EACCES, -1)
	}
	report(r, fd, StepExec, syscall.ENOENT, -1)
}
