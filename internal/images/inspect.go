//go:build containers_image_openpgp

package images

import (
	"context"
	"fmt"
	"time"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/image/v5/manifest"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/storage"
)

// Inspect is `sandy image inspect`'s JSON, with podman's field names.
type Inspect struct {
	ID           string                `json:"Id"`
	Digest       digest.Digest         `json:"Digest"`
	RepoTags     []string              `json:"RepoTags"`
	RepoDigests  []string              `json:"RepoDigests"`
	Parent       string                `json:"Parent"`
	Comment      string                `json:"Comment"`
	Created      *time.Time            `json:"Created"`
	Config       imgspecv1.ImageConfig `json:"Config"`
	Version      string                `json:"Version"`
	Author       string                `json:"Author"`
	Architecture string                `json:"Architecture"`
	Os           string                `json:"Os"`
	Variant      string                `json:"Variant,omitempty"`
	Size         int64                 `json:"Size"`
	VirtualSize  int64                 `json:"VirtualSize"`
	GraphDriver  GraphDriver           `json:"GraphDriver"`
	RootFS       RootFS                `json:"RootFS"`
	Labels       map[string]string     `json:"Labels"`
	Annotations  map[string]string     `json:"Annotations"`
	ManifestType string                `json:"ManifestType"`
	User         string                `json:"User"`
	History      []imgspecv1.History   `json:"History"`
	NamesHistory []string              `json:"NamesHistory"`
}

// GraphDriver names the layer store of an image.
type GraphDriver struct {
	Name string            `json:"Name"`
	Data map[string]string `json:"Data"`
}

// RootFS lists the image's layers by their uncompressed digests.
type RootFS struct {
	Type   string          `json:"Type"`
	Layers []digest.Digest `json:"Layers"`
}

// OCIConfig reads an image's config (docker or OCI) as OCI.
func OCIConfig(ctx context.Context, s storage.Store, id string) (*imgspecv1.Image, error) {
	ref, err := istorage.Transport.NewStoreReference(s, nil, id)
	if err != nil {
		return nil, err
	}
	img, err := ref.NewImage(ctx, nil)
	if err != nil {
		return nil, err
	}
	defer img.Close()
	return img.OCIConfig(ctx)
}

// InspectImage builds the inspect record of a stored image.
func InspectImage(ctx context.Context, s storage.Store, img *storage.Image) (*Inspect, error) {
	ref, err := istorage.Transport.NewStoreReference(s, nil, img.ID)
	if err != nil {
		return nil, err
	}
	src, err := ref.NewImage(ctx, nil)
	if err != nil {
		return nil, fmt.Errorf("reading image %s: %w", img.ID, err)
	}
	defer src.Close()
	cfg, err := src.OCIConfig(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the config of image %s: %w", img.ID, err)
	}
	rawManifest, mimeType, err := src.Manifest(ctx)
	if err != nil {
		return nil, fmt.Errorf("reading the manifest of image %s: %w", img.ID, err)
	}
	var annotations map[string]string
	if mimeType == imgspecv1.MediaTypeImageManifest {
		if m, err := manifest.OCI1FromManifest(rawManifest); err == nil {
			annotations = m.Annotations
		}
	}
	sums, err := List(ctx, s, false)
	if err != nil {
		return nil, err
	}
	out := &Inspect{ID: img.ID, Digest: img.Digest, RepoTags: []string{}, RepoDigests: []string{},
		Created: cfg.Created, Config: cfg.Config, Author: cfg.Author, Architecture: cfg.Architecture,
		Os: cfg.OS, Variant: cfg.Variant, Labels: cfg.Config.Labels, Annotations: annotations,
		ManifestType: mimeType, User: cfg.Config.User, History: cfg.History, NamesHistory: img.NamesHistory,
		RootFS: RootFS{Type: cfg.RootFS.Type, Layers: cfg.RootFS.DiffIDs}}
	for _, sum := range sums {
		if sum.ID == img.ID {
			out.RepoTags, out.RepoDigests, out.Size, out.VirtualSize = sum.RepoTags, sum.RepoDigests, sum.Size, sum.VirtualSize
		}
	}
	out.GraphDriver.Name = s.GraphDriverName()
	if img.TopLayer != "" {
		if d, err := s.GraphDriver(); err == nil {
			if data, err := d.Metadata(img.TopLayer); err == nil {
				out.GraphDriver.Data = data
			}
		}
	}
	return out, nil
}
