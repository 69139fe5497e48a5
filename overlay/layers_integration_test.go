//go:build integration && linux

package overlay

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestMountLayers mounts a storage container's layers as an image
// container's root: each lower shows through (the top one wins), the
// container's writes and deletions land in its own layer, the image's
// layers are never changed, and Mount leaves no fd behind. 20 layers do
// not fit one fsconfig string, so that case takes the lowerdir+ path.
func TestMountLayers(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	fuse, _ := exec.LookPath("fuse-overlayfs")
	for _, tc := range []struct {
		name    string
		layers  int
		driver  string
		program string
	}{
		{"kernel-3", 3, DriverOverlay, ""},
		{"kernel-20", 20, DriverOverlay, ""},
		{"fuse-3", 3, DriverOverlay, fuse},
		{"vfs", 0, DriverVFS, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.program != "" {
				requireFuse(t)
			}
			dir := t.TempDir()
			t.Cleanup(func() { openUp(dir) }) // overlay's work/work is mode 0
			l := &Layers{Driver: tc.driver, Upper: filepath.Join(dir, "c", "diff"), Program: tc.program}
			must(t, os.MkdirAll(l.Upper, 0o755))
			for i := tc.layers - 1; i >= 0; i-- { // top first
				lower := filepath.Join(dir, fmt.Sprintf("l%d", i), "diff")
				must(t, os.MkdirAll(lower, 0o755))
				must(t, os.WriteFile(filepath.Join(lower, fmt.Sprintf("f%d", i)), []byte("x\n"), 0o644))
				must(t, os.WriteFile(filepath.Join(lower, "common"), []byte(fmt.Sprintf("layer %d\n", i)), 0o644))
				l.Lowers = append(l.Lowers, lower)
			}
			if tc.driver == DriverOverlay {
				l.Work = filepath.Join(dir, "c", "work")
				must(t, os.MkdirAll(l.Work, 0o700))
			} else {
				must(t, os.WriteFile(filepath.Join(l.Upper, "common"), []byte("vfs\n"), 0o644))
				must(t, os.WriteFile(filepath.Join(l.Upper, "f0"), []byte("x\n"), 0o644))
			}
			layer := filepath.Join(dir, "layer")
			must(t, os.Mkdir(layer, 0o700))
			resp := runHelper(t, nsFull, helperReq{
				Opts:  Options{LayerDir: layer, Layers: l},
				Shell: "cat common; echo new > new; rm f0; ls f0 2>/dev/null; echo done",
			})
			if resp.Err != "" {
				t.Fatalf("Mount: %s", resp.Err)
			}
			want := fmt.Sprintf("layer %d\ndone\n", tc.layers-1)
			if tc.driver == DriverVFS {
				want = "vfs\ndone\n"
			}
			if resp.Shell != want {
				t.Errorf("in the root: %q, want %q", resp.Shell, want)
			}
			wantMode := ModeDirect
			if tc.program != "" {
				wantMode = ModeFuse
			}
			if resp.Root.Mode != wantMode || resp.Root.Upper != l.Upper {
				t.Errorf("Root = %+v, want mode %s and upper %s", resp.Root, wantMode, l.Upper)
			}
			if resp.FDs != 0 || resp.Goroutines != 0 {
				t.Errorf("Mount left %d fds and %d goroutines", resp.FDs, resp.Goroutines)
			}
			if b, err := os.ReadFile(filepath.Join(l.Upper, "new")); err != nil || string(b) != "new\n" {
				t.Errorf("the write did not land in the container's layer: %q, %v", b, err)
			}
			if tc.driver == DriverOverlay {
				if _, err := os.Lstat(filepath.Join(l.Upper, "f0")); err != nil {
					t.Errorf("no whiteout for the deleted f0 in the container's layer: %v", err)
				}
				l0 := l.Lowers[len(l.Lowers)-1]
				if _, err := os.Stat(filepath.Join(l0, "f0")); err != nil {
					t.Errorf("the image's layer changed: %v", err)
				}
				entries, _ := os.ReadDir(l0)
				if len(entries) != 2 {
					t.Errorf("the image's bottom layer holds %d entries, want 2", len(entries))
				}
			}
		})
	}
}

// TestMountLayersRefusesBadInput: a driver sandy cannot mount and a lower
// that does not exist are errors that name them, before anything is mounted.
func TestMountLayersRefusesBadInput(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	dir := t.TempDir()
	layer := filepath.Join(dir, "layer")
	must(t, os.Mkdir(layer, 0o700))
	for _, tc := range []struct {
		l    Layers
		want string
	}{
		{Layers{Driver: "btrfs", Upper: dir}, `driver "btrfs"`},
		{Layers{Driver: DriverOverlay, Lowers: []string{filepath.Join(dir, "missing")}, Upper: dir, Work: dir}, "opening storage layer"},
	} {
		l := tc.l
		resp := runHelper(t, nsFull, helperReq{Opts: Options{LayerDir: layer, Layers: &l}})
		if !strings.Contains(resp.Err, tc.want) {
			t.Errorf("Mount(%+v) error %q, want it to contain %q", tc.l, resp.Err, tc.want)
		}
	}
}
