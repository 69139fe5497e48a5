//go:build linux

package initproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// copyUp fills the tmpfs just mounted at dest with what the directory it
// covers holds ("tmpcopyup", a crun and podman option: a read-only image's
// /etc or /var/lib made writable with its content). covered is the handle
// on that directory taken before the mount: through it the walk reaches
// the covered inodes, never the new tmpfs, and every step is relative to
// a directory fd with O_NOFOLLOW, so a symlink in the rootfs is copied as
// a symlink and never followed out of it. The tmpfs root takes the
// covered directory's owner, and its mode unless the options set one.
func (r *rootfs) copyUp(dest string, covered *os.File, modeSet bool) error {
	src, err := pathrs.Reopen(covered, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("opening the covered %s: %w", dest, err)
	}
	defer src.Close()
	top, err := r.reopen(dest)
	if err != nil {
		return err
	}
	defer top.Close()
	dst, err := pathrs.Reopen(top, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("opening the tmpfs on %s: %w", dest, err)
	}
	defer dst.Close()
	if err := takeOwner(src, dst, dest, !modeSet); err != nil {
		return err
	}
	return copyDir(int(src.Fd()), int(dst.Fd()), dest)
}

// takeOwner gives the directory dst the owner of src, and its mode with
// mode. An owner the container's id map does not hold (EINVAL) is left to
// the container's root, as copyDir leaves it.
func takeOwner(src, dst *os.File, dest string, mode bool) error {
	var st unix.Stat_t
	if err := unix.Fstat(int(src.Fd()), &st); err != nil {
		return err
	}
	if err := unix.Fchown(int(dst.Fd()), int(st.Uid), int(st.Gid)); err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("chown %s: %w", dest, err)
	}
	if mode {
		if err := unix.Fchmod(int(dst.Fd()), st.Mode&0o7777); err != nil {
			return fmt.Errorf("chmod %s: %w", dest, err)
		}
	}
	return nil
}

// volumeFirstUse is a volume's first use, as podman does it before it
// starts a container, here from inside the container's user namespace,
// which holds every id a file may be given: the bind's directory just
// mounted at dest takes the owner and mode of the directory of the image
// it covers (covered, a handle taken before the mount), or the process
// user when the image has none there (inImage false: the init made the
// mount point); with fill, an empty volume gets that directory's content
// too (copyup). The copy is copyUp's: fd-relative, no symlink followed.
func (r *rootfs) volumeFirstUse(dest string, covered *os.File, inImage, fill bool) error {
	top, err := r.reopen(dest)
	if err != nil {
		return err
	}
	defer top.Close()
	dst, err := pathrs.Reopen(top, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("opening the volume on %s: %w", dest, err)
	}
	defer dst.Close()
	if !inImage {
		var uid, gid int
		if p := r.spec.Process; p != nil {
			uid, gid = int(p.User.UID), int(p.User.GID)
		}
		// EINVAL: the user is not in the id map (a single-id map): the
		// volume stays the container root's, as a copy's owner does.
		if err := unix.Fchown(int(dst.Fd()), uid, gid); err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("chown %s to the process user %d:%d: %w", dest, uid, gid, err)
		}
		return nil
	}
	src, err := pathrs.Reopen(covered, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("opening the image's %s: %w", dest, err)
	}
	defer src.Close()
	if err := takeOwner(src, dst, dest, true); err != nil {
		return err
	}
	if !fill {
		return nil
	}
	names, err := dst.Readdirnames(1)
	if len(names) > 0 {
		return nil // podman copies into an empty volume only
	}
	if err != nil && !errors.Is(err, io.EOF) {
		return fmt.Errorf("reading the volume on %s: %w", dest, err)
	}
	return copyDir(int(src.Fd()), int(dst.Fd()), dest)
}

