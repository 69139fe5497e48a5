//go:build containers_image_openpgp

package images

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.podman.io/image/v5/types"
	"go.podman.io/storage"

	"github.com/sandy-rt/sandy/internal/imagenames"
	"github.com/sandy-rt/sandy/internal/imagestore"
)

// RemoveOptions are `sandy rmi`'s flags.
type RemoveOptions struct {
	// Force removes the storage containers (sandy's, podman's) that use
	// the image first, and removes every name of an image named by id.
	Force bool
}

// Removed says what Remove did to one argument: the names it untagged
// and the image ids it deleted, in podman's two output forms, and the
// storage containers it removed with -f (as "NAME (ID)").
type Removed struct {
	Untagged   []string
	Deleted    []string
	Containers []string
}

// Remove is `sandy rmi NAME`: a name of an image with other names only
// loses that name (podman's "Untagged:"); otherwise the image is deleted,
// which storage refuses while a container uses it unless o.Force.
func Remove(s storage.Store, sys *types.SystemContext, name string, o RemoveOptions) (Removed, error) {
	var r Removed
	img, err := imagenames.Lookup(s, sys, name)
	if err != nil {
		return r, err
	}
	byName := !isIDOf(img, name)
	if byName && len(img.Names) > 1 {
		n := imagenames.MatchedName(s, sys, img, name)
		if err := s.RemoveNames(img.ID, []string{n}); err != nil {
			return r, fmt.Errorf("untagging %s: %w", n, err)
		}
		r.Untagged = append(r.Untagged, n)
		return r, nil
	}
	users, err := containersOf(s, img.ID)
	if err != nil {
		return r, err
	}
	if len(users) > 0 && !o.Force {
		return r, fmt.Errorf("image %s is used by %s: remove %s first, or rmi -f: %w", imagestore.ShortID(img.ID), describeContainers(users), pronoun(users), storage.ErrImageUsedByContainer)
	}
	if len(img.Names) > 1 && !o.Force {
		return r, fmt.Errorf("image %s has several names (%v): rmi one name at a time, or rmi -f the id", imagestore.ShortID(img.ID), img.Names)
	}
	for _, c := range users {
		if err := s.DeleteContainer(c.ID); err != nil && !errors.Is(err, storage.ErrContainerUnknown) {
			return r, fmt.Errorf("removing container %s of image %s: %w", describeContainer(c), imagestore.ShortID(img.ID), err)
		}
		r.Containers = append(r.Containers, describeContainer(c))
	}
	if _, err := s.DeleteImage(img.ID, true); err != nil {
		return r, fmt.Errorf("removing image %s: %w", imagestore.ShortID(img.ID), err)
	}
	r.Untagged = append(r.Untagged, img.Names...)
	r.Deleted = append(r.Deleted, img.ID)
	return r, nil
}

// Prune removes dangling images (no name, no container); with all, every
// image no container uses. Then it removes the layers no image and no
// container uses: those a failed or interrupted pull or load completed
// (kept so that the next try reuses them) and those another tool left.
// A pull running at the same time may have such a layer in flight (made,
// its image not yet): it then fails, and its retry works.
// It returns the ids of the images and of the layers it removed.
func Prune(s storage.Store, all bool) (imgs, layers []string, err error) {
	imgs, err = pruneImages(s, all)
	if err != nil {
		return imgs, nil, err
	}
	layers, err = pruneLayers(s)
	return imgs, layers, err
}

func pruneImages(s storage.Store, all bool) ([]string, error) {
	imgs, err := s.Images()
	if err != nil {
		return nil, err
	}
	users, err := containerUsers(s)
	if err != nil {
		return nil, err
	}
	var gone []string
	for _, img := range imgs {
		if users[img.ID] > 0 || (!all && len(img.Names) > 0) {
			continue
		}
		if _, err := s.DeleteImage(img.ID, true); err != nil {
			if errors.Is(err, storage.ErrImageUsedByContainer) || errors.Is(err, storage.ErrImageUnknown) {
				continue // a container or another pruner came first
			}
			return gone, fmt.Errorf("removing image %s: %w", imagestore.ShortID(img.ID), err)
		}
		gone = append(gone, img.ID)
	}
	return gone, nil
}

