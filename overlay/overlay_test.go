//go:build linux

package overlay

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
)

func TestParseMode(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Mode
		err  bool
	}{
		{"", ModeAuto, false},
		{"auto", ModeAuto, false},
		{"overlay", ModeOverlay, false},
		{"fuse", ModeFuse, false},
		{"bind", ModeBind, false},
		{"copy", ModeCopy, false},
		{"kernel", "", true},
		{"Overlay", "", true},
	} {
		t.Run(tc.in, func(t *testing.T) {
			got, err := ParseMode(tc.in)
			if (err != nil) != tc.err || got != tc.want {
				t.Fatalf("ParseMode(%q) = %q, %v", tc.in, got, err)
			}
			if err != nil && !errors.Is(err, ErrUnknownMode) {
				t.Fatalf("error %v is not ErrUnknownMode", err)
			}
		})
	}
}

func TestFuseServes(t *testing.T) {
	for _, tc := range []struct {
		name    string
		cmdline string
		want    bool
	}{
		{"ours", "fuse-overlayfs\x00-o\x00lowerdir=/a,upperdir=/l/upper\x00/l/fuse\x00", true},
		{"other layer", "fuse-overlayfs\x00-o\x00x\x00/m/fuse\x00", false},
		{"prefix only", "fuse-overlayfs\x00-o\x00x\x00/l/fuse2\x00", false},
		{"no args", "fuse-overlayfs\x00", false},
		{"empty", "", false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fuseServes([]byte(tc.cmdline), "/l/fuse"); got != tc.want {
				t.Fatalf("fuseServes = %v, want %v", got, tc.want)
			}
		})
	}
}

func TestFusePIDs(t *testing.T) {
	proc := t.TempDir()
	mk := func(pid int, comm, cmdline string) {
		d := filepath.Join(proc, strconv.Itoa(pid))
		if err := os.Mkdir(d, 0o755); err != nil {
			t.Fatal(err)
		}
		_ = os.WriteFile(filepath.Join(d, "comm"), []byte(comm+"\n"), 0o644)
		_ = os.WriteFile(filepath.Join(d, "cmdline"), []byte(cmdline), 0o644)
	}
	mk(10, "fuse-overlayfs", "fuse-overlayfs\x00-o\x00x\x00/state/c1/layer/fuse\x00")
	mk(11, "fuse-overlayfs", "fuse-overlayfs\x00-o\x00x\x00/state/c2/layer/fuse\x00")
	mk(12, "sh", "sh\x00/state/c1/layer/fuse\x00")
	_ = os.Mkdir(filepath.Join(proc, "self"), 0o755)
	got, err := fusePIDs(proc, "/state/c1/layer", os.Getuid())
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 1 || got[0] != 10 {
		t.Fatalf("fusePIDs = %v, want [10]", got)
	}
	if got, _ := fusePIDs(proc, "/state/c1/layer", os.Getuid()+1); len(got) != 0 {
		t.Fatalf("fusePIDs for another uid = %v, want none", got)
	}
}

func TestMissingIn(t *testing.T) {
	root := t.TempDir()
	_ = os.MkdirAll(filepath.Join(root, "etc"), 0o755)
	_ = os.WriteFile(filepath.Join(root, "etc/hosts"), nil, 0o644)
	_ = os.Symlink("/run", filepath.Join(root, "var"))
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/etc", false},
		{"/etc/hosts", false},
		{"/etc/hostname", true},
		{"/data/a/b", true},
		{"/var/run/x", false}, // through a symlink: the init's business
		{"/etc/hosts/x", false},
	} {
		t.Run(tc.path, func(t *testing.T) {
			w, err := walkMountpoint(root, tc.path)
			if err != nil || w.missing != tc.want {
				t.Fatalf("walkMountpoint(%s).missing = %v, %v; want %v", tc.path, w.missing, err, tc.want)
			}
		})
	}
}

