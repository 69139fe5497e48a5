//go:build containers_image_openpgp

package imagestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"go.podman.io/storage"
	graphdriver "go.podman.io/storage/drivers"
	"go.podman.io/storage/pkg/idtools"
	"go.podman.io/storage/pkg/unshare"
	storagetypes "go.podman.io/storage/types"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/inroot"
	"github.com/sandy-rt/sandy/overlay"
)

// ContainerOptions are what `sandy run IMAGE` asks of the store.
type ContainerOptions struct {
	// ID is the container's id, chosen by sandy (64 hex digits), which
	// starts the container's init under it before the store answers
	// (imagehelper.CreateRequest.ID); "" lets the store choose.
	ID   string
	Name string
	// Pull is the pull policy: missing (""), always, never or newer
	// (taken as always: a pull of an image already stored copies only
	// what changed).
	Pull string
	// Puller pulls the image name into s and returns its id: the image
	// library's pull (images.Pull with the registry flags), which
	// sandy-image sets; nil in the storage-only helper, where a pull is
	// ErrNeedsImageLibrary.
	Puller func(ctx context.Context, s storage.Store, name string) (string, error)
	// Config reads what ociConfig leaves to the image library; nil in the
	// storage-only helper.
	Config ConfigFunc
	// Volatile: the container is removed when it exits (--rm), so its
	// overlay needs no syncs.
	Volatile bool
	// UIDMap and GIDMap are the container's id maps relative to the
	// store's user namespace (imagehelper.CreateRequest), nil for the
	// store's own.
	UIDMap, GIDMap []specs.LinuxIDMapping
	// Trace, when set, receives each step's duration (the helper's
	// --debug lines).
	Trace func(step string, d time.Duration)
}

// trace times one step of CreateContainer for o.Trace.
func (o ContainerOptions) trace(step string, t0 time.Time) {
	if o.Trace != nil {
		o.Trace(step, time.Since(t0))
	}
}

// containerMeta is the storage container's metadata, in podman's
// RuntimeContainerMetadata shape, so that podman and buildah, which read
// the same store, show the container's image and name (podman ps
// --external).
type containerMeta struct {
	ImageName     string `json:"image-name,omitempty"`
	ImageID       string `json:"image-id"`
	ContainerName string `json:"name,omitempty"`
	CreatedAt     int64  `json:"created-at"`
	MountLabel    string `json:"mountlabel,omitempty"`
	// Creator is sandy's mark (owner.go): the sandy that asked for the
	// container. podman and buildah neither write nor read it.
	Creator *imagehelper.Creator `json:"sandy-creator,omitempty"`
}

// CreateContainer makes a storage container from the image name refers
// to, pulling it first as the policy says, and returns what the runtime
// needs to run it. A name already in use (by sandy, podman or buildah: the
// store keeps one list) is an error naming it, and two concurrent creates
// of one name leave exactly one container: the store decides under its
// lock.
func CreateContainer(ctx context.Context, s storage.Store, names Names, name string, o ContainerOptions) (*imagehelper.Prepared, error) {
	t0 := time.Now()
	img, imgName, err := imageFor(ctx, s, names, name, o)
	if err != nil {
		return nil, err
	}
	o.trace("finding the image", t0)
	t0 = time.Now()
	cfg, err := ociConfig(ctx, s, img.ID, o.Config)
	if err != nil {
		return nil, fmt.Errorf("reading the config of image %s: %w", shortID(img.ID), err)
	}
	o.trace("reading the image's config", t0)
	t0 = time.Now()
	meta, _ := json.Marshal(containerMeta{ImageName: imgName, ImageID: img.ID, ContainerName: o.Name, CreatedAt: time.Now().Unix(), Creator: creatorMark()})
	var cnames []string
	if o.Name != "" {
		cnames = []string{o.Name}
	}
	// A --rm container is volatile for the store too, as podman makes
	// one (libpod's Volatile): its record and its layer's go to the
	// volatile-containers.json and volatile-layers.json, written without
	// fsync(2) (on create and on removal), and the store's own mount of
	// it uses overlay's volatile option where the driver supports it. A
	// crash may lose the record; the container was to go at its exit.
	co := &storage.ContainerOptions{Volatile: o.Volatile}
	if len(o.UIDMap) > 0 || len(o.GIDMap) > 0 {
		// As podman creates a keep-id container: storage finds or makes
		// the image's top layer owned as this map sees it (an id-mapped
		// copy, once per image and map), unless the driver shifts ids
		// at mount time (layersOf).
		co.IDMappingOptions = storagetypes.IDMappingOptions{UIDMap: idtoolsMap(o.UIDMap), GIDMap: idtoolsMap(o.GIDMap)}
	}
	c, err := s.CreateContainer(o.ID, cnames, img.ID, "", string(meta), co)
	if err != nil {
		if errors.Is(err, storage.ErrDuplicateName) {
			return nil, fmt.Errorf("the container name %q is already in use (sandy, podman and buildah share the store's names): choose another name, or remove that container: %w", o.Name, storage.ErrDuplicateName)
		}
		return nil, fmt.Errorf("creating a container of image %s: %w", shortID(img.ID), err)
	}
	o.trace("creating the storage container", t0)
	t0 = time.Now()
	p, how, err := prepared(s, c, img, imgName, o)
	if err != nil {
		_ = s.DeleteContainer(c.ID)
		return nil, err
	}
	o.trace(how, t0)
	p.Config = ImageConfigOf(cfg.Config)
	return p, nil
}

