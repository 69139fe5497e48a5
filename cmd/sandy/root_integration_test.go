//go:build integration

package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// These tests run sandy as root (CI runs the suite as root), for what only
// a privileged caller does: write any id map, and make device nodes.

func requireRoot(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		testutil.Skip(t, "needs root: it tests what sandy does for a privileged caller (run the suite as root)")
	}
}

// TestRootWritesAnyMap: root (or uid 0 of an engine's user namespace) maps
// host ids it has no /etc/subuid range for, as runc does: the kernel
// checks them, not newuidmap.
func TestRootWritesAnyMap(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 2000}}
	e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 3000}}
	e.spec.Process.User.AdditionalGids = []uint32{2500}
	e.write()
	// The rootfs belongs to the container's root, as an engine that maps
	// ids chowns its storage: root's own files would be nobody's inside
	// (and sandy would warn so).
	err := filepath.Walk(e.bundle+"/rootfs", func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		return os.Lchown(p, 1000, 1000)
	})
	if err != nil {
		t.Fatal(err)
	}
	layersBefore, _ := filepath.Glob(filepath.Join(os.TempDir(), "sandy-layer-*"))
	// The container's root, host uid 1000, cannot reach root's private
	// state root: its layer lives elsewhere, and is gone after the run.
	e.sh("cat /proc/self/uid_map /proc/self/gid_map; id -G; echo w > /written && cat /written")
	r := e.runBundle(0)
	f := strings.Fields(r.stdout)
	if len(f) != 9 || f[0] != "0" || f[1] != "1000" || f[2] != "2000" || f[3] != "0" || f[4] != "1000" || f[5] != "3000" || f[6] != "0" || f[7] != "2500" || f[8] != "w" {
		t.Fatalf("maps, groups, write: %q (stderr %s)", r.stdout, r.stderr)
	}
	if strings.Contains(otherWarnings(r.stderr), "warning") {
		t.Errorf("unexpected warning: %s", r.stderr)
	}
	e.run("", "list", "-q") // waits for the run's reaper, which removes the layer
	layersAfter, _ := filepath.Glob(filepath.Join(os.TempDir(), "sandy-layer-*"))
	if len(layersAfter) > len(layersBefore) {
		t.Errorf("layer directories left: %v (before: %v)", layersAfter, layersBefore)
	}
	assertNothingLeft(t, e)

	// exec joins it as root of the container (root's own uid 0 is not
	// mapped there).
	e.sh("echo w > /written; sleep 100")
	id := uniqueID("rootmap")
	// create defaults to direct, where uid 1000 cannot write root's
	// bundle (as with runc): the layer, as run uses it.
	t.Setenv("SANDY_ROOTFS_MODE", "auto")
	startDetached(t, e, id)
	waitFor(t, 10*time.Second, "the container's write", func() bool {
		r = e.run("", "exec", id, "sh", "-c", "id -u; cat /written")
		return r.code == 0
	})
	if r.code != 0 || r.stdout != "0\nw\n" {
		t.Fatalf("exec: %d %q %s", r.code, r.stdout, r.stderr)
	}
}

// TestRootDevices: root with no user namespace in the config makes
// linux.devices nodes with mknod, with the mode and owner asked for.
func TestRootDevices(t *testing.T) {
	requireRoot(t)
	e := newEnv(t).sh("stat -c '%F %a %u:%g %t:%T' /dev/sandy-null /dev/sub/fifo")
	var ns []specs.LinuxNamespace
	for _, n := range e.spec.Linux.Namespaces {
		if n.Type != specs.UserNamespace {
			ns = append(ns, n)
		}
	}
	e.spec.Linux.Namespaces = ns
	e.spec.Linux.UIDMappings, e.spec.Linux.GIDMappings = nil, nil
	mode := os.FileMode(0o640)
	uid, gid := uint32(7), uint32(8)
	e.spec.Linux.Devices = []specs.LinuxDevice{
		{Path: "/dev/sandy-null", Type: "c", Major: 1, Minor: 3, FileMode: &mode, UID: &uid, GID: &gid},
		{Path: "/dev/sub/fifo", Type: "p"},
	}
	e.write()
	r := e.runBundle(0)
	want := "character special file 640 7:8 1:3\nfifo 666 0:0 0:0\n"
	if r.stdout != want {
		t.Fatalf("device nodes:\n%s\nwant:\n%s\nstderr %s", r.stdout, want, r.stderr)
	}
}

// hostIDs makes e's config run in the host's user namespace (no user
// namespace, no maps), as runc's tests do as root: process.user is then a
// host uid, and the host's prlimit(2) on a process of another uid needs
// CAP_SYS_RESOURCE, which root may lack (a bounding set without it).
func hostIDs(e *env) {
	var ns []specs.LinuxNamespace
	for _, n := range e.spec.Linux.Namespaces {
		if n.Type != specs.UserNamespace {
			ns = append(ns, n)
		}
	}
	e.spec.Linux.Namespaces = ns
	e.spec.Linux.UIDMappings, e.spec.Linux.GIDMappings = nil, nil
}

