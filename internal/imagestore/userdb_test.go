//go:build containers_image_openpgp

package imagestore

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"go.podman.io/storage"
	"go.podman.io/storage/pkg/idtools"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/overlay"
)

// optionStore is a store whose only answer is its graph options.
type optionStore struct {
	storage.Store
	opts []string
}

func (s optionStore) GraphOptions() []string { return s.opts }

// storeLayers makes a store's overlay directory under root with the
// container layer "ctr" and the image layers ids (top first), each a
// diff, and returns their Layers.
func storeLayers(t *testing.T, root string, ids ...string) overlay.Layers {
	t.Helper()
	home := filepath.Join(root, "overlay")
	l := overlay.Layers{Driver: overlay.DriverOverlay, Upper: filepath.Join(home, "ctr", "diff"), Work: filepath.Join(home, "ctr", "work")}
	for _, id := range append([]string{"ctr"}, ids...) {
		d := filepath.Join(home, id, "diff")
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
		if id != "ctr" {
			l.Lowers = append(l.Lowers, d)
		}
	}
	return l
}

// TestLayersReadable: the layouts whose user database is read without a
// mount, and why each other one is mounted.
func TestLayersReadable(t *testing.T) {
	root := t.TempDir()
	plain := storeLayers(t, root, "top", "base")
	other := storeLayers(t, filepath.Join(root, "other"), "elsewhere")
	if err := os.MkdirAll(filepath.Join(root, "overlay", "cfs", "composefs-data"), 0o755); err != nil {
		t.Fatal(err)
	}
	withLowers := func(lowers ...string) overlay.Layers {
		l := plain
		l.Lowers = lowers
		return l
	}
	s := optionStore{opts: []string{"overlay.mountopt=nodev"}}
	for _, tc := range []struct {
		name string
		s    storage.Store
		c    storage.Container
		l    overlay.Layers
		why  string // "" for readable
	}{
		{"plain", s, storage.Container{}, plain, ""},
		{"vfs", s, storage.Container{}, overlay.Layers{Driver: overlay.DriverVFS, Upper: root}, ""},
		{"mapped", s, storage.Container{UIDMap: []idtools.IDMap{{ContainerID: 0, HostID: 1, Size: 10}}}, plain, "ids are mapped"},
		{"mapped vfs", s, storage.Container{GIDMap: []idtools.IDMap{{ContainerID: 0, HostID: 1, Size: 10}}}, overlay.Layers{Driver: overlay.DriverVFS, Upper: root}, "ids are mapped"},
		{"composefs store", optionStore{opts: []string{"overlay.use_composefs=true"}}, storage.Container{}, plain, "composefs"},
		{"composefs off", optionStore{opts: []string{"use_composefs=false"}}, storage.Container{}, plain, ""},
		{"composefs layer", s, storage.Container{}, withLowers(filepath.Join(root, "overlay", "cfs", "diff")), "composefs image"},
		{"id-mapped copy", s, storage.Container{}, withLowers(plain.Lowers[0]+"1", plain.Lowers[0]), "id-mapped copy"},
		{"another store", s, storage.Container{}, withLowers(plain.Lowers[0], other.Lowers[0]), "not in the store"},
	} {
		if got := layersReadable(tc.s, &tc.c, tc.l); (tc.why == "") != (got == "") || !strings.Contains(got, tc.why) {
			t.Errorf("%s: %q, want %q", tc.name, got, tc.why)
		}
	}
}

// TestUserDBFromLayers: the user database read from the layer
// directories, the container's root given to its root user as the
// driver's mount does, and a layer the walk cannot answer for left to
// the mount, with the reason.
func TestUserDBFromLayers(t *testing.T) {
	root := t.TempDir()
	l := storeLayers(t, root, "top", "base")
	write := func(dir, name, text string) {
		t.Helper()
		p := filepath.Join(dir, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(text), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write(l.Lowers[1], "etc/passwd", "root:x:0:0::/root:/bin/sh\n")
	write(l.Lowers[0], "etc/group", "root:x:0:\n")
	if os.Geteuid() == 0 {
		if err := os.Lchown(l.Upper, 1000, 1000); err != nil {
			t.Fatal(err)
		}
	}
	merged := filepath.Join(root, "overlay", "ctr", "merged")
	p := &imagehelper.Prepared{Layers: l}
	if done, why, err := userDBFromLayers(p, merged); err != nil || done || !strings.Contains(why, "mount point") {
		t.Errorf("no merged directory: done %v, why %q, err %v; want the mount", done, why, err)
	}
	if err := os.Mkdir(merged, 0o700); err != nil {
		t.Fatal(err)
	}
	done, why, err := userDBFromLayers(p, merged)
	if err != nil || !done {
		t.Fatalf("done %v, why %q, err %v", done, why, err)
	}
	if p.Passwd != "root:x:0:0::/root:/bin/sh\n" || p.Group != "root:x:0:\n" || p.Rootfs != merged {
		t.Errorf("got %+v", p)
	}
	var st unix.Stat_t
	if err := unix.Lstat(l.Upper, &st); err != nil || st.Uid != 0 || st.Gid != 0 {
		t.Errorf("the container's root: %d:%d, %v; want 0:0 as the driver's mount leaves it", st.Uid, st.Gid, err)
	}

	if err := os.Symlink("usr", filepath.Join(l.Lowers[0], "etc2")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(l.Lowers[0], "etc"), filepath.Join(l.Lowers[0], "usr")); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(filepath.Join(l.Lowers[0], "etc2"), filepath.Join(l.Lowers[0], "etc")); err != nil {
		t.Fatal(err)
	}
	p = &imagehelper.Prepared{Layers: l}
	done, why, err = userDBFromLayers(p, merged)
	if err != nil || done || !strings.Contains(why, "symbolic link") || p.Rootfs != "" {
		t.Errorf("a symlinked /etc: done %v, why %q, err %v, rootfs %q; want the mount", done, why, err, p.Rootfs)
	}
}

// TestUserDBFromLayersVFS: a vfs container's directory is its whole root,
// read in-root (an absolute symlink resolves inside it), and a FIFO for
// /etc/passwd is refused there: the store's mount would return the same
// directory.
func TestUserDBFromLayersVFS(t *testing.T) {
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "etc", "passwd.real"), []byte("root:x:0:0::/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd.real", filepath.Join(dir, "etc", "passwd")); err != nil {
		t.Fatal(err)
	}
	p := &imagehelper.Prepared{Layers: overlay.Layers{Driver: overlay.DriverVFS, Upper: dir}}
	if done, why, err := userDBFromLayers(p, dir); err != nil || !done || p.Passwd != "root:x:0:0::/:/bin/sh\n" || p.Group != "" || p.Rootfs != dir {
		t.Fatalf("done %v, why %q, err %v, %+v", done, why, err, p)
	}
	if err := unix.Mkfifo(filepath.Join(dir, "etc", "group"), 0o644); err != nil {
		t.Fatal(err)
	}
	p = &imagehelper.Prepared{Layers: overlay.Layers{Driver: overlay.DriverVFS, Upper: dir}}
	if _, _, err := userDBFromLayers(p, dir); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("a FIFO for /etc/group: %v, want it refused", err)
	}
}
