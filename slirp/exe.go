//go:build linux

package slirp

import (
	"errors"
	"fmt"
	"os"

	"golang.org/x/sys/unix"
)

// sealedSeals are the seals that make a memfd immutable for everyone, the
// ones userns.SelfExe sets (fcntl(2), "File Sealing").
const sealedSeals = unix.F_SEAL_WRITE | unix.F_SEAL_GROW | unix.F_SEAL_SHRINK

// checkExe refuses a sandy binary handle that the container could modify:
// the caller must pass the protected copy the init runs from. That is a
// memfd with sealedSeals, a file on a read-only overlayfs superblock
// (root's detached overlay mount of the binary's directory, with no
// upperdir: nothing there can be written or remounted writable), or a
// file the caller cannot write (a root-owned install), the same rule as
// userns.SelfExe, which this leaf cannot import.
//
// Why it matters: the port child runs the binary inside the container's
// user namespace, and the monitor runs it as the caller's uid, which is the
// container's root on the host. A process of the container that reaches
// /proc/PID/exe of either (it shares the host's pid namespace, or ptraces
// the port child) opens the binary itself: if the caller can write it, so
// can the container, and the next sandy run executes the container's code
// on the host (CVE-2019-5736). There is no fallback to os.Executable: that
// is exactly the writable binary.
func checkExe(f *os.File) error {
	if f == nil {
		return errors.New("no sandy binary handle (Options.Exe): pass the sealed copy the container's init runs from (userns.SelfExe)")
	}
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err == nil && seals&sealedSeals == sealedSeals {
		return nil
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("sandy binary %s: fstat: %w", f.Name(), err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("sandy binary %s is not a regular file (mode %#o)", f.Name(), st.Mode)
	}
	if readOnlyOverlay(f) {
		return nil
	}
	writable := int(st.Uid) == os.Geteuid() || // the owner can chmod it writable at any time
		unix.Access(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.W_OK) == nil
	if writable {
		return fmt.Errorf("sandy binary %s is writable by uid %d, so the container could rewrite it through /proc/PID/exe of the network helpers (CVE-2019-5736): pass a sealed copy (userns.SelfExe)", f.Name(), os.Geteuid())
	}
	return nil
}

// checkPidNamespace refuses the builtin driver's port child when the
// container's process pid shares the caller's pid namespace: the port
// child lives in the caller's pid namespace and inside the container's
// user namespace, where the container's root holds CAP_SYS_PTRACE over
// it; a container that can see it could ptrace it (non-dumpable or not)
// and reach the host's mount namespace through it (doc.go, Security). The
// slirp4netns driver has no process inside and is the caller's choice
// then.
func checkPidNamespace(pid int) error {
	return checkPidNamespaceOf(nsOf{pid: pid})
}

// nsOf names a container's namespaces: its handle on one (the caller's,
// Options.PidNS, UserNS) where it has one, else by its pid 1's.
type nsOf struct {
	pid         int
	pidNS, user *os.File
}

// stat stats the container's namespace kind ("pid", "user").
func (n nsOf) stat(kind string) (unix.Stat_t, error) {
	var st unix.Stat_t
	f := n.user
	if kind == "pid" {
		f = n.pidNS
	}
	if f != nil {
		if err := unix.Fstat(int(f.Fd()), &st); err != nil {
			return st, fmt.Errorf("the container's %s namespace: %w", kind, err)
		}
		return st, nil
	}
	path := fmt.Sprintf("/proc/%d/ns/%s", n.pid, kind)
	if err := unix.Stat(path, &st); err != nil {
		return st, fmt.Errorf("stat %s: %w", path, err)
	}
	return st, nil
}

func checkPidNamespaceOf(n nsOf) error {
	var self unix.Stat_t
	if err := unix.Stat("/proc/self/ns/pid", &self); err != nil {
		return fmt.Errorf("stat /proc/self/ns/pid: %w", err)
	}
	their, err := n.stat("pid")
	if err != nil {
		return err
	}
	if self.Dev == their.Dev && self.Ino == their.Ino {
		return fmt.Errorf("%w: the builtin port driver runs a helper in the container's user namespace that a container sharing the host's pid namespace could ptrace: give the container a pid namespace (linux.namespaces: {\"type\": \"pid\"}) or use --network=slirp4netns:port_handler=slirp4netns", ErrPortDriver)
	}
	return nil
}

// builtinAdvice is the fix for a port the slirp4netns driver cannot
// forward: the builtin driver, which slirp refuses for a container in the
// caller's pid namespace (checkPidNamespace), and the lifecycle then picks
// the slirp4netns driver itself; that container needs a pid namespace
// first.
func builtinAdvice(pid int) string {
	if errors.Is(checkPidNamespace(pid), ErrPortDriver) {
		return `use the builtin driver, which needs the container to have its own pid namespace: add {"type": "pid"} to linux.namespaces`
	}
	return "use the builtin driver"
}

// readOnlyOverlay reports whether f is on an overlayfs mount that is
// read-only (fstatfs(2) works on userns.SelfExe's O_PATH handle). An
// overlay with no upperdir is read-only whatever its mount flags say; its
// ST_RDONLY is then set too.
func readOnlyOverlay(f *os.File) bool {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &fs); err != nil {
		return false
	}
	return fs.Type == unix.OVERLAYFS_SUPER_MAGIC && fs.Flags&unix.ST_RDONLY != 0
}
