// Package seccomp compiles OCI seccomp profiles (runtime-spec
// LinuxSeccomp) to classic BPF in pure Go and loads them with seccomp(2).
// It needs no cgo and no libseccomp: the shipped sandy binary is static.
//
// # Who calls it, and where
//
// The host side calls Compile on the container's profile before it starts
// anything, so that a bad profile fails `sandy create` with a precise
// error. The init, inside the container's namespaces, calls Compile again,
// then Load as its last step before waiting on the exec fifo and calling
// execve(2) (runc's order: as few syscalls as possible run under the
// filter). When the profile has SCMP_ACT_NOTIFY rules, Load returns the
// listener fd; the init passes it to the host side over its sync socket
// (SCM_RIGHTS), because listenerPath is a host path that the init cannot
// reach after pivot_root, and the host side calls SendListener to hand it
// to the seccomp agent (runc's protocol). Until the agent has the fd, a
// notified syscall in the init would block for ever; for that reason
// NOTIFY on write(2) is refused, as in runc, and the init should use only
// sendmsg(2) and close(2) after Load. DefaultProfile gives moby's default
// profile for `sandy run --seccomp=default`.
//
// # What it compiles
//
// Everything in a runtime-spec profile, with the meaning libseccomp 2.5
// (the library runc, crun and podman link) gives it:
//
//   - defaultAction and defaultErrnoRet; actions KILL (= KILL_THREAD),
//     KILL_PROCESS, KILL_THREAD, TRAP, ERRNO (errnoRet, EPERM by default),
//     TRACE (errnoRet, EPERM by default), ALLOW, LOG, NOTIFY;
//   - architectures: SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32,
//     SCMP_ARCH_AARCH64 and SCMP_ARCH_ARM, plus the native one, which
//     libseccomp always includes. x86_64 and x32 share AUDIT_ARCH_X86_64
//     and are told apart by bit 30 of the syscall number; a filter with
//     only one of them treats the other as an unlisted arch. On i386 the
//     socket and SysV IPC calls get a rule on socketcall(2)/ipc(2) with
//     argument 0 set to the sub-call, besides the direct syscall. A syscall
//     made under an arch the filter does not list kills the process.
//   - args: NE, LT, LE, EQ, GE, GT, MASKED_EQ on all 64 bits of an
//     argument (both 32-bit halves) on 64-bit arches, on the low 32 bits
//     on 32-bit ones (x86, x32, arm), as libseccomp does. Conditions on
//     different arguments must all hold; when one argument is named twice,
//     each condition becomes a rule of its own (runc's reading).
//   - several rules for one syscall are merged the way libseccomp merges
//     them (tree.go), including which rule wins and which conflicts are
//     errors (libseccomp's EEXIST);
//   - flags SECCOMP_FILTER_FLAG_LOG, _SPEC_ALLOW and _WAIT_KILLABLE_RECV
//     (the latter only with a NOTIFY rule, as the kernel requires);
//     _TSYNC is accepted and not passed (see below); any other flag is an
//     error.
//
// Names no covered arch knows are skipped with a debug log line, as runc
// does, unless no name of the rule is known at all, which is an error.
// Syscalls numbered above the highest one the profile names get ENOSYS
// instead of a refusing default action (runc's "-ENOSYS stub"), so that a
// newer libc falls back to an older syscall instead of failing with EPERM.
//
// # The program
//
// The filter checks seccomp_data.arch, then does a binary search over
// intervals of syscall numbers with one outcome each (the x32 split and the
// ENOSYS stub are intervals too), then evaluates the argument tree of the
// syscall, if it has one. Conditional jumps reach 255 instructions; longer
// ones go through inserted jumps (or copies of the `ret` they target).
// moby's default profile compiles to about 825 instructions, against 1,298
// from libseccomp, and decides a syscall in about 11 instructions.
//
// # Threads and TSYNC
//
// sandy's init is a multi-threaded Go program. Load installs the filter on
// the calling thread only, locks the calling goroutine to that thread, and
// that goroutine then calls execve(2). execve ends every other thread, so
// the container runs under exactly the filters of that thread: TSYNC would
// not change what the container sees. It would expose the Go runtime's
// other threads to the profile during the last microseconds before execve,
// where a profile that kills on futex or tgkill kills or hangs the init.
// So TSYNC is never passed, and the NOTIFY+TSYNC conflict of older kernels
// (SECCOMP_FILTER_FLAG_TSYNC_ESRCH) does not arise.
//
// Without no_new_privs, seccomp(2) needs CAP_SYS_ADMIN in the caller's user
// namespace: the init must then load the filter before dropping its
// capabilities (as runc does), and the filter must allow what the init
// does after that.
//
// # What it does not do
//
// It does not support the MIPS, PowerPC, s390, RISC-V, LoongArch or other
// arches (an error names them), nor libseccomp's SCMP_FLTATR_API_TSKIP
// (rules on syscall -1). See docs/seccomp.md for the proof against
// libseccomp and the figures.
//
// Man pages: seccomp(2), seccomp_unotify(2), execve(2).
package seccomp

//go:generate go run ./internal/gensyscalls -o zsyscalls_table.go
