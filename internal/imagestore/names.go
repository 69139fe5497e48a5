//go:build containers_image_openpgp

package imagestore

import (
	"errors"
	"slices"

	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// ErrWhiteoutName is a container layer holding a file whose name the
// image layer format reads as a whiteout (.wh.NAME): commit refuses it.
var ErrWhiteoutName = errors.New("a file name the image layer format reserves for whiteouts")

// MatchedName is the stored name of img that name meant.
func MatchedName(s storage.Store, sys *types.SystemContext, img *storage.Image, name string) string {
	if slices.Contains(img.Names, name) {
		return name
	}
	for _, c := range lookupCandidates(sys, name) {
		if slices.Contains(img.Names, c) {
			return c
		}
	}
	return name
}

// shortID is the 12-character id podman prints.
func shortID(id string) string {
	if len(id) > 12 {
		return id[:12]
	}
	return id
}

// ShortID is shortID for the helper's output.
func ShortID(id string) string { return shortID(id) }
