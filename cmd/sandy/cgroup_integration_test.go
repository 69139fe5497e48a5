//go:build integration

package main_test

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestCgroupLimitsNeverSilentlyLost: a limit that cannot be enforced stops
// the container with the reason and the fix; --allow-unenforced runs it
// with one warning line per lost limit. (The enforcing managers are tested
// in the systemd VM: hack/vm.)
func TestCgroupLimitsNeverSilentlyLost(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	limit := int64(64 << 20)
	pids := int64(20)
	e := newEnv(t).sh("echo ran")
	e.spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}, Pids: &specs.LinuxPids{Limit: &pids}}
	e.write()
	before := treeHash(t, e.bundle)
	r := e.run("", "run", "--cgroup-manager=none", e.bundle)
	if r.code == 0 || strings.Contains(r.stdout, "ran") {
		t.Fatalf("ran with unenforceable limits: %q %q", r.stdout, r.stderr)
	}
	for _, want := range []string{"memory limit", "pids limit", "--allow-unenforced"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("error lacks %q: %s", want, r.stderr)
		}
	}
	assertNothingLeft(t, e)
	if treeHash(t, e.bundle) != before {
		t.Fatal("bundle changed")
	}
	r = e.run("", "run", "--cgroup-manager=none", "--allow-unenforced", e.bundle)
	if r.code != 0 || !strings.Contains(r.stdout, "ran") {
		t.Fatalf("--allow-unenforced: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if n := strings.Count(r.stderr, "warning:"); n != 2 {
		t.Fatalf("want one warning per lost limit (2), got %d:\n%s", n, r.stderr)
	}
}
