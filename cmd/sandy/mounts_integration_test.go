//go:build integration

package main_test

import (
	"bufio"
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

// cgroup2Mount is where the host mounts cgroup v2: /sys/fs/cgroup on a
// unified host, /sys/fs/cgroup/unified on a hybrid one.
func cgroup2Mount(t *testing.T) string {
	t.Helper()
	for _, p := range []string{"/sys/fs/cgroup", "/sys/fs/cgroup/unified"} {
		var st unix.Statfs_t
		if unix.Statfs(p, &st) == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
			return p
		}
	}
	testutil.Skip(t, "no cgroup2 filesystem at /sys/fs/cgroup or /sys/fs/cgroup/unified")
	return ""
}

// ownCgroup is the process's cgroup v2 path ("0::" in /proc/self/cgroup).
func ownCgroup(t *testing.T) string {
	t.Helper()
	f, err := os.Open("/proc/self/cgroup")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	s := bufio.NewScanner(f)
	for s.Scan() {
		if p, ok := strings.CutPrefix(s.Text(), "0::"); ok {
			return p
		}
	}
	t.Fatal("no cgroup v2 line in /proc/self/cgroup")
	return ""
}

// delegateCgroup, as root, makes a cgroup v2 directory owned by the test
// user and moves the test process into it, so that the test user's run
// (AsUser starts it from here) has a delegated subtree of its own, as a
// systemd user session gives one: exactly what CVE-2023-25809 exposed.
// The process moves back and the directory goes at the end.
func delegateCgroup(t *testing.T) {
	t.Helper()
	if os.Getuid() != 0 {
		return
	}
	u := testutil.TestUser(t)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	mnt := cgroup2Mount(t)
	home := filepath.Join(mnt, ownCgroup(t))
	dir := filepath.Join(home, fmt.Sprintf("sandy-test-%d", time.Now().UnixNano()))
	if err := os.Mkdir(dir, 0o755); err != nil {
		testutil.Skip(t, "cannot make a cgroup to delegate to the test user: %v (is %s read-only here?)", err, mnt)
	}
	for _, f := range []string{"", "cgroup.procs", "cgroup.subtree_control", "cgroup.threads"} {
		if err := os.Chown(filepath.Join(dir, f), uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	pid := []byte(strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(filepath.Join(dir, "cgroup.procs"), pid, 0); err != nil {
		t.Fatalf("moving the test into %s: %v", dir, err)
	}
	t.Cleanup(func() {
		if err := os.WriteFile(filepath.Join(home, "cgroup.procs"), pid, 0); err != nil {
			t.Errorf("moving the test back to %s: %v", home, err)
		}
		if err := os.Remove(dir); err != nil {
			t.Errorf("removing %s: %v", dir, err)
		}
	})
}

// TestCgroupMountNotWritable (CVE-2023-25809): whatever the config's
// cgroup mount and /sys look like, the container cannot create a cgroup
// in the user's delegated hierarchy on the host: not through the cgroup
// mount, not through the host's /sys shown in its place. Each case was a
// mkdir that succeeded on the host before the fix.
func TestCgroupMountNotWritable(t *testing.T) {
	delegateCgroup(t)
	if testutil.AsUser(t) {
		return
	}
	mnt := cgroup2Mount(t)
	own := ownCgroup(t)
	deleg := filepath.Join(mnt, own)
	if unix.Access(deleg, unix.W_OK) != nil {
		// Still run: nothing may be created; but the kernel's permissions
		// alone would stop it here.
		t.Logf("the test's cgroup %s is not writable by uid %d, so this run cannot tell the fix from file permissions: run the test as root (it delegates one) or inside a delegated cgroup (systemd-run --user --scope -p Delegate=yes)", deleg, os.Getuid())
	}
	// Every directory that could be the delegated cgroup: the mount's top,
	// each hierarchy under it, and the host's path of the cgroup.
	script := fmt.Sprintf(`for d in /sys/fs/cgroup /sys/fs/cgroup/* %s; do
		[ -d "$d" ] || continue
		mkdir "$d/escape" && echo "MADE $d/escape"
	done; echo done`, deleg)
	noCgroupNS := func(s *specs.Spec) {
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.CgroupNamespace && n.Type != specs.NetworkNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
	}
	setMount := func(s *specs.Spec, dest string, m *specs.Mount) {
		var ms []specs.Mount
		for _, x := range s.Mounts {
			if x.Destination != dest {
				ms = append(ms, x)
			} else if m != nil {
				ms = append(ms, *m)
			}
		}
		s.Mounts = ms
	}
	cases := []struct {
		name   string
		edit   func(s *specs.Spec)
		stderr string // a warning the run must print
	}{
		{name: "runc spec --rootless", edit: func(s *specs.Spec) {
			// runc's ToRootless on a host without cgroup v2 only: no
			// network or cgroup namespace, /sys an rbind of the host's.
			noCgroupNS(s)
			setMount(s, "/sys", &specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}})
		}},
		{name: "cgroupns mount without ro", edit: func(s *specs.Spec) {
			setMount(s, "/sys/fs/cgroup", &specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup2", Source: "cgroup2", Options: []string{"nosuid", "noexec", "nodev"}})
		}},
		{name: "cgroupns mount rw, cgroup not the container's", edit: func(s *specs.Spec) {
			setMount(s, "/sys/fs/cgroup", &specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"rw"}})
		}, stderr: "cgroup mounted read-only, not rw"},
		{name: "no cgroupns mount rw", edit: func(s *specs.Spec) {
			noCgroupNS(s)
			setMount(s, "/sys/fs/cgroup", &specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"rw"}})
		}, stderr: "cgroup mounted read-only, not rw"},
		{name: "host sysfs, no cgroup mount", edit: func(s *specs.Spec) {
			// Without a network namespace sysfs is the host's /sys.
			noCgroupNS(s)
			setMount(s, "/sys/fs/cgroup", nil)
		}},
		{name: "cgroupns mount rrw", edit: func(s *specs.Spec) {
			setMount(s, "/sys/fs/cgroup", &specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"rrw"}})
		}, stderr: "cgroup mounted read-only, not rw"},
		{name: "no cgroupns mount rrw", edit: func(s *specs.Spec) {
			noCgroupNS(s)
			setMount(s, "/sys/fs/cgroup", &specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"rrw"}})
		}, stderr: "cgroup mounted read-only, not rw"},
		{name: "host sysfs rrw, no cgroup mount", edit: func(s *specs.Spec) {
			noCgroupNS(s)
			setMount(s, "/sys", &specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"rrw"}})
			setMount(s, "/sys/fs/cgroup", nil)
		}},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t).sh(script)
			tc.edit(e.spec)
			e.write()
			r := e.run("", "run", "--cgroup-manager=none", e.bundle)
			if r.code != 0 || !strings.Contains(r.stdout, "done") {
				t.Fatalf("sandy run: exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
			if strings.Contains(r.stdout, "MADE") {
				t.Errorf("the container made a cgroup:\n%s", r.stdout)
			}
			for _, line := range strings.Split(strings.TrimSpace(r.stderr), "\n") {
				if strings.HasPrefix(line, "mkdir:") && !strings.Contains(line, "Read-only file system") &&
					!strings.Contains(line, "Permission denied") && !strings.Contains(line, "No such file") {
					t.Errorf("unexpected mkdir error: %s", line)
				}
			}
			if tc.stderr != "" && !strings.Contains(r.stderr, tc.stderr) {
				t.Errorf("stderr lacks %q:\n%s", tc.stderr, r.stderr)
			}
			ents, _ := os.ReadDir(deleg)
			for _, d := range ents {
				if d.IsDir() {
					t.Errorf("a cgroup appeared on the host: %s", filepath.Join(deleg, d.Name()))
					_ = os.Remove(filepath.Join(deleg, d.Name()))
				}
			}
		})
	}
}

