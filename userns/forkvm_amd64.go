//go:build linux && !race

package userns

import (
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The children without a copy of the caller's memory (amd64).
//
// A fork copies the caller's page tables, and a Go process has many: on
// this project's 2-core machine the fork of `sandy exec` and child 1's
// fork of child 2 took 1-4 ms each, the largest item of an exec. With
// CLONE_VM the children share the caller's memory instead, as a vfork
// child does, each on a stack of its own (cloneOnStack, in assembly: a Go
// function cannot return from clone onto a new stack): child 1 with
// CLONE_VFORK, so the caller's thread waits until it exits (it only joins
// the namespaces and starts child 2), child 2 without, so the caller goes
// on while child 2 waits for it, sets itself up and execs (which gives
// it memory of its own).
//
// What makes the sharing safe:
//   - the children write only integers and bytes of forkRaw, their
//     stacks and the records, which the caller does not touch until
//     Release has seen child 2 exec or fail, and keeps alive until then;
//     they run only go:nosplit code and assembly, which never reads or
//     writes the goroutine's g (whose register they inherit) beyond that;
//   - the runtime's fork hooks are not called in the children
//     (AfterForkInChild writes runtime state the caller is using): the
//     signals BeforeFork blocked stay blocked, and child 2, which has its
//     own copy of the signal handlers (no CLONE_SIGHAND), sets every
//     handled signal to its default action before it unblocks them, so
//     that no Go signal handler ever runs in it;
//   - not dumpable (child 1's first step) applies to the shared memory:
//     /proc/PID/mem, exe and ptrace of child 2 are refused to the
//     container as in the fork (and the caller is not dumpable either
//     from then on, which costs nothing); exit and exit_group of a child
//     end only the child (no CLONE_THREAD);
//   - not under the race detector (the build tag): its hooks, in the
//     functions the assembly reaches through Go's ABI wrappers, would
//     run in the children on the race state of the caller's thread. A
//     race build forks (forkvm_other.go).
const forkVM = true

// cloneOnStack clones with flags (which include the exit signal) onto
// stack; the new process calls vmEntry(r, stage) there and never
// returns. The caller gets the pid or the errno. r is a *forkRaw for
// stages 1 and 2 (ForkExec's children), an *exeRaw for exeStage
// (userNSOverlay's child).
func cloneOnStack(flags, stack uintptr, r unsafe.Pointer, stage uintptr) (pid uintptr, errno syscall.Errno)

// vmEntry is where cloneOnStack's child starts.
//
//lint:ignore U1000 called from cloneOnStack (assembly)
//go:nosplit
//go:norace
//go:nocheckptr
func vmEntry(r unsafe.Pointer, stage uintptr) {
	switch stage {
	case 1:
		child1((*forkRaw)(r))
	case exeStage:
		exeChild((*exeRaw)(r))
	}
	resetSignals((*forkRaw)(r))
	child2((*forkRaw)(r))
}

// forkChildrenVM is forkChildren with the children sharing the caller's
// memory.
//
//go:noinline
//go:norace
//go:nocheckptr
func forkChildrenVM(r *forkRaw) (pid1 int, err syscall.Errno) {
	var (
		pid uintptr
		e   syscall.Errno
	)
	runtimeBeforeFork()
	pid, e = cloneOnStack(unix.CLONE_VM|unix.CLONE_VFORK|r.child1Files()|uintptr(syscall.SIGCHLD), r.stack1Top, unsafe.Pointer(r), 1)
	runtimeAfterFork()
	return int(pid), e
}

// resetSignals gives every signal that is not ignored its default action,
// then unblocks all of them. One rt_sigaction(2) per signal both sets
// SIG_DFL and reads the action it replaces; only a signal that was
// ignored (SIG_IGN: sandy started with it ignored, and the container
// process inherits that through execve, as from any runtime) takes a
// second call, which puts its old action back. All signals are still
// blocked here, so none is delivered in between. Before, each signal took
// a query and a set: 122 calls, now 62 (plus one per ignored signal).
//
//go:nosplit
//go:norace
//go:nocheckptr
func resetSignals(r *forkRaw) {
	var sig uintptr
	for sig = 1; sig <= 64; sig++ {
		if sig == uintptr(syscall.SIGKILL) || sig == uintptr(syscall.SIGSTOP) {
			continue
		}
		r.sigOld[0] = 0
		syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&r.sigDfl[0])), uintptr(unsafe.Pointer(&r.sigOld[0])), 8, 0, 0)
		if r.sigOld[0] == 1 { // SIG_IGN: ignored it stays
			syscall.RawSyscall6(syscall.SYS_RT_SIGACTION, sig, uintptr(unsafe.Pointer(&r.sigOld[0])), 0, 8, 0, 0)
		}
	}
	syscall.RawSyscall6(syscall.SYS_RT_SIGPROCMASK, 2 /* SIG_SETMASK */, uintptr(unsafe.Pointer(&r.sigDfl[0])), 0, 8, 0, 0)
}
