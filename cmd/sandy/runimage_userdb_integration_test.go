//go:build integration

package main_test

import (
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
// are always read through the mount.
func TestRunImageUserDBFromLayers(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
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
	const (
		layers = "reading /etc/passwd and /etc/group through the image's layers, without a mount"
		mount  = "mounting the root and reading its /etc/passwd and /etc/group ("
	)
	for _, keepID := range []bool{false, true} {
		flags := []string{"--debug", "run", "--rm", "--network", "none"}
		way, name := layers, "layers"
		if keepID {
			flags = append(flags, "--userns=keep-id")
			way, name = mount+"the container's ids are mapped", "keep-id: the mount"
		}
		run := func(args ...string) result {
			t.Helper()
			return e.run_(nil, append(append([]string(nil), flags...), args...)...)
		}
		t.Run(name, func(t *testing.T) {
			r := run("-u", "app", "localhost/userdb:lower", "id", "-u")
			if r.code != 0 || r.stdout != "1000\n" {
				t.Errorf("a user of the lower layer: exit %d, %q\n%s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, way) {
				t.Errorf("the lower layer's user: want --debug to say %q:\n%s", way, r.stderr)
			}
			r = run("-u", "app", "localhost/userdb:whiteout", "id", "-u")
			if r.code != 125 || !strings.Contains(r.stderr, "unable to find user app") {
				t.Errorf("a whited-out /etc/passwd: exit %d, want 125 and no user app\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, way) {
				t.Errorf("the whited-out /etc/passwd: want --debug to say %q:\n%s", way, r.stderr)
			}
			r = run("-u", "linked", "localhost/userdb:symlink", "id", "-u")
			if r.code != 0 || r.stdout != "1234\n" {
				t.Errorf("a user of the symlinked /etc: exit %d, %q\n%s", r.code, r.stdout, r.stderr)
			}
			if want := mount; !strings.Contains(r.stderr, want) || strings.Contains(r.stderr, layers) {
				t.Errorf("the symlinked /etc: want --debug to say %q:\n%s", want, r.stderr)
			}
			if !keepID && !strings.Contains(r.stderr, "symbolic link") {
				t.Errorf("the symlinked /etc: want the reason for the mount in --debug:\n%s", r.stderr)
			}
		})
	}
	if got := e.storageContainers(); len(got) != 0 {
		t.Errorf("--rm left storage containers: %v", got)
	}
}
