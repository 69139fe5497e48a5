package slirp

import "errors"

// Sentinel errors. Match them with errors.Is; the message of the error that
// wraps them carries the details and the fix.
var (
	// ErrBadPort marks a malformed or conflicting -p spec.
	ErrBadPort = errors.New("bad port spec")
	// ErrPortInUse marks a host port that another socket already holds.
	ErrPortInUse = errors.New("host port already in use")
	// ErrPrivilegedPort marks a host port below
	// net.ipv4.ip_unprivileged_port_start.
	ErrPrivilegedPort = errors.New("privileged host port")
	// ErrUnavailable marks a host that cannot run slirp4netns: the binary
	// is missing or /dev/net/tun is unusable. The caller falls back to
	// loopback-only networking and prints the error once.
	ErrUnavailable = errors.New("slirp4netns networking unavailable")
	// ErrPortDriver marks a port driver that the container's namespaces
	// make unsafe: the builtin driver for a container that shares the
	// caller's pid namespace (doc.go, Security).
	ErrPortDriver = errors.New("unsafe port driver")
)
