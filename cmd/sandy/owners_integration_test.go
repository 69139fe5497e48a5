//go:build integration

package main_test

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/spec"
	"github.com/sandy-rt/sandy/internal/testutil"
)

// rootMadeBundle is a bundle that the root half of a test makes, owned by
// root as `tar -x` run by root leaves it, and that the test user's half
// (testutil.AsUser's child) runs. The child finds it by the root half's
// pid, its parent. As root it makes the bundle, runs the child and
// returns ""; in the child it returns the bundle's path.
func rootMadeBundle(t *testing.T, rootfsMode os.FileMode, args ...string) string {
	t.Helper()
	pid := os.Getpid()
	if os.Getuid() != 0 {
		pid = os.Getppid()
	}
	dir := filepath.Join(os.TempDir(), "sandy-test-share", fmt.Sprintf("%s-%d", t.Name(), pid))
	if os.Getuid() != 0 {
		if _, err := os.Stat(dir); err != nil {
			testutil.Skip(t, "no root-made bundle at %s (%v): run the test as root, which makes it and re-runs the test as %s", dir, err, testutil.TestUserName())
		}
		return dir
	}
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		_ = os.Chmod(filepath.Join(dir, "rootfs"), 0o755)
		_ = os.RemoveAll(dir)
	})
	rootfs := testutil.MakeRootfs(t, dir)
	s := spec.Example(true)
	s.Process.Terminal = false
	s.Root.Readonly = false
	s.Process.Args = args
	testutil.WriteConfig(t, dir, s)
	if err := os.Chmod(rootfs, rootfsMode); err != nil {
		t.Fatal(err)
	}
	if !testutil.AsUser(t) {
		t.Fatal("AsUser did not run the test as the test user")
	}
	return ""
}

// TestRootOwnedRootfsWarns: a rootfs extracted by root and run by a normal
// user runs, with every file as nobody; sandy says so in one warning line
// on stderr, with the consequence and the fix (issue 11, item 10: the
// warning was documented but never printed, and writes failed silently).
func TestRootOwnedRootfsWarns(t *testing.T) {
	bundle := rootMadeBundle(t, 0o755, "sh", "-c", "touch /etc/new 2>/dev/null && echo wrote || echo denied; echo ran")
	if bundle == "" {
		return
	}
	e := newEnv(t)
	r := e.run("", "run", bundle)
	if r.code != 0 || r.stdout != "denied\nran\n" {
		t.Fatalf("run: exit %d, stdout %q (want the container to run, its write denied)\nstderr: %s", r.code, r.stdout, r.stderr)
	}
	rootfs := filepath.Join(bundle, "rootfs")
	var lines []string
	for _, l := range strings.Split(r.stderr, "\n") {
		if strings.Contains(l, "owned by ids outside the container's id map") {
			lines = append(lines, l)
		}
	}
	if len(lines) != 1 {
		t.Fatalf("want the owners warning once on stderr, got %d times:\n%s", len(lines), r.stderr)
	}
	for _, want := range []string{
		"sandy: warning: rootfs: ",
		"entries are owned by ids outside the container's id map (e.g. /, host uid 0 gid 0)",
		"inside they show as nobody (65534)",
		fmt.Sprintf("fix: as root, chown -R %d:%d %s ", os.Getuid(), os.Getgid(), rootfs),
		"podman unshare tar -C " + rootfs,
		"an id map that covers those ids",
	} {
		if !strings.Contains(lines[0], want) {
			t.Errorf("warning lacks %q:\n%s", want, lines[0])
		}
	}
	if strings.Contains(r.stdout, "owned by ids") {
		t.Errorf("the warning went to stdout: %q", r.stdout)
	}
}

// TestUnreadableRootfs: a rootfs the user cannot enter (root's, 0700) is
// refused before anything starts, with its owner, its mode and the fix,
// instead of the init's "lstat …/proc: permission denied".
func TestUnreadableRootfs(t *testing.T) {
	bundle := rootMadeBundle(t, 0o700, "true")
	if bundle == "" {
		return
	}
	e := newEnv(t)
	r := e.run("", "run", bundle)
	rootfs := filepath.Join(bundle, "rootfs")
	want := fmt.Sprintf("sandy run: checking the rootfs: rootfs %s: permission denied: it is owned by root (uid 0), group root (gid 0), mode 0700, "+
		"and neither you (uid %d) nor the container's root, which has no power over ids outside its map, may enter it\n"+
		"hint: as root, chown -R %d:%d %s (the container's root then owns it), or chmod 0755 %s (docs/troubleshooting.md#rootfs-unreadable)\n",
		rootfs, os.Getuid(), os.Getuid(), os.Getgid(), rootfs, rootfs)
	if r.code == 0 || r.stderr != want {
		t.Fatalf("run: exit %d\nstderr: %q\nwant:   %q", r.code, r.stderr, want)
	}
	if ents, _ := os.ReadDir(e.root); len(ents) != 0 {
		t.Errorf("state left behind: %v", ents)
	}
}

// TestDirectRootOwnedRootfs: --rootfs-mode=direct on a rootfs owned by
// root, with the default network: the container's root may not create the
// /etc/resolv.conf mountpoint there, and the error says why and the fixes
// (it was a bare "creating /etc/resolv.conf: permission denied").
func TestDirectRootOwnedRootfs(t *testing.T) {
	bundle := rootMadeBundle(t, 0o755, "true")
	if bundle == "" {
		return
	}
	e := newEnv(t)
	r := e.run("", "run", "--rootfs-mode=direct", bundle)
	for _, want := range []string{
		"sandy run: setting up the root filesystem: writing /etc/resolv.conf, hosts and hostname: creating /etc/resolv.conf: permission denied\nhint: ",
		"the rootfs is not writable by the container's root",
		"run without --rootfs-mode=direct",
		"chown the rootfs",
		"--network=none",
		"(docs/troubleshooting.md#direct-rootfs-not-writable)",
	} {
		if r.code == 0 || !strings.Contains(r.stderr, want) {
			t.Errorf("run: exit %d, stderr lacks %q:\n%s", r.code, want, r.stderr)
		}
	}
	if _, err := os.Stat(filepath.Join(bundle, "rootfs", "etc", "resolv.conf")); err == nil {
		t.Errorf("the bundle's rootfs was written")
	}
}
