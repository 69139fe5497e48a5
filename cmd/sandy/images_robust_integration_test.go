//go:build integration

package main_test

import (
	"encoding/json"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// The bad-input and robustness cases of issue 12: an ambiguous short
// name, concurrent pulls, rmi of an image in use, Ctrl-C, a full disk and
// a gzip bomb. After each, `sandy images` must be truthful and the store
// usable.

// TestImagePullAmbiguousShortName: two unqualified-search registries,
// short-name-mode = "enforcing" and no terminal: the pull fails naming
// every candidate and the ways out, and stores nothing.
func TestImagePullAmbiguousShortName(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	e.write(filepath.Join(e.dir, "registries.conf"),
		"unqualified-search-registries = [\"reg-a.example:5000\", \"reg-b.example\"]\nshort-name-mode = \"enforcing\"\n")
	msg := e.fails(125, "pull", "tools/thing:2")
	for _, want := range []string{"reg-a.example:5000/tools/thing:2", "reg-b.example/tools/thing:2", "ambiguous", "short-name-mode"} {
		if !strings.Contains(msg, want) {
			t.Errorf("ambiguous short name: the error lacks %q:\n%s", want, msg)
		}
	}
	e.wantNames()
}

// storeLayers counts the layers in the store's layers.json (the driver's
// <driver>-layers directory under the graph root).
func storeLayers(t *testing.T, graph string) int {
	t.Helper()
	files, _ := filepath.Glob(filepath.Join(graph, "*-layers", "layers.json"))
	if len(files) != 1 {
		t.Fatalf("want one layers.json under %s, found %v", graph, files)
	}
	b, err := os.ReadFile(files[0])
	if err != nil {
		t.Fatal(err)
	}
	var layers []map[string]any
	if err := json.Unmarshal(b, &layers); err != nil {
		t.Fatalf("%s: %v", files[0], err)
	}
	return len(layers)
}

// rootfsLayers is the number of layers of an image as inspect reports them.
func rootfsLayers(t *testing.T, e *imgEnv, name string) int {
	t.Helper()
	rootfs, _ := e.inspect(name)["RootFS"].(map[string]any)
	layers, _ := rootfs["Layers"].([]any)
	if len(layers) == 0 {
		t.Fatalf("inspect %s: no RootFS.Layers", name)
	}
	return len(layers)
}

// TestImageConcurrentPulls: two pulls of one image into one store at
// once both succeed, and leave one image and one copy of each layer.
func TestImageConcurrentPulls(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	reg := imagefix.StartRegistry(t, imagefix.RegistryOptions{})
	layout := filepath.Join(e.dir, "layout")
	imagefix.WriteLayout(t, layout, imagefix.BusyboxWithChanges(t))
	ref := imagefix.PushOCILayout(t, reg, layout, "latest", "same:1")
	for round := range 3 {
		var wg sync.WaitGroup
		results := make([]result, 2)
		for i := range results {
			wg.Add(1)
			go func() {
				defer wg.Done()
				results[i] = e.run_(nil, "pull", "-q", "--tls-verify=false", ref)
			}()
		}
		wg.Wait()
		ids := map[string]bool{}
		for i, r := range results {
			if r.code != 0 {
				t.Fatalf("round %d: concurrent pull %d: exit %d\n%s", round, i, r.code, r.stderr)
			}
			ids[strings.TrimSpace(r.stdout)] = true
		}
		if len(ids) != 1 {
			t.Errorf("round %d: the two pulls printed different ids: %v", round, ids)
		}
		e.wantNames(reg.Addr + "/same:1")
		if n, want := storeLayers(t, filepath.Join(e.dir, "graph")), rootfsLayers(t, e, ref); n != want {
			t.Fatalf("round %d: the store holds %d layers, the image has %d: concurrent pulls duplicated layers", round, n, want)
		}
		e.ok("rmi", ref)
		if n := storeLayers(t, filepath.Join(e.dir, "graph")); n != 0 {
			t.Fatalf("round %d: %d layers left after rmi of the only image", round, n)
		}
	}
}

// podmanEnv points e at a private XDG home where podman 4.3 and sandy
// find the same default store, and returns a podman runner (fatal on
// error) and a podman command maker.
func podmanEnv(t *testing.T, e *imgEnv) (run func(args ...string) string, cmd func(args ...string) *exec.Cmd) {
	t.Helper()
	podman := testutil.RequireBinary(t, "podman", "apt-get install podman")
	var env []string
	for _, kv := range e.env {
		if !strings.HasPrefix(kv, "CONTAINERS_STORAGE_CONF=") {
			env = append(env, kv)
		}
	}
	for k, d := range map[string]string{"XDG_DATA_HOME": "data", "XDG_CONFIG_HOME": "config", "XDG_RUNTIME_DIR": "xdgrun"} {
		p := filepath.Join(e.dir, d)
		if err := os.MkdirAll(p, 0o700); err != nil {
			t.Fatal(err)
		}
		env = append(env, k+"="+p)
	}
	e.env = env
	if err := os.MkdirAll(filepath.Join(e.dir, "config", "containers"), 0o700); err != nil {
		t.Fatal(err)
	}
	// runc, not the default: podman 4.3 takes crun when it is installed,
	// and crun refuses a hybrid cgroup host such as this project's.
	e.write(filepath.Join(e.dir, "config", "containers", "containers.conf"), "[engine]\ncgroup_manager = \"cgroupfs\"\nevents_logger = \"file\"\nruntime = \"runc\"\n")
	cmd = func(args ...string) *exec.Cmd {
		c := exec.Command(podman, args...)
		c.Env = e.env
		return c
	}
	run = func(args ...string) string {
		t.Helper()
		out, err := cmd(args...).CombinedOutput()
		if err != nil {
			t.Fatalf("podman %v: %v\n%s", args, err, out)
		}
		return string(out)
	}
	t.Cleanup(func() {
		_ = cmd("rm", "-a", "-f").Run()
		if b, err := os.ReadFile(filepath.Join(e.dir, "xdgrun", "libpod", "tmp", "pause.pid")); err == nil {
			var pid int
			if _, err := fmt.Sscan(string(b), &pid); err == nil && pid > 1 {
				_ = unix.Kill(pid, unix.SIGKILL)
			}
		}
	})
	return run, cmd
}

// TestImageRmiInUse: podman 4.3 creates a container from an image; `sandy rmi` refuses (exit 2, naming the container), `rmi -f`
// removes the container's storage and the image, and podman agrees.
func TestImageRmiInUse(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	podman, _ := podmanEnv(t, e)
	archive := filepath.Join(e.dir, "bb.tar")
	if _, err := imagefix.DockerArchive(archive, "localhost/inuse:1", imagefix.Busybox(t), false); err != nil {
		t.Fatal(err)
	}
	// podman first: podman 4.3 picks its own driver for a new store
	// (vfs here) and would not see an overlay store sandy started.
	podman("load", "-q", "-i", archive)
	podman("create", "--name", "user-of-inuse", "--network", "none", "localhost/inuse:1", "true")
	msg := e.fails(2, "rmi", "localhost/inuse:1")
	if !strings.Contains(msg, "user-of-inuse") {
		t.Errorf("rmi of an image in use: the error does not name the container user-of-inuse:\n%s", msg)
	}
	e.wantNames("localhost/inuse:1")
	if out := podman("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, "localhost/inuse:1") {
		t.Errorf("podman lost the image after a refused rmi:\n%s", out)
	}
	r := e.run_(nil, "rmi", "-f", "localhost/inuse:1")
	if r.code != 0 || !strings.Contains(r.stdout, "Deleted:") || !strings.Contains(r.stderr, "user-of-inuse") {
		t.Fatalf("rmi -f: exit %d\nstdout: %s\nstderr: %s\nwant Deleted: and a line naming the removed container", r.code, r.stdout, r.stderr)
	}
	e.wantNames()
	if out := strings.TrimSpace(podman("images", "-q")); out != "" {
		t.Errorf("podman still lists images after sandy rmi -f: %q", out)
	}
	// The container's storage is gone; podman's own record of it stays
	// (sandy does not edit libpod's database, as buildah does not) and
	// podman rm removes it cleanly.
	if out := strings.TrimSpace(podman("ps", "-a", "--external", "--format", "{{.Names}} {{.Image}}")); out != "" {
		t.Logf("podman ps -a after sandy rmi -f: %q", out)
	}
	podman("rm", "-f", "user-of-inuse")
	if out := strings.TrimSpace(podman("ps", "-a", "--external", "-q")); out != "" {
		t.Errorf("podman ps -a after podman rm: %q", out)
	}
	if n := storeLayers(t, filepath.Join(e.dir, "data", "containers", "storage")); n != 0 {
		t.Errorf("%d layers left in the store after rmi -f and podman rm", n)
	}
}

// pullProcs lists the processes (pid and command line) whose environment
// names dir: every process a pull of an imgEnv starts (sandy, the helper
// re-exec'd into the namespace, the storage library's re-execs) inherits
// its CONTAINERS_* variables, which name the test's directory.
func pullProcs(dir string) []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		var pid int
		if _, err := fmt.Sscan(ent.Name(), &pid); err != nil || pid == os.Getpid() {
			continue
		}
		env, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "environ"))
		if err != nil || !strings.Contains(string(env), dir) {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		out = append(out, fmt.Sprintf("%d %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " ")))
	}
	return out
}

// largestFile is the size of the largest file under dir.
func largestFile(dir string) int64 {
	var max int64
	_ = filepath.WalkDir(dir, func(_ string, d os.DirEntry, err error) error {
		if err == nil && d.Type().IsRegular() {
			if fi, err := d.Info(); err == nil && fi.Size() > max {
				max = fi.Size()
			}
		}
		return nil
	})
	return max
}

// TestImagePullInterrupted: SIGINT (Ctrl-C) or SIGTERM to sandy while it
// writes a large layer: sandy exits within a bound with 128+signal, no
// process of the pull remains (the helper's child in the namespace
// included), no image is listed, and the next pull works.
func TestImagePullInterrupted(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	reg := imagefix.StartRegistry(t, imagefix.RegistryOptions{})
	layout := filepath.Join(e.dir, "layout")
	// 1 GiB of zeros in a 1 MiB gzip blob: the download is instant, the
	// layer's extraction takes seconds, the phase a cancelled context
	// does not reach by itself.
	imagefix.WriteLayout(t, layout, imagefix.Busybox(t).WithLayers(imagefix.GzipBombLayer(1<<30)))
	ref := imagefix.PushOCILayout(t, reg, layout, "latest", "big:1")
	l, err := imagefix.ReadLayout(layout, "latest")
	if err != nil {
		t.Fatal(err)
	}
	bigBlob := l.Layers[len(l.Layers)-1].Size
	// A private TMPDIR, where blobs are staged: it must be empty again.
	staging := filepath.Join(e.dir, "tmp")
	if err := os.Mkdir(staging, 0o700); err != nil {
		t.Fatal(err)
	}
	e.env = append(e.env, "TMPDIR="+staging)
	cases := []struct {
		name string
		sig  unix.Signal
		// group signals the process group, as a terminal's Ctrl-C
		// does: sandy, its child in the namespace and the storage
		// library's re-execs all get it (the child twice: once
		// forwarded).
		group bool
		// extracting waits until the big blob is staged whole, so the
		// signal lands in the layer's extraction (storage's ApplyDiff,
		// which takes no context); otherwise it lands in the download.
		extracting bool
	}{
		{"SIGINT", unix.SIGINT, false, false},
		{"SIGTERM", unix.SIGTERM, false, false},
		{"Ctrl-C", unix.SIGINT, true, false},
		{"Ctrl-C-extracting", unix.SIGINT, true, true},
	}
	for _, tc := range cases {
		sig := tc.sig
		t.Run(tc.name, func(t *testing.T) {
			c := e.cmd("pull", "--tls-verify=false", ref)
			c.SysProcAttr = &unix.SysProcAttr{Setpgid: true}
			var errb syncBuffer
			c.Stderr = &errb
			if err := c.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan struct{})
			go func() { _ = c.Wait(); close(done) }()
			deadline := time.Now().Add(30 * time.Second)
			for strings.Count(errb.String(), "Copying blob") < 2 && time.Now().Before(deadline) {
				time.Sleep(20 * time.Millisecond)
			}
			// The big blob is staged while it is digested (decompressed),
			// so its staged file grows for about a second per GiB.
			want := int64(1)
			if tc.extracting {
				want = bigBlob
			}
			for largestFile(staging) < want && time.Now().Before(deadline) {
				time.Sleep(5 * time.Millisecond)
			}
			select {
			case <-done:
				t.Fatalf("the pull finished before the signal (exit %d): make the layer bigger\n%s", c.ProcessState.ExitCode(), errb.String())
			default:
			}
			sent := time.Now()
			target := c.Process.Pid
			if tc.group {
				target = -target
			}
			if err := unix.Kill(target, sig); err != nil {
				t.Fatal(err)
			}
			select {
			case <-done:
			case <-time.After(20 * time.Second):
				_ = c.Process.Kill()
				<-done
				t.Fatalf("sandy pull still runs 20 s after %v\n%s", sig, errb.String())
			}
			took := time.Since(sent)
			t.Logf("%v: exit %d after %v\n%s", sig, c.ProcessState.ExitCode(), took, errb.String())
			if took > 10*time.Second {
				t.Errorf("sandy pull took %v to stop after %v, want < 10 s", took, sig)
			}
			if code := c.ProcessState.ExitCode(); code != 128+int(sig) {
				t.Errorf("exit status %d after %v, want %d", code, sig, 128+int(sig))
			}
			if !strings.Contains(errb.String(), "interrupted") {
				t.Errorf("no word of the interruption on stderr:\n%s", errb.String())
			}
			var left []string
			for range 50 {
				if left = pullProcs(e.dir); len(left) == 0 {
					break
				}
				time.Sleep(20 * time.Millisecond)
			}
			if len(left) > 0 {
				t.Errorf("processes of the pull outlive sandy: %q", left)
			}
			e.wantNames()
			if ents := stagingLeft(staging); len(ents) != 0 {
				t.Errorf("the interrupted pull left %d staging entries in TMPDIR (%s)", len(ents), ents[0].Name())
			}
			// The next case starts without the layers this one kept.
			e.ok("image", "prune", "-f")
		})
	}
	start := time.Now()
	e.ok("pull", "-q", "--tls-verify=false", ref)
	t.Logf("the next pull took %v", time.Since(start))
	e.wantNames(reg.Addr + "/big:1")
	if n, want := storeLayers(t, filepath.Join(e.dir, "graph")), rootfsLayers(t, e, ref); n != want {
		t.Errorf("the store holds %d layers, the image %d: the interrupted pulls left some", n, want)
	}
}

