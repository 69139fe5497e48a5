//go:build linux

package seccomp

import (
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"runtime"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Load installs the filter on the calling thread with seccomp(2)
// SECCOMP_SET_MODE_FILTER and returns the notification listener fd, or -1
// when the profile has no SCMP_ACT_NOTIFY rule.
//
// Call it as the last step before execve(2), from the goroutine that will
// call execve: Load locks that goroutine to its OS thread for good, because
// the filter covers only the calling thread. That is enough: execve ends
// every other thread (de_thread), so the new program runs only under this
// thread's filters. sandy never passes SECCOMP_FILTER_FLAG_TSYNC, even when
// the profile lists it (see doc.go).
//
// Without no_new_privs the kernel requires CAP_SYS_ADMIN in the caller's
// user namespace (seccomp(2)); the init then loads the filter before it
// drops its capabilities, as runc does.
func (f *Filter) Load() (listenerFD int, err error) {
	if len(f.prog) == 0 {
		return -1, fmt.Errorf("loading seccomp filter: %w", ErrNoProfile)
	}
	runtime.LockOSThread()
	prog := unix.SockFprog{Len: uint16(len(f.prog)), Filter: &f.prog[0]}
	r, _, errno := unix.Syscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER, f.flags, uintptr(unsafe.Pointer(&prog)))
	runtime.KeepAlive(f)
	if errno != 0 {
		return -1, loadError(errno, f.flags)
	}
	if f.notify {
		return int(r), nil
	}
	return -1, nil
}

func loadError(errno unix.Errno, flags uintptr) error {
	nnp, _ := unix.PrctlRetInt(unix.PR_GET_NO_NEW_PRIVS, 0, 0, 0, 0)
	return LoadError(errno, flags, nnp != 0)
}

// LoadError is Load's error for a seccomp(2) that failed with errno, for
// a filter installed by another process (a forked child that loads
// Instructions with Flags itself); nnp says whether it had no_new_privs.
func LoadError(errno unix.Errno, flags uintptr, nnp bool) error {
	err := fmt.Errorf("loading seccomp filter: seccomp(SECCOMP_SET_MODE_FILTER, %#x): %w", flags, errno)
	switch {
	case errors.Is(errno, unix.EACCES):
		if !nnp {
			return fmt.Errorf("%w (no_new_privs is not set and the process lacks CAP_SYS_ADMIN in its user namespace: load the filter before dropping capabilities, or set process.noNewPrivileges)", err)
		}
	case errors.Is(errno, unix.EINVAL) && flags != 0:
		return fmt.Errorf("%w (the kernel may not support these flags: LOG 4.14, SPEC_ALLOW 4.17, NEW_LISTENER 5.0, WAIT_KILLABLE_RECV 5.19)", err)
	}
	return err
}

// SendListener hands the listener fd of a SCMP_ACT_NOTIFY filter to the
// seccomp agent at listenerPath, as runc does: it connects to the unix
// socket and sends, in one message, the JSON of a runtime-spec
// ContainerProcessState (fds ["seccompFd"], pid and state taken from state,
// the runtime-spec State JSON of the container, and metadata, the profile's
// listenerMetadata) with fd attached as SCM_RIGHTS. It does not close fd.
func SendListener(listenerPath string, state []byte, metadata string, fd int) error {
	var st specs.State
	if err := json.Unmarshal(state, &st); err != nil {
		return fmt.Errorf("sending seccomp listener to %q: parsing container state: %w", listenerPath, err)
	}
	msg, err := json.Marshal(specs.ContainerProcessState{
		Version:  specs.Version,
		Fds:      []string{specs.SeccompFdName},
		Pid:      st.Pid,
		Metadata: metadata,
		State:    st,
	})
	if err != nil {
		return fmt.Errorf("sending seccomp listener to %q: %w", listenerPath, err)
	}
	conn, err := net.DialUnix("unix", nil, &net.UnixAddr{Name: listenerPath, Net: "unix"})
	if err != nil {
		return fmt.Errorf("sending seccomp listener: %w", err)
	}
	defer conn.Close()
	n, oobn, err := conn.WriteMsgUnix(msg, unix.UnixRights(fd), nil)
	if err != nil {
		return fmt.Errorf("sending seccomp listener to %q: %w", listenerPath, err)
	}
	if n != len(msg) || oobn == 0 {
		return fmt.Errorf("sending seccomp listener to %q: short write (%d of %d bytes)", listenerPath, n, len(msg))
	}
	return nil
}
