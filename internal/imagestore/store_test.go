//go:build containers_image_openpgp

package imagestore

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
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

func TestPriorDriver(t *testing.T) {
	root := t.TempDir()
	if d, err := priorDriver(root); d != "" || err != nil {
		t.Fatalf("new store: %q %v", d, err)
	}
	if err := os.Mkdir(filepath.Join(root, "vfs-layers"), 0o700); err != nil {
		t.Fatal(err)
	}
	if d, err := priorDriver(root); d != "vfs" || err != nil {
		t.Fatalf("vfs store: %q %v", d, err)
	}
	if err := os.Mkdir(filepath.Join(root, "overlay-layers"), 0o700); err != nil {
		t.Fatal(err)
	}
	if _, err := priorDriver(root); err == nil || !strings.Contains(err.Error(), "--storage-driver") {
		t.Fatalf("two drivers: want an error with the fix, got %v", err)
	}
}

func TestStoreConfigHonoursConfFile(t *testing.T) {
	dir := t.TempDir()
	conf := filepath.Join(dir, "storage.conf")
	body := fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n", filepath.Join(dir, "g"), filepath.Join(dir, "r"))
	if err := os.WriteFile(conf, []byte(body), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONTAINERS_STORAGE_CONF", conf)
	so, err := storeConfig(StoreOptions{})
	if err != nil {
		t.Fatal(err)
	}
	if so.GraphDriverName != "vfs" || so.GraphRoot != filepath.Join(dir, "g") || so.RunRoot != filepath.Join(dir, "r") {
		t.Fatalf("storage.conf not honoured: %+v", so)
	}
	so, err = storeConfig(StoreOptions{Root: "/x/g", RunRoot: "/x/r", Driver: "overlay", DriverOpts: []string{"overlay.mountopt=nodev"}})
	if err != nil {
		t.Fatal(err)
	}
	if so.GraphDriverName != "overlay" || so.GraphRoot != "/x/g" || so.RunRoot != "/x/r" || !slices.Contains(so.GraphDriverOptions, "overlay.mountopt=nodev") {
		t.Fatalf("flags do not override storage.conf: %+v", so)
	}
}

func TestSingleID(t *testing.T) {
	if got := singleID([]string{"a"}, "vfs", false); !slices.Equal(got, []string{"a"}) {
		t.Errorf("off: %q", got)
	}
	if got := singleID(nil, "vfs", true); !slices.Equal(got, []string{"vfs.ignore_chown_errors=true"}) {
		t.Errorf("on: %q", got)
	}
}
