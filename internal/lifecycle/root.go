package lifecycle

import (
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/state"
)

// RunningRoot is a handle on a running container's root and user
// namespace, opened from the host for a process that works in the root
// from outside the container (sandy cp's worker).
type RunningRoot struct {
	// Pid is the container's init, as the host sees it.
	Pid int
	// Root is an O_PATH handle on the init's root directory
	// (/proc/PID/root): the container's root mount, in its own mount
	// namespace; paths are resolved in it, never under a host path.
	Root *os.File
	// UserNS is the init's user namespace (/proc/PID/ns/user), nil when
	// it is sandy's own (a container run by root without one).
	UserNS *os.File
	// UIDs and GIDs are the container's id maps as the host sees them.
	UIDs, GIDs []specs.LinuxIDMapping
}

// Close releases the handles.
func (r *RunningRoot) Close() {
	r.Root.Close()
	if r.UserNS != nil {
		r.UserNS.Close()
	}
}

// OpenRunningRoot opens the root of the running (or created, or paused)
// container id. The init is pinned with a pidfd first and checked to be
// the recorded process (its start time) and, once the /proc files are
// open, still alive: a pid reused meanwhile cannot hand out another
// process's root.
func OpenRunningRoot(g *Global, id string) (*RunningRoot, error) {
	root, c, lock, err := open(g, id)
	if err != nil {
		return nil, err
	}
	st := root.Status(c)
	lock.Unlock()
	switch st {
	case state.Created, state.Running, state.Paused:
	default:
		return nil, fmt.Errorf("container %s is %s", id, st)
	}
	pidfd, err := unix.PidfdOpen(c.Pid, 0)
	if err != nil {
		return nil, fmt.Errorf("container %s stopped: %w", id, err)
	}
	defer unix.Close(pidfd)
	if !state.Alive(c.Pid, c.PidStart) {
		return nil, fmt.Errorf("container %s stopped", id)
	}
	r := &RunningRoot{Pid: c.Pid}
	if r.Root, err = os.OpenFile(fmt.Sprintf("/proc/%d/root", c.Pid), unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
		return nil, fmt.Errorf("opening the container's root: %w", err)
	}
	ns, err := os.Open(fmt.Sprintf("/proc/%d/ns/user", c.Pid))
	if err != nil {
		r.Close()
		return nil, fmt.Errorf("opening the container's user namespace: %w", err)
	}
	var mine, theirs unix.Stat_t
	if err := unix.Stat("/proc/self/ns/user", &mine); err != nil {
		ns.Close()
		r.Close()
		return nil, err
	}
	if err := unix.Fstat(int(ns.Fd()), &theirs); err != nil {
		ns.Close()
		r.Close()
		return nil, err
	}
	if mine.Ino == theirs.Ino && mine.Dev == theirs.Dev {
		ns.Close()
	} else {
		r.UserNS = ns
	}
	if r.UIDs, r.GIDs, err = readIDMaps(c.Pid); err != nil {
		r.Close()
		return nil, err
	}
	// Still the same process: the handles are its.
	if err := unix.PidfdSendSignal(pidfd, 0, nil, 0); err != nil {
		r.Close()
		return nil, fmt.Errorf("container %s stopped", id)
	}
	return r, nil
}