// ImageConfigOf is the part of an OCI image config that the runtime side
// reads (imagehelper.ImageConfig, the same JSON names).
func ImageConfigOf(c imgspecv1.ImageConfig) imagehelper.ImageConfig {
	return imagehelper.ImageConfig{
		User: c.User, ExposedPorts: c.ExposedPorts, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd,
		Volumes: c.Volumes, WorkingDir: c.WorkingDir, Labels: c.Labels, StopSignal: c.StopSignal,
	}
}

// imageFor finds the image, pulling it as the policy says.
// A name that names leaves to the reference parser (ErrNeedsNames) is
// handed over before any pull.
func imageFor(ctx context.Context, s storage.Store, names Names, name string, o ContainerOptions) (*storage.Image, string, error) {
	policy := o.Pull
	if policy == "" {
		policy = "missing"
	}
	var img *storage.Image
	var lookupErr error
	switch policy {
	case "missing", "never":
		var matched string
		img, matched, lookupErr = names.Find(s, name)
		if lookupErr == nil {
			return img, matched, nil
		}
		if errors.Is(lookupErr, ErrNeedsNames) {
			return nil, "", lookupErr
		}
		if policy == "never" {
			return nil, "", fmt.Errorf("%w (--pull=never: sandy pull it first)", lookupErr)
		}
	case "always", "newer":
	default:
		return nil, "", fmt.Errorf("--pull %q: want missing, always, never or newer", o.Pull)
	}
	if o.Puller == nil {
		return nil, "", fmt.Errorf("pulling %s: %w", name, ErrNeedsImageLibrary)
	}
	id, err := o.Puller(ctx, s, name)
	if err != nil {
		if lookupErr != nil {
			return nil, "", fmt.Errorf("%v, and pulling it failed: %w", lookupErr, err)
		}
		return nil, "", err
	}
	img, err = s.Image(id)
	if err != nil {
		return nil, "", fmt.Errorf("reading pulled image %s: %w", shortID(id), err)
	}
	return img, names.Match(s, img, name), nil
}

