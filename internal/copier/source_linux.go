//go:build linux

package copier

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Opened is a source resolved in a root, ready to be written as a tar
// stream: its parent directory's handle and its own name in it (or the
// directory itself, for a followed path).
type Opened struct {
	src    Source
	parent *os.File // O_PATH; nil when dir is the source itself
	name   string
	dir    *os.File // the source when it was followed (a directory)
	st     unix.Stat_t
}

// OpenSource resolves src in root: every directory on the way in-root,
// and the last component followed (in-root) only when src.Follow, so a
// symlink is copied as a symlink, or, for SRC/ and SRC/., the directory
// it points to inside the root.
func OpenSource(root *os.File, src Source) (*Opened, error) {
	o := &Opened{src: src}
	if src.Follow {
		h, err := pathrs.OpenatInRoot(root, src.Path)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.Path, unwrapPath(err))
		}
		d, err := pathrs.Reopen(h, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC)
		h.Close()
		if err != nil {
			return nil, fmt.Errorf("%s: %w", src.Path, unwrapPath(err))
		}
		o.dir = d
		if err := unix.Fstat(int(d.Fd()), &o.st); err != nil {
			d.Close()
			return nil, fmt.Errorf("%s: %w", src.Path, err)
		}
		return o, nil
	}
	parent, err := pathrs.OpenatInRoot(root, path.Dir(src.Path))
	if err != nil {
		return nil, fmt.Errorf("%s: %w", src.Path, unwrapPath(err))
	}
	o.parent, o.name = parent, path.Base(src.Path)
	if err := unix.Fstatat(int(parent.Fd()), o.name, &o.st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		parent.Close()
		return nil, fmt.Errorf("%s: %w", src.Path, err)
	}
	return o, nil
}

// unwrapPath drops the *PathError's path, which names the root's fd.
func unwrapPath(err error) error {
	var pe *os.PathError
	if errors.As(err, &pe) {
		return pe.Err
	}
	return err
}

// IsDir reports whether the source is a directory (not a symlink to one).
func (o *Opened) IsDir() bool { return o.st.Mode&unix.S_IFMT == unix.S_IFDIR }

// Close releases the handles.
func (o *Opened) Close() {
	if o.parent != nil {
		o.parent.Close()
	}
	if o.dir != nil {
		o.dir.Close()
	}
}

// ArchiveOptions say how the stream's headers are written.
type ArchiveOptions struct {
	// MapIDs, when set, turns each file's owner into the stream's (the
	// host's ids into a container's, for cp -a into it).
	MapIDs func(uid, gid int) (int, int)
}

// WriteTar writes the source as a tar stream whose top entry is named
// src.TarName(). Directories are walked through handles opened with
// O_NOFOLLOW relative to their parent's, never by path, so a directory
// swapped for a symlink while the walk runs is refused, not followed;
// the contents of pseudo filesystems (proc, sysfs and the like, mounted
// in a running container) are left out.
func (o *Opened) WriteTar(w io.Writer, opt ArchiveOptions) error {
	tw := tar.NewWriter(w)
	a := &archiver{tw: tw, opt: opt, links: map[fileID]string{}}
	name := o.src.TarName()
	var err error
	if o.dir != nil {
		err = a.dir(o.dir, name, &o.st, true)
	} else {
		err = a.entry(o.parent, o.name, name, &o.st, true)
	}
	if err != nil {
		return err
	}
	return tw.Close()
}

type archiver struct {
	tw    *tar.Writer
	opt   ArchiveOptions
	links map[fileID]string // files with more than one link, by the tar name written first
}

// fileID names an inode: a file with several links is written once, and
// its other names as hard links to that entry (as tar does).
type fileID struct{ dev, ino uint64 }

func (a *archiver) header(name string, st *unix.Stat_t) *tar.Header {
	uid, gid := int(st.Uid), int(st.Gid)
	if a.opt.MapIDs != nil {
		uid, gid = a.opt.MapIDs(uid, gid)
	}
	return &tar.Header{
		Name:    name,
		Mode:    int64(st.Mode & 0o7777),
		Uid:     uid,
		Gid:     gid,
		ModTime: time.Unix(st.Mtim.Unix()),
		Format:  tar.FormatPAX,
	}
}

// entry writes parent/name, whose lstat is st, as tarName.
func (a *archiver) entry(parent *os.File, name, tarName string, st *unix.Stat_t, top bool) error {
	switch st.Mode & unix.S_IFMT {
	case unix.S_IFDIR:
		fd, err := unix.Openat(int(parent.Fd()), name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening directory %s: %w", tarName, err)
		}
		d := os.NewFile(uintptr(fd), name)
		defer d.Close()
		var now unix.Stat_t
		if err := unix.Fstat(fd, &now); err != nil {
			return err
		}
		return a.dir(d, tarName, &now, top)
	case unix.S_IFREG:
		return a.file(parent, name, tarName, st)
	case unix.S_IFLNK:
		target, err := readlinkat(parent, name)
		if err != nil {
			return fmt.Errorf("reading symlink %s: %w", tarName, err)
		}
		h := a.header(tarName, st)
		h.Typeflag, h.Linkname = tar.TypeSymlink, target
		return a.tw.WriteHeader(h)
	case unix.S_IFIFO, unix.S_IFCHR, unix.S_IFBLK:
		h := a.header(tarName, st)
		switch st.Mode & unix.S_IFMT {
		case unix.S_IFIFO:
			h.Typeflag = tar.TypeFifo
		case unix.S_IFCHR:
			h.Typeflag = tar.TypeChar
		default:
			h.Typeflag = tar.TypeBlock
		}
		h.Devmajor, h.Devminor = int64(unix.Major(st.Rdev)), int64(unix.Minor(st.Rdev))
		return a.tw.WriteHeader(h)
	}
	if top {
		return fmt.Errorf("%s is a socket: it cannot be copied", tarName)
	}
	return nil // a socket: tar has no type for it (GNU tar skips it too)
}

