//go:build containers_image_openpgp

package images

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	graphdriver "go.podman.io/storage/drivers"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/overlay"
)

// ContainerOptions are what `sandy run IMAGE` asks of the store.
type ContainerOptions struct {
	Name string
	// Pull is the pull policy: missing (""), always, never or newer
	// (taken as always: a pull of an image already stored copies only
	// what changed).
	Pull string
	// PullOptions are the registry flags and the progress writer of a pull.
	PullOptions PullOptions
	// Volatile: the container is removed when it exits (--rm), so its
	// overlay needs no syncs.
	Volatile bool
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
}

// CreateContainer makes a storage container from the image name refers
// to, pulling it first as the policy says, and returns what the runtime
// needs to run it. A name already in use (by sandy, podman or buildah: the
// store keeps one list) is an error naming it, and two concurrent creates
// of one name leave exactly one container: the store decides under its
// lock.
func CreateContainer(ctx context.Context, s storage.Store, sys *types.SystemContext, name string, o ContainerOptions) (*imagehelper.Prepared, error) {
	img, imgName, err := imageFor(ctx, s, sys, name, o)
	if err != nil {
		return nil, err
	}
	cfg, err := ociConfig(ctx, s, img.ID)
	if err != nil {
		return nil, fmt.Errorf("reading the config of image %s: %w", shortID(img.ID), err)
	}
	meta, _ := json.Marshal(containerMeta{ImageName: imgName, ImageID: img.ID, ContainerName: o.Name, CreatedAt: time.Now().Unix()})
	var names []string
	if o.Name != "" {
		names = []string{o.Name}
	}
	c, err := s.CreateContainer("", names, img.ID, "", string(meta), nil)
	if err != nil {
		if errors.Is(err, storage.ErrDuplicateName) {
			return nil, fmt.Errorf("the container name %q is already in use (sandy, podman and buildah share the store's names): choose another name, or remove that container: %w", o.Name, storage.ErrDuplicateName)
		}
		return nil, fmt.Errorf("creating a container of image %s: %w", shortID(img.ID), err)
	}
	p, err := prepared(s, c, img, imgName, o)
	if err != nil {
		_ = s.DeleteContainer(c.ID)
		return nil, err
	}
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
func imageFor(ctx context.Context, s storage.Store, sys *types.SystemContext, name string, o ContainerOptions) (*storage.Image, string, error) {
	policy := o.Pull
	if policy == "" {
		policy = "missing"
	}
	var img *storage.Image
	var lookupErr error
	switch policy {
	case "missing", "never":
		img, lookupErr = Lookup(s, sys, name)
		if lookupErr == nil {
			return img, matchedName(s, sys, img, name), nil
		}
		if policy == "never" {
			return nil, "", fmt.Errorf("%w (--pull=never: sandy pull it first)", lookupErr)
		}
	case "always", "newer":
	default:
		return nil, "", fmt.Errorf("--pull %q: want missing, always, never or newer", o.Pull)
	}
	id, err := Pull(ctx, s, name, o.PullOptions)
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
	return img, matchedName(s, sys, img, name), nil
}

// prepared describes the storage container c for the runtime: its layers
// as the store's driver lays them out, its directories, and the image's
// user database.
func prepared(s storage.Store, c *storage.Container, img *storage.Image, imgName string, o ContainerOptions) (*imagehelper.Prepared, error) {
	p := &imagehelper.Prepared{ID: c.ID, Name: o.Name, ImageID: img.ID, ImageName: imgName}
	var err error
	if p.Dir, err = s.ContainerDirectory(c.ID); err != nil {
		return nil, fmt.Errorf("finding the container's directory: %w", err)
	}
	if p.Layers, err = layersOf(s, c.LayerID); err != nil {
		return nil, err
	}
	p.Layers.Volatile = o.Volatile
	// Mounting the root once here reads the user database with the
	// store's own mount, and leaves the mount point the runtime names in
	// the bundle.
	root, err := s.Mount(c.ID, "")
	if err != nil {
		return nil, fmt.Errorf("mounting the container's root to read its /etc/passwd: %w", err)
	}
	p.Rootfs = root
	p.Passwd, p.Group, err = readUserDB(root)
	if _, uerr := s.Unmount(c.ID, false); uerr != nil && err == nil {
		err = fmt.Errorf("unmounting the container's root: %w", uerr)
	}
	return p, err
}

// layersOf reads where the store's driver keeps the layer id and the
// layers below it.
func layersOf(s storage.Store, layerID string) (overlay.Layers, error) {
	drv, err := s.GraphDriver()
	if err != nil {
		return overlay.Layers{}, err
	}
	switch drv.String() {
	case overlay.DriverOverlay:
		md, err := drv.Metadata(layerID)
		if err != nil {
			return overlay.Layers{}, fmt.Errorf("reading the container layer's directories: %w", err)
		}
		l := overlay.Layers{Driver: overlay.DriverOverlay, Upper: md["UpperDir"], Work: md["WorkDir"], Program: mountProgram(s)}
		if md["LowerDir"] != "" {
			l.Lowers = strings.Split(md["LowerDir"], ":")
		}
		if len(l.Lowers) == 0 {
			return overlay.Layers{}, errors.New("the image has no layers: sandy cannot run an empty (scratch) image")
		}
		return l, nil
	case overlay.DriverVFS:
		dir, err := drv.Get(layerID, graphdriver.MountOpts{})
		if err != nil {
			return overlay.Layers{}, fmt.Errorf("finding the container layer's directory: %w", err)
		}
		_ = drv.Put(layerID)
		return overlay.Layers{Driver: overlay.DriverVFS, Upper: dir}, nil
	}
	return overlay.Layers{}, fmt.Errorf("the image store uses the %s driver; sandy runs containers from overlay and vfs stores only", drv.String())
}

// mountProgram is the store's overlay mount program, "" for the kernel.
func mountProgram(s storage.Store) string {
	for _, o := range s.GraphOptions() {
		k, v, ok := strings.Cut(o, "=")
		if ok && (k == "overlay.mount_program" || k == ".mount_program" || k == "mount_program") {
			return v
		}
	}
	return ""
}

// maxUserDB bounds what is read of /etc/passwd and /etc/group: an image
// is not trusted to keep them small.
const maxUserDB = 4 << 20

// readUserDB reads /etc/passwd and /etc/group of the root mounted at
// root, resolving every symlink inside it (openat2 RESOLVE_IN_ROOT), and
// only from regular files: an image whose /etc/passwd is a FIFO or a link
// to the host's cannot block the read or show a host file.
func readUserDB(root string) (passwd, group string, err error) {
	dfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", "", fmt.Errorf("opening the container's root: %w", err)
	}
	defer unix.Close(dfd)
	read := func(p string) (string, error) {
		fd, err := unix.Openat2(dfd, p, &unix.OpenHow{
			Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
			Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
		})
		if errors.Is(err, unix.ENOENT) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("opening the image's /%s: %w", p, err)
		}
		f := os.NewFile(uintptr(fd), p)
		defer f.Close()
		fi, err := f.Stat()
		if err != nil {
			return "", err
		}
		if !fi.Mode().IsRegular() {
			return "", fmt.Errorf("the image's /%s is not a regular file (%s)", p, fi.Mode().Type())
		}
		b, err := io.ReadAll(io.LimitReader(f, maxUserDB+1))
		if err != nil {
			return "", fmt.Errorf("reading the image's /%s: %w", p, err)
		}
		if len(b) > maxUserDB {
			return "", fmt.Errorf("the image's /%s is larger than %d bytes", p, maxUserDB)
		}
		return string(b), nil
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
		if json.Unmarshal([]byte(c.Metadata), &meta) == nil {
			sc.ImageName = meta.ImageName
		}
		if dir, err := s.ContainerDirectory(c.ID); err == nil {
			sc.Dir = dir
		}
		out = append(out, sc)
	}
	return out, nil
}
