package main

import (
	"os/exec"
	"strings"
	"testing"
)

const tags = "containers_image_openpgp,exclude_graphdriver_btrfs"

// TestCreateDeps: sandy-create is the helper `sandy run IMAGE` waits for
// ("waiting for the bundle"), and every package linked into it runs its
// init at each start. It may link go.podman.io/storage and what the store
// itself links (the price of opening it), sandy's own packages, and the
// few packages below whose inits do no work; nothing else. In particular
// none of go.podman.io/image/v5: its reference parser compiles its
// regexps at package init (0.4–0.6 ms, 263 KB), and its types bring
// crypto/tls (docs/design.md, "The run-path helper's dependencies").
// What needs more is handed to sandy-store (imagestore.ErrNeedsNames,
// imagestore.ErrNeedsImageLibrary).
func TestCreateDeps(t *testing.T) {
	deps := func(pkg string) []string {
		t.Helper()
		out, err := exec.Command("go", "list", "-tags", tags, "-deps", pkg).CombinedOutput()
		if err != nil {
			t.Fatalf("go list -deps %s: %v\n%s", pkg, err, out)
		}
		return strings.Fields(string(out))
	}
	store := map[string]bool{}
	for _, p := range deps("go.podman.io/storage") {
		store[p] = true
	}
	if len(store) < 100 || !store["github.com/BurntSushi/toml"] {
		t.Fatalf("go list -deps go.podman.io/storage listed %d packages, not the store's", len(store))
	}
	// Outside the store's own closure, with (next to) no init work
	// (GODEBUG=inittrace=1 sandy-create --help): the flags, the id
	// mapping helpers, the image config types (two string tables), and
	// sandy's JSON codec (internal/specjson: go-json-experiment/json, three
	// package inits, 0.006 ms and 632 bytes in all), and the spare
	// helper's key (hash/fnv: no package init).
	allowed := map[string]bool{
		"encoding/csv": true, "github.com/spf13/pflag": true, "github.com/moby/sys/userns": true, "hash/fnv": true,
		"github.com/opencontainers/image-spec/specs-go": true, "github.com/opencontainers/image-spec/specs-go/v1": true,
	}
	for _, p := range deps("github.com/go-json-experiment/json/v1") {
		if strings.HasPrefix(p, "github.com/go-json-experiment/json") {
			allowed[p] = true
		}
	}
	pkgs := deps(".")
	if len(pkgs) < 100 {
		t.Fatalf("go list -deps listed %d packages, not sandy-create's", len(pkgs))
	}
	for _, pkg := range pkgs {
		if store[pkg] || allowed[pkg] || strings.HasPrefix(pkg, "github.com/sandy-rt/sandy/") {
			if strings.HasPrefix(pkg, "go.podman.io/image/") || pkg == "crypto/tls" || pkg == "github.com/sandy-rt/sandy/internal/imagenames" {
				t.Errorf("sandy-create links %s (through the store's own dependencies?): it must not", pkg)
			}
			continue
		}
		t.Errorf("sandy-create links %s, which neither the image store nor the list here needs: every start of the helper `sandy run IMAGE` waits for pays its package init; find the importer with `go list -tags %s -deps -f '{{.ImportPath}}: {{.Imports}}' ./internal/cmd/sandy-create` and cut it, or hand the work to sandy-store", pkg, tags)
	}
}