// file writes a regular file. It is opened with O_NOFOLLOW|O_NONBLOCK
// (a name swapped for a fifo must not block the copy) and must still be a
// regular file once open. A file that shrinks meanwhile (a running
// container writes it) is padded to the size in its header. A second
// name of a file already written is written as a hard link to the first.
func (a *archiver) file(parent *os.File, name, tarName string, st *unix.Stat_t) error {
	fd, err := unix.Openat(int(parent.Fd()), name, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_NOCTTY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", tarName, err)
	}
	f := os.NewFile(uintptr(fd), name)
	defer f.Close()
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return err
	}
	if now.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s changed while being copied: no longer a regular file", tarName)
	}
	if now.Nlink > 1 {
		id := fileID{now.Dev, now.Ino}
		if first, ok := a.links[id]; ok {
			h := a.header(tarName, &now)
			h.Typeflag, h.Linkname = tar.TypeLink, first
			return a.tw.WriteHeader(h)
		}
		a.links[id] = tarName
	}
	h := a.header(tarName, &now)
	h.Typeflag, h.Size = tar.TypeReg, now.Size
	if err := readXattrs(fd, h); err != nil {
		return fmt.Errorf("reading the extended attributes of %s: %w", tarName, err)
	}
	if err := a.tw.WriteHeader(h); err != nil {
		return err
	}
	n, err := io.Copy(a.tw, io.LimitReader(f, now.Size))
	if err != nil {
		return fmt.Errorf("reading %s: %w", tarName, err)
	}
	if n < now.Size {
		if _, err := io.CopyN(a.tw, zeros{}, now.Size-n); err != nil {
			return err
		}
	}
	return nil
}

type zeros struct{}

func (zeros) Read(p []byte) (int, error) {
	clear(p)
	return len(p), nil
}

// pseudoFS are the filesystems whose contents are not files to copy.
var pseudoFS = map[int64]bool{
	unix.PROC_SUPER_MAGIC: true, unix.SYSFS_MAGIC: true, unix.CGROUP_SUPER_MAGIC: true,
	unix.CGROUP2_SUPER_MAGIC: true, unix.DEVPTS_SUPER_MAGIC: true, 0x19800202: true, // mqueue
	unix.DEBUGFS_MAGIC: true, unix.TRACEFS_MAGIC: true, unix.SECURITYFS_MAGIC: true,
	unix.BPF_FS_MAGIC: true,
}

// dir writes the directory d (open) as tarName, then its entries.
func (a *archiver) dir(d *os.File, tarName string, st *unix.Stat_t, top bool) error {
	h := a.header(tarName+"/", st)
	h.Typeflag = tar.TypeDir
	if err := readXattrs(int(d.Fd()), h); err != nil {
		return fmt.Errorf("reading the extended attributes of %s: %w", tarName, err)
	}
	if err := a.tw.WriteHeader(h); err != nil {
		return err
	}
	var sfs unix.Statfs_t
	if err := unix.Fstatfs(int(d.Fd()), &sfs); err == nil && pseudoFS[int64(sfs.Type)] && !top {
		return nil
	}
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("reading directory %s: %w", tarName, err)
	}
	for _, n := range names {
		var cst unix.Stat_t
		if err := unix.Fstatat(int(d.Fd()), n, &cst, unix.AT_SYMLINK_NOFOLLOW); err != nil {
			if errors.Is(err, unix.ENOENT) {
				continue // removed meanwhile
			}
			return fmt.Errorf("%s: %w", path.Join(tarName, n), err)
		}
		if err := a.entry(d, n, path.Join(tarName, n), &cst, false); err != nil {
			return err
		}
	}
	return nil
}

func readlinkat(dir *os.File, name string) (string, error) {
	for size := 256; ; size *= 2 {
		buf := make([]byte, size)
		n, err := unix.Readlinkat(int(dir.Fd()), name, buf)
		if err != nil {
			return "", err
		}
		if n < size {
			return string(buf[:n]), nil
		}
	}
}

// StatDest looks at a destination in root, following symlinks in-root
// (docker cp writes into the directory a symlink names). A path that does
// not exist must have a parent directory.
func StatDest(root *os.File, p string) (Info, error) {
	h, err := pathrs.OpenatInRoot(root, p)
	if err == nil {
		defer h.Close()
		var st unix.Stat_t
		if err := unix.Fstat(int(h.Fd()), &st); err != nil {
			return Info{}, fmt.Errorf("%s: %w", p, err)
		}
		return Info{Exists: true, IsDir: st.Mode&unix.S_IFMT == unix.S_IFDIR}, nil
	}
	if !errors.Is(err, unix.ENOENT) {
		return Info{}, fmt.Errorf("%s: %w", p, unwrapPath(err))
	}
	parent := path.Dir(path.Clean(p))
	ph, err := pathrs.OpenatInRoot(root, parent)
	if err != nil {
		return Info{}, fmt.Errorf("%s: the destination's directory %s: %w", p, parent, unwrapPath(err))
	}
	defer ph.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(ph.Fd()), &st); err != nil {
		return Info{}, err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return Info{}, fmt.Errorf("%s: %s is not a directory", p, parent)
	}
	return Info{}, nil
}