// TestCleanupNeverLeaves: Cleanup removes closed directories of its own,
// does not follow symlinks out of the layer, and is idempotent.
func TestCleanupNeverLeaves(t *testing.T) {
	dir := t.TempDir()
	outside := filepath.Join(dir, "bundle")
	if err := os.MkdirAll(filepath.Join(outside, "keep"), 0o755); err != nil {
		t.Fatal(err)
	}
	_ = os.WriteFile(filepath.Join(outside, "keep/file"), []byte("x"), 0o644)
	layer := filepath.Join(dir, "layer")
	for _, d := range []string{"upper/etc", "work/work", "merged"} {
		if err := os.MkdirAll(filepath.Join(layer, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	_ = os.WriteFile(filepath.Join(layer, "upper/etc/f"), []byte("x"), 0o644)
	_ = os.Symlink(outside, filepath.Join(layer, "upper/to-bundle"))
	_ = os.Symlink(filepath.Join(outside, "keep"), filepath.Join(layer, "upper/etc/keep"))
	_ = os.Chmod(filepath.Join(layer, "work/work"), 0)
	_ = os.Chmod(filepath.Join(layer, "upper/etc"), 0o500)
	if err := Cleanup(layer); err != nil {
		t.Fatalf("Cleanup: %v", err)
	}
	if _, err := os.Lstat(layer); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("layer still there: %v", err)
	}
	if b, err := os.ReadFile(filepath.Join(outside, "keep/file")); err != nil || string(b) != "x" {
		t.Fatalf("the bundle was touched: %q %v", b, err)
	}
	if err := Cleanup(layer); err != nil {
		t.Fatalf("second Cleanup: %v", err)
	}
	if err := Cleanup("relative/layer"); err == nil {
		t.Fatalf("Cleanup of a relative path: no error")
	}
}

func TestCleanupError(t *testing.T) {
	err := error(&CleanupError{LayerDir: "/l", Foreign: 2, Example: "/l/upper/home/u"})
	if !errors.Is(err, ErrForeignOwned) {
		t.Fatalf("%v is not ErrForeignOwned", err)
	}
	inner := errors.New("boom")
	err = &CleanupError{LayerDir: "/l", Err: inner}
	if !errors.Is(err, inner) || errors.Is(err, ErrForeignOwned) {
		t.Fatalf("wrapping: %v", err)
	}
}

func TestScanOwners(t *testing.T) {
	root := t.TempDir()
	_ = os.MkdirAll(filepath.Join(root, "a/b"), 0o755)
	_ = os.WriteFile(filepath.Join(root, "a/b/f"), nil, 0o644)
	_ = os.Symlink("/nowhere", filepath.Join(root, "a/link"))
	own := func(id int) []specs.LinuxIDMapping {
		return []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(id), Size: 1}}
	}
	uid, gid := os.Getuid(), os.Getgid()
	for _, tc := range []struct {
		name       string
		uids, gids []specs.LinuxIDMapping
		limit      int
		want       int // unmapped
		checked    int
		complete   bool
		example    string
	}{
		{"own ids mapped", own(uid), own(gid), 0, 0, 5, true, ""},
		{"range covers", []specs.LinuxIDMapping{{HostID: 0, Size: uint32(uid) + 1}}, []specs.LinuxIDMapping{{HostID: 0, Size: uint32(gid) + 1}}, 0, 0, 5, true, ""},
		{"uid unmapped", own(uid + 1), own(gid), 0, 5, 5, true, "/"},
		{"gid unmapped", own(uid), own(gid + 1), 0, 5, 5, true, "/"},
		// Breadth first: /, /a, then /a/b and /a/link, then /a/b/f.
		{"limit stops the walk", own(uid + 1), own(gid), 3, 3, 3, false, "/"},
		{"limit equal to the tree", own(uid + 1), own(gid), 5, 5, 5, true, "/"},
		{"limit above the tree", own(uid + 1), own(gid), 6, 5, 5, true, "/"},
		{"no maps", nil, nil, 0, 0, 0, true, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, err := ScanOwners(root, tc.uids, tc.gids, tc.limit)
			if err != nil {
				t.Fatal(err)
			}
			if r.Count != tc.want || r.Checked != tc.checked || r.Complete != tc.complete || r.Example != tc.example {
				t.Fatalf("got %+v, want Count %d Checked %d Complete %v Example %q", r, tc.want, tc.checked, tc.complete, tc.example)
			}
			if (r.Warning() != "") != (tc.want > 0) {
				t.Fatalf("Warning() = %q", r.Warning())
			}
		})
	}
}

