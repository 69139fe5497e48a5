//go:build linux

package overlay

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path"
	"strings"

	"golang.org/x/sys/unix"
)

// Overlay's whiteout names in the AUFS form (the image spec's), which the
// store's driver keeps on disk when it mounts with a mount program
// (go.podman.io/storage drivers/overlay getWhiteoutFormat), and which
// fuse-overlayfs honours beside the character devices.
const (
	aufsWhiteoutPrefix = ".wh."
	aufsOpaqueMarker   = ".wh..wh..opq"
)

// overlayXattrPrefixes name the xattrs through which an overlay mount
// changes what a layer's entry means: opaque directories, redirects,
// metacopy files, xattr whiteouts (Linux 6.7+), fuse-overlayfs' own.
var overlayXattrPrefixes = []string{"trusted.overlay.", "user.overlay.", "user.fuseoverlayfs."}

// ReadFile reads the regular file name (a path in the container's root,
// absolute or relative, without "..") as a mount of l would show it,
// without mounting: the layers are searched top first (the container's
// own layer, then Lowers) as overlayfs looks a path up, one component at
// a time (fs/overlayfs/namei.c, ovl_lookup): the first layer holding a
// component decides what it is; a directory merges with the directories
// of that name below it until a layer holds a non-directory, a whiteout
// or an opaque directory. At most limit bytes are read.
//
// It returns the file's content, an error satisfying
// errors.Is(err, fs.ErrNotExist) when the path does not exist in the
// merged root (no layer has it, or a whiteout or an opaque directory
// hides it), or a *NeedsMountError when what a mount shows cannot be
// told safely from the layers alone; the caller then mounts them and
// reads in-root. That is anything this walk does not resolve itself:
// a symbolic link on the path (its target may lie in another layer, so
// only the merged root resolves it), an entry that is not a regular file
// or a directory (a FIFO or a device, never opened here), a directory
// where a file is wanted or the reverse, a file larger than limit, an
// overlay xattr other than the opaque mark the store writes (redirects,
// metacopy, xattr whiteouts), a whiteout and its entry in one layer, a
// layer directory that is missing or is itself a link (an additional
// layer store's), a driver other than overlay, id mapping options, and
// every error.
//
// The layers are an image's, so hostile: nothing is opened but
// directories (O_DIRECTORY) and regular files, each by one name
// relative to its parent's fd, with no symlink followed and no mount
// crossed (openat2 RESOLVE_BENEATH|RESOLVE_NO_SYMLINKS|RESOLVE_NO_XDEV),
// so no path leaves a layer directory, a FIFO cannot block the reader
// and a device is never opened.
func (l *Layers) ReadFile(name string, limit int64) (string, error) {
	if l.Driver != DriverOverlay {
		return "", &NeedsMountError{Path: name, Why: fmt.Sprintf("the %s driver's root is read in-root", l.Driver)}
	}
	if l.IDMapOptions != "" {
		return "", &NeedsMountError{Path: name, Why: "the mount program shifts the layers' ids"}
	}
	comps, err := inRootComponents(name)
	if err != nil {
		return "", &NeedsMountError{Path: name, Why: err.Error()}
	}
	w := layerWalk{name: name, aufs: l.Program != "", opaque: "user.overlay.opaque"}
	if l.Trusted {
		w.opaque = "trusted.overlay.opaque"
	}
	defer w.close()
	layers := append([]string{l.Upper}, l.Lowers...)
	stack := make([]dirRef, 0, len(layers))
	for _, d := range layers {
		ref, err := w.openLayer(d)
		if err != nil {
			return "", err
		}
		stack = append(stack, ref)
	}
	for i, c := range comps {
		if i == len(comps)-1 {
			return w.readLast(stack, c, limit)
		}
		if stack, err = w.lookupDir(stack, c); err != nil {
			return "", err
		}
	}
	return "", &NeedsMountError{Path: name, Why: "the root itself is not a file"}
}

// NeedsMountError says why Layers.ReadFile could not tell what a mount of
// the layers shows: Path is the entry in its layer directory.
type NeedsMountError struct {
	Path string
	Why  string
	Err  error
}

