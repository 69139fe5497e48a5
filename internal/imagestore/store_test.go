//go:build containers_image_openpgp

package imagestore

import (
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

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
