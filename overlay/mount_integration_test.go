//go:build integration && linux

package overlay

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestMountRungs forces each rung, writable and read-only, lets the
// "container" write, delete, chmod, chown and rename everywhere in the
// merged root, and checks the bundle is untouched byte for byte and inode
// for inode.
func TestMountRungs(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireFuse(t)
	for _, tc := range []struct {
		mode     Mode
		readonly bool
		want     Mode
		writable bool
	}{
		{ModeOverlay, false, ModeOverlay, true},
		{ModeFuse, false, ModeFuse, true},
		{ModeBind, false, ModeBind, false},
		{ModeCopy, false, ModeCopy, true},
		{ModeAuto, false, ModeOverlay, true},
		{ModeOverlay, true, ModeOverlay, false},
		{ModeFuse, true, ModeFuse, false},
		{ModeCopy, true, ModeCopy, false},
		{ModeAuto, true, ModeOverlay, false}, // a stub is needed: overlay, not bind
	} {
		name := string(tc.mode)
		if tc.readonly {
			name += "-readonly"
		}
		t.Run(name, func(t *testing.T) {
			f := newFixture(t)
			before := treeHash(t, f.rootfs)
			req := helperReq{
				Opts: Options{Lower: f.rootfs, LayerDir: f.layer, Mode: tc.mode, Readonly: tc.readonly,
					Mountpoints: []Mountpoint{{Path: "/data/in"}, {Path: "/etc/hostname", File: true}, {Path: "/proc"}}},
				Exercise: true,
				Pivot:    true,
				Probe:    []string{"/marker", "/etc/passwd", "/usr", "/data/in", "/etc/hostname"},
			}
			if tc.writable {
				// A non-root container user (allow_other for fuse, the
				// upper dir's mode for all).
				req.AsUID = "echo u > /tmp/by-user && cat /etc/passwd > /tmp/copy && mkdir /tmp/d && rm /tmp/by-user && ls /bin/busybox > /tmp/ls && echo ok"
			}
			if tc.mode == ModeBind {
				req.Opts.Mountpoints = []Mountpoint{{Path: "/proc"}, {Path: "/dev"}, {Path: "/dev/pts"}} // on the rootfs, or inside another mount: bind can do it
			}
			if tc.readonly {
				// /etc holds a stub (etc/hostname): it must still look like
				// the bundle's /etc.
				req.Exercise, req.Pivot = false, false
				req.Shell = "stat -c '%a %u %Y' etc; touch x 2>&1 | grep -c 'Read-only'"
			}
			resp := runHelper(t, nsFull, req)
			if resp.Err != "" {
				t.Fatalf("Mount: %s", resp.Err)
			}
			if resp.Root.Mode != tc.want {
				t.Errorf("Mode = %s, want %s", resp.Root.Mode, tc.want)
			}
			if resp.Goroutines > 0 || resp.FDs > 0 {
				t.Errorf("Mount left %d goroutines running and %d fds open", resp.Goroutines, resp.FDs)
			}
			if len(resp.Warnings) > 0 {
				t.Errorf("warnings for a forced or best rung: %q", resp.Warnings)
			}
			if tc.writable && !strings.HasSuffix(resp.AsUIDOut, "ok\n") {
				t.Errorf("as container uid 1000: %q", resp.AsUIDOut)
			}
			if tc.writable {
				if len(resp.Problems) > 0 {
					t.Errorf("%d operations failed in the merged root, e.g.:\n%s", len(resp.Problems), strings.Join(first(resp.Problems, 10), "\n"))
				}
				if resp.Probes["/marker"] != "file:run\n" || resp.Probes["/usr"] != "missing" {
					t.Errorf("changes not visible in the merged root: %v", resp.Probes)
				}
			} else {
				if resp.Root.Readonly != true {
					t.Errorf("Root.Readonly = false")
				}
				for _, p := range resp.Problems {
					if !strings.Contains(p, "read-only file system") {
						t.Errorf("want EROFS, got %s", p)
					}
				}
				if req.Exercise && len(resp.Problems) == 0 {
					t.Errorf("a read-only root took writes")
				}
				if resp.Probes["/usr"] != "dir" {
					t.Errorf("/usr = %s in a read-only root", resp.Probes["/usr"])
				}
			}
			if tc.readonly {
				var st syscall.Stat_t
				must(t, syscall.Lstat(filepath.Join(f.rootfs, "etc"), &st))
				if want := fmt.Sprintf("%o 0 %d\n1\n", st.Mode&0o7777, st.Mtim.Sec); resp.Shell != want {
					t.Errorf("read-only root: /etc and write: %q, want %q", resp.Shell, want)
				}
			}
			switch {
			case tc.mode == ModeBind:
			case tc.readonly && (resp.Probes["/data/in"] != "dir" || resp.Probes["/etc/hostname"] != "file:"):
				t.Errorf("mountpoint stubs of a read-only root: %v", resp.Probes)
			case !tc.readonly && (resp.Probes["/data/in"] != "missing" || resp.Probes["/etc/hostname"] != "missing"):
				// A writable root gets none: the init makes its
				// mountpoints in the root itself (upper layer).
				t.Errorf("mountpoint stubs made for a writable root: %v", resp.Probes)
			}
			if after := treeHash(t, f.rootfs); after != before {
				t.Errorf("the bundle changed")
			}
			for _, p := range []string{"data", "etc/hostname"} {
				if _, err := os.Lstat(filepath.Join(f.rootfs, p)); err == nil {
					t.Errorf("mountpoint %s made in the bundle", p)
				}
			}
		})
	}
}

