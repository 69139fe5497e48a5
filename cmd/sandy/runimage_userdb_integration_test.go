//go:build integration

package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// TestRunImageUserDBFromLayers: sandy-store reads the image's /etc/passwd
// through its layers, without mounting the container's root (--debug
// names the way): users of a lower layer are found under a top layer
// that does not touch the file, a top layer's whiteout of /etc/passwd
// leaves the image without one, and a symlinked /etc is left to the
// store's mount, which resolves it. Each answer is the one the mount
// gives: the same runs under --userns=keep-id, whose id-mapped layers
// are always read through the mount. The same on a fuse-overlayfs store
// (AUFS whiteouts on disk) and a vfs store (the container's directory,
// read in-root: no mount either).
func TestRunImageUserDBFromLayers(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	const (
		layers = "reading /etc/passwd and /etc/group through the image's layers, without a mount"
		mount  = "mounting the root and reading its /etc/passwd and /etc/group ("
		vfs    = "reading /etc/passwd and /etc/group in the vfs container's directory, without a mount"
	)
	t.Run("overlay", func(t *testing.T) {
		e := newImgEnv(t)
		checkUserDB(t, e, nil, layers, mount+"the layers need it: ", "symbolic link")
		checkUserDB(t, e, []string{"--userns=keep-id"}, mount+"the container's ids are mapped", mount+"the container's ids are mapped", "")
		if got := e.storageContainers(); len(got) != 0 {
			t.Errorf("--rm left storage containers: %v", got)
		}
	})
	t.Run("fuse-overlayfs store", func(t *testing.T) {
		fuse := testutil.RequireBinary(t, "fuse-overlayfs", "apt-get install fuse-overlayfs")
		if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
			testutil.Skip(t, "opening /dev/fuse: %v (modprobe fuse; chmod 0666 /dev/fuse)", err)
		} else {
			f.Close()
		}
		e := newImgEnv(t)
		e.write(filepath.Join(e.dir, "storage.conf"), fmt.Sprintf("[storage]\ndriver = \"overlay\"\ngraphroot = %q\nrunroot = %q\n[storage.options.overlay]\nmount_program = %q\n",
			filepath.Join(e.dir, "graph"), filepath.Join(e.dir, "run"), fuse))
		checkUserDB(t, e, nil, layers, mount+"the layers need it: ", "symbolic link")
	})
	t.Run("vfs store", func(t *testing.T) {
		e := newImgEnv(t)
		e.write(filepath.Join(e.dir, "storage.conf"), fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
			filepath.Join(e.dir, "graph"), filepath.Join(e.dir, "run")))
		checkUserDB(t, e, nil, vfs, vfs, "")
	})
}

// checkUserDB loads the test's images into e's store (once) and runs
// them with flags: a user of a lower layer, a whited-out /etc/passwd, a
// symlinked /etc; way and symlinkWay are what --debug must say of the
// user database's read, symlinkWhy the reason for a mount.
func checkUserDB(t *testing.T, e *imgEnv, flags []string, way, symlinkWay, symlinkWhy string) {
	t.Helper()
	if !strings.Contains(e.ok("images"), "userdb") {
		e.loadImage("localhost/userdb:lower", imagefix.Busybox(t).WithLayers(imagefix.Layer{Entries: []imagefix.Entry{
			imagefix.Dir("etc/", 0o755),
			imagefix.File("etc/hosts", 0o644, "127.0.0.1 localhost top\n"),
		}}))
		e.loadImage("localhost/userdb:whiteout", imagefix.Busybox(t).WithLayers(imagefix.Layer{Entries: []imagefix.Entry{
			imagefix.Dir("etc/", 0o755),
			imagefix.Whiteout("etc/passwd"),
		}}))
		e.loadImage("localhost/userdb:symlink", imagefix.Busybox(t).WithLayers(imagefix.Layer{Entries: []imagefix.Entry{
			imagefix.Dir("usr/", 0o755),
			imagefix.Dir("usr/etc/", 0o755),
			imagefix.File("usr/etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\nlinked:x:1234:1234::/:/bin/sh\n"),
			imagefix.File("usr/etc/group", 0o644, "root:x:0:\n"),
			imagefix.Symlink("etc", "usr/etc"),
		}}))
	}
	run := func(args ...string) result {
		t.Helper()
		return e.run_(nil, append(append([]string{"--debug", "run", "--rm", "--network", "none"}, flags...), args...)...)
	}
	r := run("-u", "app", "localhost/userdb:lower", "id", "-u")
	if r.code != 0 || r.stdout != "1000\n" {
		t.Errorf("%v: a user of the lower layer: exit %d, %q\n%s", flags, r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, way) {
		t.Errorf("%v: the lower layer's user: want --debug to say %q:\n%s", flags, way, r.stderr)
	}
	r = run("-u", "app", "localhost/userdb:whiteout", "id", "-u")
	if r.code != 125 || !strings.Contains(r.stderr, "unable to find user app") {
		t.Errorf("%v: a whited-out /etc/passwd: exit %d, want 125 and no user app\n%s", flags, r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, way) {
		t.Errorf("%v: the whited-out /etc/passwd: want --debug to say %q:\n%s", flags, way, r.stderr)
	}
	r = run("-u", "linked", "localhost/userdb:symlink", "id", "-u")
	if r.code != 0 || r.stdout != "1234\n" {
		t.Errorf("%v: a user of the symlinked /etc: exit %d, %q\n%s", flags, r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, symlinkWay) || !strings.Contains(r.stderr, symlinkWhy) {
		t.Errorf("%v: the symlinked /etc: want --debug to say %q (%q):\n%s", flags, symlinkWay, symlinkWhy, r.stderr)
	}
}
