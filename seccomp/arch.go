package seccomp

import (
	"hash/fnv"
	"runtime"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// x32SyscallBit marks an x32 syscall: x32 processes run under
// AUDIT_ARCH_X86_64 and are told apart only by bit 30 of the number.
const x32SyscallBit = 0x40000000

// archDef describes one architecture a filter can cover.
type archDef struct {
	name  specs.Arch               // OCI / libseccomp name
	audit uint32                   // AUDIT_ARCH_* in seccomp_data.arch
	bits  int                      // 64: arguments are compared as two 32-bit halves
	table func() map[string]uint32 // name → number, built on first use
	// mux: i386 multiplexes the socket and SysV IPC calls through
	// socketcall(2) and ipc(2) besides having direct syscalls for them.
	mux bool
}

var (
	archX86_64  = &archDef{name: specs.ArchX86_64, audit: unix.AUDIT_ARCH_X86_64, bits: 64, table: syscallsX86_64}
	archX86     = &archDef{name: specs.ArchX86, audit: unix.AUDIT_ARCH_I386, bits: 32, table: syscallsX86, mux: true}
	archX32     = &archDef{name: specs.ArchX32, audit: unix.AUDIT_ARCH_X86_64, bits: 32, table: syscallsX32}
	archAARCH64 = &archDef{name: specs.ArchAARCH64, audit: unix.AUDIT_ARCH_AARCH64, bits: 64, table: syscallsAarch64}
	archARM     = &archDef{name: specs.ArchARM, audit: unix.AUDIT_ARCH_ARM, bits: 32, table: syscallsArm}
)

var archByName = map[specs.Arch]*archDef{
	specs.ArchX86_64:  archX86_64,
	specs.ArchX86:     archX86,
	specs.ArchX32:     archX32,
	specs.ArchAARCH64: archAARCH64,
	specs.ArchARM:     archARM,
}

// nativeArch is the arch of the running binary: libseccomp always puts the
// native arch in a filter, whatever the profile lists.
func nativeArch() *archDef {
	switch runtime.GOARCH {
	case "amd64":
		return archX86_64
	case "386":
		return archX86
	case "arm64":
		return archAARCH64
	case "arm":
		return archARM
	}
	return nil
}

// Sub-call numbers of socketcall(2) and ipc(2) (linux/net.h SYS_*, and
// ipc/syscall.c), used on i386.
var socketcallSub = map[string]uint32{
	"socket": 1, "bind": 2, "connect": 3, "listen": 4, "accept": 5,
	"getsockname": 6, "getpeername": 7, "socketpair": 8, "send": 9,
	"recv": 10, "sendto": 11, "recvfrom": 12, "shutdown": 13,
	"setsockopt": 14, "getsockopt": 15, "sendmsg": 16, "recvmsg": 17,
	"accept4": 18, "recvmmsg": 19, "sendmmsg": 20,
}

var ipcSub = map[string]uint32{
	"semop": 1, "semget": 2, "semctl": 3, "semtimedop": 4,
	"msgsnd": 11, "msgrcv": 12, "msgget": 13, "msgctl": 14,
	"shmat": 21, "shmdt": 22, "shmget": 23, "shmctl": 24,
}

// known reports whether name is a syscall of arch, directly or (i386)
// through socketcall/ipc.
func (a *archDef) known(name string) bool {
	if _, ok := a.table()[name]; ok {
		return true
	}
	if a.mux {
		_, s := socketcallSub[name]
		_, i := ipcSub[name]
		return s || i
	}
	return false
}

// translate turns a rule for the syscall name into the rules libseccomp
// adds on this arch: none when the arch lacks the syscall; on i386, for a
// socket or IPC call, one on socketcall/ipc with argument 0 set to the
// sub-call (replacing any condition the profile put on argument 0, as
// libseccomp does) followed by one on the direct syscall when it exists.
func (a *archDef) translate(dst []rule, name string, r rule) []rule {
	nr, direct := a.table()[name]
	if a.mux {
		mux, sub := uint32(0), uint32(0)
		if s, ok := socketcallSub[name]; ok {
			mux, sub = a.table()["socketcall"], s
		} else if s, ok := ipcSub[name]; ok {
			mux, sub = a.table()["ipc"], s
		}
		if mux != 0 {
			m := r
			m.nr = int64(mux)
			m.args[0] = argCmp{valid: true, op: opEQ, mask: ^uint64(0), datum: uint64(sub)}
			dst = append(dst, m)
			if direct {
				d := r
				d.nr = int64(nr)
				dst = append(dst, d)
			}
			return dst
		}
	}
	if !direct {
		if a.mux || !knownAnywhere(name) {
			return dst
		}
		// libseccomp gives a syscall an arch lacks a negative "pseudo"
		// number and, on every arch but i386, still merges the rule into
		// that arch's database; it never reaches the program, but the merge
		// can fail (EEXIST) or not end, failing the whole profile. sandy
		// does the same so that the same profiles are refused.
		r.nr = pseudoNr(name)
		return append(dst, r)
	}
	r.nr = int64(nr)
	return append(dst, r)
}

// knownAnywhere reports whether any supported arch has the syscall.
func knownAnywhere(name string) bool {
	for _, a := range archByName {
		if a.known(name) {
			return true
		}
	}
	return false
}

// pseudoNr is a stable negative number for a syscall an arch lacks.
func pseudoNr(name string) int64 {
	h := fnv.New32a()
	h.Write([]byte(name))
	return -2 - int64(h.Sum32())
}