func first(s []string, n int) []string {
	if len(s) > n {
		return s[:n]
	}
	return s
}

// TestMountProbe covers the environments the ladder must get right.
func TestMountProbe(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireFuse(t)
	for _, tc := range []struct {
		name, setup string
		mode        Mode
		want        Mode   // "" = Mount must fail
		warn        string // substring of the one warning, "" = none
		errText     string
		path        string // PATH for Mount ("" = as is)
		readonly    bool
	}{
		{name: "no-overlay-no-fuse", setup: "overlay-layer", mode: ModeAuto, path: "/nonexistent", want: ModeBind, warn: "no writable layer, the root is a read-only bind"},
		{name: "no-overlay-no-fuse-readonly", setup: "overlay-layer", mode: ModeAuto, path: "/nonexistent", readonly: true, want: ModeBind},
		{name: "fuse-fails", setup: "overlay-layer", mode: ModeAuto, path: "fake", want: ModeBind, warn: "fuse: boom"},
		{name: "no-fuse-forced", mode: ModeFuse, path: "/nonexistent", errText: "fuse-overlayfs is not installed; hint: apt-get install fuse-overlayfs"},
		{name: "readonly-auto-no-stubs", mode: ModeAuto, readonly: true, want: ModeBind},
		{name: "layer-on-tmpfs", setup: "tmpfs-layer", mode: ModeAuto, want: ModeOverlay},
		{name: "layer-on-ext4", setup: "", mode: ModeAuto, want: ModeOverlay},
		{name: "layer-on-overlayfs", setup: "overlay-layer", mode: ModeAuto, want: ModeFuse, warn: "using fuse-overlayfs instead of kernel overlay"},
		{name: "layer-on-overlayfs-forced", setup: "overlay-layer", mode: ModeOverlay, errText: "refuses the layer dir on overlayfs"},
		{name: "layer-on-overlayfs-fuse", setup: "overlay-layer", mode: ModeFuse, want: ModeFuse},
		{name: "lower-on-fuse", setup: "fuse-lower", mode: ModeAuto, want: ModeOverlay},
		{name: "lower-on-fuse-fuse", setup: "fuse-lower", mode: ModeFuse, want: ModeFuse},
		{name: "lower-on-overlayfs", setup: "overlay-lower", mode: ModeAuto, want: ModeOverlay},
		{name: "lower-on-overlayfs-fuse", setup: "overlay-lower", mode: ModeFuse, want: ModeFuse},
		{name: "lower-readonly", setup: "ro-lower", mode: ModeAuto, want: ModeOverlay},
		{name: "lower-readonly-fuse", setup: "ro-lower", mode: ModeFuse, want: ModeFuse},
		{name: "lower-readonly-bind", setup: "ro-lower", mode: ModeBind, want: ModeBind},
		{name: "lower-readonly-copy", setup: "ro-lower", mode: ModeCopy, want: ModeCopy},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			before := treeHash(t, f.rootfs)
			work := filepath.Join(f.dir, "work")
			must(t, os.Mkdir(work, 0o755))
			if tc.path == "fake" {
				// A fuse-overlayfs that fails after Mount made its
				// shared bind: the next rung must still work.
				bin := filepath.Join(f.dir, "fakebin")
				must(t, os.Mkdir(bin, 0o755))
				must(t, os.WriteFile(filepath.Join(bin, "fuse-overlayfs"), []byte("#!/bin/sh\necho 'fuse: boom' >&2\nexit 1\n"), 0o755))
				tc.path = bin + ":/usr/bin:/bin"
			}
			resp := runHelper(t, nsFull, helperReq{
				Opts:     Options{Lower: f.rootfs, LayerDir: f.layer, Mode: tc.mode, Readonly: tc.readonly},
				Setup:    tc.setup,
				Work:     work,
				Path:     tc.path,
				Exercise: tc.want != ModeBind && !tc.readonly,
				Probe:    []string{"/marker", "/etc/passwd"},
			})
			if tc.want == "" {
				if resp.Err == "" || !strings.Contains(resp.Err, tc.errText) {
					t.Fatalf("want an error with %q, got %q (root %+v)", tc.errText, resp.Err, resp.Root)
				}
				t.Logf("error, as wanted: %s", resp.Err)
				return
			}
			if resp.Err != "" {
				t.Fatalf("Mount: %s", resp.Err)
			}
			if resp.Root.Mode != tc.want {
				t.Errorf("Mode = %s, want %s", resp.Root.Mode, tc.want)
			}
			switch {
			case tc.warn == "" && len(resp.Warnings) > 0:
				t.Errorf("unexpected warnings %q", resp.Warnings)
			case tc.warn != "" && (len(resp.Warnings) != 1 || !strings.Contains(resp.Warnings[0], tc.warn)):
				t.Errorf("want one warning with %q, got %q", tc.warn, resp.Warnings)
			case tc.warn != "":
				t.Logf("warning: %s", resp.Warnings[0])
			}
			if len(resp.Problems) > 0 {
				t.Errorf("%d operations failed, e.g.:\n%s", len(resp.Problems), strings.Join(first(resp.Problems, 10), "\n"))
			}
			if after := treeHash(t, f.rootfs); after != before {
				t.Errorf("the bundle changed")
			}
		})
	}
}

