//go:build containers_image_openpgp

package imagestore

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/storage"
)

// ErrNeedsImageLibrary is a request this package leaves to the image
// library (go.podman.io/image/v5), which the storage-only helper does not
// link: a pull, or an image whose manifest is not a plain OCI or Docker
// schema 2 one. The storage-only helper hands the whole verb to
// sandy-image then (internal/cmd/sandy-store).
var ErrNeedsImageLibrary = errors.New("needs the image library")

// The config media types of the manifests ociConfig reads itself.
const (
	mediaTypeDockerConfig = "application/vnd.docker.container.image.v1+json"
	maxConfigSize         = 4 << 20 // the image library's iolimits.MaxConfigBodySize
)

// ConfigFunc reads the OCI config of the stored image id: the image
// library's reader (images.OCIConfig) for what ociConfig leaves to it.
type ConfigFunc func(ctx context.Context, s storage.Store, id string) (*imgspecv1.Image, error)

// ociConfig reads the config of the stored image id as OCI, the way the
// image library's storage transport does for the two manifest types every
// registry and archive of today gives (the library's
// manifestOCI1.OCIConfig and manifestSchema2.OCIConfig: the config blob
// checked against its digest, decoded into the OCI type, which drops
// Docker's extra fields), without linking the library: the image's
// "manifest" big data (the per-platform manifest, which the storage
// transport stores under that key) names the config, stored under its
// digest. Anything else (Docker schema 1, a list stored by `--all`, an
// artifact) is ErrNeedsImageLibrary, unless library reads it.
func ociConfig(ctx context.Context, s storage.Store, id string, library ConfigFunc) (*imgspecv1.Image, error) {
	cfg, err := plainOCIConfig(s, id)
	if errors.Is(err, ErrNeedsImageLibrary) && library != nil {
		return library(ctx, s, id)
	}
	return cfg, err
}

func plainOCIConfig(s storage.Store, id string) (*imgspecv1.Image, error) {
	mb, err := s.ImageBigData(id, storage.ImageDigestBigDataKey)
	if err != nil {
		return nil, fmt.Errorf("reading the image's manifest: %w", err)
	}
	var m struct {
		SchemaVersion int                  `json:"schemaVersion"`
		MediaType     string               `json:"mediaType"`
		Config        imgspecv1.Descriptor `json:"config"`
	}
	if err := json.Unmarshal(mb, &m); err != nil {
		return nil, fmt.Errorf("reading the image's manifest: %w", err)
	}
	switch {
	case m.SchemaVersion != 2:
		return nil, fmt.Errorf("manifest schema %d: %w", m.SchemaVersion, ErrNeedsImageLibrary)
	case m.Config.MediaType != imgspecv1.MediaTypeImageConfig && m.Config.MediaType != mediaTypeDockerConfig:
		return nil, fmt.Errorf("manifest %q with config %q: %w", m.MediaType, m.Config.MediaType, ErrNeedsImageLibrary)
	}
	if err := m.Config.Digest.Validate(); err != nil {
		return nil, fmt.Errorf("the manifest's config digest %q: %w", m.Config.Digest, err)
	}
	cb, err := s.ImageBigData(id, m.Config.Digest.String())
	if err != nil {
		return nil, fmt.Errorf("reading the image's config %s: %w", m.Config.Digest, err)
	}
	if len(cb) > maxConfigSize {
		return nil, fmt.Errorf("the image's config %s is larger than %d bytes", m.Config.Digest, maxConfigSize)
	}
	if got := m.Config.Digest.Algorithm().FromBytes(cb); got != m.Config.Digest {
		return nil, fmt.Errorf("the image's config does not match its digest %s (stored: %s)", m.Config.Digest, got)
	}
	cfg := &imgspecv1.Image{}
	if err := json.Unmarshal(cb, cfg); err != nil {
		return nil, fmt.Errorf("decoding the image's config %s: %w", m.Config.Digest, err)
	}
	return cfg, nil
}