// pruneLayers removes the layers that no image (top layer, or a parent
// of one) and no container uses, children first, and returns
// "layer ID" for each.
func pruneLayers(s storage.Store) ([]string, error) {
	var gone []string
	for {
		layers, err := s.Layers()
		if err != nil {
			return gone, err
		}
		used, err := usedLayers(s, layers)
		if err != nil {
			return gone, err
		}
		parents := map[string]bool{}
		for _, l := range layers {
			parents[l.Parent] = true
		}
		removed := 0
		for _, l := range layers {
			if used[l.ID] || parents[l.ID] {
				continue
			}
			if err := s.DeleteLayer(l.ID); err != nil {
				if errors.Is(err, storage.ErrLayerUnknown) || errors.Is(err, storage.ErrLayerHasChildren) ||
					errors.Is(err, storage.ErrLayerUsedByImage) || errors.Is(err, storage.ErrLayerUsedByContainer) {
					continue // another process came first
				}
				return gone, fmt.Errorf("removing unused layer %s: %w", imagestore.ShortID(l.ID), err)
			}
			gone = append(gone, l.ID)
			removed++
		}
		if removed == 0 {
			return gone, nil
		}
	}
}

// usedLayers are the layers images and containers use, with their parents.
func usedLayers(s storage.Store, layers []storage.Layer) (map[string]bool, error) {
	parent := map[string]string{}
	for _, l := range layers {
		parent[l.ID] = l.Parent
	}
	used := map[string]bool{}
	mark := func(id string) {
		for id != "" && !used[id] {
			used[id] = true
			id = parent[id]
		}
	}
	imgs, err := s.Images()
	if err != nil {
		return nil, err
	}
	for _, img := range imgs {
		mark(img.TopLayer)
		for _, m := range img.MappedTopLayers {
			mark(m)
		}
	}
	cs, err := s.Containers()
	if err != nil {
		return nil, err
	}
	for _, c := range cs {
		mark(c.LayerID)
	}
	return used, nil
}

// containersOf are the storage containers (sandy's, podman's, buildah's)
// made from image id.
func containersOf(s storage.Store, id string) ([]storage.Container, error) {
	cs, err := s.Containers()
	if err != nil {
		return nil, err
	}
	var out []storage.Container
	for _, c := range cs {
		if c.ImageID == id {
			out = append(out, c)
		}
	}
	return out, nil
}

// describeContainer names a storage container as its owner named it:
// "NAME (SHORT-ID)", or the short id of an unnamed one.
func describeContainer(c storage.Container) string {
	if len(c.Names) > 0 {
		return fmt.Sprintf("%s (%s)", c.Names[0], imagestore.ShortID(c.ID))
	}
	return imagestore.ShortID(c.ID)
}

// describeContainers is "container NAME (ID)" or "2 containers: A (ID), B (ID)".
func describeContainers(cs []storage.Container) string {
	names := make([]string, len(cs))
	for i, c := range cs {
		names[i] = describeContainer(c)
	}
	if len(cs) == 1 {
		return "container " + names[0]
	}
	return fmt.Sprintf("%d containers: %s", len(cs), strings.Join(names, ", "))
}

func pronoun(cs []storage.Container) string {
	if len(cs) == 1 {
		return "it"
	}
	return "them"
}

// isIDOf reports whether name is img's id or an id prefix.
func isIDOf(img *storage.Image, name string) bool {
	if slices.Contains(img.Names, name) {
		return false
	}
	n := len(name)
	return n > 0 && n <= len(img.ID) && img.ID[:n] == name
}