// TestWhiteoutLikeNames: names that look like overlay whiteouts in the
// bundle. The kernel overlay shows .wh.* files as they are; fuse-overlayfs
// hides them (and the names they "delete"), and Mount says so once.
func TestWhiteoutLikeNames(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireFuse(t)
	for _, tc := range []struct {
		mode     Mode
		visible  bool
		warnings int
	}{
		{ModeOverlay, true, 0},
		{ModeFuse, false, 1},
	} {
		t.Run(string(tc.mode), func(t *testing.T) {
			f := newFixture(t)
			for _, p := range []string{"etc/foo", "etc/.wh.foo", "etc/.wh.bar", "etc/.wh..wh..opq"} {
				must(t, os.WriteFile(filepath.Join(f.rootfs, p), []byte("x"), 0o644))
			}
			before := treeHash(t, f.rootfs)
			resp := runHelper(t, nsFull, helperReq{
				Opts:  Options{Lower: f.rootfs, LayerDir: f.layer, Mode: tc.mode},
				Probe: []string{"/etc/foo", "/etc/.wh.foo", "/etc/.wh.bar", "/etc/passwd"},
			})
			if resp.Err != "" {
				t.Fatal(resp.Err)
			}
			for _, p := range []string{"/etc/foo", "/etc/.wh.foo", "/etc/.wh.bar"} {
				if got := resp.Probes[p] != "missing"; got != tc.visible {
					t.Errorf("%s visible = %v, want %v", p, got, tc.visible)
				}
			}
			if resp.Probes["/etc/passwd"] == "missing" {
				t.Errorf("/etc/passwd hidden")
			}
			if len(resp.Warnings) != tc.warnings {
				t.Errorf("warnings = %q, want %d", resp.Warnings, tc.warnings)
			}
			for _, w := range resp.Warnings {
				t.Logf("warning: %s", w)
			}
			if treeHash(t, f.rootfs) != before {
				t.Errorf("the bundle changed")
			}
		})
	}
}

