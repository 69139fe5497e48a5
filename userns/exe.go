package userns

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"
)

// SelfExe returns a handle on the running sandy binary to exec the
// container init from, such that nothing inside a container can write to
// the host binary (CVE-2019-5736: a container process opened
// /proc/<runc-pid>/exe and rewrote runc on the host). ProtectSelfExe says
// which of three ways it took.
func SelfExe() (*os.File, error) {
	f, _, err := ProtectSelfExe()
	return f, err
}

// ProtectSelfExe is SelfExe, and says how the binary is protected (for
// --debug). A container's root is a uid on the host (the caller's when
// rootless, root when not), so the attack matters exactly when the caller
// can write the binary:
//
//   - A binary the caller cannot write (root-owned, as installed, run by a
//     user) is opened read-only and used as it is.
//   - Otherwise the handle is the binary seen through a detached,
//     read-only overlayfs mount of its directory, as runc >= 1.2 does for
//     root (libcontainer/exeseal). Nothing is copied: the exec maps the
//     page cache's pages of the file itself, and a write through
//     /proc/PID/exe fails with EROFS. Root, with CAP_SYS_ADMIN in the
//     initial user namespace, mounts it itself (readOnlyOverlay); anyone
//     else has a short-lived child make it in a user and mount namespace
//     of its own (userNSOverlay, exens.go: overlayfs mounts in a user
//     namespace since Linux 5.11).
//   - When the overlay fails (no fsopen(2), no overlayfs or an older
//     kernel, user namespaces disabled, an LSM, a binary on a filesystem
//     overlayfs refuses as a layer, a binary no longer at its path), a
//     copy in a sealed memfd (memfd_create(2) with
//     F_SEAL_WRITE|F_SEAL_GROW|F_SEAL_SHRINK|F_SEAL_SEAL), which no one
//     can modify and which is gone when the last user exits; this is what
//     runc 1.1 did for everyone.
func ProtectSelfExe() (*os.File, string, error) {
	admin := hostAdmin()
	f, _, how, err := protectedExe("/proc/self/exe", admin, overlayFor(admin))
	return f, how, err
}

// overlayFor is the way to make the read-only overlay: root's own mount,
// or a user namespace's.
func overlayFor(admin bool) func(path string) (*os.File, error) {
	if admin {
		return readOnlyOverlay
	}
	return userNSOverlay
}

// exeProtection is one of the ways of ProtectSelfExe; its string is
// doctor's key for it (SelfExeProtection).
type exeProtection string

const (
	exeAsIs          exeProtection = "as-is"          // the caller cannot write it
	exeOverlay       exeProtection = "overlay"        // a read-only overlayfs view of it, mounted by root
	exeUserNSOverlay exeProtection = "userns-overlay" // the same, made in a user namespace
	exeMemfd         exeProtection = "memfd"          // a sealed memfd copy: when the overlay fails
)

// chooseProtection is ProtectSelfExe's first choice: only the caller's
// right to write the binary and to mount in the initial user namespace
// matter. A failed overlay falls back to exeMemfd (protectedExe).
func chooseProtection(writable, hostAdmin bool) exeProtection {
	switch {
	case !writable:
		return exeAsIs
	case hostAdmin:
		return exeOverlay
	}
	return exeUserNSOverlay
}

// hostAdmin reports whether this process holds CAP_SYS_ADMIN in the
// initial user namespace, which a mount in the caller's own mount
// namespace needs. (A rootless sandy runs in the initial user namespace,
// without the capability, and makes its overlay in one of its own.)
func hostAdmin() bool { return !InUserNS() && hasSysAdmin() }

// protectedExe is ProtectSelfExe for the binary at path, and the way it
// took; overlay makes the read-only view (readOnlyOverlay as root,
// userNSOverlay otherwise).
func protectedExe(path string, admin bool, overlay func(path string) (*os.File, error)) (*os.File, exeProtection, string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, "", "", fmt.Errorf("opening %s: %w", path, err)
	}
	name := binaryPath(path)
	way := chooseProtection(writableByMe(f), admin)
	uid := os.Geteuid()
	if way == exeAsIs {
		return f, way, fmt.Sprintf("%s as it is (not writable by uid %d)", name, uid), nil
	}
	o, oerr := overlay(path)
	if oerr == nil {
		f.Close()
		if way == exeUserNSOverlay {
			return o, way, fmt.Sprintf("%s through a detached read-only overlayfs mount made in a user namespace of its own (writable by uid %d; not copied)", name, uid), nil
		}
		return o, way, fmt.Sprintf("%s through a detached read-only overlayfs mount (writable by uid %d; not copied)", name, uid), nil
	}
	defer f.Close()
	c, err := sealedCopy(f)
	return c, exeMemfd, fmt.Sprintf("a sealed memfd copy of %s (writable by uid %d; no read-only overlayfs: %v)", name, uid, oerr), err
}

