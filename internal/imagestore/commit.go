//go:build containers_image_openpgp

package imagestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"slices"
	"strings"
	"time"

	digest "github.com/opencontainers/go-digest"
	specs "github.com/opencontainers/image-spec/specs-go"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/imagehelper"
)

// CommitOptions are `sandy commit`'s flags.
type CommitOptions struct {
	// Name is the new image's name ("" for none: the image is known by
	// its id), normalized as a tag (Names.Normalize).
	Name string
	// Names normalises Name (nil: ExactNames, which leaves it to the
	// helper that links the reference parser).
	Names Names
	// Message and Author go to the image's history and config.
	Message, Author string
	// Changes are Dockerfile instructions applied to the config
	// (ApplyChanges).
	Changes []string
	// Now is the creation time (time.Now when zero).
	Now time.Time
	// Config reads what ociConfig leaves to the image library; nil in the
	// storage-only helper.
	Config ConfigFunc
}

func (o CommitOptions) names() Names {
	if o.Names == nil {
		return ExactNames{}
	}
	return o.Names
}

// Commit makes an image of a storage container: the container's layer
// (its writes over its image) becomes a new layer on top of the image's,
// and the image's config, with the changes, the new layer's digest and a
// history entry, becomes the new image's. It is stored as the image
// library's storage transport stores a pulled image (the config under its
// digest, an OCI manifest under "manifest-DIGEST" and "manifest", the id
// the config's digest), so podman, buildah and skopeo read it; every
// layer is described by its uncompressed digest, which the store keeps.
// It returns the image's id.
func Commit(ctx context.Context, s storage.Store, containerID string, o CommitOptions) (string, error) {
	c, err := s.Container(containerID)
	if err != nil {
		return "", fmt.Errorf("container %s: %w", containerID, err)
	}
	img, err := s.Image(c.ImageID)
	if err != nil {
		return "", fmt.Errorf("the image of container %s: %w", containerID, err)
	}
	name := ""
	if o.Name != "" {
		if name, err = o.names().Normalize(o.Name); err != nil {
			return "", err
		}
	}
	cfg, err := ociConfig(ctx, s, img.ID, o.Config)
	if err != nil {
		return "", fmt.Errorf("reading the config of image %s: %w", img.ID, err)
	}
	if err := ApplyChanges(&cfg.Config, o.Changes); err != nil {
		return "", err
	}
	if err := refuseWhiteoutNames(s, c); err != nil {
		return "", fmt.Errorf("committing container %s: %w", containerID, err)
	}
	layer, err := commitLayer(s, c.LayerID, img.TopLayer)
	if err != nil {
		return "", err
	}
	id, err := storeImage(s, cfg, layer, name, o)
	if err != nil {
		if derr := s.DeleteLayer(layer.ID); derr != nil {
			err = errors.Join(err, fmt.Errorf("removing the new layer: %w", derr))
		}
		return "", err
	}
	return id, nil
}

// refuseWhiteoutNames refuses a container layer holding a file the
// container made whose name starts with ".wh.": the layer format (OCI
// image-spec, "Whiteouts") reads such a name as the deletion of NAME, or
// of the whole directory's lower content for ".wh..wh..opq", so the
// committed image would lack the file and what it names, not be what the
// container saw (podman commits it so, silently). The store's changes
// list a whiteout of its own as such a name only under fuse-overlayfs
// without mknod (Linux before 5.8), which its mount hides: a name counts
// when the container's mounted root shows it. The root is mounted only
// when the changes hold such a name.
func refuseWhiteoutNames(s storage.Store, c *storage.Container) error {
	changes, err := s.Changes("", c.LayerID)
	if err != nil {
		return fmt.Errorf("reading the container's changes: %w", err)
	}
	var names []string
	for _, ch := range changes {
		if ch.Kind != archive.ChangeDelete && strings.HasPrefix(path.Base(ch.Path), archive.WhiteoutPrefix) {
			names = append(names, ch.Path)
		}
	}
	if len(names) == 0 {
		return nil
	}
	root, err := s.Mount(c.ID, "")
	if err != nil {
		return fmt.Errorf("mounting the container's root: %w", err)
	}
	defer func() { _, _ = s.Unmount(c.ID, false) }()
	rootfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the container's root: %w", err)
	}
	defer unix.Close(rootfd)
	var seen []string
	for _, n := range names {
		how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
		if fd, err := unix.Openat2(rootfd, n, how); err == nil {
			unix.Close(fd)
			seen = append(seen, n)
		}
	}
	if len(seen) == 0 {
		return nil
	}
	slices.Sort(seen)
	return fmt.Errorf("%s: %w: the image layer format reads a name starting with %q as a deletion, so the committed image would lose the file and what it names; rename or remove it first, e.g. with sandy cp or sandy start and mv (docs/troubleshooting.md#commit-whiteout-name)", strings.Join(seen, ", "), ErrWhiteoutName, archive.WhiteoutPrefix)
}