// copyDir copies every entry of the directory src into dst, keeping type,
// mode, owner and times (setMeta). A device node cannot be made in a user
// namespace: it is an error.
func copyDir(src, dst int, name string) error {
	d, err := unix.Openat(src, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	df := os.NewFile(uintptr(d), name)
	names, err := df.Readdirnames(-1)
	df.Close()
	if err != nil {
		return fmt.Errorf("reading %s: %w", name, err)
	}
	for _, n := range names {
		if err := copyEntry(src, dst, n, name+"/"+n); err != nil {
			return err
		}
	}
	return nil
}

func copyEntry(src, dst int, n, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(src, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat %s: %w", name, err)
	}
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		if err := unix.Mkdirat(dst, n, 0o700); err != nil {
			return fmt.Errorf("mkdir %s: %w", name, err)
		}
		return copyChild(src, dst, n, name, &st)
	case unix.S_IFREG:
		return copyFile(src, dst, n, name, &st)
	case unix.S_IFLNK:
		target, err := readlinkat(src, n)
		if err != nil {
			return fmt.Errorf("readlink %s: %w", name, err)
		}
		if err := unix.Symlinkat(target, dst, n); err != nil {
			return fmt.Errorf("symlink %s: %w", name, err)
		}
		// Neither call follows the link: it keeps its own owner and times.
		err = unix.Fchownat(dst, n, int(st.Uid), int(st.Gid), unix.AT_SYMLINK_NOFOLLOW)
		if err != nil && !errors.Is(err, unix.EINVAL) {
			return fmt.Errorf("chown %s: %w", name, err)
		}
		if err := unix.UtimesNanoAt(dst, n, []unix.Timespec{st.Atim, st.Mtim}, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			return fmt.Errorf("setting the times of %s: %w", name, err)
		}
		return nil
	case unix.S_IFIFO:
		if err := unix.Mknodat(dst, n, unix.S_IFIFO|0o600, 0); err != nil {
			return fmt.Errorf("mkfifo %s: %w", name, err)
		}
		fd, err := openMade(dst, n, unix.O_PATH, unix.S_IFIFO)
		if err != nil {
			return fmt.Errorf("opening the copy of %s: %w", name, err)
		}
		defer unix.Close(fd)
		return setMeta(fd, &st, name)
	case unix.S_IFSOCK:
		return nil // a socket has no content; its server makes it again
	default:
		return fmt.Errorf("%s is a device node, which a user namespace cannot create", name)
	}
}

// openMade opens the entry n of dst that the copy just made, following no
// symlink, and checks it is still of the type made: the destination may
// be a volume another running container writes into, which can swap the
// entry for a symlink to a host path (the init runs before pivot_root,
// where an absolute link names the host's file). From here on the copy's
// owner, mode and times go through the fd, never through the name.
func openMade(dst int, n string, flags int, typ uint32) (int, error) {
	fd, err := unix.Openat(dst, n, flags|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, err
	}
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		unix.Close(fd)
		return -1, err
	}
	if st.Mode&unix.S_IFMT != typ {
		unix.Close(fd)
		return -1, fmt.Errorf("replaced while copying (mode %#o)", st.Mode)
	}
	return fd, nil
}

// setMeta gives the copy open as fd (any kind of fd, O_PATH too) the
// owner, mode and times of st. Owner first: chown clears the set-id bits
// the mode then restores; times last, once the content is in. An owner
// the container's id map does not hold (the kernel shows it as the
// overflow id; EINVAL) cannot be given: the copy keeps the container
// root's. chmod(2) and utimensat(2) act on the fd's inode through its
// /proc/thread-self/fd link (fchmod(2) refuses an O_PATH fd).
func setMeta(fd int, st *unix.Stat_t, name string) error {
	err := unix.Fchownat(fd, "", int(st.Uid), int(st.Gid), unix.AT_EMPTY_PATH)
	if err != nil && !errors.Is(err, unix.EINVAL) {
		return fmt.Errorf("chown %s: %w", name, err)
	}
	link := "/proc/thread-self/fd/" + strconv.Itoa(fd)
	if err := unix.Chmod(link, st.Mode&0o7777); err != nil {
		return fmt.Errorf("chmod %s: %w", name, err)
	}
	if err := unix.UtimesNanoAt(unix.AT_FDCWD, link, []unix.Timespec{st.Atim, st.Mtim}, 0); err != nil {
		return fmt.Errorf("setting the times of %s: %w", name, err)
	}
	return nil
}

// copyChild copies the directory n of src into the directory n just made
// in dst, then gives it st's owner, mode and times.
func copyChild(src, dst int, n, name string, st *unix.Stat_t) error {
	s, err := unix.Openat(src, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", name, err)
	}
	defer unix.Close(s)
	d, err := openMade(dst, n, unix.O_RDONLY|unix.O_DIRECTORY, unix.S_IFDIR)
	if err != nil {
		return fmt.Errorf("opening the copy of %s: %w", name, err)
	}
	defer unix.Close(d)
	if err := copyDir(s, d, name); err != nil {
		return err
	}
	return setMeta(d, st, name)
}

// copyFile copies the regular file n of src into a new file n of dst,
// then gives it st's owner, mode and times.
func copyFile(src, dst int, n, name string, st *unix.Stat_t) error {
	s, err := unix.Openat(src, n, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", name, err)
	}
	sf := os.NewFile(uintptr(s), name)
	defer sf.Close()
	d, err := unix.Openat(dst, n, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("creating the copy of %s: %w", name, err)
	}
	df := os.NewFile(uintptr(d), name)
	defer df.Close()
	if _, err := io.Copy(df, sf); err != nil {
		return fmt.Errorf("copying %s: %w", name, err)
	}
	return setMeta(d, st, name)
}

func readlinkat(dir int, n string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		k, err := unix.Readlinkat(dir, n, buf)
		if err != nil {
			return "", err
		}
		if k < size {
			return string(buf[:k]), nil
		}
	}
}