// prepared describes the storage container c for the runtime: its layers
// as the store's driver lays them out, its directories, and the image's
// user database. how says how the user database was read, for --debug.
func prepared(s storage.Store, c *storage.Container, img *storage.Image, imgName string, o ContainerOptions) (p *imagehelper.Prepared, how string, err error) {
	p = &imagehelper.Prepared{ID: c.ID, Name: o.Name, ImageID: img.ID, ImageName: imgName}
	if p.Dir, err = s.ContainerDirectory(c.ID); err != nil {
		return nil, "", fmt.Errorf("finding the container's directory: %w", err)
	}
	var merged string
	if p.Layers, merged, err = layersOf(s, c.LayerID); err != nil {
		return nil, "", err
	}
	if len(o.UIDMap) > 0 || len(o.GIDMap) > 0 {
		if err := shiftIDs(s, &p.Layers, o.UIDMap, o.GIDMap); err != nil {
			return nil, "", err
		}
	}
	p.Layers.Volatile = o.Volatile
	why := layersReadable(s, c, p.Layers)
	if why == "" {
		var done bool
		if done, why, err = userDBFromLayers(p, merged); err != nil || done {
			return p, readHow(p.Layers), err
		}
	}
	// Mounting the root once here reads the user database with the
	// store's own mount, and leaves the mount point the runtime names in
	// the bundle.
	how = "mounting the root and reading its /etc/passwd and /etc/group (" + why + ")"
	root, err := s.Mount(c.ID, "")
	if err != nil {
		return nil, "", fmt.Errorf("mounting the container's root to read its /etc/passwd: %w", err)
	}
	p.Rootfs = root
	p.Passwd, p.Group, err = readUserDB(root)
	if _, uerr := s.Unmount(c.ID, false); uerr != nil && err == nil {
		err = fmt.Errorf("unmounting the container's root: %w", uerr)
	}
	if err == nil && o.Volatile && p.Layers.Driver == overlay.DriverOverlay {
		err = clearVolatileMark(p.Layers.Work)
	}
	if err == nil && p.Layers.IDMapOptions != "" {
		err = unshiftUpperRoot(p.Layers)
	}
	return p, how, err
}

// clearVolatileMark removes what the kernel's overlay leaves in the work
// directory of a volatile mount (work/work/incompat/volatile), which makes
// the next mount of the same upper and work directories fail with EINVAL
// (overlayfs.rst, "Volatile mount"): the store's mount above is volatile
// for a --rm container, and the init mounts the layers again. The store's
// overlay driver removes it before each of its own mounts
// (drivers/overlay get); the layer was only read.
func clearVolatileMark(work string) error {
	if err := os.RemoveAll(filepath.Join(work, "work", "incompat", "volatile")); err != nil {
		return fmt.Errorf("clearing the store's volatile mount mark: %w", err)
	}
	return nil
}

// unshiftUpperRoot gives the container layer's directory back the owner
// of the image's top directory, which storage created it with: a mount
// with the container's maps (the one above) chowns it to the maps' root
// (drivers/overlay get, in the containers/storage sandy links), which
// fuse-overlayfs's mapping then shifts once more, showing the container's
// / as owned by uid 1 (podman 4.3.1, whose older storage leaves it, shows
// 0). Only the fuse-overlayfs case: a copy's layers are the maps' own.
func unshiftUpperRoot(l overlay.Layers) error {
	var st unix.Stat_t
	if err := unix.Lstat(l.Lowers[0], &st); err != nil {
		return fmt.Errorf("reading the owner of the image's root: %w", err)
	}
	if err := unix.Lchown(l.Upper, int(st.Uid), int(st.Gid)); err != nil {
		return fmt.Errorf("restoring the owner of the container's root: %w", err)
	}
	return nil
}

// layersOf reads where the store's driver keeps the layer id and the
// layers below it, and the directory the store's Mount of the container
// returns (the bundle's root.path).
func layersOf(s storage.Store, layerID string) (overlay.Layers, string, error) {
	drv, err := s.GraphDriver()
	if err != nil {
		return overlay.Layers{}, "", err
	}
	switch drv.String() {
	case overlay.DriverOverlay:
		md, err := drv.Metadata(layerID)
		if err != nil {
			return overlay.Layers{}, "", fmt.Errorf("reading the container layer's directories: %w", err)
		}
		l := overlay.Layers{Driver: overlay.DriverOverlay, Upper: md["UpperDir"], Work: md["WorkDir"], Program: mountProgram(s),
			// The driver's own choice of xattr namespace (userxattr when
			// rootless), which the layers' metadata is written in.
			Trusted: !unshare.IsRootless()}
		if md["LowerDir"] != "" {
			l.Lowers = strings.Split(md["LowerDir"], ":")
		}
		l.Lowers = withDiffN(l.Upper, l.Lowers, func(p string) bool {
			_, err := os.Lstat(p)
			return err == nil
		})
		if len(l.Lowers) == 0 {
			return overlay.Layers{}, "", errors.New("the image has no layers: sandy cannot run an empty (scratch) image")
		}
		// MergedDir is where the driver's Get mounts the layer: the
		// store's Mount returns it.
		return l, md["MergedDir"], nil
	case overlay.DriverVFS:
		dir, err := drv.Get(layerID, graphdriver.MountOpts{})
		if err != nil {
			return overlay.Layers{}, "", fmt.Errorf("finding the container layer's directory: %w", err)
		}
		_ = drv.Put(layerID)
		return overlay.Layers{Driver: overlay.DriverVFS, Upper: dir}, dir, nil
	}
	return overlay.Layers{}, "", fmt.Errorf("the image store uses the %s driver; sandy runs containers from overlay and vfs stores only", drv.String())
}