// noise is n incompressible bytes (a layer gzip cannot shrink).
func noise(n int) []byte {
	var seed [32]byte
	copy(seed[:], "sandy robust test")
	r := rand.New(rand.NewChaCha8(seed))
	b := make([]byte, n)
	for i := range b {
		b[i] = byte(r.Uint32())
	}
	return b
}

// freeBytes is the space statfs(2) says is available at p.
func freeBytes(t *testing.T, p string) int64 {
	t.Helper()
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		t.Fatal(err)
	}
	return int64(st.Bavail) * int64(st.Bsize) // Bsize is int32 on 386
}

// TestImagePullDiskFull: the store on a 16 MiB tmpfs, an image with a
// 32 MiB layer: the pull fails with the full-disk hint, no image is
// listed, the space is given back, and an image that fits pulls.
func TestImagePullDiskFull(t *testing.T) {
	testutil.SandyWithImages(t)
	// The root part mounts the small filesystem; the test user's part
	// (a child of this process) finds it by its parent's pid.
	pid := os.Getpid()
	if os.Getuid() != 0 {
		pid = os.Getppid()
	}
	small := filepath.Join(os.TempDir(), "sandy-test-share", fmt.Sprintf("enospc-%d", pid))
	if os.Getuid() == 0 {
		u := testutil.TestUser(t)
		if err := os.MkdirAll(small, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", small, "tmpfs", 0, "size=16m,mode=0755"); err != nil {
			t.Fatalf("mounting a 16 MiB tmpfs on %s: %v", small, err)
		}
		t.Cleanup(func() {
			_ = unix.Unmount(small, unix.MNT_DETACH)
			_ = os.Remove(small)
		})
		var uid, gid int
		fmt.Sscan(u.Uid, &uid)
		fmt.Sscan(u.Gid, &gid)
		if err := os.Chown(small, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	graph := filepath.Join(small, "graph")
	e.write(filepath.Join(e.dir, "storage.conf"), fmt.Sprintf("[storage]\ngraphroot = %q\nrunroot = %q\n", graph, filepath.Join(e.dir, "run")))
	staging := filepath.Join(e.dir, "tmp")
	if err := os.Mkdir(staging, 0o700); err != nil {
		t.Fatal(err)
	}
	e.env = append(e.env, "TMPDIR="+staging)
	big := filepath.Join(e.dir, "big")
	imagefix.WriteLayout(t, big, imagefix.Busybox(t).WithLayers(imagefix.Layer{Entries: []imagefix.Entry{
		imagefix.BinaryFile("big", 0o644, noise(32<<20)),
	}}))
	good := filepath.Join(e.dir, "good")
	imagefix.WriteLayout(t, good, imagefix.Busybox(t))

	e.wantNames() // creates the store
	before := freeBytes(t, small)
	msg := e.fails(125, "pull", "-q", "oci:"+big+":latest")
	if !strings.Contains(msg, "the disk holding the image store is full") {
		t.Errorf("pull onto a full disk: no full-disk hint:\n%s", msg)
	}
	e.wantNames()
	after := freeBytes(t, small)
	t.Logf("free on the store's filesystem: %d KiB before, %d KiB after the failed pull", before>>10, after>>10)
	// What stays is the layer the pull completed (busybox, 1.9 MiB), for
	// the next try to reuse; the layer that did not fit is gone. image
	// prune gives that back too.
	if before-after > 4<<20 {
		t.Errorf("the failed pull keeps %d KiB of the store's filesystem (free %d KiB before, %d KiB after)", (before-after)>>10, before>>10, after>>10)
	}
	out := e.ok("image", "prune", "-f")
	pruned := freeBytes(t, small)
	t.Logf("after image prune: %d KiB free; it printed %q", pruned>>10, out)
	if before-pruned > 256<<10 {
		t.Errorf("image prune left %d KiB of the failed pull in the store", (before-pruned)>>10)
	}
	if n := storeLayers(t, graph); n != 0 {
		t.Errorf("image prune left %d layers no image uses", n)
	}
	if ents := stagingLeft(staging); len(ents) != 0 {
		t.Errorf("the failed pull left %d staging entries in TMPDIR", len(ents))
	}
	e.ok("pull", "-q", "oci:"+good+":latest")
	e.wantNames("localhost/latest:latest")
}

// TestImagePullGzipBomb: a 512 MiB file of zeros in a 512 KiB gzip
// layer. With --max-layer-size (or SANDY_MAX_LAYER_SIZE) below that, the
// pull is refused and stores nothing. Without (the default, as podman)
// it is stored; either way the store stays consistent (one image of the
// real size, its layers gone with rmi) and nothing outside the store is
// written (the staging directory is empty again).
func TestImagePullGzipBomb(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	staging := filepath.Join(e.dir, "tmp")
	if err := os.Mkdir(staging, 0o700); err != nil {
		t.Fatal(err)
	}
	e.env = append(e.env, "TMPDIR="+staging)
	layout := filepath.Join(e.dir, "bomb")
	const size = 512 << 20
	imagefix.WriteLayout(t, layout, imagefix.Busybox(t).WithLayers(imagefix.GzipBombLayer(size)))
	// With a bound (flag, then environment), the bomb is refused.
	for _, bound := range []struct{ flag, env string }{{"--max-layer-size=64MiB", ""}, {"", "SANDY_MAX_LAYER_SIZE=64MiB"}} {
		c := e.cmd("pull", "-q", "oci:"+layout+":latest")
		if bound.flag != "" {
			c = e.cmd("pull", "-q", bound.flag, "oci:"+layout+":latest")
		} else {
			c.Env = append(c.Env, bound.env)
		}
		out, err := c.CombinedOutput()
		if code := c.ProcessState.ExitCode(); code != 125 || !strings.Contains(string(out), "decompression bomb") || !strings.Contains(string(out), "--max-layer-size") {
			t.Fatalf("pull of the bomb with %s%s: exit %d (%v), want 125 and the bound named:\n%s", bound.flag, bound.env, code, err, out)
		}
		t.Logf("with %s%s: %s", bound.flag, bound.env, out)
		e.wantNames()
		if ents := stagingLeft(staging); len(ents) != 0 {
			t.Errorf("the refused pull left %d staging entries in TMPDIR", len(ents))
		}
		if n := storeLayers(t, filepath.Join(e.dir, "graph")); n > 1 {
			t.Errorf("the refused pull left %d layers (at most the busybox base may stay)", n)
		}
	}
	// Without one (the default, as podman), it is stored.
	e.ok("pull", "-q", "oci:"+layout+":latest")
	e.wantNames("localhost/latest:latest")
	if ents := stagingLeft(staging); len(ents) != 0 {
		t.Errorf("the pull left %d staging entries in TMPDIR", len(ents))
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.ok("images", "--format", "json")), &list); err != nil || len(list) != 1 {
		t.Fatalf("images --format json: %v (%d images)", err, len(list))
	}
	if got, _ := list[0]["Size"].(float64); got < size {
		t.Errorf("images reports %v bytes, want at least the %d the bomb holds", list[0]["Size"], size)
	}
	e.ok("rmi", "localhost/latest:latest")
	e.wantNames()
	if n := storeLayers(t, filepath.Join(e.dir, "graph")); n != 0 {
		t.Errorf("%d layers left after rmi", n)
	}
}

// stagingLeft lists what a pull left in its TMPDIR, but the runtime
// directories made there on purpose without XDG_RUNTIME_DIR: sandy's state
// root (sandy-UID: the image store's pause record,
// internal/imagehelper/pause.go) and the storage library's (storage-run-UID:
// go.podman.io/storage's homedir.GetRuntimeDir falls back to it where no
// /run/user/UID of the user's exists, as on a host without systemd-logind).
func stagingLeft(dir string) []os.DirEntry {
	uid := strconv.Itoa(os.Getuid())
	ents, _ := os.ReadDir(dir)
	var left []os.DirEntry
	for _, e := range ents {
		if n := e.Name(); n != "sandy-"+uid && n != "storage-run-"+uid {
			left = append(left, e)
		}
	}
	return left
}