func (e *NeedsMountError) Error() string { return e.Path + ": " + e.Why }

// Is makes every NeedsMountError match ErrNeedsMount.
func (e *NeedsMountError) Is(target error) bool { return target == ErrNeedsMount }

func (e *NeedsMountError) Unwrap() error { return e.Err }

// inRootComponents splits name into its components: "." and empty ones
// dropped, ".." refused (callers name fixed paths such as etc/passwd).
func inRootComponents(name string) ([]string, error) {
	var out []string
	for _, c := range strings.Split(name, "/") {
		switch c {
		case "", ".":
		case "..":
			return nil, fmt.Errorf("%q has a .. component", name)
		default:
			out = append(out, c)
		}
	}
	if len(out) == 0 {
		return nil, fmt.Errorf("%q names the root", name)
	}
	return out, nil
}

// dirRef is an open directory of one layer and its path, for errors.
type dirRef struct {
	fd   int
	path string
}

// layerWalk holds one ReadFile's settings and the fds it opened.
type layerWalk struct {
	name   string
	aufs   bool   // the store keeps AUFS whiteouts (.wh.NAME, .wh..wh..opq)
	opaque string // the opaque mark's xattr, in the store's namespace
	fds    []int
}

func (w *layerWalk) close() {
	for _, fd := range w.fds {
		unix.Close(fd)
	}
}

func (w *layerWalk) needsMount(p, why string, err error) error {
	return &NeedsMountError{Path: p, Why: why, Err: err}
}

func (w *layerWalk) notFound(why string) error {
	return fmt.Errorf("%s: %w (%s)", w.name, fs.ErrNotExist, why)
}

// openLayer opens one layer directory the store named: the last
// component not followed (an additional layer store's diff is a link).
func (w *layerWalk) openLayer(d string) (dirRef, error) {
	fd, err := unix.Open(d, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return dirRef{}, w.needsMount(d, "opening the layer directory: "+err.Error(), err)
	}
	w.fds = append(w.fds, fd)
	ref := dirRef{fd: fd, path: d}
	opaque, err := w.dirMarks(ref)
	if err != nil {
		return dirRef{}, err
	}
	if opaque {
		return dirRef{}, w.needsMount(d, "the layer's root is marked opaque", nil)
	}
	return ref, nil
}

// entry is what one layer holds under a name.
type entry struct {
	st       unix.Stat_t
	exists   bool
	whiteout bool
}

// lookup reads what dir holds under c: nothing, a whiteout (the
// character device 0/0, or an AUFS .wh.c beside it), or an entry, never
// followed.
func (w *layerWalk) lookup(dir dirRef, c string) (entry, error) {
	var e entry
	p := path.Join(dir.path, c)
	err := unix.Fstatat(dir.fd, c, &e.st, unix.AT_SYMLINK_NOFOLLOW)
	switch {
	case err == nil:
		e.exists = true
		e.whiteout = e.st.Mode&unix.S_IFMT == unix.S_IFCHR && e.st.Rdev == 0
	case errors.Is(err, unix.ENOENT):
	default:
		return e, w.needsMount(p, "stat: "+err.Error(), err)
	}
	if w.aufs {
		var wst unix.Stat_t
		err := unix.Fstatat(dir.fd, aufsWhiteoutPrefix+c, &wst, unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case err == nil && e.exists:
			return e, w.needsMount(p, "both the entry and its "+aufsWhiteoutPrefix+" whiteout are in one layer", nil)
		case err == nil:
			e.exists, e.whiteout = true, true
		case !errors.Is(err, unix.ENOENT):
			return e, w.needsMount(p, "stat of its whiteout: "+err.Error(), err)
		}
	}
	return e, nil
}

