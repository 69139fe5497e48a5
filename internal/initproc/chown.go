//go:build linux

package initproc

import (
	"errors"
	"fmt"
	"io"
	"os"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// chownTree is the "rchown" option (podman's U): everything under the
// bind just mounted at dest is given to the process user, from inside the
// container's user namespace, which maps that user. The walk is relative
// to directory fds with O_NOFOLLOW: a symlink is chowned itself, never
// followed, and a directory on another filesystem (a mount under the
// source) is not entered.
func (r *rootfs) chownTree(dest string) error {
	var uid, gid int
	if p := r.spec.Process; p != nil {
		uid, gid = int(p.User.UID), int(p.User.GID)
	}
	top, err := r.reopen(dest)
	if err != nil {
		return err
	}
	defer top.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(top.Fd()), &st); err != nil {
		return err
	}
	if err := unix.Fchownat(int(top.Fd()), "", uid, gid, unix.AT_EMPTY_PATH); err != nil {
		return fmt.Errorf("chown %s to %d:%d: %w", dest, uid, gid, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	dir, err := pathrs.Reopen(top, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
	if err != nil {
		return fmt.Errorf("opening %s: %w", dest, err)
	}
	defer dir.Close()
	return chownDir(dir, st.Dev, uid, gid, dest)
}

// chownDir chowns every entry of the open directory d that lies on the
// filesystem dev, recursively.
func chownDir(d *os.File, dev uint64, uid, gid int, name string) error {
	for {
		names, err := d.Readdirnames(256)
		for _, n := range names {
			if err := chownEntry(int(d.Fd()), n, dev, uid, gid, name+"/"+n); err != nil {
				return err
			}
		}
		if errors.Is(err, io.EOF) || (err == nil && len(names) == 0) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("reading %s: %w", name, err)
		}
	}
}

func chownEntry(dfd int, n string, dev uint64, uid, gid int, name string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, n, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("stat %s: %w", name, err)
	}
	if st.Dev != dev {
		return nil // a mount point: not the source's
	}
	if err := unix.Fchownat(dfd, n, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("chown %s: %w", name, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil
	}
	fd, err := unix.Openat(dfd, n, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", name, err)
	}
	sub := os.NewFile(uintptr(fd), name)
	defer sub.Close()
	return chownDir(sub, dev, uid, gid, name)
}
