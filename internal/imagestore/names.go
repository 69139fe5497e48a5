//go:build containers_image_openpgp

package imagestore

import (
	"errors"
	"fmt"
	"slices"

	"go.podman.io/storage"
)

// ErrWhiteoutName is a container layer holding a file whose name the
// image layer format reads as a whiteout (.wh.NAME): commit refuses it.
var ErrWhiteoutName = errors.New("a file name the image layer format reserves for whiteouts")

// ErrNeedsNames is a name that ExactNames leaves to the image library's
// name parser (internal/imagenames): one not stored exactly as typed, or
// one to normalise. Like ErrNeedsImageLibrary it comes before the store
// is changed, and the helper hands the verb to the one that parses names.
var ErrNeedsNames = errors.New("needs the image name parser")

// Names resolves the image names a user types. internal/imagenames
// implements it as podman does (the image library's reference parser and
// registries.conf's unqualified-search registries); ExactNames, for the
// helper that `sandy run IMAGE` starts, links neither: the reference
// parser compiles its regexps at package init (docs/design.md, "The
// run-path helper's dependencies").
type Names interface {
	// Find is the stored image name means and the stored name of it
	// that name matched (name itself when it matched none: an id).
	Find(s storage.Store, name string) (*storage.Image, string, error)
	// Match is the stored name of img that name meant (after a pull).
	Match(s storage.Store, img *storage.Image, name string) string
	// Normalize is the name a new tag is stored under.
	Normalize(name string) (string, error)
}

// ExactNames finds an image by a name it is stored under exactly as
// typed, the first thing podman's lookup tries, and nothing else: any
// other name (a short one, an id, a missing tag) is ErrNeedsNames. What
// it finds is what the full lookup finds for that name (storage's lookup
// by that name comes first there too, and the name it matched is the
// name itself).
type ExactNames struct{}

// Find is the image stored under name.
func (ExactNames) Find(s storage.Store, name string) (*storage.Image, string, error) {
	if img, err := s.Image(name); err == nil && slices.Contains(img.Names, name) {
		return img, name, nil
	}
	return nil, "", fmt.Errorf("image %q is not stored under that exact name: %w", name, ErrNeedsNames)
}

// Match is name where img is stored under it; otherwise name too, which
// is what the full lookup gives when no candidate matches (ExactNames is
// used where no pull runs, so this is not reached after one).
func (ExactNames) Match(_ storage.Store, _ *storage.Image, name string) string { return name }

// Normalize is ErrNeedsNames: normalising needs the reference parser.
func (ExactNames) Normalize(name string) (string, error) {
	return "", fmt.Errorf("normalising %q: %w", name, ErrNeedsNames)
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
