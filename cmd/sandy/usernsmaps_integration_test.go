//go:build integration

package main_test

import (
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
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
	e := newEnv(t)
	e.spec.Linux.UIDMappings, e.spec.Linux.GIDMappings = keepIDMaps(t, "/etc/subuid", uid), keepIDMaps(t, "/etc/subgid", gid)
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

// TestRunBundleEveryCapability: a config that asks for every capability
// the kernel has, in every set, gets them all, with sandy's own map (0 →
// the caller, 1..N → the subordinate ranges) and with keep-id's. The init
// of both is exec'd before its maps exist with its capabilities in the
// ambient set (userns.Start): they must be every capability, not only
// those of the caller's bounding set, since the new namespace's bounding
// set is full. This project's machines run root without
// CAP_SYS_RESOURCE in its bounding set; there the init lacked it and the
// config failed with "setting capabilities: operation not permitted".
func TestRunBundleEveryCapability(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	last, err := capability.LastCap()
	if err != nil {
		t.Fatal(err)
	}
	var names []string
	for c := capability.Cap(0); c <= last; c++ {
		names = append(names, "CAP_"+strings.ToUpper(c.String()))
	}
	want := fmt.Sprintf("%016x", uint64(1)<<(uint(last)+1)-1)
	e := newEnv(t)
	e.spec.Process.Capabilities = &specs.LinuxCapabilities{Bounding: names, Effective: names, Inheritable: names, Permitted: names, Ambient: names}
	e.sh("grep -E '^Cap(Prm|Eff|Amb)' /proc/self/status")
	check := func(maps string) {
		t.Helper()
		r := e.runBundle(0)
		for _, set := range []string{"CapPrm", "CapEff", "CapAmb"} {
			if !strings.Contains(r.stdout, set+":\t"+want+"\n") {
				t.Errorf("%s: want %s %s (every capability):\n%s%s", maps, set, want, r.stdout, r.stderr)
			}
		}
	}
	check("sandy's own map")
	uid, gid := uint32(os.Getuid()), uint32(os.Getgid())
	e.spec.Linux.UIDMappings, e.spec.Linux.GIDMappings = keepIDMaps(t, "/etc/subuid", uid), keepIDMaps(t, "/etc/subgid", gid)
	check("keep-id's map")
}

// keepIDMaps is podman's keep-id map of the test user's first range in
// file (/etc/subuid or /etc/subgid) for its own id own: container ids
// 0..own-1 → the range's first ids, own → own, the rest → the rest of
// the range.
func keepIDMaps(t *testing.T, file string, own uint32) []specs.LinuxIDMapping {
	t.Helper()
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