// TestScanOwnersOrder: the walk is breadth first, so the top of the tree
// is checked before anything deep, and an entry deep down is found once
// the limit allows it.
func TestScanOwnersOrder(t *testing.T) {
	root := t.TempDir()
	_ = os.MkdirAll(filepath.Join(root, "deep/er/still"), 0o755)
	_ = os.WriteFile(filepath.Join(root, "deep/er/still/f"), nil, 0o644)
	for i := range 3 {
		_ = os.WriteFile(filepath.Join(root, "top"+strconv.Itoa(i)), nil, 0o644)
	}
	uids := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getuid()), Size: 1}}
	gids := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getgid()), Size: 1}}
	r, err := ScanOwners(root, uids, gids, 5) // /, deep, top0..top2
	if err != nil {
		t.Fatal(err)
	}
	if r.Checked != 5 || r.Complete {
		t.Fatalf("limit 5: %+v", r)
	}
	r, err = ScanOwners(root, uids, gids, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Checked != 8 || !r.Complete {
		t.Fatalf("no limit: %+v", r)
	}
}

func TestOwnerWarning(t *testing.T) {
	for _, tc := range []struct {
		name string
		r    OwnerReport
		want string
	}{
		{"complete", OwnerReport{Rootfs: "/b/rootfs", Count: 287, Checked: 287, Complete: true, Example: "/", UID: 0, GID: 0, RootUID: 1001, RootGID: 1001},
			"rootfs: 287 entries are owned by ids outside the container's id map (e.g. /, host uid 0 gid 0): " +
				"inside they show as nobody (65534) and the container's root cannot write, chmod or chown them; " +
				"fix: as root, chown -R 1001:1001 /b/rootfs (the container's root then owns them), or " +
				"unpack the rootfs as yourself in a user namespace (podman unshare tar -C /b/rootfs -xf ROOTFS.tar), " +
				"or run with an id map that covers those ids (docs/rootfs.md#unmapped-owners)"},
		{"partial, no root in the map", OwnerReport{Rootfs: "/r", Count: 12, Checked: 4096, Example: "/etc/shadow", UID: 100041, GID: 100041, RootUID: -1, RootGID: -1},
			"rootfs: 12 of the first 4096 entries checked are owned by ids outside the container's id map (e.g. /etc/shadow, host uid 100041 gid 100041): " +
				"inside they show as nobody (65534) and the container's root cannot write, chmod or chown them; " +
				"fix: unpack the rootfs as yourself in a user namespace (podman unshare tar -C /r -xf ROOTFS.tar), " +
				"or run with an id map that covers those ids (docs/rootfs.md#unmapped-owners)"},
		{"nothing", OwnerReport{Checked: 10, Complete: true}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got := tc.r.Warning()
			if got != tc.want {
				t.Fatalf("Warning()\n got %q\nwant %q", got, tc.want)
			}
			if strings.Contains(got, "\n") {
				t.Fatal("the warning is more than one line")
			}
		})
	}
}

func TestAccessError(t *testing.T) {
	e := &AccessError{Path: "/b/rootfs", UID: 0, GID: 0, Owner: "root", Group: "root", Mode: 0o700, CallerUID: 1001, RootUID: 1001, RootGID: 1001}
	want := "rootfs /b/rootfs: permission denied: it is owned by root (uid 0), group root (gid 0), mode 0700, and neither you (uid 1001) nor the container's root, which has no power over ids outside its map, may enter it" +
		"\nhint: as root, chown -R 1001:1001 /b/rootfs (the container's root then owns it), or chmod 0755 /b/rootfs (docs/troubleshooting.md#rootfs-unreadable)"
	if got := e.Error(); got != want {
		t.Fatalf("Error()\n got %q\nwant %q", got, want)
	}
	if !errors.Is(e, fs.ErrPermission) {
		t.Fatal("not fs.ErrPermission")
	}
	e.Owner, e.Group, e.RootUID = "", "", -1
	if got := e.Error(); !strings.Contains(got, "owned by uid 0, gid 0, mode 0700,") || strings.Contains(got, "chown") {
		t.Fatalf("without a name or a root: %q", got)
	}
}

func TestCountWhiteoutNames(t *testing.T) {
	root := t.TempDir()
	_ = os.MkdirAll(filepath.Join(root, "etc/sub"), 0o755)
	for _, p := range []string{"etc/.wh.a", "etc/sub/.wh..wh..opq", "etc/wh.b", "etc/a.wh.c"} {
		_ = os.WriteFile(filepath.Join(root, p), nil, 0o644)
	}
	n, ex := countWhiteoutNames(root)
	if n != 2 || ex == "" {
		t.Fatalf("countWhiteoutNames = %d, %q; want 2", n, ex)
	}
}

func TestCleanFuseOutput(t *testing.T) {
	got := cleanFuseOutput("unknown argument ignored: lazytime\nfuse: device not found\n\n")
	if got != "fuse: device not found" {
		t.Fatalf("cleanFuseOutput = %q", got)
	}
}

