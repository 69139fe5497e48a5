//go:build linux

package overlay

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/user"
	"path"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ScanOwners looks at rootfs on the host side, where lstat shows host ids,
// and reports the entries whose owner or group no range of uidMap/gidMap
// covers (HostID..HostID+Size). It is precise only there: inside the user
// namespace an unmapped id and a mapped 65534 look the same.
//
// It walks breadth first, so the rootfs itself and the top of the tree
// (/etc, /var, /tmp: where a container writes) come first, and stops after
// limit entries (0: no limit); OwnerReport.Complete says whether it saw
// everything. It costs one fstatat(2) per entry and one openat2(2) and
// getdents(2) per directory, and follows no symlink and crosses no mount
// point. A directory the caller may not read is counted but not entered.
//
// When the caller may not even search rootfs itself and its owner or group
// is outside the maps, the container's init could not enter it either (its
// root has no capability over an unmapped inode): ScanOwners returns an
// *AccessError that says whose it is and the fix. Empty maps mean no user
// namespace: nothing is reported.
func ScanOwners(rootfs string, uidMap, gidMap []specs.LinuxIDMapping, limit int) (*OwnerReport, error) {
	r := &OwnerReport{Rootfs: rootfs, Complete: true, RootUID: hostOf0(uidMap), RootGID: hostOf0(gidMap)}
	if len(uidMap) == 0 && len(gidMap) == 0 {
		return r, nil
	}
	s := &ownerScan{r: r, uids: uidMap, gids: gidMap, limit: limit}
	root, err := s.openRoot(rootfs)
	if err != nil {
		return nil, err
	}
	if root < 0 {
		return r, nil
	}
	if err := s.walk(root); err != nil {
		return nil, fmt.Errorf("scanning owners in %s: %w", rootfs, err)
	}
	return r, nil
}

// ownerScan is one ScanOwners call.
type ownerScan struct {
	r          *OwnerReport
	uids, gids []specs.LinuxIDMapping
	limit      int
}

// full reports whether the limit is reached.
func (s *ownerScan) full() bool { return s.limit > 0 && s.r.Checked >= s.limit }

// count looks at one entry's owner; name returns its container path (only
// called for the first unmapped entry: most entries need no path).
func (s *ownerScan) count(st *unix.Stat_t, name func() string) {
	s.r.Checked++
	if mapped(st.Uid, s.uids) && mapped(st.Gid, s.gids) {
		return
	}
	s.r.Count++
	if s.r.Example == "" {
		s.r.Example, s.r.UID, s.r.GID = name(), int(st.Uid), int(st.Gid)
	}
}

// openRoot opens rootfs for reading and counts it. It returns -1 and no
// error when the caller may not list it but the container can cope (the
// container's root owns it, or may search it); then nothing below is
// looked at.
func (s *ownerScan) openRoot(rootfs string) (int, error) {
	var st unix.Stat_t
	if err := unix.Stat(rootfs, &st); err != nil {
		return -1, fmt.Errorf("scanning owners: stat %s: %w", rootfs, err)
	}
	s.count(&st, func() string { return "/" })
	fd, err := unix.Open(rootfs, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err == nil {
		return fd, nil
	}
	if !errors.Is(err, unix.EACCES) {
		return -1, fmt.Errorf("scanning owners: opening %s: %w", rootfs, err)
	}
	s.r.Complete = false
	if mapped(st.Uid, s.uids) && mapped(st.Gid, s.gids) {
		return -1, nil // the container's root has its capabilities over it
	}
	if unix.Faccessat(unix.AT_FDCWD, rootfs, unix.X_OK, unix.AT_EACCESS) == nil {
		return -1, nil // searchable, not listable (0711): the init gets in
	}
	e := &AccessError{
		Path: rootfs, UID: int(st.Uid), GID: int(st.Gid), Mode: fs.FileMode(st.Mode & 0o777),
		CallerUID: os.Geteuid(), RootUID: s.r.RootUID, RootGID: s.r.RootGID,
	}
	if u, err := user.LookupId(strconv.Itoa(e.UID)); err == nil {
		e.Owner = u.Username
	}
	if g, err := user.LookupGroupId(strconv.Itoa(e.GID)); err == nil {
		e.Group = g.Name
	}
	return -1, e
}

// walk visits the tree below the open directory root breadth first; it
// closes root.
func (s *ownerScan) walk(root int) error {
	defer unix.Close(root)
	queue := []string{"."}
	for len(queue) > 0 {
		dir := queue[0]
		queue = queue[1:]
		if s.full() {
			s.r.Complete = false
			return nil
		}
		subdirs, err := s.scanDir(root, dir)
		if err != nil {
			return err
		}
		queue = append(queue, subdirs...)
	}
	return nil
}

// scanDir counts the entries of dir (relative to root) and returns its
// subdirectories. A directory that vanished, may not be read, or is a
// mount point or a symlink by now is skipped.
func (s *ownerScan) scanDir(root int, dir string) ([]string, error) {
	var fd int
	var err error
	if dir == "." {
		fd, err = unix.Dup(root)
	} else {
		fd, err = openDirBeneath(root, dir)
	}
	if err != nil {
		if skippable(err) {
			s.r.Complete = false
			return nil, nil
		}
		return nil, fmt.Errorf("opening %s: %w", dir, err)
	}
	f := os.NewFile(uintptr(fd), dir)
	defer f.Close()
	var subdirs []string
	for {
		names, err := f.Readdirnames(256)
		if errors.Is(err, io.EOF) {
			return subdirs, nil
		}
		if err != nil {
			if skippable(err) {
				s.r.Complete = false
				return subdirs, nil
			}
			return nil, fmt.Errorf("reading %s: %w", dir, err)
		}
		for _, name := range names {
			if s.full() {
				s.r.Complete = false
				return subdirs, nil
			}
			var st unix.Stat_t
			if err := unix.Fstatat(fd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
				if errors.Is(err, unix.ENOENT) {
					continue
				}
				return nil, fmt.Errorf("stat %s: %w", path.Join(dir, name), err)
			}
			s.count(&st, func() string { return "/" + path.Join(dir, name) })
			if st.Mode&unix.S_IFMT == unix.S_IFDIR {
				subdirs = append(subdirs, path.Join(dir, name))
			}
		}
	}
}

// skippable reports errors that make a directory unreadable to the scan
// without making the scan wrong: it counted the directory already.
func skippable(err error) bool {
	return errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOENT) ||
		errors.Is(err, unix.EXDEV) || errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR)
}
