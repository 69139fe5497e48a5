//go:build containers_image_openpgp

package imagestore

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	digest "github.com/opencontainers/go-digest"
	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	"go.podman.io/storage"
)

// bigData is a storage.Store with one image's big data only.
type bigData struct {
	storage.Store
	items map[string][]byte
}

func (b bigData) ImageBigData(id, key string) ([]byte, error) {
	if v, ok := b.items[key]; ok && id == "img" {
		return v, nil
	}
	return nil, fmt.Errorf("no big data %q: %w", key, storage.ErrImageUnknown)
}

// TestOCIConfig: the config of a stored image is read as the image
// library's storage transport reads it, for the OCI and Docker schema 2
// manifests, and everything else (schema 1, a list, an artifact) is left
// to the library, whose reader is then used; a config that does not match
// its digest is an error.
func TestOCIConfig(t *testing.T) {
	const config = `{"architecture":"amd64","os":"linux","config":{"User":"app","Env":["A=1"],"Cmd":["sh"],"WorkingDir":"/w","StopSignal":"SIGINT"},"container_config":{"Cmd":["docker-only"]},"rootfs":{"type":"layers","diff_ids":[]}}`
	cd := digest.FromString(config)
	manifest := func(mediaType, configType string) string {
		return fmt.Sprintf(`{"schemaVersion":2,"mediaType":%q,"config":{"mediaType":%q,"digest":%q,"size":%d},"layers":[]}`, mediaType, configType, cd, len(config))
	}
	library := func(context.Context, storage.Store, string) (*imgspecv1.Image, error) {
		return &imgspecv1.Image{Config: imgspecv1.ImageConfig{User: "from-library"}}, nil
	}
	for _, tc := range []struct {
		name, manifest, config string
		user                   string // "" for an error
		wantErr                string
	}{
		{name: "oci", manifest: manifest(imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageConfig), config: config, user: "app"},
		{name: "oci without media type", manifest: manifest("", imgspecv1.MediaTypeImageConfig), config: config, user: "app"},
		{name: "docker schema 2", manifest: manifest("application/vnd.docker.distribution.manifest.v2+json", mediaTypeDockerConfig), config: config, user: "app"},
		{name: "docker schema 1", manifest: `{"schemaVersion":1,"name":"x","tag":"1","history":[]}`, wantErr: ErrNeedsImageLibrary.Error()},
		{name: "list", manifest: `{"schemaVersion":2,"mediaType":"application/vnd.oci.image.index.v1+json","manifests":[]}`, wantErr: ErrNeedsImageLibrary.Error()},
		{name: "artifact", manifest: manifest(imgspecv1.MediaTypeImageManifest, "application/vnd.example+json"), config: config, wantErr: ErrNeedsImageLibrary.Error()},
		{name: "tampered config", manifest: manifest(imgspecv1.MediaTypeImageManifest, imgspecv1.MediaTypeImageConfig), config: strings.Replace(config, "app", "evil", 1), wantErr: "does not match its digest"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := bigData{items: map[string][]byte{storage.ImageDigestBigDataKey: []byte(tc.manifest)}}
			if tc.config != "" {
				s.items[cd.String()] = []byte(tc.config)
			}
			cfg, err := ociConfig(context.Background(), s, "img", nil)
			if tc.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tc.wantErr) {
					t.Fatalf("got %+v, %v; want an error with %q", cfg, err, tc.wantErr)
				}
				if errors.Is(err, ErrNeedsImageLibrary) {
					if cfg, err := ociConfig(context.Background(), s, "img", library); err != nil || cfg.Config.User != "from-library" {
						t.Fatalf("with the library: %+v, %v", cfg, err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			c := cfg.Config
			if c.User != tc.user || c.WorkingDir != "/w" || c.StopSignal != "SIGINT" || len(c.Env) != 1 || len(c.Cmd) != 1 || c.Cmd[0] != "sh" || cfg.OS != "linux" {
				t.Fatalf("config: %+v", cfg)
			}
		})
	}
}