// lookupDir looks the directory c up in the merged directory stack (its
// layers' directories, top first) and returns c's stack.
func (w *layerWalk) lookupDir(stack []dirRef, c string) ([]dirRef, error) {
	var next []dirRef
	for _, dir := range stack {
		e, err := w.lookup(dir, c)
		if err != nil {
			return nil, err
		}
		if !e.exists {
			continue
		}
		p := path.Join(dir.path, c)
		isDir := e.st.Mode&unix.S_IFMT == unix.S_IFDIR
		if len(next) == 0 {
			// The topmost entry is what the mount shows.
			switch {
			case e.whiteout:
				return nil, w.notFound("a whiteout at " + p)
			case e.st.Mode&unix.S_IFMT == unix.S_IFLNK:
				return nil, w.needsMount(p, "a symbolic link (only the merged root resolves it)", nil)
			case !isDir:
				return nil, w.needsMount(p, fmt.Sprintf("not a directory (mode %#o)", e.st.Mode), nil)
			}
		} else if !isDir || e.whiteout {
			// A non-directory below a directory ends the merge
			// (ovl_lookup_single: d->stop).
			break
		}
		ref, err := w.openDir(dir, c, &e.st)
		if err != nil {
			return nil, err
		}
		next = append(next, ref)
		opaque, err := w.dirMarks(ref)
		if err != nil {
			return nil, err
		}
		if opaque {
			break
		}
	}
	if len(next) == 0 {
		return nil, w.notFound("in no layer")
	}
	return next, nil
}

// openDir opens the directory c of dir, which st described.
func (w *layerWalk) openDir(dir dirRef, c string, st *unix.Stat_t) (dirRef, error) {
	p := path.Join(dir.path, c)
	fd, err := openBeneath(dir.fd, c, unix.O_RDONLY|unix.O_DIRECTORY)
	if err != nil {
		return dirRef{}, w.needsMount(p, "opening it: "+err.Error(), err)
	}
	w.fds = append(w.fds, fd)
	if err := sameFile(fd, st); err != nil {
		return dirRef{}, w.needsMount(p, err.Error(), nil)
	}
	return dirRef{fd: fd, path: p}, nil
}

// dirMarks reads a directory's overlay marks: opaque (the store's xattr
// "y", or an AUFS .wh..wh..opq in it). Any other overlay xattr needs the
// mount's own reading of it.
func (w *layerWalk) dirMarks(dir dirRef) (opaque bool, err error) {
	if opaque, err = w.overlayXattrs(dir.fd, dir.path, true); err != nil {
		return false, err
	}
	if w.aufs {
		var st unix.Stat_t
		err := unix.Fstatat(dir.fd, aufsOpaqueMarker, &st, unix.AT_SYMLINK_NOFOLLOW)
		switch {
		case err == nil:
			opaque = true
		case !errors.Is(err, unix.ENOENT):
			return false, w.needsMount(path.Join(dir.path, aufsOpaqueMarker), "stat: "+err.Error(), err)
		}
	}
	return opaque, nil
}

// overlayXattrs checks fd's xattrs: an overlay one is accepted only if it
// is the opaque mark the store writes for the kernel's overlay (when
// opaqueOK: a directory), and then reported.
func (w *layerWalk) overlayXattrs(fd int, p string, opaqueOK bool) (opaque bool, err error) {
	names, err := listXattrs(fd)
	if err != nil {
		return false, w.needsMount(p, "listing its xattrs: "+err.Error(), err)
	}
	for _, n := range names {
		if !hasOverlayPrefix(n) {
			continue
		}
		if opaqueOK && !w.aufs && n == w.opaque {
			var v [2]byte
			sz, err := unix.Fgetxattr(fd, n, v[:])
			if err == nil && sz == 1 && v[0] == 'y' {
				opaque = true
				continue
			}
		}
		return false, w.needsMount(p, "carries the overlay xattr "+n, nil)
	}
	return opaque, nil
}

func hasOverlayPrefix(n string) bool {
	for _, p := range overlayXattrPrefixes {
		if strings.HasPrefix(n, p) {
			return true
		}
	}
	return false
}

