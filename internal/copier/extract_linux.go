//go:build linux

package copier

import (
	"archive/tar"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"unsafe"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// Owners says who owns what Extract makes.
type Owners int

const (
	// OwnNone leaves every file to the extracting process's ids (the
	// calling user's, on the host).
	OwnNone Owners = iota
	// OwnRoot gives everything to uid and gid 0 (the container's root).
	OwnRoot
	// OwnStream keeps the stream's uid and gid (cp -a).
	OwnStream
)

// ExtractOptions say how a stream is extracted.
type ExtractOptions struct {
	// Rename renames the stream's top entry (Transfer.From → To); the
	// zero value keeps every name. With From set, an entry outside it is
	// refused.
	Rename Transfer
	// Overwrite lets a directory replace a non-directory and the other
	// way round (podman cp --overwrite); else that is an error.
	Overwrite bool
	Owners    Owners
	// SkipDevices skips device nodes instead of refusing the stream
	// (a copy out to the host, where the user cannot make them); Skipped
	// counts them.
	SkipDevices bool
	Skipped     *int
	// UserXattrsOnly sets only user.* extended attributes (a copy out
	// to the host: no file capability from a container); XattrsLost
	// counts the ones left out or refused (see writeXattrs).
	UserXattrsOnly bool
	XattrsLost     *int
	// DropSetID clears the set-user-id and set-group-id bits of regular
	// files, counted in SetIDDropped: root copying a container's files
	// out gets them as its own, and a setuid program the container's
	// root made must not become a setuid-root program on the host.
	DropSetID    bool
	SetIDDropped *int
}

// Extract writes the tar stream r into the directory dir (an in-root path
// of root, which must exist). Each entry's parent directory is resolved
// in root (made when missing), and the entry itself is made with calls
// relative to that handle that never follow its last component: an
// existing non-directory there (a symlink included) is removed and
// replaced, never written through. Directories get their modes and times
// once everything in them is written.
func Extract(root *os.File, dir string, r io.Reader, o ExtractOptions) error {
	x := &extractor{root: root, dir: path.Clean("/" + dir), o: o, files: map[string]bool{}}
	tr := tar.NewReader(r)
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return fmt.Errorf("reading the tar stream: %w", err)
		}
		if err := x.entry(h, tr); err != nil {
			return err
		}
	}
	// Drain what follows the end marker, so the writer is not cut off.
	_, _ = io.Copy(io.Discard, r)
	return x.finishDirs()
}

type extractor struct {
	root  *os.File
	dir   string
	o     ExtractOptions
	files map[string]bool // regular files extracted so far (hard link targets)
	dirs  []dirMeta
}

type dirMeta struct {
	rel string
	h   *tar.Header
}

// CleanName checks a stream's entry name and returns it clean and
// relative: ".." anywhere and absolute names are refused (GNU tar
// strips a leading "/"; a stream meant for a container's directory has
// no business naming another).
func CleanName(name string) (string, error) {
	if name == "" {
		return "", errors.New("tar entry with an empty name")
	}
	if strings.HasPrefix(name, "/") {
		return "", fmt.Errorf("tar entry %q: absolute names are refused", name)
	}
	if slices.Contains(strings.Split(name, "/"), "..") {
		return "", fmt.Errorf("tar entry %q: names with .. are refused", name)
	}
	if strings.ContainsRune(name, 0) {
		return "", fmt.Errorf("tar entry %q: NUL in the name", name)
	}
	return path.Clean(name), nil
}

// name is an entry's name, renamed and checked.
func (x *extractor) name(raw string) (string, error) {
	n, err := CleanName(raw)
	if err != nil {
		return "", err
	}
	if from := x.o.Rename.From; from != "" {
		switch {
		case from == ".":
			n = path.Join(x.o.Rename.To, n)
		case n == from:
			n = x.o.Rename.To
		case strings.HasPrefix(n, from+"/"):
			n = path.Join(x.o.Rename.To, strings.TrimPrefix(n, from+"/"))
		default:
			return "", fmt.Errorf("tar entry %q is not under %q", raw, from)
		}
	}
	return n, nil
}

