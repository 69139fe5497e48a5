//go:build containers_image_openpgp

package imagenames

import (
	"os"
	"path/filepath"
	"slices"
	"testing"

	"go.podman.io/image/v5/types"
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
