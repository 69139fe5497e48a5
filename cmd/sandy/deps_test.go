package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRuntimeDeps: sandy is the runtime path (create, start, run, exec,
// and the container's init, which is this binary): none of the packages
// whose init does real work, or that belong to the image helper, may be
// linked into it. Every process start of sandy pays for the package inits
// of everything linked (GODEBUG=inittrace=1 lists them), and the init and
// exec paths start sandy twice (docs/design.md, Performance).
func TestRuntimeDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	// Module path prefixes: go-digest (through image-spec) compiles
	// regexps at init (about 1 ms per process); the image libraries cost
	// 18 ms (docs/images.md).
	imageOnly := []string{"go.podman.io/", "github.com/opencontainers/go-digest", "github.com/opencontainers/image-spec",
		"github.com/docker/go-units", "github.com/sirupsen/logrus", "github.com/sandy-rt/sandy/internal/images"}
	// Standard packages, matched exactly: net/http and what it brings
	// (crypto/tls, crypto/x509, their hpke, asn1 and fips140 tables, http2's
	// hpack, compress/flate) cost about 3 ms and 40 KB of init work per
	// process start. rootlesskit's pkg/port brought them in (its
	// VirtualNetworkProvider names *http.ServeMux); slirp speaks the port
	// protocol itself (slirp/portdriver.go). crypto/rand links the FIPS
	// 140 module (DRBG, AES-GCM, SHA-2, SHA-3, HMAC) and its inits (14
	// packages), and so does crypto/sha256; the random names sandy makes
	// need to be unique, not secret (lifecycle.NewID), and the name
	// index's file names are a non-cryptographic hash (hash/fnv).
	heavy := map[string]bool{"net/http": true, "crypto/tls": true, "crypto/x509": true, "compress/flate": true,
		"github.com/rootless-containers/rootlesskit/v3/pkg/port": true, "crypto/rand": true,
		"crypto/internal/fips140": true}
	for _, pkg := range strings.Fields(string(out)) {
		// gVisor's stack is sandy-net's: linked into sandy it cost every
		// process 0.25 ms of inits and 2.2 MB (docs/design.md, "A network
		// without slirp4netns").
		if strings.HasPrefix(pkg, "gvisor.dev/") || pkg == "github.com/sandy-rt/sandy/internal/usernet" {
			t.Errorf("sandy links %s: the user-mode network stack belongs to sandy-net (internal/cmd/sandy-net)", pkg)
		}
		for _, f := range imageOnly {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("sandy links %s: keep it in sandy-image, or declare what is needed (see internal/imagehelper.ImageConfig)", pkg)
			}
		}
		if heavy[pkg] {
			t.Errorf("sandy links %s, whose package inits every sandy process (the init's and exec's too) would pay: find the importer with `go list -deps -f '{{.ImportPath}}: {{.Imports}}' ./cmd/sandy` and cut it", pkg)
		}
	}
}
