//go:build integration

package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// TestCommitHostileLayer: a container's layer holding what a layer's
// format or the host could misread: an absolute symlink to a host file
// (committed as the link, the host file never read), a setuid file, a
// hard link to an image file, names that look like whiteouts (.wh.NAME,
// .wh..wh..opq) and overlay's own xattrs set by the container (setfattr,
// when the image has it). The committed image is what the container saw,
// or the commit is refused, naming the files.
func TestCommitHostileLayer(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	secret := filepath.Join(e.dir, "secret")
	if err := os.WriteFile(secret, []byte("HOST SECRET\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	e.loadImage("localhost/bb:c", imagefix.Busybox(t))
	look := "ls -la /x; readlink /x/abs; cat /x/suid; stat -c '%a %h' /x/suid /x/hard; ls -a /etc | grep -c passwd; ls -a /x/d"
	e.ok("run", "--network", "none", "--name", "work", "localhost/bb:c", "sh", "-c",
		"mkdir -p /x/d && ln -s "+secret+" /x/abs && echo s > /x/suid && chmod 4755 /x/suid && ln /etc/passwd /x/hard && "+
			"touch /x/.wh.abs /x/d/.wh..wh..opq /etc/.wh.passwd /x/d/kept && "+
			"(setfattr -n user.overlay.opaque -v y /x/d 2>/dev/null || true) && "+look)
	// Names the layer format reads as whiteouts: refused, naming them
	// (the image would lose them and what they name: podman commits it so).
	msg := e.fails(125, "commit", "work", "committed")
	for _, n := range []string{"/etc/.wh.passwd", "/x/.wh.abs", "/x/d/.wh..wh..opq", "docs/troubleshooting.md#commit-whiteout-name"} {
		if !strings.Contains(msg, n) {
			t.Errorf("commit refused without naming %s: %s", n, msg)
		}
	}
	if strings.Contains(e.ok("images"), "committed") {
		t.Errorf("a refused commit made an image")
	}
	// Without them, the rest commits as the container saw it: the link as
	// a link (the host file never read), setuid, the hard link.
	e.ok("rm", "work")
	saw := e.ok("run", "--network", "none", "--name", "work2", "localhost/bb:c", "sh", "-c",
		"mkdir -p /x/d && ln -s "+secret+" /x/abs && echo s > /x/suid && chmod 4755 /x/suid && ln /etc/passwd /x/hard && "+
			"touch /x/d/kept /x/wh.abs && (setfattr -n user.overlay.opaque -v y /x/d 2>/dev/null || true) && "+look)
	e.ok("commit", "work2", "committed")
	got := e.ok("run", "--network", "none", "--rm", "committed", "sh", "-c", look)
	if got != saw {
		t.Errorf("the committed image is not what the container saw:\ncontainer:\n%s\ncommitted image:\n%s", saw, got)
	}
	if strings.Contains(got, "HOST SECRET") {
		t.Errorf("the host file was read into the image")
	}
}