// TestScanOwnersUnreadable: a directory below the rootfs that the caller
// may not read is counted and skipped; the scan goes on (as root every
// directory is readable: it runs as the test user).
func TestScanOwnersUnreadable(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	root := t.TempDir()
	_ = os.MkdirAll(filepath.Join(root, "locked/inner"), 0o755)
	_ = os.WriteFile(filepath.Join(root, "open"), nil, 0o644)
	_ = os.Chmod(filepath.Join(root, "locked"), 0)
	t.Cleanup(func() { _ = os.Chmod(filepath.Join(root, "locked"), 0o755) })
	uids := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getuid()), Size: 1}}
	gids := []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getgid()), Size: 1}}
	r, err := ScanOwners(root, uids, gids, 0)
	if err != nil {
		t.Fatal(err)
	}
	if r.Checked != 3 || r.Complete || r.Count != 0 {
		t.Fatalf("got %+v, want 3 checked, incomplete, none unmapped", r)
	}
}

// TestUnsearchableRootfs: a rootfs the container's root may not search
// (mode 0700, owned by an id outside the single-id map) fails in Mount
// with a hint that says so, with the mode and the owner as the container
// sees it, rather than a bare "lstat …/proc: permission denied". (The
// lifecycle refuses the case where the container's root is the caller
// before the init starts; this covers explicit maps.)
func TestUnsearchableRootfs(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	f := newFixture(t)
	ns := []string{"--user", "--map-root-user", "--map-auto"}
	if out, err := exec.Command("unshare", append(ns, "sh", "-ec", "chown 5000:5000 \"$1\" && chmod 0700 \"$1\"", "sh", f.rootfs)...).CombinedOutput(); err != nil {
		testutil.Skip(t, "chown in a user namespace with the subordinate range: %v: %s (needs newuidmap and /etc/subuid entries)", err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("unshare", append(ns, "sh", "-c", "chmod 0755 \"$1\" && chown 0:0 \"$1\"", "sh", f.rootfs)...).Run()
	})
	resp := runHelper(t, nsSingle, helperReq{Opts: Options{Lower: f.rootfs, LayerDir: f.layer, Mode: ModeOverlay, Mountpoints: []Mountpoint{{Path: "/proc"}}}})
	want := "permission denied\nhint: the container's root may not search the rootfs (mode 0700, owned by uid 65534 gid 65534 as seen in the container, where 65534 stands for an id outside its map): " +
		"make the rootfs searchable by the container's root, or owned by an id in its map (docs/troubleshooting.md#rootfs-unreadable)"
	if !strings.Contains(resp.Err, "checking mountpoint /proc") || !strings.HasSuffix(resp.Err, want) {
		t.Fatalf("Mount error:\n%s\nwant it to end with:\n%s", resp.Err, want)
	}
}

