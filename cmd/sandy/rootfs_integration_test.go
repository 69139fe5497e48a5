//go:build integration

package main_test

import (
	"os"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestBundleUntouched: a container that writes, deletes, renames and
// chmods everywhere leaves the bundle byte for byte as it was (metadata
// included), and leaves no layer behind — also when a non-root container
// user created files, which belong to a subordinate id on the host.
func TestBundleUntouched(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t)
	rootfs := e.bundle + "/rootfs"
	before := treeHash(t, rootfs)
	caps := []string{"CAP_CHOWN", "CAP_FOWNER", "CAP_DAC_OVERRIDE", "CAP_FSETID"}
	e.spec.Process.Capabilities.Bounding = caps
	e.spec.Process.Capabilities.Effective = caps
	e.spec.Process.Capabilities.Permitted = caps
	e.sh(`set -e
		echo new > /newfile; rm /etc/passwd; mv /etc/group /etc/group2; chmod 700 /bin
		mkdir -p /var/lib/x && echo data > /var/lib/x/f; rm -rf /home; ln -s /nowhere /etc/link
		chmod 4755 /bin/busybox; touch -d 2000-01-01 /etc/hosts
		mkdir /tmp/user && chown 1000:1000 /tmp/user; echo ok`)
	r := e.runBundle(0)
	if !strings.Contains(r.stdout, "ok") {
		t.Fatalf("container script failed: %s %s", r.stdout, r.stderr)
	}
	// Now as container uid 1000: files owned by host uid 100000+999.
	e.spec.Process.User.UID, e.spec.Process.User.GID = 1000, 1000
	e.sh(`echo mine > /tmp/file && mkdir /tmp/d && echo inner > /tmp/d/f && echo ok`)
	if r := e.runBundle(0); !strings.Contains(r.stdout, "ok") {
		t.Fatalf("uid 1000 script: %s %s", r.stdout, r.stderr)
	}
	e.spec.Process.User.UID, e.spec.Process.User.GID = 0, 0
	e.sh("echo x")
	if after := treeHash(t, rootfs); before != after {
		t.Fatalf("the bundle's rootfs changed: tree hash %s before, %s after", before, after)
	}
	// A run's teardown ends in a reaper after run returns: `list` waits
	// for the reapers at work.
	e.run("", "list", "-q")
	ents, _ := os.ReadDir(e.root)
	if len(ents) != 0 {
		t.Fatalf("state root not empty after the runs: %v", ents)
	}
}

// TestKeepLayer: --keep-layer keeps the container's changes (the overlay
// upper dir) after the run, and the bundle is still untouched.
func TestKeepLayer(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh(`echo kept > /etc/newfile`)
	keep := e.root + "-kept" // next to the state root: same filesystem
	r := e.run("", "run", "--keep-layer", keep, e.bundle)
	if r.code != 0 {
		t.Fatalf("run: %s", r.stderr)
	}
	data, err := os.ReadFile(keep + "/etc/newfile")
	if err != nil || strings.TrimSpace(string(data)) != "kept" {
		t.Fatalf("kept layer: %q %v", data, err)
	}
	if _, err := os.Stat(e.bundle + "/rootfs/etc/newfile"); err == nil {
		t.Fatal("the bundle was written")
	}
	_ = os.RemoveAll(keep)
}

// TestRootfsDirect: --rootfs-mode=direct (or its engine-wide defaults, the
// global flag and $SANDY_ROOTFS_MODE) runs the container on the bundle's
// rootfs itself, as runc does: its writes land there and missing
// mountpoints are made there; a read-only root stays read-only.
func TestRootfsDirect(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t)
	rootfs := e.bundle + "/rootfs"
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/new/mountpoint", Type: "tmpfs", Source: "tmpfs"})
	e.sh(`echo written > /written; ls -d /new/mountpoint`)
	for _, tc := range []struct {
		name string
		args []string
		env  string
	}{
		{"flag", []string{"run", "--rootfs-mode=direct", e.bundle}, ""},
		{"global flag", []string{"--rootfs-mode", "direct", "run", e.bundle}, ""},
		{"environment", []string{"run", e.bundle}, "direct"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			_ = os.Remove(rootfs + "/written")
			_ = os.RemoveAll(rootfs + "/new")
			t.Setenv("SANDY_ROOTFS_MODE", tc.env)
			r := e.run("", tc.args...)
			if r.code != 0 {
				t.Fatalf("run: %d %s", r.code, r.stderr)
			}
			if data, err := os.ReadFile(rootfs + "/written"); err != nil || string(data) != "written\n" {
				t.Fatalf("the container's write is not in the bundle: %q %v", data, err)
			}
			if fi, err := os.Stat(rootfs + "/new/mountpoint"); err != nil || !fi.IsDir() {
				t.Fatalf("mountpoint not made in the rootfs: %v", err)
			}
		})
	}
	t.Run("read-only root", func(t *testing.T) {
		e.spec.Root.Readonly = true
		e.sh(`echo x > /written2 2>&1 || echo refused`)
		r := e.run("", "run", "--rootfs-mode=direct", e.bundle)
		if r.code != 0 || !strings.Contains(r.stdout, "refused") {
			t.Fatalf("run: %d %q %s", r.code, r.stdout, r.stderr)
		}
		if _, err := os.Stat(rootfs + "/written2"); err == nil {
			t.Fatal("a read-only root was written")
		}
	})
}