func TestMountRejects(t *testing.T) {
	dir := t.TempDir()
	rootfs := filepath.Join(dir, "rootfs")
	_ = os.Mkdir(rootfs, 0o755)
	for _, tc := range []struct {
		name string
		o    Options
	}{
		{"bad mode", Options{Lower: rootfs, LayerDir: dir, Mode: "kernel"}},
		{"relative lower", Options{Lower: "rootfs", LayerDir: dir}},
		{"comma in layer", Options{Lower: rootfs, LayerDir: dir + "/a,b"}},
		{"layer inside rootfs", Options{Lower: rootfs, LayerDir: rootfs}},
		{"missing lower", Options{Lower: dir + "/nope", LayerDir: dir}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if tc.name == "layer inside rootfs" {
				_ = os.Mkdir(filepath.Join(rootfs, "l"), 0o755)
				tc.o.LayerDir = filepath.Join(rootfs, "l")
			}
			if _, err := Mount(tc.o); err == nil {
				t.Fatalf("Mount(%+v): no error", tc.o)
			} else {
				t.Log(err)
			}
		})
	}
}

func TestClassifyKernel(t *testing.T) {
	for _, tc := range []struct {
		name, step, msg string
		why, fix        string
	}{
		{"nested upper", "creating overlay", "overlay: filesystem on /l/upper not supported as upperdir", "refuses the layer dir on overlayfs as overlay upper", "--root DIR"},
		{"old kernel", "setting overlay option userxattr", "", "older than 5.11", "5.11"},
		{"lower", "creating overlay", "overlay: filesystem on /b not supported as lowerdir", "refuses the rootfs on nfs", "local filesystem"},
		{"other", "fsmount", "", "fsmount: invalid argument", "docs/rootfs.md"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			re := classifyKernel(tc.step, tc.msg, "overlayfs", "nfs", unix.EINVAL)
			if !strings.Contains(re.Why, tc.why) || !strings.Contains(re.Fix, tc.fix) {
				t.Fatalf("got why %q fix %q", re.Why, re.Fix)
			}
			if !errors.Is(re, unix.EINVAL) {
				t.Fatalf("%v does not wrap EINVAL", re)
			}
		})
	}
}

func FuzzParseMode(f *testing.F) {
	for _, m := range Modes() {
		f.Add(string(m))
	}
	f.Fuzz(func(t *testing.T, s string) {
		m, err := ParseMode(s)
		if err == nil && s != "" && string(m) != s {
			t.Fatalf("ParseMode(%q) = %q", s, m)
		}
	})
}

func FuzzFuseServes(f *testing.F) {
	f.Add([]byte("fuse-overlayfs\x00-o\x00x\x00/l/fuse\x00"), "/l/fuse")
	f.Add([]byte(""), "")
	f.Fuzz(func(t *testing.T, cmdline []byte, mp string) {
		if fuseServes(cmdline, mp) && !strings.HasSuffix(strings.TrimRight(string(cmdline), "\x00"), mp) {
			t.Fatalf("fuseServes(%q, %q) = true", cmdline, mp)
		}
	})
}

func TestOnRootfs(t *testing.T) {
	in := []Mountpoint{
		{Path: "/proc"}, {Path: "/dev"}, {Path: "/dev/pts"}, {Path: "/dev/shm"}, {Path: "/sys"},
		{Path: "/sys/fs/cgroup"}, {Path: "/etc/hosts", File: true}, {Path: "/etc/hosts/x"},
		{Path: "data/../data/in"}, {Path: "/"}, {Path: "/proc"},
	}
	var got []string
	for _, mp := range onRootfs(in) {
		got = append(got, mp.Path)
	}
	want := "/proc /dev /sys /etc/hosts /etc/hosts/x /data/in"
	if strings.Join(got, " ") != want {
		t.Fatalf("onRootfs = %v, want %s", got, want)
	}
}

// TestOwnerDocAnchors: the pages the owner warning and the access error
// point to have the anchors they name.
func TestOwnerDocAnchors(t *testing.T) {
	w := (&OwnerReport{Rootfs: "/r", Count: 1, Checked: 1, Complete: true, Example: "/", RootUID: 1, RootGID: 1}).Warning()
	e := (&AccessError{Path: "/r", RootUID: 1, RootGID: 1}).Error()
	for _, msg := range []string{w, e} {
		i := strings.Index(msg, "docs/")
		if i < 0 {
			t.Fatalf("no docs reference in %q", msg)
		}
		ref := strings.TrimRight(strings.Fields(msg[i:])[0], ")")
		page, anchor, _ := strings.Cut(ref, "#")
		data, err := os.ReadFile(filepath.Join("..", page))
		if err != nil {
			t.Fatal(err)
		}
		if !strings.Contains(string(data), `<a id="`+anchor+`"></a>`) {
			t.Errorf("%s has no anchor %q", page, anchor)
		}
	}
}