// withDiffN is the lower list the overlay driver mounts a layer with
// (drivers/overlay get): a layer whose ids storage changed in place
// (UpdateLayerIDMap: the id-mapped copy of an image's top layer that a
// keep-id container sits on) keeps the chowned files in diff1 (diff2, …
// after further changes) beside a new, empty diff, and the driver mounts
// them below it. The driver's Metadata lists only each layer's diff, so
// they are added here: after the container layer's own upper (upper is
// its diff), then after each lower diff, the siblings diff1, diff2, …
// that exist.
func withDiffN(upper string, lowers []string, exists func(string) bool) []string {
	var out []string
	siblings := func(diff string) {
		for n := 1; ; n++ {
			p := diff + strconv.Itoa(n)
			if !exists(p) {
				return
			}
			out = append(out, p)
		}
	}
	if path.Base(upper) == "diff" {
		siblings(upper)
	}
	for _, l := range lowers {
		out = append(out, l)
		if path.Base(l) == "diff" {
			siblings(l)
		}
	}
	return out
}

// shiftIDs checks how storage gave the container (made with the id maps
// uids and gids) an image owned as those maps see it, and completes l for
// the init's mount. Storage decided it in CreateContainer with the
// driver's SupportsShifting, asked again here (the same driver, the same
// answer):
//
//   - no shifting: storage made id-mapped copies (the image's mapped top
//     layer, or, for an image in a read-only store, the container's own
//     layer, in its diff1): overlay without a mount program, vfs. The
//     layers are owned as the container sees them; nothing to add.
//   - shifting at mount time: with fuse-overlayfs, the uidmapping and
//     gidmapping options podman's mount passes (drivers/overlay
//     optsAppendMappings), which the init passes on. The numbers are the
//     same although the init runs fuse-overlayfs inside the container's
//     user namespace, not the store's: there the store's id k shows as
//     the container id that the maps send to k, so disk id
//     m[i].ContainerID+j still shows as m[i].HostID+j. The kernel's
//     shifting (idmapped lower layers) needs privilege sandy's init does
//     not have: refused.
func shiftIDs(s storage.Store, l *overlay.Layers, uids, gids []specs.LinuxIDMapping) error {
	if l.Driver == overlay.DriverOverlay {
		// The layer's directory belongs to the container's root (a
		// subordinate id), mode 0700, as storage makes it for podman,
		// whose runtime runs inside the store's namespace. sandy's
		// runtime loads the bundle on the host, which stats root.path
		// (merged, inside it): search permission for others lets it,
		// and lists nothing.
		if err := os.Chmod(filepath.Dir(l.Upper), 0o711); err != nil {
			return fmt.Errorf("opening the container layer to the runtime: %w", err)
		}
	}
	drv, err := s.GraphDriver()
	if err != nil {
		return err
	}
	// SupportsShifting sorts the maps it is given: copies.
	if !drv.SupportsShifting(idtoolsMap(uids), idtoolsMap(gids)) {
		return nil
	}
	if l.Driver != overlay.DriverOverlay || l.Program == "" {
		return fmt.Errorf("the store's %s driver shifts ids with idmapped mounts, which sandy's init cannot make rootless: run with _CONTAINERS_OVERLAY_DISABLE_IDMAP=yes in the environment, or set mount_program = \"/usr/bin/fuse-overlayfs\" under [storage.options.overlay] in storage.conf (docs/troubleshooting.md#the-stores-driver-shifts-ids-with-idmapped-mounts)", l.Driver)
	}
	l.IDMapOptions = fuseMapOptions(uids, gids)
	return nil
}