// readOnlyOverlay opens the binary that path (/proc/self/exe) links to
// through an overlayfs mount of its directory that exists only as a file
// descriptor: fsopen(2) "overlay" with two lowerdirs and no upperdir, which
// makes the superblock read-only for good (overlayfs has nowhere to copy a
// file up to), then fsmount(2) read-only, nodev and nosuid, never attached
// to any mount namespace (so no mountinfo lists it, and it goes away with
// the last fd or process that uses it). The result is an
// O_PATH|O_CLOEXEC handle on the binary there, which Start execs by
// /proc/self/fd/N: the init's /proc/PID/exe then names the overlay's file,
// and opening it for writing fails with EROFS. Unlike a read-only bind
// mount, nothing can remount it writable: MS_RDONLY is the superblock's.
// It needs CAP_SYS_ADMIN over the caller's mount namespace (root); see
// userNSOverlay for everyone else.
//
// Why two lowerdirs: overlayfs refuses one lowerdir without an upperdir.
// The second is an empty tmpfs mounted on the binary's directory by a
// short-lived child in a mount namespace of its own, the child
// userNSOverlay starts (exens.go) without its user namespace: nothing is
// made on disk (a temporary directory in /tmp cost a mkdir and an rmdir
// on every container start), and the binary's directory is the top layer,
// so nothing in the second could shadow the binary anyway. Root's copy of
// the mount namespace keeps the caller's peer groups, so the child makes
// its mounts private first: the tmpfs reaches no other namespace. (Not a
// thread's unshare(CLONE_NEWNS): Go may run that goroutine on the main
// thread, which a locked goroutine's exit does not end, and whose
// namespace /proc/self/mountinfo and /proc/self/ns/mnt then show.) The
// directory's path comes from readlink(2) of path and is checked to be the
// running binary (same device and inode), so a path that does not lead
// back to it (a binary already deleted or replaced, or itself on a
// detached mount) is an error, and the caller copies instead; the file
// opened in the overlay is checked again (checkOverlayExe).
func readOnlyOverlay(path string) (*os.File, error) {
	real, self, err := runningBinary(path)
	if err != nil {
		return nil, err
	}
	o := newExeOptions(real, 0, 0)
	o.Root = true
	f, err := exeInChild(o, forkVM)
	if err != nil {
		return nil, fmt.Errorf("in a mount namespace of its own: %w", err)
	}
	if err := checkOverlayExe(f, &self); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// binaryPath is the path of the binary that path names: the target of a
// symbolic link (/proc/self/exe; a relative one from path's directory),
// or path itself.
func binaryPath(path string) string {
	real, err := os.Readlink(path)
	switch {
	case err != nil:
		return path
	case !filepath.IsAbs(real):
		return filepath.Join(filepath.Dir(path), real)
	}
	return real
}

// escapeLowerDir escapes a path for overlayfs' lowerdir list, where ':'
// separates the layers and '\' escapes.
func escapeLowerDir(p string) string {
	return strings.ReplaceAll(strings.ReplaceAll(p, `\`, `\\`), `:`, `\:`)
}

func writableByMe(f *os.File) bool {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return true
	}
	if int(st.Uid) == os.Geteuid() {
		return true // the owner can chmod it writable at any time
	}
	return unix.Access(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.W_OK) == nil
}

func sealedCopy(src *os.File) (*os.File, error) {
	fd, err := unix.MemfdCreate("sandy", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create for the sealed sandy copy: %w", err)
	}
	dst := os.NewFile(uintptr(fd), "memfd:sandy")
	if err := copyInKernel(dst, src); err != nil {
		dst.Close()
		return nil, fmt.Errorf("copying sandy into a memfd: %w", err)
	}
	if err := sealWrites(fd, addSeals); err != nil {
		dst.Close()
		return nil, fmt.Errorf("sealing the sandy memfd: %w", err)
	}
	return dst, nil
}

// copyInKernel copies src, from its start to its end, into dst, an
// empty memfd, with sendfile(2): the page cache's pages go into the
// memfd's without a trip through user memory, about half the time of
// io.Copy's 32 KiB read/write pairs (copy_file_range(2) refuses a copy
// from another filesystem to tmpfs, EXDEV). On this project's 2-core
// machine, for a 14 MB sandy (a -trimpath build, not stripped): 2.5 ms
// against 5.0 ms, best of 15, on every run, create and exec of a
// container when the user can write the binary. A kernel whose sendfile
// refuses the pair (EINVAL, ENOSYS) before a byte is copied gets
// io.Copy.
func copyInKernel(dst, src *os.File) error {
	var off int64
	for {
		n, err := unix.Sendfile(int(dst.Fd()), int(src.Fd()), &off, 1<<30)
		switch {
		case (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS)) && off == 0:
			_, err = io.Copy(dst, src)
			return err
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("sendfile: %w", err)
		case n == 0:
			return nil
		}
	}
}

// addSeals is fcntl(F_ADD_SEALS) (a variable for the tests).
var addSeals = func(fd int, seals int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals)
	return err
}

// sealWrites seals the memfd against every change. F_SEAL_WRITE fails with
// EBUSY while a page of the file still has a reference besides the page
// cache's: pages just written can sit in another CPU's LRU batch for a
// moment, which the kernel's own wait (memfd_wait_for_pins) does not
// always outlast on a loaded machine (seen once in about 5 critest runs).
// A few tries, 2 ms apart and doubling, outlast it; any other error, or
// EBUSY after the last try, is returned.
func sealWrites(fd int, add func(int, int) error) error {
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	wait := 2 * time.Millisecond
	for try := 1; ; try++ {
		err := add(fd, seals)
		if err == nil || !errors.Is(err, unix.EBUSY) || try == 6 {
			return err
		}
		time.Sleep(wait)
		wait *= 2
	}
}