// TestRootRlimitsForUser: process.rlimits hold for a process.user other
// than root, for run and for exec -u: the host sets them while the init
// (and the exec init) still has root's ids, as runc does (before the id
// switch, prlimit(2) on a process of another uid needs CAP_SYS_RESOURCE).
func TestRootRlimitsForUser(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	hostIDs(e)
	e.spec.Process.User = specs.User{UID: 1000, GID: 1000}
	e.spec.Process.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 777, Hard: 888}}
	e.sh("id -u; ulimit -n; ulimit -Hn")
	if r := e.runBundle(0); r.stdout != "1000\n777\n888\n" {
		t.Fatalf("run: %q, want uid 1000 and limits 777/888 (stderr %s)", r.stdout, r.stderr)
	}

	e.spec.Process.User = specs.User{}
	e.sh("sleep 100")
	id := uniqueID("rlimuser")
	startDetached(t, e, id)
	r := e.run("", "exec", "-u", "1000", id, "sh", "-c", "id -u; ulimit -n; ulimit -Hn")
	if r.code != 0 || r.stdout != "1000\n777\n888\n" {
		t.Fatalf("exec -u 1000: %d %q, want uid 1000 and limits 777/888 (stderr %s)", r.code, r.stdout, r.stderr)
	}
}

// TestRootCwdOnlyRootCanEnter: a process.cwd only root can enter (0700,
// root's) works for process.user 1000, as with runc: the init enters it
// before the id switch (and again after, when only the user could).
func TestRootCwdOnlyRootCanEnter(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	hostIDs(e)
	dir := filepath.Join(e.bundle, "rootfs", "private")
	if err := os.Mkdir(dir, 0o700); err != nil {
		t.Fatal(err)
	}
	e.spec.Process.User = specs.User{UID: 1000, GID: 1000}
	e.spec.Process.Cwd = "/private"
	e.sh("id -u; pwd")
	if r := e.runBundle(0); r.stdout != "1000\n/private\n" {
		t.Fatalf("run: %q, want uid 1000 in /private (stderr %s)", r.stdout, r.stderr)
	}
}

// TestRootOOMScoreAdjLowered: containerd's CRI asks oomScoreAdj -998 for a
// pod's sandbox. Root with CAP_SYS_RESOURCE gets it; root without (a
// bounding set without it, as in a container) gets an error that names the
// capability and containerd's fix, not the rootless explanation.
func TestRootOOMScoreAdjLowered(t *testing.T) {
	requireRoot(t)
	e := newEnv(t)
	hostIDs(e)
	adj := -998
	e.spec.Process.OOMScoreAdj = &adj
	e.sh("cat /proc/self/oom_score_adj")
	e.write()
	r := e.run("", "run", e.bundle)
	if hasCapSysResource() {
		if r.code != 0 || r.stdout != "-998\n" {
			t.Fatalf("run with CAP_SYS_RESOURCE: %d %q, want -998 (stderr %s)", r.code, r.stdout, r.stderr)
		}
		return
	}
	if r.code == 0 || !strings.Contains(r.stderr, "CAP_SYS_RESOURCE") ||
		!strings.Contains(r.stderr, "restrict_oom_score_adj") || strings.Contains(r.stderr, "rootless") {
		t.Fatalf("run without CAP_SYS_RESOURCE: %d %q, want the missing capability and containerd's fix named", r.code, r.stderr)
	}
}

// hasCapSysResource reports whether this process has CAP_SYS_RESOURCE in
// its bounding set (what sandy's init can have).
func hasCapSysResource() bool {
	data, _ := os.ReadFile("/proc/self/status")
	for _, line := range strings.Split(string(data), "\n") {
		if v, ok := strings.CutPrefix(line, "CapBnd:"); ok {
			n, err := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
			return err == nil && n&(1<<unix.CAP_SYS_RESOURCE) != 0
		}
	}
	return false
}

