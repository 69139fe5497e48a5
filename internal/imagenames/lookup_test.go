//go:build containers_image_openpgp

package imagenames

import (
	"errors"
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	storagetypes "go.podman.io/storage/types"

	"github.com/sandy-rt/sandy/internal/imagestore"
)

func TestNormalizeName(t *testing.T) {
	for in, want := range map[string]string{
		"bb":                   "localhost/bb:latest",
		"bb:2":                 "localhost/bb:2",
		"quay.io/x/y":          "quay.io/x/y:latest",
		"localhost:5000/a/b:c": "localhost:5000/a/b:c",
		"localhost/x":          "localhost/x:latest",
		"docker.io/library/a":  "docker.io/library/a:latest",
		"Upper":                "",
		"a@sha256:0123456789012345678901234567890123456789012345678901234567890123": "",
	} {
		got, err := NormalizeName(in)
		if want == "" {
			if err == nil {
				t.Errorf("NormalizeName(%q) = %q, want an error", in, got)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("NormalizeName(%q) = %q, %v; want %q", in, got, err, want)
		}
	}
}

func TestLookupCandidates(t *testing.T) {
	conf := filepath.Join(t.TempDir(), "registries.conf")
	if err := os.WriteFile(conf, []byte(`unqualified-search-registries = ["quay.io", "registry.example:5000"]`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	sys := &types.SystemContext{SystemRegistriesConfPath: conf, SystemRegistriesConfDirPath: t.TempDir()}
	got := lookupCandidates(sys, "alpine")
	want := []string{"docker.io/library/alpine:latest", "localhost/alpine:latest", "quay.io/alpine:latest", "registry.example:5000/alpine:latest"}
	if !slices.Equal(got, want) {
		t.Errorf("short name: got %q, want %q", got, want)
	}
	got = lookupCandidates(sys, "quay.io/x/y:1")
	if !slices.Equal(got, []string{"quay.io/x/y:1"}) {
		t.Errorf("qualified name: got %q", got)
	}
	got = lookupCandidates(sys, "x/y")
	if !slices.Contains(got, "docker.io/x/y:latest") || !slices.Contains(got, "localhost/x/y:latest") || !slices.Contains(got, "quay.io/x/y:latest") {
		t.Errorf("two-part short name: got %q", got)
	}
}

// TestExactNamesAgrees: what imagestore.ExactNames (sandy-create's
// lookup) finds, for every name it finds at all, is what the full lookup
// finds, with the same matched name; every other name is ErrNeedsNames,
// never a wrong image or a not-found.
func TestExactNamesAgrees(t *testing.T) {
	dir := t.TempDir()
	s, err := storage.GetStore(storagetypes.StoreOptions{GraphRoot: filepath.Join(dir, "g"), RunRoot: filepath.Join(dir, "r"), GraphDriverName: "vfs"})
	if err != nil {
		t.Fatal(err)
	}
	defer func() { _, _ = s.Shutdown(true) }()
	for _, names := range [][]string{
		{"localhost/bb:1", "quay.io/x/y:2"},
		{"docker.io/library/alpine:latest"},
		{"localhost/alpine:latest"},
	} {
		if _, err := s.CreateImage("", names, "", "", nil); err != nil {
			t.Fatal(err)
		}
	}
	conf := filepath.Join(dir, "registries.conf")
	if err := os.WriteFile(conf, []byte(`unqualified-search-registries = ["quay.io"]`+"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	full := Registries{Sys: &types.SystemContext{SystemRegistriesConfPath: conf, SystemRegistriesConfDirPath: t.TempDir()}}
	for _, c := range []struct {
		name  string
		exact bool
	}{
		{"localhost/bb:1", true},
		{"quay.io/x/y:2", true},
		{"docker.io/library/alpine:latest", true},
		{"localhost/alpine:latest", true},
		{"alpine", false},
		{"alpine:latest", false},
		{"bb:1", false},
		{"x/y:2", false},
		{"docker.io/alpine:latest", false},
		{"docker.io/library/alpine", false},
		{"localhost/bb", false},
		{"localhost/none:1", false},
	} {
		img, matched, err := imagestore.ExactNames{}.Find(s, c.name)
		if !c.exact {
			if !errors.Is(err, imagestore.ErrNeedsNames) {
				t.Errorf("ExactNames.Find(%q) = %v, %q, %v; want ErrNeedsNames", c.name, img, matched, err)
			}
			continue
		}
		if err != nil {
			t.Errorf("ExactNames.Find(%q): %v", c.name, err)
			continue
		}
		fimg, fmatched, err := full.Find(s, c.name)
		if err != nil || fimg.ID != img.ID || fmatched != matched {
			t.Errorf("%q: ExactNames found %s as %q, the full lookup %v as %q (%v)", c.name, img.ID, matched, fimg, fmatched, err)
		}
	}
	if _, err := (imagestore.ExactNames{}).Normalize("bb"); !errors.Is(err, imagestore.ErrNeedsNames) {
		t.Errorf("ExactNames.Normalize: %v, want ErrNeedsNames", err)
	}
}
