//go:build linux

package userns

import (
	"errors"
	"fmt"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/mountflags"
)

// A raw child's program: system calls the caller planned in Go, which a
// forked child without a Go runtime runs one after the other
// (ForkPlan.Program; see ForkInit).
//
// A container's init builds its root filesystem with a few dozen system
// calls (open a directory in the root, mount onto it, remount it
// read-only, ...) whose arguments are all known before the fork: paths,
// flags, filesystem options. What is not known is only what the calls
// return: the fds of the directories they open. So a Program is a list of
// Ops, each one system call whose arguments are values, strings or buffers
// prepared before the fork, or results of earlier Ops (fds, kept in
// numbered slots), or the /proc/self/fd path of such an fd, which mount(2)
// takes to mount onto what an fd names. The interpreter (runProgram) is a
// loop of raw system calls, with the rules of forkexec.go; all the logic
// (which mount, which flags, in which order, what is tolerated) stays in
// ordinary, testable Go on the caller's side.
//
// Control is minimal: an Op may tolerate one errno (or any), and skip a
// number of the following Ops after a success or after a tolerated error
// ("if the masked path does not exist, skip its mount"). There are no
// loops and no jumps back: a program ends.
//
// One Op is not a system call: TrapRemount, a bind remount that keeps the
// flags the kernel locked on the mount (mountflags.Remount), for which the
// program must read the mount's flags with statfs(2) first; it is the
// init's remount (initproc), with the same retry for a locked atime mode.

// Op is one step of a Program.
type Op struct {
	// What the step does, for the errors ("mounting proc on /proc").
	What string
	// Trap is the system call number, or TrapRemount.
	Trap uintptr
	Args [6]Arg
	// Out is the slot (1 to MaxSlots-1) the call's result is kept in for
	// later Ops; 0: not kept.
	Out int
	// Tolerate is an errno that does not end the program (AnyErrno:
	// every errno; 0: none).
	Tolerate syscall.Errno
	// SkipOK and SkipErr are how many of the following Ops are skipped
	// after a success, and after a tolerated error.
	SkipOK, SkipErr int
}

// MaxSlots bounds the slots a program keeps results in (slot 0 is none).
const MaxSlots = 16

// AnyErrno, as Op.Tolerate: every errno is tolerated.
const AnyErrno = syscall.Errno(1 << 30)

// TrapRemount, as Op.Trap: remount the bind mount at Args[0] (a path:
// FDPath or Str) with the MS_* flags Args[1], keeping the locked flags it
// has unless Args[2] clears them (mountflags.Remount); when the kernel refuses
// the atime mode asked for (EPERM: locked as a whole), again with the
// mount's own atime mode.
const TrapRemount = ^uintptr(0)

// Arg is an argument of an Op.
type Arg struct {
	kind argKind
	v    uintptr
	b    []byte
}

type argKind uint8

const (
	argValue  argKind = iota
	argBytes          // a pointer to b
	argSlot           // the value in slot v
	argFDPath         // "/proc/self/fd/N", N the fd in slot v
)

// Val is a plain value.
func Val(v uintptr) Arg { return Arg{kind: argValue, v: v} }

// Str is a pointer to a NUL-terminated copy of s.
func Str(s string) Arg { return Arg{kind: argBytes, b: append([]byte(s), 0)} }

// Buf is a pointer to b itself (a struct the call reads, or writes).
func Buf(b []byte) Arg { return Arg{kind: argBytes, b: b} }

// Slot is the result an earlier Op kept in slot i.
func Slot(i int) Arg { return Arg{kind: argSlot, v: uintptr(i)} }

// FDPath is the /proc/self/fd path of the fd kept in slot i: mount(2)
// onto it mounts onto what the fd names, not onto a path a rename in the
// root could redirect. It names the child's own fd while the host's /proc
// is its /proc (before pivot_root).
func FDPath(i int) Arg { return Arg{kind: argFDPath, v: uintptr(i)} }

// rawOp is an Op as the child reads it.
type rawOp struct {
	trap            uintptr
	args            [6]uintptr
	kinds           [6]argKind
	out             uintptr
	tolerate        syscall.Errno
	skipOK, skipErr int
	// paths are the FDPath arguments' buffers, written by the child.
	paths [2][32]byte
}

// prepareProgram checks ops and turns them into rawOps; every buffer they
// point to is in keep, which the caller keeps alive until the child has
// exec'd or exited.
func prepareProgram(ops []Op) (prog []rawOp, keep [][]byte, err error) {
	for i, op := range ops {
		ro := rawOp{trap: op.Trap, out: uintptr(op.Out), tolerate: op.Tolerate, skipOK: op.SkipOK, skipErr: op.SkipErr}
		if op.Out < 0 || op.Out >= MaxSlots {
			return nil, nil, fmt.Errorf("program op %d (%s): slot %d out of range", i, op.What, op.Out)
		}
		if op.SkipOK < 0 || op.SkipErr < 0 || i+op.SkipOK >= len(ops)+1 || i+op.SkipErr >= len(ops)+1 {
			return nil, nil, fmt.Errorf("program op %d (%s): skips past the end", i, op.What)
		}
		paths := 0
		for k, a := range op.Args {
			ro.kinds[k] = a.kind
			switch a.kind {
			case argValue:
				ro.args[k] = a.v
			case argBytes:
				if len(a.b) == 0 {
					return nil, nil, fmt.Errorf("program op %d (%s): empty buffer", i, op.What)
				}
				keep = append(keep, a.b)
				ro.args[k] = uintptr(unsafe.Pointer(&a.b[0]))
			case argSlot, argFDPath:
				if a.v == 0 || a.v >= MaxSlots {
					return nil, nil, fmt.Errorf("program op %d (%s): slot %d out of range", i, op.What, a.v)
				}
				ro.args[k] = a.v
				if a.kind == argFDPath {
					if paths == len(ro.paths) {
						return nil, nil, fmt.Errorf("program op %d (%s): more than %d fd paths", i, op.What, len(ro.paths))
					}
					paths++
				}
			}
		}
		prog = append(prog, ro)
	}
	return prog, keep, nil
}

