package userns

import (
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/idmap"
)

// TestRootInMap: uid is root in there only when a range maps container id
// 0 to uid itself.
func TestRootInMap(t *testing.T) {
	for _, tc := range []struct {
		name string
		uids string // /proc/PID/uid_map
		uid  int
		want bool
	}{
		{"initial namespace, root", "         0          0 4294967295", 0, true},
		{"initial namespace, a user", "         0          0 4294967295", 1000, false},
		{"rootless: the user is root", "         0       1000          1\n         1     100000      65536", 1000, true},
		{"rootless: a subordinate id", "         0       1000          1\n         1     100000      65536", 100000, false},
		{"root mapped to another id", "      1000          0          1", 0, false},
		{"root's range second", "         1     100000      65536\n         0          0          1", 0, true},
		{"0 inside a range that starts elsewhere", "         0     100000      65536", 100001, false},
		{"host root not the start", "         0     100000      65536", 0, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			uids, err := idmap.ParseProcMap("uid_map", tc.uids)
			if err != nil {
				t.Fatal(err)
			}
			if got := RootInMap(uids, tc.uid); got != tc.want {
				t.Errorf("RootInMap(%v, %d) = %v, want %v", uids, tc.uid, got, tc.want)
			}
		})
	}
	if RootInMap(nil, 0) {
		t.Error("RootInMap(nil, 0) = true")
	}
	if !RootInMap([]specs.LinuxIDMapping{{ContainerID: 0, HostID: 4242, Size: 1}}, 4242) {
		t.Error("RootInMap: 0 → 4242 is not root for 4242")
	}
}

// TestRootIn: a map that cannot be read (no such process) is no root.
func TestRootIn(t *testing.T) {
	if RootIn(-1, 0) {
		t.Error("RootIn(-1, 0) = true")
	}
}