// commitLayer stores the diff of the container's layer as a new layer on
// parent. The diff is spooled to a file first: reading it holds the
// layer store's lock, which storing a layer needs.
func commitLayer(s storage.Store, containerLayer, parent string) (*storage.Layer, error) {
	uncompressed := archive.Uncompressed
	diff, err := s.Diff("", containerLayer, &storage.DiffOptions{Compression: &uncompressed})
	if err != nil {
		return nil, fmt.Errorf("reading the container's changes: %w", err)
	}
	tmp, err := os.CreateTemp(s.GraphRoot(), ".commit-")
	if err != nil {
		diff.Close()
		return nil, fmt.Errorf("spooling the container's changes: %w", err)
	}
	defer os.Remove(tmp.Name())
	defer tmp.Close()
	digester := digest.Canonical.Digester()
	_, err = io.Copy(io.MultiWriter(tmp, digester.Hash()), diff)
	if cerr := diff.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return nil, fmt.Errorf("spooling the container's changes: %w", err)
	}
	if _, err := tmp.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	layer, _, err := s.PutLayer("", parent, nil, "", false, nil, tmp)
	if err != nil {
		return nil, fmt.Errorf("storing the new layer: %w", err)
	}
	if layer.UncompressedDigest != digester.Digest() {
		_ = s.DeleteLayer(layer.ID)
		return nil, fmt.Errorf("the stored layer's digest %s is not the diff's %s", layer.UncompressedDigest, digester.Digest())
	}
	return layer, nil
}

// storeImage writes the config and manifest of an image whose top layer
// is top and creates it, named name.
func storeImage(s storage.Store, cfg *imgspecv1.Image, top *storage.Layer, name string, o CommitOptions) (string, error) {
	now := o.Now
	if now.IsZero() {
		now = time.Now()
	}
	now = now.UTC()
	chain, err := layerChain(s, top)
	if err != nil {
		return "", err
	}
	cfg.Created = &now
	if o.Author != "" {
		cfg.Author = o.Author
	}
	cfg.RootFS = imgspecv1.RootFS{Type: "layers"}
	m := imgspecv1.Manifest{Versioned: specs.Versioned{SchemaVersion: 2}, MediaType: imgspecv1.MediaTypeImageManifest}
	for _, l := range chain {
		cfg.RootFS.DiffIDs = append(cfg.RootFS.DiffIDs, l.UncompressedDigest)
		m.Layers = append(m.Layers, imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageLayer, Digest: l.UncompressedDigest, Size: l.UncompressedSize})
	}
	cfg.History = append(cfg.History, imgspecv1.History{Created: &now, CreatedBy: "sandy commit", Author: o.Author, Comment: o.Message})
	config, err := json.Marshal(cfg)
	if err != nil {
		return "", err
	}
	configDigest := digest.Canonical.FromBytes(config)
	m.Config = imgspecv1.Descriptor{MediaType: imgspecv1.MediaTypeImageConfig, Digest: configDigest, Size: int64(len(config))}
	manifest, err := json.Marshal(m)
	if err != nil {
		return "", err
	}
	manifestDigest := digest.Canonical.FromBytes(manifest)
	opts := &storage.ImageOptions{
		CreationDate: now, Digest: manifestDigest,
		BigData: []storage.ImageBigDataOption{
			{Key: configDigest.String(), Data: config, Digest: configDigest},
			{Key: storage.ImageDigestManifestBigDataNamePrefix + "-" + manifestDigest.String(), Data: manifest, Digest: manifestDigest},
			{Key: storage.ImageDigestBigDataKey, Data: manifest, Digest: manifestDigest},
		},
	}
	img, err := s.CreateImage(configDigest.Encoded(), nil, top.ID, "", opts)
	if err != nil {
		return "", fmt.Errorf("storing the image: %w", err)
	}
	if name != "" {
		// The name moves from the image that had it, as podman's commit.
		if err := s.AddNames(img.ID, []string{name}); err != nil {
			_, _ = s.DeleteImage(img.ID, true)
			return "", fmt.Errorf("naming the image %s: %w", name, err)
		}
	}
	return img.ID, nil
}