// fuseMapOptions are fuse-overlayfs's options for maps m (podman's,
// drivers/overlay optsAppendMappings): "uidmapping=C:H:S:C:H:S…", or
// squash_to_uid for a single id.
func fuseMapOptions(uids, gids []specs.LinuxIDMapping) string {
	one := func(name, squash string, m []specs.LinuxIDMapping) string {
		if len(m) == 1 && m[0].Size == 1 {
			return fmt.Sprintf("%s=%d", squash, m[0].HostID)
		}
		parts := make([]string, len(m))
		for i, x := range m {
			parts[i] = fmt.Sprintf("%d:%d:%d", x.ContainerID, x.HostID, x.Size)
		}
		return name + "=" + strings.Join(parts, ":")
	}
	return one("uidmapping", "squash_to_uid", uids) + "," + one("gidmapping", "squash_to_gid", gids)
}

func idtoolsMap(m []specs.LinuxIDMapping) []idtools.IDMap {
	out := make([]idtools.IDMap, len(m))
	for i, x := range m {
		out[i] = idtools.IDMap{ContainerID: int(x.ContainerID), HostID: int(x.HostID), Size: int(x.Size)}
	}
	return out
}

// mountProgram is the store's overlay mount program, "" for the kernel.
func mountProgram(s storage.Store) string {
	v, _ := graphOption(s, "mount_program")
	return v
}

// graphOption is the value of the store's overlay option name, in any of
// the spellings the driver takes (overlay.name, overlay2.name, .name,
// name; drivers.ParseDriverOption).
func graphOption(s storage.Store, name string) (string, bool) {
	for _, o := range s.GraphOptions() {
		k, v, ok := strings.Cut(o, "=")
		k = strings.ToLower(strings.TrimSpace(k))
		if ok && (k == "overlay."+name || k == "overlay2."+name || k == "."+name || k == name) {
			return strings.TrimSpace(v), true
		}
	}
	return "", false
}

// maxUserDB bounds what is read of /etc/passwd and /etc/group: an image
// is not trusted to keep them small.
const maxUserDB = 4 << 20

// readUserDB reads /etc/passwd and /etc/group of the root mounted at
// root, resolving every symlink inside it, and only from regular files
// (inroot): an image whose /etc/passwd is a FIFO or a link to the host's
// cannot block the read or show a host file. A missing file is "".
func readUserDB(root string) (passwd, group string, err error) {
	read := func(p string) (string, error) {
		text, err := inroot.ReadFile(root, p, maxUserDB)
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("the image's /%s: %w", p, err)
		}
		return text, nil
	}
	if passwd, err = read("etc/passwd"); err != nil {
		return "", "", err
	}
	if group, err = read("etc/group"); err != nil {
		return "", "", err
	}
	return passwd, group, nil
}

// RemoveContainer removes a storage container and its layer. A container
// that is already gone is not an error: removal is idempotent, as a --rm
// that raced a `rm -f` must be.
func RemoveContainer(s storage.Store, id string) error {
	if err := s.DeleteContainer(id); err != nil && !errors.Is(err, storage.ErrContainerUnknown) && !errors.Is(err, storage.ErrNotAContainer) {
		return fmt.Errorf("removing container %s: %w", shortID(id), err)
	}
	return nil
}

// ListContainers lists the store's containers for `sandy container ls`.
func ListContainers(s storage.Store) ([]imagehelper.StoredContainer, error) {
	cs, err := s.Containers()
	if err != nil {
		return nil, fmt.Errorf("listing containers: %w", err)
	}
	out := []imagehelper.StoredContainer{}
	for _, c := range cs {
		sc := imagehelper.StoredContainer{ID: c.ID, Names: c.Names, ImageID: c.ImageID, Created: c.Created}
		var meta containerMeta
		if json.Unmarshal([]byte(c.Metadata), &meta) != nil {
			meta = containerMeta{} // another tool's, or none
		}
		sc.ImageName = meta.ImageName
		if dir, err := s.ContainerDirectory(c.ID); err == nil {
			sc.Dir = dir
		}
		sc.Owner, sc.Creator = ownerOf(meta, sc.Dir)
		out = append(out, sc)
	}
	return out, nil
}