// TestDevTmpfsReadonly (runc mounts.bats "ro /dev mount"): a read-only
// /dev tmpfs is filled first, then made read-only.
func TestDevTmpfsReadonly(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	for _, opt := range []string{"ro", "rro"} {
		t.Run(opt, func(t *testing.T) {
			e := newEnv(t).sh(`grep '^tmpfs /dev ' /proc/mounts; ls /dev/null /dev/ptmx /dev/pts/ptmx >/dev/null && echo devices; touch /dev/x 2>/dev/null && echo WROTE; true`)
			for i, m := range e.spec.Mounts {
				if m.Destination == "/dev" {
					e.spec.Mounts[i].Options = append(m.Options, opt)
				}
			}
			e.write()
			r := e.runBundle(0)
			if !strings.Contains(r.stdout, " ro,") || !strings.Contains(r.stdout, "devices") || strings.Contains(r.stdout, "WROTE") {
				t.Fatalf("want a read-only /dev with its devices:\n%s%s", r.stdout, r.stderr)
			}
		})
	}
}

// TestTmpfsUnderAbsoluteSymlink (runc mounts.bats "tmpfs mount with
// absolute symlink"): in a read-only root, /conf -> /real/conf, and a
// tmpfs on /conf/stack lands on /real/conf/stack.
func TestTmpfsUnderAbsoluteSymlink(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh(`grep -c ' /real/conf/stack tmpfs ro,' /proc/mounts`)
	rootfs := filepath.Join(e.bundle, "rootfs")
	if err := os.MkdirAll(filepath.Join(rootfs, "real/conf"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/real/conf", filepath.Join(rootfs, "conf")); err != nil {
		t.Fatal(err)
	}
	e.spec.Root.Readonly = true
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/conf/stack", Type: "tmpfs", Source: "tmpfs", Options: []string{"ro", "nodev", "nosuid"}})
	e.write()
	before := treeHash(t, e.bundle)
	r := e.runBundle(0)
	if strings.TrimSpace(r.stdout) != "1" {
		t.Fatalf("tmpfs on /real/conf/stack: %q %s", r.stdout, r.stderr)
	}
	if treeHash(t, e.bundle) != before {
		t.Fatal("the bundle changed")
	}
}

// TestProcSysNotSymlinks (runc mask.bats "prohibit symlink /proc" and
// "/sys", CVE-2019-19921 class): proc and sysfs mount only on ordinary
// directories.
func TestProcSysNotSymlinks(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	for _, d := range []string{"proc", "sys"} {
		t.Run(d, func(t *testing.T) {
			e := newEnv(t).sh("echo ran")
			p := filepath.Join(e.bundle, "rootfs", d)
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
			if err := os.Symlink("/symlink", p); err != nil {
				t.Fatal(err)
			}
			r := e.run("", "run", e.bundle)
			if r.code == 0 || strings.Contains(r.stdout, "ran") || !strings.Contains(r.stderr, "must be mounted on ordinary directory") {
				t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// TestRecursiveMountOptions: "rro" (mount_setattr AT_RECURSIVE) makes
// every submount of an rbind read-only; a plain "ro" changes only the
// top mount and leaves the submounts as the host has them, as in runc
// and mount(8). The host directory has a writable tmpfs mounted below it,
// which root sets up before the test user runs.
func TestRecursiveMountOptions(t *testing.T) {
	dir := filepath.Join(os.TempDir(), "sandy-test-share", fmt.Sprintf("rro-%d", os.Getpid()))
	if os.Getuid() == 0 {
		u := testutil.TestUser(t)
		if err := os.MkdirAll(filepath.Join(dir, "sub"), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := unix.Mount("tmpfs", filepath.Join(dir, "sub"), "tmpfs", 0, "mode=0755,uid="+u.Uid+",gid="+u.Gid); err != nil {
			t.Fatalf("mounting the submount: %v", err)
		}
		t.Cleanup(func() {
			_ = unix.Unmount(filepath.Join(dir, "sub"), unix.MNT_DETACH)
			_ = os.RemoveAll(dir)
		})
	}
	if testutil.AsUser(t) {
		return
	}
	dir = filepath.Join(os.TempDir(), "sandy-test-share", fmt.Sprintf("rro-%d", os.Getppid()))
	var st unix.Statfs_t
	if unix.Statfs(filepath.Join(dir, "sub"), &st) != nil || st.Type != unix.TMPFS_MAGIC {
		testutil.Skip(t, "no tmpfs at %s/sub: run the test as root, which mounts it", dir)
	}
	cases := []struct {
		options  []string
		wantTop  bool // the top mount is writable
		wantSub  bool // the submount is writable
		mountOpt string
	}{
		{options: []string{"rbind", "ro"}, wantTop: false, wantSub: true},
		{options: []string{"rbind", "rro"}, wantTop: false, wantSub: false},
		// The host's atime mode is locked (MNT_LOCK_ATIME): "rrelatime"
		// keeps it, so mount_setattr may set it.
		{options: []string{"rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnosymfollow", "rrelatime"}, mountOpt: "ro,nosuid,nodev,noexec,relatime,nosymfollow"},
	}
	for _, tc := range cases {
		t.Run(strings.Join(tc.options, ","), func(t *testing.T) {
			e := newEnv(t).sh(`touch /mnt/top 2>/dev/null && echo top-writable; touch /mnt/sub/f 2>/dev/null && echo sub-writable; grep ' /mnt/sub ' /proc/self/mountinfo`)
			e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: dir, Options: tc.options})
			e.write()
			r := e.runBundle(0)
			if tc.mountOpt != "" {
				if !strings.Contains(r.stdout, " "+tc.mountOpt+" ") {
					t.Fatalf("submount lacks %s:\n%s", tc.mountOpt, r.stdout)
				}
				return
			}
			if got := strings.Contains(r.stdout, "top-writable"); got != tc.wantTop {
				t.Errorf("top mount writable: %v, want %v\n%s", got, tc.wantTop, r.stdout)
			}
			if got := strings.Contains(r.stdout, "sub-writable"); got != tc.wantSub {
				t.Errorf("submount writable: %v, want %v\n%s", got, tc.wantSub, r.stdout)
			}
		})
	}
}

// TestMountOptionsRefused: an idmapped mount cannot be made rootless: the
// run fails, naming the option and the mount, instead of mounting without
// the mapping.
func TestMountOptionsRefused(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh("echo ran")
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/mnt", Type: "bind", Source: e.bundle, Options: []string{"rbind", "idmap"}})
	e.write()
	r := e.run("", "run", e.bundle)
	if r.code == 0 || strings.Contains(r.stdout, "ran") || !strings.Contains(r.stderr, `option "idmap"`) || !strings.Contains(r.stderr, "/mnt") {
		t.Fatalf("exit %d\nstdout: %s\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// TestTmpcopyup: a tmpfs with "tmpcopyup" starts with the content of the
// directory it covers (owner, mode, links), is writable, and the bundle
// stays untouched.
func TestTmpcopyup(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh(`cat /data/sub/file; readlink /data/link; stat -c %a /data/sub/file; echo new > /data/sub/file && cat /data/sub/file; grep -c ' /data tmpfs ' /proc/mounts`)
	data := filepath.Join(e.bundle, "rootfs", "data")
	if err := os.MkdirAll(filepath.Join(data, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(data, "sub", "file"), []byte("old\n"), 0o640); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc/passwd", filepath.Join(data, "link")); err != nil {
		t.Fatal(err)
	}
	e.spec.Root.Readonly = true
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup", "nosuid"}})
	e.write()
	before := treeHash(t, e.bundle)
	r := e.runBundle(0)
	if want := "old\n/etc/passwd\n640\nnew\n1\n"; r.stdout != want {
		t.Fatalf("got %q, want %q\nstderr: %s", r.stdout, want, r.stderr)
	}
	if treeHash(t, e.bundle) != before {
		t.Fatal("the bundle changed")
	}
}
