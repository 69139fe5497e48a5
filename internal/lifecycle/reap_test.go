package lifecycle

import (
	"encoding/json"
	"io"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/state"
)

// TestCollectRetired: a retired state directory is left alone while its
// lock is held (its reaper at work), waited for up to the settle time,
// and finished once nobody holds it: its layer and network files, recorded
// under the old path, are found under the new one and removed with it;
// the new container of the same id is not touched.
func TestCollectRetired(t *testing.T) {
	root, err := state.OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	g := &Global{Stderr: io.Discard}
	old := root.Path("c1")
	net, _ := json.Marshal(networkState{Mode: "slirp4netns", StateDir: old})
	lock, err := root.Create(&state.Container{ID: "c1", LayerDir: filepath.Join(old, "layer"), RootfsMode: "overlay", Network: net})
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{"layer/upper/etc", "layer/work/work"} {
		if err := os.MkdirAll(filepath.Join(old, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.Chmod(filepath.Join(old, "layer/work/work"), 0); err != nil { // as overlayfs leaves it
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(old, "slirp.json"), nil, 0o600); err != nil {
		t.Fatal(err)
	}
	dir, err := root.Retire("c1")
	if err != nil {
		t.Fatal(err)
	}
	// The id's new container, made at once.
	newLock, err := root.Create(&state.Container{ID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	newLock.Unlock()
	if err := os.Mkdir(filepath.Join(old, "layer"), 0o700); err != nil {
		t.Fatal(err)
	}

	collectRetired(g, root, 0)
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("collected a retired directory whose lock is held: %v", err)
	}
	t0 := time.Now()
	collectRetired(g, root, 50*time.Millisecond)
	if waited := time.Since(t0); waited < 50*time.Millisecond {
		t.Fatalf("settling returned after %v, before its bound, with the lock held", waited)
	}
	if _, err := os.Stat(dir); err != nil {
		t.Fatalf("collected a retired directory whose lock is held: %v", err)
	}
	lock.Unlock() // the reaper dies
	collectRetired(g, root, 0)
	if _, err := os.Lstat(dir); err == nil {
		ents, _ := os.ReadDir(dir)
		t.Fatalf("retired directory left: %v", ents)
	}
	if _, err := os.Stat(filepath.Join(old, "layer")); err != nil {
		t.Fatalf("the new container's layer was removed: %v", err)
	}
	if c, err := root.Load("c1"); err != nil || c.ID != "c1" {
		t.Fatalf("the new container's state: %v", err)
	}
}