// TestUnmappedOwners: a bundle unpacked with the full subordinate map, run
// with the single-id map. ScanOwners reports it from the host side; Mount
// works; the files read as nobody and cannot be written.
func TestUnmappedOwners(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireFuse(t)
	f := newFixture(t)
	// chown inside a user namespace with the full map: host ids 10xxxx.
	script := "chown 5000:5000 " + filepath.Join(f.rootfs, "etc/hosts") + " && mkdir " + filepath.Join(f.rootfs, "srv5000") +
		" && echo s > " + filepath.Join(f.rootfs, "srv5000/f") + " && chown -R 5000:5000 " + filepath.Join(f.rootfs, "srv5000")
	if out, err := exec.Command("unshare", "--user", "--map-root-user", "--map-auto", "sh", "-ec", script).CombinedOutput(); err != nil {
		testutil.Skip(t, "chown in a user namespace with the subordinate range: %v: %s (needs newuidmap and /etc/subuid entries)", err, out)
	}
	t.Cleanup(func() {
		_ = exec.Command("unshare", "--user", "--map-root-user", "--map-auto", "rm", "-rf", filepath.Join(f.rootfs, "srv5000"), filepath.Join(f.rootfs, "etc/hosts")).Run()
	})
	uid, gid := os.Getuid(), os.Getgid()
	single := func(id int) []specs.LinuxIDMapping {
		return []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(id), Size: 1}}
	}
	rep, err := ScanOwners(f.rootfs, single(uid), single(gid), 0)
	if err != nil {
		t.Fatal(err)
	}
	if rep.Count != 4 { // etc/hosts, etc/hosts.link (same inode), srv5000, srv5000/f
		t.Errorf("ScanOwners counted %d, want 4 (%+v)", rep.Count, rep)
	}
	t.Logf("warning: %s", rep.Warning())
	before := treeHash(t, f.rootfs)
	for _, mode := range []Mode{ModeOverlay, ModeFuse, ModeCopy} {
		t.Run(string(mode), func(t *testing.T) {
			req := helperReq{
				Opts:  Options{Lower: f.rootfs, LayerDir: f.layer, Mode: mode},
				Probe: []string{"/etc/hosts", "/srv5000/f"},
				Shell: `ls -ln etc/hosts | cut -d' ' -f3; (echo x >> etc/hosts) 2>/dev/null && echo appended || echo denied; touch srv5000/new 2>/dev/null && echo created || echo denied; (rm etc/hosts.link 2>/dev/null) && echo removed || echo kept`,
			}
			resp := runHelper(t, nsSingle, req)
			if mode == ModeCopy {
				if resp.Err != "" || len(resp.Warnings) != 1 {
					t.Errorf("copy: err %q, warnings %q (want one about the inexact copy)", resp.Err, resp.Warnings)
				}
				return
			}
			if resp.Err != "" {
				t.Fatal(resp.Err)
			}
			if resp.Probes["/etc/hosts"] != "file:127.0.0.1 localhost\n" {
				t.Errorf("reading an unmapped file: %q", resp.Probes["/etc/hosts"])
			}
			// The kernel overlay can delete an unmapped file (a whiteout in
			// the upper dir); fuse-overlayfs fails with EOVERFLOW.
			want := "65534\ndenied\ndenied\nremoved\n"
			if mode == ModeFuse {
				want = "65534\ndenied\ndenied\nkept\n"
			}
			if got := resp.Shell; got != want {
				t.Errorf("in the container got %q, want %q", got, want)
			}
		})
	}
	if treeHash(t, f.rootfs) != before {
		t.Errorf("the bundle changed")
	}
}

// TestCrash kills the namespace's process, or fuse-overlayfs, with SIGKILL
// at the worst moment (mounted, layer written), then checks that Cleanup
// removes everything and that the next Mount on the same layer dir starts
// empty.
func TestCrash(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireFuse(t)
	for _, tc := range []struct {
		name   string
		mode   Mode
		kind   nsKind
		victim string // "init" or "fuse"
		live   bool   // Cleanup while the namespace process still lives
	}{
		{"overlay-kill-init", ModeOverlay, nsFull, "init", false},
		{"fuse-kill-init", ModeFuse, nsFull, "init", false},
		{"fuse-kill-fuse", ModeFuse, nsFull, "fuse", false},
		{"fuse-kill-fuse-cleanup-live", ModeFuse, nsFull, "fuse", true},
		{"fuse-no-pidns-kill-init", ModeFuse, nsNoPID, "init", false},
		{"overlay-cleanup-live", ModeOverlay, nsFull, "", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f := newFixture(t)
			before := treeHash(t, f.rootfs)
			cmd, stdin, r := startHelper(t, tc.kind, helperReq{
				Opts: Options{Lower: f.rootfs, LayerDir: f.layer, Mode: tc.mode},
				// root-owned and subordinate-owned leftovers in the upper dir
				Shell: "echo old > marker && mkdir -p home/u && echo x > home/u/f && chown -R 1000:1000 home/u && chmod 0700 home/u",
				Hold:  true,
			})
			resp := readResp(t, r)
			if resp.Err != "" {
				t.Fatal(resp.Err)
			}
			fuses, err := fusePIDs("/proc", f.layer, os.Getuid())
			must(t, err)
			if (tc.mode == ModeFuse) != (len(fuses) == 1) {
				t.Fatalf("fuse-overlayfs processes for the layer: %v", fuses)
			}
			switch tc.victim {
			case "init":
				must(t, syscallKill(resp.HostPID))
			case "fuse":
				must(t, syscallKill(fuses[0]))
			}
			if !tc.live {
				stdin.Close()
				_ = cmd.Wait()
				if tc.kind != nsNoPID {
					waitGone(t, fuses) // died with pid 1 of its namespace
				}
			}
			err = Cleanup(f.layer)
			if tc.kind == nsFull && !errors.Is(err, ErrForeignOwned) {
				t.Errorf("Cleanup as the user: %v, want ErrForeignOwned (home/u is uid 1000 inside)", err)
			}
			if err != nil && !errors.Is(err, ErrForeignOwned) {
				t.Fatalf("Cleanup: %v", err)
			}
			if err != nil {
				t.Logf("host Cleanup: %v", err)
				if c := runHelper(t, nsFull, helperReq{Cleanup: true, Opts: Options{LayerDir: f.layer}}); c.Err != "" {
					t.Fatalf("Cleanup in the user namespace: %s", c.Err)
				}
			}
			if _, err := os.Lstat(f.layer); !errors.Is(err, os.ErrNotExist) {
				t.Errorf("layer dir still there after Cleanup: %v", err)
			}
			if left, _ := fusePIDs("/proc", f.layer, os.Getuid()); len(left) > 0 {
				t.Errorf("fuse-overlayfs still running: %v", left)
			}
			if tc.live {
				stdin.Close()
				_ = cmd.Wait()
			}
			// The next run on the same layer dir sees none of it.
			must(t, os.Mkdir(f.layer, 0o700))
			next := runHelper(t, nsFull, helperReq{
				Opts:  Options{Lower: f.rootfs, LayerDir: f.layer, Mode: tc.mode},
				Probe: []string{"/marker", "/home/u"},
			})
			if next.Err != "" {
				t.Fatal(next.Err)
			}
			if next.Probes["/marker"] != "missing" || next.Probes["/home/u"] != "missing" {
				t.Errorf("a leftover shows through: %v", next.Probes)
			}
			if treeHash(t, f.rootfs) != before {
				t.Errorf("the bundle changed")
			}
		})
	}
}

