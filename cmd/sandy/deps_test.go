package main

import (
	"os/exec"
	"strings"
	"testing"
)

// TestRuntimeDeps: sandy is the runtime path (create, start, run, exec,
// and the container's init, which is this binary): none of the packages
// whose init does real work, or that belong to the image helper, may be
// linked into it. go-digest (through image-spec) compiles regexps at init
// (about 1 ms per process); the image libraries cost 18 ms (docs/images.md).
func TestRuntimeDeps(t *testing.T) {
	out, err := exec.Command("go", "list", "-deps", ".").CombinedOutput()
	if err != nil {
		t.Fatalf("go list -deps: %v\n%s", err, out)
	}
	forbidden := []string{"go.podman.io/", "github.com/opencontainers/go-digest", "github.com/opencontainers/image-spec",
		"github.com/docker/go-units", "github.com/sirupsen/logrus", "github.com/sandy-rt/sandy/internal/images"}
	for _, pkg := range strings.Fields(string(out)) {
		for _, f := range forbidden {
			if strings.HasPrefix(pkg, f) {
				t.Errorf("sandy links %s: keep it in sandy-image, or declare what is needed (see internal/imagehelper.ImageConfig)", pkg)
			}
		}
	}
}