// TestRootMountPropagation: a bind mount's propagation option works as
// with runc and as Kubernetes' mountPropagation needs (critest's "Container
// Mount Propagation"): with rslave the container sees what the host mounts
// under the source after the start; with rshared and
// linux.rootfsPropagation rshared (what containerd asks for
// Bidirectional) the host also sees what the container mounts there; with
// rprivate neither. Whatever sandy mounts to assemble the root stays out
// of the host's mount namespace, also when its state directory is on a
// shared mount (as / is on a systemd host).
func TestRootMountPropagation(t *testing.T) {
	requireRoot(t)
	for _, tc := range []struct {
		prop, rootProp   string
		fromHost, toHost bool
	}{
		{"rprivate", "", false, false},
		{"rslave", "", true, false},
		{"rslave", "rslave", true, false},
		{"rshared", "rshared", true, true},
	} {
		t.Run(tc.prop+"-root-"+tc.rootProp, func(t *testing.T) {
			e := newEnv(t, "sleep", "100")
			hostIDs(e)
			c := e.spec.Process.Capabilities
			c.Bounding = append(c.Bounding, "CAP_SYS_ADMIN")
			c.Effective = append(c.Effective, "CAP_SYS_ADMIN")
			c.Permitted = append(c.Permitted, "CAP_SYS_ADMIN")
			stateDir := testutil.TempDir(t)
			sharedMount(t, stateDir)
			e.root = filepath.Join(stateDir, "root")
			vol := testutil.TempDir(t)
			sharedMount(t, vol)
			e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: vol, Options: []string{"rbind", tc.prop}})
			e.spec.Linux.RootfsPropagation = tc.rootProp
			e.write()
			before := hostMountpoints(t)
			id := uniqueID("prop")
			startDetached(t, e, id)

			src := testutil.TempDir(t)
			if err := os.WriteFile(filepath.Join(src, "flag"), nil, 0o644); err != nil {
				t.Fatal(err)
			}
			fromHost := filepath.Join(vol, "fromhost")
			if err := os.Mkdir(fromHost, 0o755); err != nil {
				t.Fatal(err)
			}
			if err := unix.Mount(src, fromHost, "", unix.MS_BIND, ""); err != nil {
				t.Fatal(err)
			}
			r := e.run("", "exec", id, "ls", "/vol/fromhost")
			if got := strings.TrimSpace(r.stdout) == "flag"; r.code != 0 || got != tc.fromHost {
				t.Errorf("the host's mount after the start, in the container: ls %q (exit %d, stderr %s), want it seen: %v", r.stdout, r.code, r.stderr, tc.fromHost)
			}
			r = e.run("", "exec", id, "sh", "-c", "mkdir /vol/fromctr && mount -t tmpfs ctr /vol/fromctr && touch /vol/fromctr/x")
			if r.code != 0 {
				t.Fatalf("mounting in the container: exit %d: %s", r.code, r.stderr)
			}
			_, err := os.Stat(filepath.Join(vol, "fromctr", "x"))
			if got := err == nil; got != tc.toHost {
				t.Errorf("the container's mount, on the host: %v, want it seen: %v", err, tc.toHost)
			}
			var leaked []string
			for mp := range hostMountpoints(t) {
				if !before[mp] && mp != vol && !strings.HasPrefix(mp, vol+"/") {
					leaked = append(leaked, mp)
				}
			}
			if len(leaked) > 0 {
				t.Errorf("sandy's mounts reached the host's mount namespace: %v", leaked)
			}
		})
	}
}

// sharedMount makes dir a mount of its own, shared (a peer group with the
// mounts that copy it), for the test's duration.
func sharedMount(t *testing.T, dir string) {
	t.Helper()
	if err := unix.Mount(dir, dir, "", unix.MS_BIND, ""); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(dir, unix.MNT_DETACH) })
	if err := unix.Mount("", dir, "", unix.MS_SHARED|unix.MS_REC, ""); err != nil {
		t.Fatal(err)
	}
}

// hostMountpoints is the set of mount points in this process's mount
// namespace.
func hostMountpoints(t *testing.T) map[string]bool {
	t.Helper()
	return mountpointsIn(t, "/proc/self/mountinfo")
}

// mountpointsIn is the set of mount points of a mountinfo file
// (/proc/PID/mountinfo: that process's mount namespace).
func mountpointsIn(t *testing.T, mountinfo string) map[string]bool {
	t.Helper()
	data, err := os.ReadFile(mountinfo)
	if err != nil {
		t.Fatal(err)
	}
	m := map[string]bool{}
	for _, line := range strings.Split(string(data), "\n") {
		if f := strings.Fields(line); len(f) > 4 {
			m[f[4]] = true
		}
	}
	return m
}

// TestRootPublishWithoutUserNamespace: root's container without a user
// namespace of its own publishes a port with the builtin port driver and
// with slirp4netns's: the port child joins only the network namespace
// (nsenter -U into one's own user namespace fails, EINVAL: every -p of
// such a container failed with "port child exited before it was ready").
func TestRootPublishWithoutUserNamespace(t *testing.T) {
	requireRoot(t)
	testutil.RequireBinary(t, "slirp4netns", "apt-get install slirp4netns")
	for _, handler := range []string{"builtin", "slirp4netns"} {
		t.Run(handler, func(t *testing.T) {
			e := newEnv(t).sh(`mkdir /www && echo root-published > /www/index.html && exec httpd -f -p 80 -h /www`)
			hostIDs(e)
			e.write()
			port := freePort(t)
			id := uniqueID("pub-root")
			if r := e.run("", "run", "-d", "--network", "slirp4netns:port_handler="+handler, "-p", fmt.Sprintf("127.0.0.1:%d:80", port), "--bundle", e.bundle, id); r.code != 0 {
				t.Fatalf("run -d: %s", r.stderr)
			}
			defer e.run("", "delete", "--force", id)
			if body := strings.TrimSpace(waitHTTP(t, port)); body != "root-published" {
				t.Fatalf("body %q", body)
			}
			if r := e.run("", "delete", "--force", id); r.code != 0 {
				t.Fatalf("delete: %s", r.stderr)
			}
			noSlirpLeft(t, e)
		})
	}
}