// TestMountOverLeftover: without Cleanup in between (sandy killed before
// delete), a second Mount on the same layer dir starts from an empty layer.
func TestMountOverLeftover(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	requireFuse(t)
	for _, mode := range []Mode{ModeOverlay, ModeFuse, ModeCopy} {
		t.Run(string(mode), func(t *testing.T) {
			f := newFixture(t)
			first := runHelper(t, nsFull, helperReq{
				Opts:  Options{Lower: f.rootfs, LayerDir: f.layer, Mode: mode},
				Shell: "echo old > marker && mkdir -p home/u && echo x > home/u/f && chown -R 1000:1000 home/u && chmod 0700 home/u && rm etc/passwd",
			})
			if first.Err != "" {
				t.Fatal(first.Err)
			}
			next := runHelper(t, nsFull, helperReq{
				Opts:  Options{Lower: f.rootfs, LayerDir: f.layer, Mode: mode},
				Probe: []string{"/marker", "/home/u", "/etc/passwd"},
			})
			if next.Err != "" {
				t.Fatal(next.Err)
			}
			if next.Probes["/marker"] != "missing" || next.Probes["/home/u"] != "missing" || next.Probes["/etc/passwd"] == "missing" {
				t.Errorf("a leftover shows through: %v", next.Probes)
			}
		})
	}
}

func syscallKill(pid int) error {
	p, err := os.FindProcess(pid)
	if err != nil {
		return err
	}
	return p.Kill()
}

func waitGone(t *testing.T, pids []int) {
	t.Helper()
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				t.Fatalf("fuse-overlayfs pid %d outlived its pid namespace", pid)
			}
			time.Sleep(10 * time.Millisecond)
		}
	}
}

// TestCleanupSparesBundle: Cleanup run where the bundle is mounted inside
// the layer (and linked from it) refuses to cross the mount and leaves the
// bundle as it was.
func TestCleanupSparesBundle(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	f := newFixture(t)
	before := treeHash(t, f.rootfs)
	resp := runHelper(t, nsFull, helperReq{Setup: "bundle-in-layer", Opts: Options{Lower: f.rootfs, LayerDir: f.layer}})
	if !strings.Contains(resp.Err, "mount point; refusing to cross it") {
		t.Errorf("Cleanup over a mount: %q, want a refusal", resp.Err)
	}
	if treeHash(t, f.rootfs) != before {
		t.Errorf("the bundle changed")
	}
}
