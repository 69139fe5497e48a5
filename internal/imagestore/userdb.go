//go:build containers_image_openpgp

package imagestore

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"

	"go.podman.io/storage"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/overlay"
)

// The image's user database is read without mounting the container's root
// when the layers allow it: the store's Mount (the layer store's records,
// the overlay mount or a fuse-overlayfs start, then the unmount and the
// driver's new merged directory) cost 3–10 ms of a `run --rm IMAGE` whose
// init mounts the same layers again itself. overlay.Layers.ReadFile walks
// the layer directories as the overlay lookup does; whatever it cannot
// answer safely, and every layout it was not written for, goes through
// the mount as before.

// layersReadable says why the storage container c, whose layers are l,
// must be mounted to read its user database: "" when userDBFromLayers may
// read the layer directories themselves. It takes only the layouts whose
// directories are the mount's whole input:
//
//   - no id maps on the container: a keep-id container's layers are an
//     id-mapped copy (diff1 beside the layer's diff: what the mount shows
//     is their merge) or shifted by the mount program;
//   - every lower directory the diff of a layer in the container layer's
//     own store: a layer of an additional image store or the split
//     imagestore is mounted from its own place, and an additional layer
//     store's diff is a link (ReadFile refuses it);
//   - no composefs: such a layer's diff holds the objects, and the tree
//     is in its composefs-data blob, which only a mount reads.
func layersReadable(s storage.Store, c *storage.Container, l overlay.Layers) string {
	if len(c.UIDMap) > 0 || len(c.GIDMap) > 0 {
		return "the container's ids are mapped: the image's layers are an id-mapped copy or shifted by the mount"
	}
	if l.Driver != overlay.DriverOverlay {
		return ""
	}
	if v, ok := graphOption(s, "use_composefs"); ok {
		if b, err := strconv.ParseBool(v); err != nil || b {
			return "the store uses composefs (use_composefs = " + v + ")"
		}
	}
	if filepath.Base(l.Upper) != "diff" {
		return fmt.Sprintf("the container layer's directory %s is not a layer's diff", l.Upper)
	}
	home := filepath.Dir(filepath.Dir(l.Upper))
	for _, lower := range l.Lowers {
		if filepath.Base(lower) != "diff" {
			return fmt.Sprintf("%s holds an id-mapped copy of a layer", lower)
		}
		layer := filepath.Dir(lower)
		if filepath.Dir(layer) != home {
			return fmt.Sprintf("the layer %s is not in the store %s", layer, home)
		}
		if _, err := os.Lstat(filepath.Join(layer, "composefs-data")); !errors.Is(err, fs.ErrNotExist) {
			return fmt.Sprintf("the layer %s is a composefs image", layer)
		}
	}
	return ""
}

// userDBFromLayers reads the image's /etc/passwd and /etc/group from the
// container's layer directories, without a mount, and sets p.Rootfs to
// merged, the store's mount point, which the init mounts on. done is false,
// with why, when a mount must read them: overlay's ReadFile could not tell
// (a symlink on the path, a FIFO, a device, an error: *NeedsMountError).
// A vfs container's directory is its whole root, what the store's Mount
// returns: read in-root there (readUserDB), its errors final.
func userDBFromLayers(p *imagehelper.Prepared, merged string) (done bool, why string, err error) {
	l := p.Layers
	if fi, err := os.Lstat(merged); merged == "" || err != nil || !fi.IsDir() {
		return false, fmt.Sprintf("the store's mount point %q is not a directory yet", merged), nil
	}
	if l.Driver == overlay.DriverVFS {
		if p.Passwd, p.Group, err = readUserDB(l.Upper); err != nil {
			return false, "", err
		}
		p.Rootfs = merged
		return true, "", nil
	}
	read := func(name string) (string, error) {
		text, err := l.ReadFile(name, maxUserDB)
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		return text, err
	}
	passwd, err := read("etc/passwd")
	if err != nil {
		return false, "the layers need it: " + err.Error(), nil
	}
	group, err := read("etc/group")
	if err != nil {
		return false, "the layers need it: " + err.Error(), nil
	}
	if err := ownUpperRoot(l.Upper); err != nil {
		return false, "", err
	}
	p.Passwd, p.Group, p.Rootfs = passwd, group, merged
	return true, "", nil
}

// ownUpperRoot does what the overlay driver's mount does to the
// container layer's directory, which the init's mount shows as the
// container's /: it chowns it to the container's root, 0:0 without id
// maps (drivers/overlay get: idtools.MkdirAllAndChown of the diff), where
// the driver created it with the owner of the image's top directory.
func ownUpperRoot(upper string) error {
	var st unix.Stat_t
	if err := unix.Lstat(upper, &st); err != nil {
		return fmt.Errorf("reading the owner of the container's root: %w", err)
	}
	if st.Uid == 0 && st.Gid == 0 {
		return nil
	}
	if err := unix.Lchown(upper, 0, 0); err != nil {
		return fmt.Errorf("giving the container's root to its root user: %w", err)
	}
	return nil
}

// readHow is --debug's name of the step that read the user database
// without a mount.
func readHow(l overlay.Layers) string {
	if l.Driver == overlay.DriverVFS {
		return "reading /etc/passwd and /etc/group in the vfs container's directory, without a mount"
	}
	return "reading /etc/passwd and /etc/group through the image's layers, without a mount"
}
