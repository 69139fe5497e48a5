package overlay

import (
	"fmt"
	"path/filepath"
	"strings"
)

// Layers is the root of a container made from an image: a storage
// container of go.podman.io/storage (the store podman uses). The image's
// layers are its lower directories and the container's own layer takes its
// writes, which stay in the store until the container is removed. Mount
// mounts them as the store itself would (the same directories, overlay's
// userxattr, or the store's mount program), instead of layering over a
// bundle's rootfs.
//
// The image helper (sandy-image) creates the storage container and fills
// this in from the store's driver; it crosses to the init as JSON.
type Layers struct {
	// Driver is the store's graph driver: "overlay" (Lowers, Upper, Work)
	// or "vfs" (Upper alone is the container's complete root).
	Driver string `json:"driver"`
	// Lowers are the image's layer directories, top first, as the store
	// lists them (its LowerDir). An image with one layer has one.
	Lowers []string `json:"lowers,omitempty"`
	// Upper and Work are the container layer's diff and work directories.
	Upper string `json:"upper"`
	Work  string `json:"work,omitempty"`
	// Program is the store's overlay mount program (fuse-overlayfs), ""
	// for the kernel's overlay.
	Program string `json:"program,omitempty"`
	// IDMapOptions are the mount program's id mapping options
	// ("uidmapping=C:H:S:…,gidmapping=…", as go.podman.io/storage's
	// overlay driver passes them) for a container whose ids the store
	// shifts at mount time (--userns=keep-id over a fuse-overlayfs store);
	// "" for none.
	IDMapOptions string `json:"idmap_options,omitempty"`
	// Trusted: the store keeps overlay's metadata (opaque directories,
	// redirects) in trusted.* xattrs, as root's store does outside a user
	// namespace; the kernel overlay is then mounted without userxattr,
	// which only root in the initial user namespace can do.
	Trusted bool `json:"trusted,omitempty"`
	// Volatile skips overlay's syncs: the layer is removed with the
	// container when it exits (run --rm), so a crash loses nothing kept.
	Volatile bool `json:"volatile,omitempty"`
}

// Drivers of a storage container that Mount can mount.
const (
	DriverOverlay = "overlay"
	DriverVFS     = "vfs"
)

// Check validates l before anything is opened: absolute, clean paths, a
// driver Mount knows, and, for a mount program, no option separator in a
// path (its -o string joins them with ':' and ',').
func (l *Layers) Check() error {
	paths := append([]string{l.Upper}, l.Lowers...)
	switch l.Driver {
	case DriverOverlay:
		if len(l.Lowers) == 0 || l.Work == "" {
			return fmt.Errorf("storage layers: overlay needs lower and work directories (lowers %d, work %q)", len(l.Lowers), l.Work)
		}
		paths = append(paths, l.Work)
	case DriverVFS:
		if len(l.Lowers) != 0 || l.Work != "" || l.Program != "" {
			return fmt.Errorf("storage layers: vfs has one directory, not lowers, work or a mount program")
		}
	default:
		return fmt.Errorf("storage layers: driver %q: sandy mounts overlay and vfs stores only; hint: set driver = \"overlay\" in storage.conf for a new store", l.Driver)
	}
	if l.IDMapOptions != "" {
		if l.Program == "" {
			return fmt.Errorf("storage layers: id mapping options %q need a mount program", l.IDMapOptions)
		}
		if err := checkIDMapOptions(l.IDMapOptions); err != nil {
			return err
		}
	}
	for _, p := range paths {
		if !filepath.IsAbs(p) || filepath.Clean(p) != p {
			return fmt.Errorf("storage layers: %q is not an absolute, clean path", p)
		}
		if l.Program != "" && strings.ContainsAny(p, ",:\\\n") {
			return fmt.Errorf("storage layers: %q contains one of , : \\ or a newline, which %s's options cannot carry", p, filepath.Base(l.Program))
		}
	}
	return nil
}

// maxFsconfigString is the longest string fsconfig(2) takes
// (FSCONFIG_SET_STRING copies at most 256 bytes with the terminating NUL).
const maxFsconfigString = 255

// LowerdirPlan says how the kernel overlay gets its lower directories,
// named by fd paths (top first): all in one "lowerdir" value when it fits
// fsconfig's string limit, else one "lowerdir+" each (Linux 6.8 and
// later; an older kernel refuses, and the error says to use fewer layers
// or the mount program).
func LowerdirPlan(fdPaths []string) (key string, values []string) {
	joined := strings.Join(fdPaths, ":")
	if len(joined) <= maxFsconfigString {
		return "lowerdir", []string{joined}
	}
	return "lowerdir+", fdPaths
}

// checkIDMapOptions accepts only the id mapping options the store's overlay driver passes, with
// nothing else in the mount program's -o string.
func checkIDMapOptions(opts string) error {
	for _, o := range strings.Split(opts, ",") {
		k, v, ok := strings.Cut(o, "=")
		switch k {
		case "uidmapping", "gidmapping", "squash_to_uid", "squash_to_gid":
		default:
			ok = false
		}
		if ok {
			for _, f := range strings.Split(v, ":") {
				if f == "" || strings.Trim(f, "0123456789") != "" {
					ok = false
				}
			}
		}
		if !ok {
			return fmt.Errorf("storage layers: id mapping option %q: want uidmapping=C:H:S[:C:H:S…], gidmapping=…, squash_to_uid=N or squash_to_gid=N", o)
		}
	}
	return nil
}