func (x *extractor) entry(h *tar.Header, r io.Reader) error {
	if h.Typeflag == tar.TypeXGlobalHeader {
		return nil
	}
	rel, err := x.name(h.Name)
	if err != nil {
		return err
	}
	if rel == "." {
		// The destination directory itself (a stream of "./..."): its
		// owner, mode and times are the container's, not the stream's.
		if h.Typeflag != tar.TypeDir {
			return fmt.Errorf("tar entry %q: the destination itself can only be a directory", h.Name)
		}
		return nil
	}
	if h.Typeflag != tar.TypeReg {
		delete(x.files, rel) // replaced: no longer a hard link target
	}
	full := path.Join(x.dir, rel)
	parent, err := pathrs.MkdirAllHandle(x.root, path.Dir(full), 0o755)
	if err != nil {
		return fmt.Errorf("%s: making its directory: %w", rel, unwrapPath(err))
	}
	defer parent.Close()
	leaf := path.Base(full)
	pfd := int(parent.Fd())
	switch h.Typeflag {
	case tar.TypeDir:
		return x.mkdir(pfd, leaf, rel, h)
	case tar.TypeReg: // the reader turns the old TypeRegA into TypeReg
		if err := x.clear(pfd, leaf, rel, false); err != nil {
			return err
		}
		return x.file(pfd, leaf, rel, h, r)
	case tar.TypeSymlink:
		if err := x.clear(pfd, leaf, rel, false); err != nil {
			return err
		}
		if err := unix.Symlinkat(h.Linkname, pfd, leaf); err != nil {
			return fmt.Errorf("%s: making symlink: %w", rel, err)
		}
		return x.meta(pfd, leaf, rel, h, -1)
	case tar.TypeLink:
		return x.link(pfd, leaf, rel, h)
	case tar.TypeFifo:
		if err := x.clear(pfd, leaf, rel, false); err != nil {
			return err
		}
		if err := unix.Mknodat(pfd, leaf, unix.S_IFIFO|uint32(h.Mode&0o777), 0); err != nil {
			return fmt.Errorf("%s: making fifo: %w", rel, err)
		}
		return x.meta(pfd, leaf, rel, h, -1)
	case tar.TypeChar, tar.TypeBlock:
		if x.o.SkipDevices {
			if x.o.Skipped != nil {
				*x.o.Skipped++
			}
			return nil
		}
		return fmt.Errorf("tar entry %q is a device node: sandy cp makes no devices", h.Name)
	}
	return fmt.Errorf("tar entry %q: type %q is not supported", h.Name, h.Typeflag)
}

// clear makes way for a new entry at leaf: an existing non-directory is
// removed (a symlink included: it is replaced, not followed); an existing
// directory only with Overwrite, or when a directory comes (isDir).
func (x *extractor) clear(pfd int, leaf, rel string, isDir bool) error {
	var st unix.Stat_t
	err := unix.Fstatat(pfd, leaf, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", rel, err)
	}
	exDir := st.Mode&unix.S_IFMT == unix.S_IFDIR
	switch {
	case exDir && isDir:
		return nil
	case exDir && !x.o.Overwrite:
		return fmt.Errorf("cannot overwrite directory %s with a non-directory (--overwrite replaces it)", rel)
	case exDir:
		return removeAt(pfd, leaf)
	case isDir && !x.o.Overwrite:
		return fmt.Errorf("cannot overwrite non-directory %s with a directory (--overwrite replaces it)", rel)
	}
	if err := unix.Unlinkat(pfd, leaf, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("%s: removing what was there: %w", rel, err)
	}
	return nil
}

func (x *extractor) mkdir(pfd int, leaf, rel string, h *tar.Header) error {
	if err := x.clear(pfd, leaf, rel, true); err != nil {
		return err
	}
	if err := unix.Mkdirat(pfd, leaf, 0o700); err != nil && !errors.Is(err, unix.EEXIST) {
		return fmt.Errorf("%s: making directory: %w", rel, err)
	}
	x.dirs = append(x.dirs, dirMeta{rel: rel, h: h})
	return nil
}

// file makes a regular file: created with O_EXCL|O_NOFOLLOW (clear made
// way), written, then given its owner, mode and times through its fd.
func (x *extractor) file(pfd int, leaf, rel string, h *tar.Header, r io.Reader) error {
	fd, err := unix.Openat(pfd, leaf, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("%s: creating: %w", rel, err)
	}
	f := os.NewFile(uintptr(fd), leaf)
	defer f.Close()
	if _, err := io.Copy(f, r); err != nil {
		return fmt.Errorf("%s: writing: %w", rel, err)
	}
	if err := x.meta(pfd, leaf, rel, h, fd); err != nil {
		return err
	}
	x.files[rel] = true
	return nil
}

// link makes a hard link to a regular file this stream made earlier:
// nothing else (a host file, a file of the container the stream did not
// write) may be linked to.
func (x *extractor) link(pfd int, leaf, rel string, h *tar.Header) error {
	target, err := x.name(h.Linkname)
	if err != nil {
		return fmt.Errorf("hard link %q: %w", h.Name, err)
	}
	if !x.files[target] {
		return fmt.Errorf("tar entry %q: a hard link to %q, which is not a file earlier in the stream: refused", h.Name, h.Linkname)
	}
	tfull := path.Join(x.dir, target)
	tparent, err := pathrs.OpenatInRoot(x.root, path.Dir(tfull))
	if err != nil {
		return fmt.Errorf("hard link %s: %w", rel, unwrapPath(err))
	}
	defer tparent.Close()
	if err := x.clear(pfd, leaf, rel, false); err != nil {
		return err
	}
	// No AT_SYMLINK_FOLLOW: a target swapped for a symlink is linked as
	// that symlink, not followed.
	if err := unix.Linkat(int(tparent.Fd()), path.Base(tfull), pfd, leaf, 0); err != nil {
		return fmt.Errorf("%s: hard link to %s: %w", rel, target, err)
	}
	return nil
}

