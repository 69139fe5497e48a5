//go:build containers_image_openpgp

package images

import (
	"fmt"

	"go.podman.io/image/v5/types"
	"go.podman.io/storage"

	"github.com/sandy-rt/sandy/internal/imagenames"
	"github.com/sandy-rt/sandy/internal/imagestore"
)

// Tag adds names to an image (`sandy tag IMAGE NAME...`); a short name is
// stored under localhost/, a missing tag is ":latest", as podman tags.
func Tag(s storage.Store, sys *types.SystemContext, image string, names []string) error {
	img, err := imagenames.Lookup(s, sys, image)
	if err != nil {
		return err
	}
	var add []string
	for _, n := range names {
		full, err := imagenames.NormalizeName(n)
		if err != nil {
			return err
		}
		add = append(add, full)
	}
	if err := s.AddNames(img.ID, add); err != nil {
		return fmt.Errorf("tagging %s: %w", imagestore.ShortID(img.ID), err)
	}
	return nil
}

// Untag removes names from an image; with none, every name.
func Untag(s storage.Store, sys *types.SystemContext, image string, names []string) error {
	img, err := imagenames.Lookup(s, sys, image)
	if err != nil {
		return err
	}
	rm := img.Names
	if len(names) > 0 {
		rm = nil
		for _, n := range names {
			rm = append(rm, imagenames.MatchedName(s, sys, img, n))
		}
	}
	return s.RemoveNames(img.ID, rm)
}
