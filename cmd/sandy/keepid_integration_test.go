//go:build integration

package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// highUID owns a file of the keep-id test image: an id above the caller's,
// in the third range of podman's keep-id map.
const highUID = 5000

// storeLayers lists the ids of the store's layers (the overlay driver's
// layers.json).
func (e *imgEnv) storeLayers() []string {
	e.t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "graph", "overlay-layers", "layers.json"))
	if err != nil {
		e.t.Fatal(err)
	}
	var ls []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal(b, &ls); err != nil {
		e.t.Fatal(err)
	}
	ids := make([]string, len(ls))
	for i, l := range ls {
		ids[i] = l.ID
	}
	return ids
}

// TestRunImageKeepID is issue 13's CI job: `sandy run --rm
// --userns=keep-id -v "$PWD":/src -w /src IMAGE sh -c BUILD` builds in the
// host's workspace as the caller's own uid, so everything it writes there
// belongs to the user on the host; the exit status is the build's; the
// image's files keep their owners inside (root's are root's, app's are
// app's, an id above the caller's is itself), which needs storage's
// id-mapped copy of the image's top layer (what podman makes for keep-id);
// a kept container is removed by `container rm`; and the store keeps
// nothing more than podman keeps (that copy, with the image, until rmi).
func TestRunImageKeepID(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	img := imagefix.BusyboxWithChanges(t).WithLayers(imagefix.Layer{Entries: []imagefix.Entry{
		imagefix.Dir("opt/", 0o755),
		imagefix.File("opt/high", 0o644, "high\n").Owner(highUID, highUID),
		imagefix.File("opt/rootfile", 0o644, "root\n"),
	}})
	e.loadImage("localhost/bb:keepid", img)
	uid, gid := os.Getuid(), os.Getgid()
	containers, layers := len(e.storageContainers()), len(e.storeLayers())

	ws := filepath.Join(e.dir, "ws")
	if err := os.Mkdir(ws, 0o755); err != nil {
		t.Fatal(err)
	}
	e.write(filepath.Join(ws, "main.c"), "int main(void) { return 0; }\n")
	// A make-like build: a directory, objects from sources, a link step.
	build := "set -e; mkdir -p build/obj; for f in *.c; do cp $f build/obj/${f%.c}.o; done; cat build/obj/*.o > build/app; echo ok > build/stamp"
	var times []time.Duration
	for i := 0; i < 2; i++ {
		t0 := time.Now()
		e.ok("run", "--rm", "--userns=keep-id", "-v", ws+":/src", "-w", "/src", "localhost/bb:keepid", "sh", "-c", build)
		times = append(times, time.Since(t0))
	}
	t.Logf("keep-id run --rm: first %v (makes the id-mapped copy of the top layer), second %v", times[0].Round(time.Millisecond), times[1].Round(time.Millisecond))
	for _, f := range []string{"build", "build/obj", "build/obj/main.o", "build/app", "build/stamp"} {
		var st syscall.Stat_t
		if err := syscall.Lstat(filepath.Join(ws, f), &st); err != nil {
			t.Fatal(err)
		}
		if int(st.Uid) != uid || int(st.Gid) != gid {
			t.Errorf("%s is owned by %d:%d on the host, want the user's %d:%d", f, st.Uid, st.Gid, uid, gid)
		}
	}
	// A failing build's status is the container's.
	e.fails(3, "run", "--rm", "--userns=keep-id", "-v", ws+":/src", "-w", "/src", "localhost/bb:keepid", "sh", "-c", "test -e no-such-source || exit 3")

	wantKeepIDOwners(e, "localhost/bb:keepid")
	t.Run("kept container", func(t *testing.T) {
		e.ok("run", "--name", "kid", "--userns=keep-id", "localhost/bb:keepid", "sh", "-c", "echo kept > /tmp/kept")
		if out := e.ok("container", "ls", "-a"); !strings.Contains(out, "kid") {
			t.Errorf("ls -a:\n%s", out)
		}
		e.ok("container", "rm", "kid")
	})

	if got := len(e.storageContainers()); got != containers {
		t.Errorf("%d storage containers left", got-containers)
	}
	// What podman keeps too: one id-mapped copy of the top layer, with
	// the image, for the next keep-id container; rmi removes it.
	if got := len(e.storeLayers()); got != layers+1 {
		t.Errorf("%d layers after the keep-id runs, want the image's %d and the mapped copy", got, layers)
	}
	e.ok("rmi", "localhost/bb:keepid")
	if got := e.storeLayers(); len(got) != 0 {
		t.Errorf("layers left after rmi: %v", got)
	}

	t.Run("vfs store", func(t *testing.T) {
		// A copy too: the mapped top layer is a chowned copy of the
		// image's whole root, and the container's layer a copy of it.
		v := newImgEnv(t)
		v.write(filepath.Join(v.dir, "storage.conf"), fmt.Sprintf("[storage]\ndriver = \"vfs\"\ngraphroot = %q\nrunroot = %q\n",
			filepath.Join(v.dir, "graph"), filepath.Join(v.dir, "run")))
		v.loadImage("localhost/bb:keepid", img)
		wantKeepIDOwners(v, "localhost/bb:keepid")
	})
	t.Run("fuse-overlayfs store", func(t *testing.T) {
		// The driver shifts the ids at mount time (fuse-overlayfs's
		// uidmapping and gidmapping, which the init passes on): no copy.
		fuse := testutil.RequireBinary(t, "fuse-overlayfs", "apt-get install fuse-overlayfs")
		if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
			testutil.Skip(t, "opening /dev/fuse: %v (modprobe fuse; chmod 0666 /dev/fuse)", err)
		} else {
			f.Close()
		}
		f := newImgEnv(t)
		f.write(filepath.Join(f.dir, "storage.conf"), fmt.Sprintf("[storage]\ndriver = \"overlay\"\ngraphroot = %q\nrunroot = %q\n[storage.options.overlay]\nmount_program = %q\n",
			filepath.Join(f.dir, "graph"), filepath.Join(f.dir, "run"), fuse))
		f.loadImage("localhost/bb:keepid", img)
		layers := len(f.storeLayers())
		wantKeepIDOwners(f, "localhost/bb:keepid")
		if got := len(f.storeLayers()); got != layers {
			t.Errorf("%d layers after keep-id runs, want the image's %d", got, layers)
		}
	})
}

