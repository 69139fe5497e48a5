package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestStoreDeps: sandy-store is the storage-only helper that `sandy run
// IMAGE` starts on its critical path; it exists because the image
// library's copy stack (registries, signatures, ocicrypt and the gRPC and
// protobuf its key provider brings) doubles a helper's start (290 package
// inits and a 25 MB exec against 133 and 8 MB: docs/images.md "Two
// programs, one install"). None of it may be linked into it: what needs
// it is handed to sandy-image (imagestore.ErrNeedsImageLibrary).
func TestStoreDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-tags", "containers_image_openpgp,exclude_graphdriver_btrfs", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	// Package path prefixes.
	pullOnly := []string{
		"go.podman.io/image/v5/copy", "go.podman.io/image/v5/docker/", "go.podman.io/image/v5/signature",
		"go.podman.io/image/v5/transports", "go.podman.io/image/v5/storage", "go.podman.io/image/v5/image",
		"go.podman.io/image/v5/oci", "github.com/containers/ocicrypt", "github.com/sigstore/",
		"google.golang.org/grpc", "google.golang.org/protobuf", "go.opentelemetry.io/",
	}
	exact := map[string]bool{"go.podman.io/image/v5/docker": true, "net/http": true, "github.com/sandy-rt/sandy/internal/images": true}
	pkgs := strings.Fields(string(out))
	if len(pkgs) < 100 {
		t.Fatalf("go list -deps listed %d packages, not sandy-store's: %s", len(pkgs), out)
	}
	for _, pkg := range pkgs {
		bad := exact[pkg]
		for _, p := range pullOnly {
			bad = bad || strings.HasPrefix(pkg, p)
		}
		// The reference parser is the one package of docker/ it needs.
		if bad && pkg != "go.podman.io/image/v5/docker/reference" {
			t.Errorf("sandy-store links %s: keep the image library's copy stack in sandy-image (hand the verb over with imagestore.ErrNeedsImageLibrary); find the importer with `go list -tags containers_image_openpgp,exclude_graphdriver_btrfs -deps -f '{{.ImportPath}}: {{.Imports}}' ./internal/cmd/sandy-store`", pkg)
		}
	}
}
