//go:build containers_image_openpgp

package imagenames

import (
	"errors"
	"fmt"
	"slices"
	"strings"

	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"

	"github.com/sandy-rt/sandy/internal/imagestore"
)

// Registries is imagestore.Names with the image library's name parser and
// the unqualified-search registries of registries.conf (Sys's
// SystemRegistriesConfPath, or the system's).
type Registries struct{ Sys *types.SystemContext }

// ForConf is Registries reading registriesConf (--registries-conf; empty:
// the system's registries.conf).
func ForConf(registriesConf string) imagestore.Names {
	return Registries{Sys: &types.SystemContext{SystemRegistriesConfPath: registriesConf}}
}

// Find is Lookup and MatchedName.
func (r Registries) Find(s storage.Store, name string) (*storage.Image, string, error) {
	img, err := Lookup(s, r.Sys, name)
	if err != nil {
		return nil, "", err
	}
	return img, MatchedName(s, r.Sys, img, name), nil
}

// Match is MatchedName.
func (r Registries) Match(s storage.Store, img *storage.Image, name string) string {
	return MatchedName(s, r.Sys, img, name)
}

// Normalize is NormalizeName.
func (Registries) Normalize(name string) (string, error) { return NormalizeName(name) }

// Lookup finds a stored image the way podman does: by id or unique id
// prefix, by its name as typed, then with ":latest" added, then under
// docker.io (the normalised name), localhost/ and each unqualified-search
// registry of registries.conf. The error names what was tried.
func Lookup(s storage.Store, sys *types.SystemContext, name string) (*storage.Image, error) {
	if name == "" {
		return nil, errors.New("no image name")
	}
	if img, err := s.Image(strings.TrimPrefix(name, "sha256:")); err == nil {
		return img, nil
	}
	for _, cand := range lookupCandidates(sys, name) {
		if img, err := s.Image(cand); err == nil {
			return img, nil
		}
	}
	return nil, imagestore.NoSuchImage(name)
}

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

// lookupCandidates are the stored names name may mean, in podman's order.
func lookupCandidates(sys *types.SystemContext, name string) []string {
	var out []string
	add := func(n string) {
		for _, o := range out {
			if o == n {
				return
			}
		}
		out = append(out, n)
	}
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return nil
	}
	add(reference.TagNameOnly(ref).String())
	if isShort(name) {
		short := strings.TrimPrefix(reference.TagNameOnly(ref).String(), "docker.io/library/")
		short = strings.TrimPrefix(short, "docker.io/")
		add("localhost/" + short)
		regs, err := sysregistriesv2.UnqualifiedSearchRegistries(sys)
		if err == nil {
			for _, r := range regs {
				if n, err := reference.ParseNormalizedNamed(r + "/" + short); err == nil {
					add(reference.TagNameOnly(n).String())
				}
			}
		}
	}
	return out
}

// isShort reports whether name has no registry part (no dot, colon or
// "localhost" before the first slash).
func isShort(name string) bool {
	first, _, ok := strings.Cut(name, "/")
	if !ok {
		return true
	}
	return !strings.ContainsAny(first, ".:") && first != "localhost"
}

// NormalizeName is the name a new tag is stored under: a short name goes
// under localhost/, as podman tags, and a missing tag is ":latest".
func NormalizeName(name string) (string, error) {
	if isShort(name) {
		name = "localhost/" + name
	}
	ref, err := reference.ParseNormalizedNamed(name)
	if err != nil {
		return "", fmt.Errorf("%q is not a valid image name: %w", name, err)
	}
	if _, ok := ref.(reference.Digested); ok {
		return "", fmt.Errorf("%q: a tag cannot be a digest", name)
	}
	return reference.TagNameOnly(ref).String(), nil
}
