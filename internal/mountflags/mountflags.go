// Package mountflags is the arithmetic of a bind remount in a user
// namespace: which MS_* flags to pass so that the flags the kernel locked
// on an inherited mount are kept (mount(2) refuses to clear them, EPERM).
// The Go init's remounts (initproc), overlay's read-only rungs and the raw
// init's TrapRemount (userns/program.go, which runs it in a forked child:
// the functions are go:nosplit and allocate nothing) compute it here.
package mountflags

import "golang.org/x/sys/unix"

// Remount is the MS_* flags of a bind remount asking for flags on
// a mount whose statfs(2) f_flags are stFlags: flags, plus the flags the
// kernel locks on a mount a user namespace inherited (Locked) that
// the mount has and clear does not clear; an atime mode asked for
// replaces the mount's own.
//
//go:nosplit
func Remount(stFlags int64, flags, clear uintptr) uintptr {
	locked := FromStatfs(stFlags) & Locked
	if flags&(unix.MS_NOATIME|unix.MS_RELATIME|unix.MS_STRICTATIME) != 0 {
		locked &^= unix.MS_NOATIME | unix.MS_RELATIME
	}
	return flags | (locked &^ clear)
}

// RemountAtime is want with the atime mode replaced by the mount's own
// (stFlags): the retry after a refused atime mode.
//
//go:nosplit
func RemountAtime(stFlags int64, want uintptr) uintptr {
	src := FromStatfs(stFlags) & (unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_NODIRATIME)
	return want&^Atime | src
}

// Locked are the per-mount flags the kernel locks on mounts that a
// less privileged user namespace inherited: a bind remount inside the
// user namespace must keep them, or it fails with EPERM.
const Locked = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC |
	unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME

// Atime are the mount flags that select the atime mode.
const Atime = unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_STRICTATIME | unix.MS_NODIRATIME

// FromStatfs turns statfs(2) f_flags into MS_* flags.
//
//go:nosplit
func FromStatfs(f int64) uintptr {
	var m uintptr
	if f&unix.ST_RDONLY != 0 {
		m |= unix.MS_RDONLY
	}
	if f&unix.ST_NOSUID != 0 {
		m |= unix.MS_NOSUID
	}
	if f&unix.ST_NODEV != 0 {
		m |= unix.MS_NODEV
	}
	if f&unix.ST_NOEXEC != 0 {
		m |= unix.MS_NOEXEC
	}
	if f&unix.ST_NOATIME != 0 {
		m |= unix.MS_NOATIME
	}
	if f&unix.ST_NODIRATIME != 0 {
		m |= unix.MS_NODIRATIME
	}
	if f&unix.ST_RELATIME != 0 {
		m |= unix.MS_RELATIME
	}
	return m
}