// listXattrs lists fd's xattr names (none on a file system without
// xattrs). The list is at most XATTR_LIST_MAX (64 KiB, xattr(7)); one
// that keeps growing between the size query and the read is an error.
func listXattrs(fd int) ([]string, error) {
	var small [256]byte
	buf := small[:]
	for tries := 0; ; tries++ {
		if tries == 4 {
			return nil, errors.New("the xattr list keeps changing")
		}
		n, err := unix.Flistxattr(fd, buf)
		switch {
		case errors.Is(err, unix.ENOTSUP):
			return nil, nil
		case errors.Is(err, unix.ERANGE):
			size, err := unix.Flistxattr(fd, nil)
			if err != nil {
				return nil, err
			}
			buf = make([]byte, size+64)
			continue
		case err != nil:
			return nil, err
		}
		var names []string
		for _, b := range strings.Split(string(buf[:n]), "\x00") {
			if b != "" {
				names = append(names, b)
			}
		}
		return names, nil
	}
}

// readLast finds the file c in the merged directory stack and reads it.
func (w *layerWalk) readLast(stack []dirRef, c string, limit int64) (string, error) {
	for _, dir := range stack {
		e, err := w.lookup(dir, c)
		if err != nil {
			return "", err
		}
		if !e.exists {
			continue
		}
		p := path.Join(dir.path, c)
		switch {
		case e.whiteout:
			return "", w.notFound("a whiteout at " + p)
		case e.st.Mode&unix.S_IFMT == unix.S_IFLNK:
			return "", w.needsMount(p, "a symbolic link (only the merged root resolves it)", nil)
		case e.st.Mode&unix.S_IFMT != unix.S_IFREG:
			return "", w.needsMount(p, fmt.Sprintf("not a regular file (mode %#o)", e.st.Mode), nil)
		case e.st.Size > limit:
			return "", w.needsMount(p, fmt.Sprintf("larger than %d bytes", limit), nil)
		}
		return w.readRegular(dir, c, &e.st, limit)
	}
	return "", w.notFound("in no layer")
}

// readRegular opens the regular file c of dir (st) and reads it.
func (w *layerWalk) readRegular(dir dirRef, c string, st *unix.Stat_t, limit int64) (string, error) {
	p := path.Join(dir.path, c)
	// O_NONBLOCK and O_NOCTTY: should the entry change under the
	// walk into a FIFO or a terminal, the open neither blocks nor
	// takes it; sameFile then refuses it.
	fd, err := openBeneath(dir.fd, c, unix.O_RDONLY|unix.O_NONBLOCK|unix.O_NOCTTY)
	if err != nil {
		return "", w.needsMount(p, "opening it: "+err.Error(), err)
	}
	f := os.NewFile(uintptr(fd), p)
	defer f.Close()
	if err := sameFile(fd, st); err != nil {
		return "", w.needsMount(p, err.Error(), nil)
	}
	if _, err := w.overlayXattrs(fd, p, false); err != nil {
		return "", err
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return "", w.needsMount(p, "reading it: "+err.Error(), err)
	}
	if int64(len(b)) > limit {
		return "", w.needsMount(p, fmt.Sprintf("larger than %d bytes", limit), nil)
	}
	return string(b), nil
}

// openBeneath opens the single name c of the directory dirfd: no symlink
// followed, no mount crossed, nothing outside dirfd (openat2(2)).
func openBeneath(dirfd int, c string, flags int) (int, error) {
	for {
		fd, err := unix.Openat2(dirfd, c, &unix.OpenHow{
			Flags:   uint64(flags | unix.O_NOFOLLOW | unix.O_CLOEXEC),
			Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		if errors.Is(err, unix.EAGAIN) || errors.Is(err, unix.EINTR) {
			continue // openat2 may ask for a retry (a concurrent rename)
		}
		return fd, err
	}
}

// sameFile checks that fd is the file st described when it was looked up
// (device, inode and type).
func sameFile(fd int, st *unix.Stat_t) error {
	var now unix.Stat_t
	if err := unix.Fstat(fd, &now); err != nil {
		return fmt.Errorf("stat of the open file: %w", err)
	}
	if now.Dev != st.Dev || now.Ino != st.Ino || now.Mode&unix.S_IFMT != st.Mode&unix.S_IFMT {
		return errors.New("changed while it was read")
	}
	return nil
}