// layerChain is top and its parents, bottom first; each must know its
// uncompressed digest, which the manifest and the config name it by.
func layerChain(s storage.Store, top *storage.Layer) ([]*storage.Layer, error) {
	var chain []*storage.Layer
	for l := top; ; {
		if l.UncompressedDigest == "" {
			return nil, fmt.Errorf("layer %s has no recorded digest: it cannot be described in a manifest", l.ID)
		}
		chain = append([]*storage.Layer{l}, chain...)
		if l.Parent == "" {
			return chain, nil
		}
		p, err := s.Layer(l.Parent)
		if err != nil {
			return nil, fmt.Errorf("layer %s: %w", l.Parent, err)
		}
		l = p
	}
}

// Diff lists what a storage container changed over its image, sorted by
// path, as `podman diff` does.
func Diff(s storage.Store, containerID string) ([]imagehelper.Change, error) {
	c, err := s.Container(containerID)
	if err != nil {
		return nil, fmt.Errorf("container %s: %w", containerID, err)
	}
	changes, err := s.Changes("", c.LayerID)
	if err != nil {
		return nil, fmt.Errorf("reading the changes of container %s: %w", containerID, err)
	}
	out := make([]imagehelper.Change, 0, len(changes))
	for _, ch := range changes {
		kind := "C"
		switch ch.Kind {
		case archive.ChangeAdd:
			kind = "A"
		case archive.ChangeDelete:
			kind = "D"
		}
		out = append(out, imagehelper.Change{Path: ch.Path, Kind: kind})
	}
	slices.SortFunc(out, func(a, b imagehelper.Change) int { return strings.Compare(a.Path, b.Path) })
	return out, nil
}

// RenameContainer gives a storage container the name name (its only
// one), as `podman rename`: the store keeps names unique across sandy's,
// podman's and buildah's containers and refuses one in use; the podman
// metadata's name follows, for `podman ps --external`.
func RenameContainer(s storage.Store, id, name string) error {
	c, err := s.Container(id)
	if err != nil {
		return fmt.Errorf("container %s: %w", id, err)
	}
	// The store would move the name from its holder: refuse it instead.
	all, err := s.Containers()
	if err != nil {
		return err
	}
	for _, o := range all {
		if o.ID != c.ID && slices.Contains(o.Names, name) {
			return fmt.Errorf("the container name %q is already in use by %s: choose another", name, o.ID[:12])
		}
	}
	if err := s.SetNames(c.ID, []string{name}); err != nil {
		if errors.Is(err, storage.ErrDuplicateName) {
			return fmt.Errorf("the container name %q is already in use: %w", name, err)
		}
		return fmt.Errorf("renaming container %s: %w", id, err)
	}
	var meta map[string]any
	if c.Metadata != "" && json.Unmarshal([]byte(c.Metadata), &meta) == nil {
		meta["name"] = name
		if b, err := json.Marshal(meta); err == nil {
			if err := s.SetMetadata(c.ID, string(b)); err != nil {
				return fmt.Errorf("renaming container %s: %w", id, err)
			}
		}
	}
	return nil
}