// CheckProgram checks ops as ForkInit will before it forks: slots in
// range, skips that end inside the program, buffers that are not empty.
func CheckProgram(ops []Op) error {
	_, _, err := prepareProgram(ops)
	return err
}

// ProgramError is a program's failure: the op, and its errno.
type ProgramError struct {
	Index int
	What  string
	Errno syscall.Errno
}

func (e *ProgramError) Error() string {
	return fmt.Sprintf("%s: %v", e.What, e.Errno)
}

func (e *ProgramError) Unwrap() error { return e.Errno }

// programError turns a StepProgram record into a ProgramError.
func programError(ops []Op, fe *ForkError) error {
	i := int(fe.Value)
	if i < 0 || i >= len(ops) {
		return fe
	}
	return &ProgramError{Index: i, What: ops[i].What, Errno: fe.Errno}
}

// RunProgram runs ops in this process, as a forked child runs them: for
// a Go process that takes the same steps as a raw child (sandy's Go
// init makes tap0 with the raw init's ops), so that the steps have one
// home. Its errors are ProgramErrors.
func RunProgram(ops []Op) error {
	prog, keep, err := prepareProgram(ops)
	if err != nil {
		return err
	}
	r := &forkRaw{prog: prog}
	i, e := runProgram(r)
	runtime.KeepAlive(keep)
	if i >= 0 {
		return &ProgramError{Index: i, What: ops[i].What, Errno: e}
	}
	return nil
}

// errNoProgram: ForkInit needs something to run before the process.
var errNoProgram = errors.New("starting the init: an empty program")

// runProgram runs the child's program; it returns the index of the op
// that failed (-1: none) and its errno. The rules of forkexec.go hold:
// no allocation, no stack growth, only integers and bytes written; slot
// indexes are masked, so no bounds check can fail.
//
//go:nosplit
//go:norace
//go:nocheckptr
func runProgram(r *forkRaw) (int, syscall.Errno) {
	var (
		i, k, j int
		op      *rawOp
		a       [6]uintptr
		v       uintptr
		e       syscall.Errno
		prog    = r.prog
	)
	for i = 0; uint(i) < uint(len(prog)); i++ {
		op = &prog[i]
		j = 0
		for k = 0; k < 6; k++ {
			switch op.kinds[k] {
			case argSlot:
				a[k] = r.slots[op.args[k]&(MaxSlots-1)]
			case argFDPath:
				fdPath(&op.paths[j&1], r.slots[op.args[k]&(MaxSlots-1)])
				a[k] = uintptr(unsafe.Pointer(&op.paths[j&1][0]))
				j++
			default:
				a[k] = op.args[k]
			}
		}
		if op.trap == TrapRemount {
			v, e = 0, rawRemount(r, a[0], a[1], a[2])
		} else {
			v, _, e = syscall.RawSyscall6(op.trap, a[0], a[1], a[2], a[3], a[4], a[5])
		}
		if e == 0 {
			if op.out != 0 {
				r.slots[op.out&(MaxSlots-1)] = v
			}
			i += op.skipOK
			continue
		}
		if op.tolerate == AnyErrno || e == op.tolerate {
			i += op.skipErr
			continue
		}
		return i, e
	}
	return -1, 0
}

// rawRemount is TrapRemount: path is a NUL-terminated path.
//
//go:nosplit
//go:norace
//go:nocheckptr
func rawRemount(r *forkRaw, path, flags, clear uintptr) syscall.Errno {
	_, _, e := syscall.RawSyscall(syscall.SYS_STATFS, path, uintptr(unsafe.Pointer(&r.statfs)), 0)
	if e != 0 {
		return e
	}
	want := mountflags.Remount(r.statfs.Flags, flags, clear)
	_, _, e = syscall.RawSyscall6(syscall.SYS_MOUNT, uintptr(unsafe.Pointer(&r.empty[0])), path, uintptr(unsafe.Pointer(&r.empty[0])), unix.MS_BIND|unix.MS_REMOUNT|want, 0, 0)
	if e == syscall.EPERM && flags&mountflags.Atime != 0 {
		want = mountflags.RemountAtime(r.statfs.Flags, want)
		_, _, e = syscall.RawSyscall6(syscall.SYS_MOUNT, uintptr(unsafe.Pointer(&r.empty[0])), path, uintptr(unsafe.Pointer(&r.empty[0])), unix.MS_BIND|unix.MS_REMOUNT|want, 0, 0)
	}
	return e
}

// fdPath writes "/proc/self/fd/N\x00" into b.
//
//go:nosplit
//go:norace
func fdPath(b *[32]byte, fd uintptr) {
	const prefix = "/proc/self/fd/"
	var i, n int
	for i = 0; i < len(prefix); i++ {
		b[i&31] = prefix[i]
	}
	// The digits, most significant first: count them, then fill.
	n = 1
	for v := fd / 10; v > 0; v /= 10 {
		n++
	}
	for k := n - 1; k >= 0; k-- {
		b[(i+k)&31] = byte('0' + fd%10)
		fd /= 10
	}
	b[(i+n)&31] = 0
}
