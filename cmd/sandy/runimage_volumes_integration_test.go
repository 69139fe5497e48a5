//go:build integration

package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// TestRunImageVolumeFirstUse: a fresh volume mounted over a directory of
// the image takes that directory's content, owner and mode on its first
// use, as podman's copy-up and chown; later uses leave it alone; nocopy
// gets the owner only; a mount point the image lacks goes to the process
// user. Volumes holding files of subordinate ids are removed whole, by
// volume rm and by run --rm.
func TestRunImageVolumeFirstUse(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	data := filepath.Join(e.dir, "data")
	e.env = append(e.env, "XDG_DATA_HOME="+data) // sandy's volumes
	vols := filepath.Join(data, "sandy", "volumes")
	img := imagefix.Busybox(t)
	img.Layers = append(img.Layers, imagefix.Layer{Entries: []imagefix.Entry{
		imagefix.Dir("srv/db/", 0o750).Owner(70, 71),
		imagefix.File("srv/db/seed", 0o640, "seeded\n").Owner(70, 71),
		imagefix.Dir("srv/db/sub/", 0o700).Owner(70, 71),
		imagefix.Symlink("srv/db/link", "/etc/passwd"),
	}})
	e.loadImage("localhost/bb:db", img)
	show := "stat -c '%u:%g %a' /srv/db; cat /srv/db/seed 2>/dev/null || echo no-seed; ls /srv/db | tr '\\n' ' '; echo"

	t.Run("copy-up and chown", func(t *testing.T) {
		if out, want := e.ok("run", "--rm", "-v", "dbdata:/srv/db", "localhost/bb:db", "sh", "-c", show+"; echo more > /srv/db/added"),
			"70:71 750\nseeded\nlink seed sub \n"; out != want {
			t.Errorf("first use: %q, want %q", out, want)
		}
		// The second use finds the volume as the first left it.
		if out, want := e.ok("run", "--rm", "-v", "dbdata:/srv/db", "localhost/bb:db", "sh", "-c", "rm /srv/db/seed; "+show),
			"70:71 750\nno-seed\nadded link sub \n"; out != want {
			t.Errorf("second use: %q, want %q", out, want)
		}
		if out := e.ok("run", "--rm", "-v", "dbdata:/srv/db", "localhost/bb:db", "ls", "/srv/db"); strings.Contains(out, "seed") {
			t.Errorf("a used volume is filled again: %q", out)
		}
		if out := e.ok("run", "--rm", "-v", "dbdata:/srv/db", "localhost/bb:db", "readlink", "/srv/db/link"); out != "/etc/passwd\n" {
			t.Errorf("a symlink is copied as a symlink: %q", out)
		}
		var inspect []map[string]any
		if err := json.Unmarshal([]byte(e.ok("volume", "inspect", "dbdata")), &inspect); err != nil || len(inspect) != 1 {
			t.Fatalf("volume inspect: %v", err)
		}
		if inspect[0]["NeedsCopyUp"] != nil || inspect[0]["NeedsChown"] != nil {
			t.Errorf("after the first use: %v", inspect[0])
		}
		// Files of subordinate ids (70 in the container) go with the volume.
		e.ok("volume", "rm", "dbdata")
		if left, _ := filepath.Glob(filepath.Join(vols, ".remove-*")); len(left) > 0 {
			t.Errorf("left after volume rm: %v", left)
		}
	})
	t.Run("once per volume, not per start", func(t *testing.T) {
		// The container empties its fresh volume; started again, it finds
		// it empty (podman fills a volume once).
		e.ok("run", "--network", "none", "--name", "keeper", "-v", "kept:/srv/db", "localhost/bb:db", "sh", "-c", "ls /srv/db | wc -l; rm -rf /srv/db/*")
		if out := e.ok("container", "start", "-a", "keeper"); strings.TrimSpace(out) != "0" {
			t.Errorf("the volume was filled again on the second start: %q entries", out)
		}
		e.ok("container", "rm", "keeper")
		e.ok("volume", "rm", "kept")
	})
	t.Run("nocopy", func(t *testing.T) {
		e.ok("volume", "create", "-o", "o=nocopy", "empty")
		if out, want := e.ok("run", "--rm", "-v", "empty:/srv/db", "localhost/bb:db", "sh", "-c", show), "70:71 750\nno-seed\n\n"; out != want {
			t.Errorf("nocopy volume: %q, want %q", out, want)
		}
		if out, want := e.ok("run", "--rm", "-v", "fresh:/srv/db:nocopy", "localhost/bb:db", "sh", "-c", show), "70:71 750\nno-seed\n\n"; out != want {
			t.Errorf("-v fresh:/srv/db:nocopy: %q, want %q", out, want)
		}
		e.ok("volume", "rm", "empty", "fresh")
	})
	t.Run("not in the image", func(t *testing.T) {
		if out, want := e.ok("run", "--rm", "-u", "1000:1001", "-v", "work:/work", "localhost/bb:db", "sh", "-c", "stat -c '%u:%g' /work; touch /work/x && echo writable"), "1000:1001\nwritable\n"; out != want {
			t.Errorf("volume on a new mount point for -u 1000:1001: %q, want %q", out, want)
		}
		e.ok("volume", "rm", "work")
	})
	t.Run("under a bind, not filled from the host", func(t *testing.T) {
		// A volume nested in a bind of a host directory covers the host's
		// directory, not the image's: podman fills it from the image (here
		// nothing), never with the host's files (sandy copied them in).
		hostDir := filepath.Join(e.dir, "hostsrv")
		if err := os.MkdirAll(filepath.Join(hostDir, "db"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(hostDir, "db", "hostfile"), []byte("host\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		if out := e.ok("run", "--rm", "-v", hostDir+":/srv", "-v", "nested:/srv/db", "localhost/bb:db", "ls", "-A", "/srv/db"); out != "" {
			t.Errorf("a volume under a host bind was filled with: %q", out)
		}
		e.ok("volume", "rm", "nested")
		if out := e.ok("run", "--rm", "-v", "/proc/sys/kernel", "localhost/bb:db", "ls", "-A", "/proc/sys/kernel"); out != "" {
			t.Errorf("a volume over /proc/sys/kernel was filled with: %q", out)
		}
	})
	t.Run("anonymous with --rm", func(t *testing.T) {
		before, _ := os.ReadDir(vols)
		if out, want := e.ok("run", "--rm", "-v", "/srv/db", "localhost/bb:db", "sh", "-c", show), "70:71 750\nseeded\nlink seed sub \n"; out != want {
			t.Errorf("anonymous volume: %q, want %q", out, want)
		}
		after, _ := os.ReadDir(vols)
		if len(after) != len(before) {
			t.Errorf("volumes before %d, after run --rm %d: %v", len(before), len(after), after)
		}
	})
	t.Run("anonymous, rm -v", func(t *testing.T) {
		// Kept, the container keeps its anonymous volume (files of a
		// subordinate id in it: the image's 70:71); rm without -v leaves
		// it, as podman does; rm -v removes it.
		before, _ := os.ReadDir(vols)
		e.ok("run", "--network", "none", "--name", "anon1", "-v", "/srv/db", "localhost/bb:db", "true")
		e.ok("run", "--network", "none", "--name", "anon2", "-v", "/srv/db", "localhost/bb:db", "true")
		if after, _ := os.ReadDir(vols); len(after) != len(before)+2 {
			t.Fatalf("volumes before %d, after two runs %d", len(before), len(after))
		}
		e.ok("rm", "anon1")
		if after, _ := os.ReadDir(vols); len(after) != len(before)+2 {
			t.Errorf("rm without -v removed a volume: %d, want %d", len(after), len(before)+2)
		}
		e.ok("rm", "-v", "anon2")
		if after, _ := os.ReadDir(vols); len(after) != len(before)+1 {
			t.Errorf("rm -v: %d volumes, want %d", len(after), len(before)+1)
		}
		e.ok("volume", "prune", "-f")
		if left, _ := filepath.Glob(filepath.Join(vols, ".remove-*")); len(left) > 0 {
			t.Errorf("left after rm -v: %v", left)
		}
	})
	t.Run("anonymous, run -d --rm", func(t *testing.T) {
		// The monitor removes the anonymous volume with the container,
		// also files a subordinate id wrote (uid 1000 in the container).
		xdg, err := os.MkdirTemp("/tmp", "sx") // short: the network's sockets live under it
		if err != nil {
			t.Fatal(err)
		}
		defer os.RemoveAll(xdg)
		before, _ := os.ReadDir(vols)
		env := e.env
		e.env = append(slices.Clone(env), "XDG_RUNTIME_DIR="+xdg)
		defer func() { e.env = env }()
		e.ok("run", "-d", "--rm", "--name", "anond", "-v", "/srv/db", "localhost/bb:db", "sh", "-c", "mkdir /srv/db/mine && chown 1000:1000 /srv/db/mine && su -s /bin/sh app -c 'touch /srv/db/mine/f' ; echo done")
		// No `wait`: the container ends at once, and the monitor may have
		// removed it before a wait could name it (podman's wait fails then
		// too). The monitor removes the container, then its volume.
		waitFor(t, 15*time.Second, "the monitor to remove the container and the volume", func() bool {
			after, _ := os.ReadDir(vols)
			return len(after) == len(before) && !strings.Contains(e.ok("ps", "-a", "--format", "{{.Names}}"), "anond")
		})
	})
	t.Run("the image's VOLUME", func(t *testing.T) {
		// An image's VOLUME gets an anonymous volume filled from the
		// image (podman's --image-volume=bind), removed by --rm and by
		// rm -v; --image-volume=tmpfs and ignore, and a -v at the path,
		// replace it.
		vimg := imagefix.Busybox(t)
		vimg.Layers = img.Layers
		vimg.Config.Volumes = []string{"/srv/db"}
		e.loadImage("localhost/bb:vol", vimg)
		before, _ := os.ReadDir(vols)
		mnt := "grep -c ' /srv/db ' /proc/self/mounts; awk '$2 == \"/srv/db\" {print $3}' /proc/self/mounts | sed 's/fuse.*/fuse/'; cat /srv/db/seed 2>/dev/null || echo no-seed"
		if out := e.ok("run", "--rm", "--network", "none", "localhost/bb:vol", "sh", "-c", mnt); !strings.HasPrefix(out, "1\n") || !strings.HasSuffix(out, "seeded\n") {
			t.Errorf("the image's VOLUME: %q, want a mount filled from the image", out)
		}
		if after, _ := os.ReadDir(vols); len(after) != len(before) {
			t.Errorf("run --rm left the image's volume: %d volumes, want %d", len(after), len(before))
		}
		if out := e.ok("run", "--rm", "--network", "none", "--image-volume", "tmpfs", "localhost/bb:vol", "sh", "-c", mnt); out != "1\ntmpfs\nseeded\n" {
			t.Errorf("--image-volume tmpfs: %q", out)
		}
		if out := e.ok("run", "--rm", "--network", "none", "--image-volume", "ignore", "localhost/bb:vol", "sh", "-c", mnt); out != "0\nseeded\n" {
			t.Errorf("--image-volume ignore: %q", out)
		}
		e.ok("run", "--network", "none", "--name", "imgvol", "localhost/bb:vol", "sh", "-c", "echo kept > /srv/db/new")
		if after, _ := os.ReadDir(vols); len(after) != len(before)+1 {
			t.Errorf("a kept container's image volume: %d volumes, want %d", len(after), len(before)+1)
		}
		if out := e.ok("start", "-a", "imgvol"); out != "" {
			t.Errorf("start again: %q", out)
		}
		e.ok("rm", "-v", "imgvol")
		if after, _ := os.ReadDir(vols); len(after) != len(before) {
			t.Errorf("rm -v: %d volumes, want %d", len(after), len(before))
		}
		e.fails(125, "run", "--rm", "--image-volume", "copy", "localhost/bb:vol", "true")
	})
	t.Run("in use", func(t *testing.T) {
		// A container (an exited one too) holds its volumes: rm refuses
		// (status 2), prune and dangling=true leave them; rm -f removes
		// the container first, as podman does.
		e.ok("run", "--network", "none", "--name", "holder", "-v", "held:/srv/db", "localhost/bb:db", "true")
		if msg := e.fails(2, "volume", "rm", "held"); !strings.Contains(msg, "volume held is being used by the following container(s)") {
			t.Errorf("volume rm of a volume in use: %s", msg)
		}
		e.ok("volume", "prune", "-f")
		if out := e.ok("volume", "ls", "-q", "--filter", "dangling=false"); !strings.Contains(out, "held\n") {
			t.Errorf("dangling=false: %q, want held", out)
		}
		if out := e.ok("volume", "ls", "-q", "--filter", "dangling=true"); strings.Contains(out, "held\n") {
			t.Errorf("dangling=true lists a volume in use: %q", out)
		}
		e.ok("volume", "rm", "-f", "held")
		e.fails(1, "volume", "exists", "held")
		if out := e.ok("ps", "-a", "--format", "{{.Names}}"); strings.Contains(out, "holder") {
			t.Errorf("volume rm -f left the container that used it: %q", out)
		}
	})
	t.Run("bind volume is the user's", func(t *testing.T) {
		dev := filepath.Join(e.dir, "mine")
		if err := os.Mkdir(dev, 0o755); err != nil {
			t.Fatal(err)
		}
		e.ok("volume", "create", "-o", "type=none", "-o", "o=bind", "-o", "device="+dev, "mine")
		e.ok("run", "--rm", "-v", "mine:/srv/db", "localhost/bb:db", "true")
		fi, err := os.Stat(dev)
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o755 {
			t.Errorf("a bind volume's directory was changed: %v", fi.Mode())
		}
		if ents, _ := os.ReadDir(dev); len(ents) != 0 {
			t.Errorf("a bind volume was filled: %v", ents)
		}
		e.ok("volume", "rm", "mine")
	})
	t.Run("U chowns to the user", func(t *testing.T) {
		dir := filepath.Join(e.dir, "workspace")
		if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		e.write(filepath.Join(dir, "sub", "f"), "x")
		if err := os.Symlink("/etc/passwd", filepath.Join(dir, "link")); err != nil {
			t.Fatal(err)
		}
		list := "stat -c '%n %u:%g' /w /w/sub /w/sub/f; stat -L -c '%n %u' /etc/passwd"
		want := "/w 1000:1001\n/w/sub 1000:1001\n/w/sub/f 1000:1001\n/etc/passwd 0\n"
		if out := e.ok("run", "--rm", "-u", "1000:1001", "-v", dir+":/w:U", "localhost/bb:db", "sh", "-c", list+"; touch /w/sub/new"); out != want {
			t.Errorf("-v DIR:/w:U: %q, want %q", out, want)
		}
		// Given back to the user (container root) the same way, so that
		// the test can remove it.
		if out := e.ok("run", "--rm", "-v", dir+":/w:U", "localhost/bb:db", "stat", "-c", "%u", "/w/sub/new"); out != "0\n" {
			t.Errorf("-v DIR:/w:U as root: %q", out)
		}
		if out := e.ok("run", "--rm", "-u", "1000:1001", "-v", "owned:/w:U", "localhost/bb:db", "stat", "-c", "%u:%g", "/w"); out != "1000:1001\n" {
			t.Errorf("named volume with U: %q", out)
		}
		e.ok("volume", "rm", "owned")
	})
}
