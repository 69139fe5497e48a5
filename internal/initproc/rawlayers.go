//go:build linux

package initproc

import (
	"errors"
	"fmt"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/userns"
)

// The raw init's root for a container made from an image (RawInput.Layers):
// the storage container's layers as the kernel overlay, as the Go init
// mounts them (overlay.Mount: kernelLayers), on merged/ of the layer
// directory. The overlay takes only directories of the mounter's own
// mount namespace ("failed to clone upperpath" otherwise), so the child
// opens each layer itself, after its mount namespace is made: upper and
// work into slots, named by their /proc/self/fd paths, open until the
// overlay is made; each lower the same way, one "lowerdir+" at a time
// (Linux 6.8, which resolves each path as it is set; any number of layers);
// before 6.8, the lowers' own paths in one "lowerdir" value, where they
// fit fsconfig's 255 bytes and need no escaping, else the Go init.

// layersUnsupported is why an image's root needs the Go init ("" if it
// does not).
func layersUnsupported(in RawInput) string {
	l := in.Layers
	if err := l.Check(); err != nil {
		return "storage layers the Go init must check: " + err.Error()
	}
	switch {
	case l.Driver != overlay.DriverOverlay:
		return "a " + l.Driver + " store"
	case l.Program != "":
		return "the store's mount program (" + filepath.Base(l.Program) + ")"
	case l.Trusted:
		return "a store that keeps overlay's metadata in trusted.* xattrs (root's)"
	case in.Spec.Root.Readonly:
		return "an image's read-only root (--read-only)"
	case in.LayerDir == "":
		return "an image's root without a layer directory"
	case !hasEnv(in.Spec.Process.Env, "HOME"):
		return "HOME from the image's /etc/passwd"
	case !lowerdirPlus():
		escape := false
		for _, p := range l.Lowers {
			escape = escape || strings.ContainsAny(p, ":,\\\n")
		}
		if escape || len(strings.Join(l.Lowers, ":")) > maxFsconfigString {
			return fmt.Sprintf("%d layers whose paths do not fit one lowerdir option before Linux 6.8", len(l.Lowers))
		}
	}
	return ""
}

// maxFsconfigString is the longest string fsconfig(2) takes.
const maxFsconfigString = 255

// lowerdirPlus reports whether the kernel takes overlay's "lowerdir+"
// (Linux 6.8).
func lowerdirPlus() bool {
	var u unix.Utsname
	if unix.Uname(&u) != nil {
		return false
	}
	major, minor, ok := kernelRelease(unix.ByteSliceToString(u.Release[:]))
	return ok && (major > 6 || major == 6 && minor >= 8)
}

// kernelRelease parses "6.1.0-18-amd64" as 6, 1.
func kernelRelease(rel string) (major, minor int, ok bool) {
	a, rest, _ := strings.Cut(rel, ".")
	b := strings.TrimLeft(rest, "0123456789")
	b = rest[:len(rest)-len(b)]
	var err1, err2 error
	major, err1 = strconv.Atoi(a)
	minor, err2 = strconv.Atoi(b)
	return major, minor, err1 == nil && err2 == nil
}

// storageLayers mounts the layers on merged, made 0700 in the layer
// directory as mountLayers makes it; a merged left there (EEXIST) fails
// the program, and the Go init clears it. A kernel that refuses
// volatile or userxattr fails it too: the Go init walks its own ladder
// then.
func (b *rawBuilder) storageLayers() {
	l := b.in.Layers
	open := func(slot int, p string) {
		b.op("opening the storage layer "+p, unix.SYS_OPENAT, userns.Val(atFDCWD), userns.Str(p), userns.Val(unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)).Out = slot
	}
	b.op("making "+b.merged, unix.SYS_MKDIRAT, userns.Val(atFDCWD), userns.Str(b.merged), userns.Val(0o700))
	b.op("opening overlay", unix.SYS_FSOPEN, userns.Str("overlay"), userns.Val(unix.FSOPEN_CLOEXEC)).Out = slotFS
	if lowerdirPlus() {
		for _, p := range l.Lowers {
			open(slotAgain, p)
			b.overlaySet("lowerdir+", userns.FDPath(slotAgain))
			b.close(slotAgain)
		}
	} else {
		b.overlaySet("lowerdir", userns.Str(strings.Join(l.Lowers, ":")))
	}
	// Upper and work stay open until the overlay is made: before Linux
	// 6.5 the overlay resolves its options' paths only then.
	open(slotAgain, l.Upper)
	b.overlaySet("upperdir", userns.FDPath(slotAgain))
	open(slotOld, l.Work)
	b.overlaySet("workdir", userns.FDPath(slotOld))
	b.overlayFlag("userxattr")
	if l.Volatile {
		b.overlayFlag("volatile")
	}
	b.overlayOnMerged()
	b.close(slotAgain)
	b.close(slotOld)
}

// layeredDir is realDir for an image's root, whose layers are not
// mounted yet: each component is looked up as overlay looks it up, in the
// layers top first (the container's upper, then the image's lowers), the
// topmost entry deciding; a whiteout (a 0/0 character device) makes it
// missing. Only the layers in which the parent is a directory are
// searched, and the search stops below an opaque directory and at a
// lower non-directory (or whiteout) under a directory: those hide what is
// below them. So every path looked up has directories for its parents,
// and no symlink of a layer is ever followed, into another layer or out
// to the host. A redirected directory is not followed: where the merged
// tree differs from this reading, the program's own lookups in the
// mounted root fail, and the Go init runs instead.
func layeredDir(l *overlay.Layers, p string, file bool) (from int, why string) {
	// merged: the layers in which the directory walked so far is a
	// directory, the ones overlay merges for the next component.
	merged := append([]string{l.Upper}, l.Lowers...)
	return walkMountpoint(p, file, "the image", func(rel string, st *unix.Stat_t) (bool, error) {
		found := false
		var next []string
		for _, d := range merged {
			var s unix.Stat_t
			err := unix.Lstat(filepath.Join(d, rel), &s)
			if errors.Is(err, unix.ENOENT) {
				continue
			}
			if err != nil {
				return false, err
			}
			whiteout := s.Mode&unix.S_IFMT == unix.S_IFCHR && s.Rdev == 0
			if !found && whiteout {
				return false, nil
			}
			if !found {
				found, *st = true, s
			}
			if s.Mode&unix.S_IFMT != unix.S_IFDIR {
				break // the top entry, or a lower one under a directory: nothing below it is merged
			}
			next = append(next, d)
			if opaque(filepath.Join(d, rel)) {
				break
			}
		}
		merged = next
		return found, nil
	})
}

// opaque reports whether the layer directory dir hides the layers below
// it (overlay's opaque xattr, user.* in a rootless store).
func opaque(dir string) bool {
	var b [2]byte
	n, err := unix.Lgetxattr(dir, "user.overlay.opaque", b[:])
	return err == nil && n == 1 && b[0] == 'y'
}
