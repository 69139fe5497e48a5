//go:build integration

package main_test

import (
	"fmt"
	"os"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestRunBundleKeepIDMaps: a bundle whose config maps the caller to its own
// uid (podman's keep-id shape: container 0.. → subordinate ids) runs, as
// the container's root and as the caller's uid. The init, exec'd before
// its maps exist, cannot gain its capabilities by a second execve when the
// caller is not uid 0 of the namespace; it carries them in the ambient set
// and makes itself root (userns.Start, GainCaps). Many runs, because a
// gate shell with those capabilities raced the maps (it set its uid to
// 65534, read before the uid map was written; newgidmap then refused the
// process as another user's).
func TestRunBundleKeepIDMaps(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	sub := func(file string, own uint32) []specs.LinuxIDMapping {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		ranges, err := idmap.ParseSubID(f, testutil.TestUserName(), own)
		if err != nil || len(ranges) == 0 || ranges[0].Count <= own {
			testutil.Skip(t, "%s has no range of more than %d ids for %s (%v): hack/setup.sh adds one", file, own, testutil.TestUserName(), err)
		}
		r := ranges[0]
		return []specs.LinuxIDMapping{{ContainerID: 0, HostID: r.Start, Size: own}, {ContainerID: own, HostID: own, Size: 1}, {ContainerID: own + 1, HostID: r.Start + own, Size: r.Count - own}}
	}
	e := newEnv(t)
	e.spec.Linux.UIDMappings, e.spec.Linux.GIDMappings = sub("/etc/subuid", uid), sub("/etc/subgid", gid)
	e.sh("id -u; grep CapEff /proc/self/status; mkdir /tmp/made; stat -c %u:%g /tmp/made /dev/shm")
	if out := e.runBundle(0).stdout; out != "0\nCapEff:\t0000000020000420\n0:0\n0:0\n" {
		t.Errorf("as root of the namespace: %q", out)
	}
	e.spec.Process.User = specs.User{UID: uid, GID: gid}
	e.sh("id -u; id -g; grep CapEff /proc/self/status")
	want := fmt.Sprintf("%d\n%d\nCapEff:\t0000000000000000\n", uid, gid)
	for i := 0; i < 30; i++ {
		if out := e.runBundle(0).stdout; out != want {
			t.Fatalf("run %d as the caller's uid: %q, want %q", i, out, want)
		}
	}
}