// meta gives leaf its owner, mode, extended attributes (with an fd) and
// times: through fd when one is open
// (a regular file, a directory), else without following leaf.
func (x *extractor) meta(pfd int, leaf, rel string, h *tar.Header, fd int) error {
	uid, gid, chown := x.owner(h)
	if chown {
		var err error
		if fd >= 0 {
			err = unix.Fchown(fd, uid, gid)
		} else {
			err = unix.Fchownat(pfd, leaf, uid, gid, unix.AT_SYMLINK_NOFOLLOW)
		}
		if err != nil {
			return fmt.Errorf("%s: giving it to %d:%d: %w", rel, uid, gid, err)
		}
	}
	if fd >= 0 {
		mode := uint32(h.Mode & 0o7777)
		if x.o.DropSetID && mode&(unix.S_ISUID|unix.S_ISGID) != 0 && h.Typeflag == tar.TypeReg {
			mode &^= unix.S_ISUID | unix.S_ISGID
			if x.o.SetIDDropped != nil {
				*x.o.SetIDDropped++
			}
		}
		if err := unix.Fchmod(fd, mode); err != nil {
			return fmt.Errorf("%s: setting its mode: %w", rel, err)
		}
		if err := writeXattrs(fd, h, x.o.UserXattrsOnly, x.o.XattrsLost); err != nil {
			return fmt.Errorf("%s: setting its extended attributes: %w", rel, err)
		}
	} else if h.Typeflag == tar.TypeFifo {
		if err := unix.Fchmodat(pfd, leaf, uint32(h.Mode&0o7777), 0); err != nil && !errors.Is(err, unix.ENOENT) {
			return fmt.Errorf("%s: setting its mode: %w", rel, err)
		}
	}
	ts := []unix.Timespec{unix.NsecToTimespec(h.ModTime.UnixNano()), unix.NsecToTimespec(h.ModTime.UnixNano())}
	if !h.AccessTime.IsZero() {
		ts[0] = unix.NsecToTimespec(h.AccessTime.UnixNano())
	}
	var err error
	if fd >= 0 {
		err = futimens(fd, ts)
	} else {
		err = unix.UtimesNanoAt(pfd, leaf, ts, unix.AT_SYMLINK_NOFOLLOW)
	}
	if err != nil {
		return fmt.Errorf("%s: setting its times: %w", rel, err)
	}
	return nil
}

func (x *extractor) owner(h *tar.Header) (int, int, bool) {
	switch x.o.Owners {
	case OwnRoot:
		return 0, 0, true
	case OwnStream:
		return h.Uid, h.Gid, true
	}
	return 0, 0, false
}

// finishDirs gives the directories their owners, modes and times, the
// deepest first (their times would change with each entry made in them).
func (x *extractor) finishDirs() error {
	for i := len(x.dirs) - 1; i >= 0; i-- {
		d := x.dirs[i]
		full := path.Join(x.dir, d.rel)
		parent, err := pathrs.OpenatInRoot(x.root, path.Dir(full))
		if err != nil {
			return fmt.Errorf("%s: %w", d.rel, unwrapPath(err))
		}
		fd, err := unix.Openat(int(parent.Fd()), path.Base(full), unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			parent.Close()
			return fmt.Errorf("%s: %w", d.rel, err)
		}
		err = x.meta(int(parent.Fd()), path.Base(full), d.rel, d.h, fd)
		unix.Close(fd)
		parent.Close()
		if err != nil {
			return err
		}
	}
	return nil
}

// removeAt removes name in dir and, for a directory, everything in it,
// through handles: it follows no symlink (a symlink is removed, not
// what it points to) and crosses no mount point (unlinkat fails there).
func removeAt(dirfd int, name string) error {
	err := unix.Unlinkat(dirfd, name, 0)
	if err == nil || errors.Is(err, unix.ENOENT) {
		return nil
	}
	if !errors.Is(err, unix.EISDIR) && !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	d := os.NewFile(uintptr(fd), name)
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	for _, n := range names {
		if err := removeAt(fd, n); err != nil {
			return err
		}
	}
	if err := unix.Unlinkat(dirfd, name, unix.AT_REMOVEDIR); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("removing %s: %w", name, err)
	}
	return nil
}

// futimens is utimensat(fd, NULL, ts, 0): the times of the open file.
func futimens(fd int, ts []unix.Timespec) error {
	_, _, errno := unix.Syscall6(unix.SYS_UTIMENSAT, uintptr(fd), 0, uintptr(unsafe.Pointer(&ts[0])), 0, 0, 0)
	if errno != 0 {
		return errno
	}
	return nil
}
