package spec

import "golang.org/x/sys/unix"

var rlimits = map[string]int{
	"RLIMIT_AS": unix.RLIMIT_AS, "RLIMIT_CORE": unix.RLIMIT_CORE, "RLIMIT_CPU": unix.RLIMIT_CPU,
	"RLIMIT_DATA": unix.RLIMIT_DATA, "RLIMIT_FSIZE": unix.RLIMIT_FSIZE, "RLIMIT_LOCKS": unix.RLIMIT_LOCKS,
	"RLIMIT_MEMLOCK": unix.RLIMIT_MEMLOCK, "RLIMIT_MSGQUEUE": unix.RLIMIT_MSGQUEUE, "RLIMIT_NICE": unix.RLIMIT_NICE,
	"RLIMIT_NOFILE": unix.RLIMIT_NOFILE, "RLIMIT_NPROC": unix.RLIMIT_NPROC, "RLIMIT_RSS": unix.RLIMIT_RSS,
	"RLIMIT_RTPRIO": unix.RLIMIT_RTPRIO, "RLIMIT_RTTIME": unix.RLIMIT_RTTIME, "RLIMIT_SIGPENDING": unix.RLIMIT_SIGPENDING,
	"RLIMIT_STACK": unix.RLIMIT_STACK,
}

// RlimitNumber maps an OCI rlimit type ("RLIMIT_NOFILE") to its number.
func RlimitNumber(name string) (int, bool) {
	n, ok := rlimits[name]
	return n, ok
}

// SetByInit reports whether the init, not the host, sets the rlimit
// named, with setrlimit(2) as its last step before execve:
//   - RLIMIT_AS and RLIMIT_DATA cap address space, and the init is a Go
//     process whose runtime reserves far more than a program's limit
//     (1 GiB is common) and still allocates: set early, they crash it;
//   - RLIMIT_NOFILE is set by the host (it may raise the hard limit) and
//     set again by the init, because Go's syscall.Exec restores the soft
//     limit the runtime found at start-up unless the process itself
//     called Setrlimit (syscall/rlimit.go).
//
// The host leaves RLIMIT_AS and RLIMIT_DATA alone (HostSkips).
func SetByInit(name string) bool {
	return name == "RLIMIT_AS" || name == "RLIMIT_DATA" || name == "RLIMIT_NOFILE"
}

// HostSkips reports whether the host leaves the rlimit named to the init
// (see SetByInit).
func HostSkips(name string) bool {
	return SetByInit(name) && name != "RLIMIT_NOFILE"
}
