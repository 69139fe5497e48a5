//go:build integration

package main_test

import (
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// TestRunImageStoreHelper: `sandy run IMAGE` of a stored image is served
// by the storage-only helpers (no image library's copy stack: half the
// start of sandy-image), which read the image's config themselves (Docker
// schema 2 from a docker-archive, OCI from a registry): sandy-create, with
// no image library at all, for a name in the store's form (registry, path,
// tag), sandy-store for any other (a short name, resolved as podman does).
// A missing image is still pulled: sandy-create hands the verb to
// sandy-store, which hands it to sandy-image, and the next run needs
// sandy-create only. --pull=always starts sandy-image at once.
func TestRunImageStoreHelper(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	reg := imagefix.StartRegistry(t, imagefix.RegistryOptions{})
	cfg := imagefix.Busybox(t)
	cfg.Config.Env = append(cfg.Config.Env, "FROM_IMAGE=yes")
	cfg.Config.Cmd = []string{"sh", "-c", "echo $FROM_IMAGE"}
	layout := filepath.Join(e.dir, "layout")
	imagefix.WriteLayout(t, layout, cfg)
	ref := imagefix.PushOCILayout(t, reg, layout, "latest", "bb:store")
	e.loadImage("localhost/bb:loaded", cfg)

	run := func(args ...string) string {
		t.Helper()
		r := e.run_(nil, append([]string{"--debug", "run", "--rm", "--network", "none"}, args...)...)
		if r.code != 0 || r.stdout != "yes\n" {
			t.Fatalf("run %v: exit %d, stdout %q, want the image's Cmd and Env (yes)\n%s", args, r.code, r.stdout, r.stderr)
		}
		return r.stderr
	}
	const create, store = "image helper: sandy-create", "image helper: sandy-store"
	const toStore, toImage = "handing _create-container to sandy-store", "handing _create-container to sandy-image"
	if log := run("localhost/bb:loaded"); !strings.Contains(log, create) || strings.Contains(log, toStore) {
		t.Errorf("a stored image (docker-archive) by its stored name: want sandy-create alone:\n%s", log)
	}
	if log := run("bb:loaded"); !strings.Contains(log, store) || strings.Contains(log, toImage) {
		t.Errorf("a stored image by a short name: want sandy-store alone:\n%s", log)
	}
	if log := run("--tls-verify=false", ref); !strings.Contains(log, create) || !strings.Contains(log, toStore) || !strings.Contains(log, toImage) {
		t.Errorf("a missing image: want sandy-create handing the verb to sandy-store, and it the pull to sandy-image:\n%s", log)
	}
	e.ok("image", "exists", ref)
	if log := run(ref); !strings.Contains(log, create) || strings.Contains(log, toStore) {
		t.Errorf("the pulled image (OCI): want sandy-create alone:\n%s", log)
	}
	if log := run("--pull=always", "--tls-verify=false", ref); !strings.Contains(log, "image helper: sandy-image") {
		t.Errorf("--pull=always: want sandy-image:\n%s", log)
	}
	if got := e.storageContainers(); len(got) != 0 {
		t.Errorf("--rm left storage containers: %v", got)
	}
}