// wantKeepIDOwners runs the keep-id image ref and checks the ids inside:
// the caller's as the process's, the image's files with their owners
// from the image, a new file the caller's; as root of the namespace (-u
// root), the image's root-owned directories are writable.
func wantKeepIDOwners(e *imgEnv, ref string) {
	e.t.Helper()
	uid, gid := os.Getuid(), os.Getgid()
	out := e.ok("run", "--rm", "--userns=keep-id", ref, "sh", "-c",
		"id -u; id -g; id -un; echo $HOME; stat -c %u:%g / /bin/busybox /etc "+imagefix.Replaced+" /opt/rootfile /home/app "+imagefix.OwnedFile+" /opt/high; touch /tmp/mine; stat -c %u:%g /tmp/mine")
	want := fmt.Sprintf("%d\n%d\n%s\n/\n0:0\n0:0\n0:0\n0:0\n0:0\n%d:%d\n%d:%d\n%d:%d\n%d:%d\n", uid, gid, testutil.TestUserName(),
		imagefix.AppUID, imagefix.AppGID, imagefix.AppUID, imagefix.AppGID, highUID, highUID, uid, gid)
	if out != want {
		e.t.Errorf("inside:\ngot  %q\nwant %q", out, want)
	}
	if out := e.ok("run", "--rm", "--userns=keep-id", "-u", "root", ref, "sh", "-c", "id -u; touch /bin/new && stat -c %u /bin/new"); out != "0\n0\n" {
		e.t.Errorf("-u root: %q", out)
	}
}