// TestCheckFuse: each reason the fuse rung is unavailable, with its fix:
// no fuse-overlayfs, no /dev/fuse, one that will not open.
func TestCheckFuse(t *testing.T) {
	found := func(string) (string, error) { return "/usr/bin/fuse-overlayfs", nil }
	missing := func(n string) (string, error) { return "", errors.New(n + ": not found") }
	dir := t.TempDir()
	tests := []struct {
		name     string
		lookPath func(string) (string, error)
		dev      string
		want     []string // in Error(); nil = nil error
	}{
		{"ok", found, "/dev/null", nil},
		{"no fuse-overlayfs", missing, "/dev/null", []string{"fuse-overlayfs is not installed", "apt-get install fuse-overlayfs"}},
		{"no device", found, filepath.Join(dir, "fuse"), []string{"cannot open " + filepath.Join(dir, "fuse"), "modprobe fuse", "--device /dev/fuse"}},
		{"not a device", found, dir, []string{"is a directory", "docs/rootfs.md#troubleshooting"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckFuse(tt.lookPath, tt.dev)
			var re *RungError
			if tt.want == nil {
				if err != nil {
					t.Fatalf("CheckFuse = %v, want nil", err)
				}
				return
			}
			if !errors.As(err, &re) || re.Mode != ModeFuse {
				t.Fatalf("CheckFuse = %v, want a fuse *RungError", err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
		})
	}
}

// TestCheckDevFuseUnreadable: a /dev/fuse the user may not open (mode 0,
// tried as the test user: root opens anything) names chmod as the fix.
func TestCheckDevFuseUnreadable(t *testing.T) {
	dev := "/tmp/sandy-test-fuse-mode0"
	if os.Getuid() == 0 {
		_ = os.Remove(dev)
		f, err := os.OpenFile(dev, os.O_CREATE|os.O_EXCL|os.O_WRONLY, 0)
		if err != nil {
			t.Fatal(err)
		}
		f.Close()
		t.Cleanup(func() { os.Remove(dev) })
		t.Setenv("SANDY_BIN", "/nonexistent") // AsUser's child runs no sandy: no build
	}
	if testutil.AsUser(t) {
		return
	}
	err := CheckDevFuse(dev)
	if !errors.Is(err, fs.ErrPermission) || !strings.Contains(err.Error(), "chmod 0666 /dev/fuse") {
		t.Errorf("CheckDevFuse(mode 0) = %v, want permission denied with the chmod fix", err)
	}
}

// TestUnmappedParent: a writable root gets a stub only for a mountpoint
// under a directory of an id outside the user namespace's map (the
// overflow id from inside), which overlay cannot copy up for the init.
func TestUnmappedParent(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to give directories the overflow id (CI runs the unit tests as root)")
	}
	root := t.TempDir()
	for _, d := range []string{"etc", "srv/data", "opt"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	ouid := int(overflowID("uid"))
	if err := os.Chown(filepath.Join(root, "srv"), ouid, 0); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "opt", "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		path string
		want bool
	}{
		{"/etc/resolv.conf", false},
		{"/srv/data/x", true}, // srv is the overflow uid's
		{"/srv/new/x", true},  // under it, missing parents too
		{"/opt/f/x", false},   // a file on the way: the init's to refuse
		{"/missing/x", false}, // made in the stub layer or the upper alike
		{"/etc", false},
	} {
		w, err := walkMountpoint(root, tc.path)
		if got := w.unmapped(overflowID("uid"), overflowID("gid")); err != nil || got != tc.want {
			t.Errorf("walkMountpoint(%s).unmapped = %v, %v; want %v", tc.path, got, err, tc.want)
		}
	}
	if err := os.Chown(root, 0, int(overflowID("gid"))); err != nil {
		t.Fatal(err)
	}
	if w, _ := walkMountpoint(root, "/etc/hosts"); !w.unmapped(overflowID("uid"), overflowID("gid")) {
		t.Errorf("a root directory of the overflow gid: want a stub")
	}
}
