package overlay

import (
	"fmt"
	"strings"
	"testing"
)

func TestLayersCheck(t *testing.T) {
	ok := Layers{Driver: DriverOverlay, Lowers: []string{"/s/l1/diff", "/s/l0/diff"}, Upper: "/s/c/diff", Work: "/s/c/work"}
	for _, tc := range []struct {
		name string
		edit func(*Layers)
		want string // "" for no error
	}{
		{"overlay", func(*Layers) {}, ""},
		{"overlay with a mount program", func(l *Layers) { l.Program = "/usr/bin/fuse-overlayfs" }, ""},
		{"vfs", func(l *Layers) { *l = Layers{Driver: DriverVFS, Upper: "/s/vfs/dir/c"} }, ""},
		{"vfs with lowers", func(l *Layers) { l.Driver = DriverVFS }, "vfs has one directory"},
		{"btrfs", func(l *Layers) { l.Driver = "btrfs" }, `driver "btrfs"`},
		{"no lowers", func(l *Layers) { l.Lowers = nil }, "needs lower and work"},
		{"no work", func(l *Layers) { l.Work = "" }, "needs lower and work"},
		{"relative lower", func(l *Layers) { l.Lowers = []string{"s/l1"} }, "not an absolute, clean path"},
		{"unclean upper", func(l *Layers) { l.Upper = "/s/c/../../etc" }, "not an absolute, clean path"},
		{"colon for the kernel", func(l *Layers) { l.Upper = "/s/c:x/diff" }, ""},
		{"colon for a mount program", func(l *Layers) { l.Upper, l.Program = "/s/c:x/diff", "/usr/bin/fuse-overlayfs" }, "contains one of"},
		{"comma for a mount program", func(l *Layers) { l.Lowers[0], l.Program = "/s/l1,upperdir=/x", "fuse-overlayfs" }, "contains one of"},
		{"id mapping for a mount program", func(l *Layers) {
			l.Program, l.IDMapOptions = "fuse-overlayfs", "uidmapping=0:1:1001:1001:0:1:1002:1002:64535,gidmapping=0:1:1001:1001:0:1:1002:1002:64535"
		}, ""},
		{"squash", func(l *Layers) { l.Program, l.IDMapOptions = "fuse-overlayfs", "squash_to_uid=0,squash_to_gid=0" }, ""},
		{"id mapping for the kernel", func(l *Layers) { l.IDMapOptions = "uidmapping=0:1:1" }, "need a mount program"},
		{"another option", func(l *Layers) { l.Program, l.IDMapOptions = "fuse-overlayfs", "uidmapping=0:1:1,upperdir=/x" }, "id mapping option"},
		{"a path in a mapping", func(l *Layers) { l.Program, l.IDMapOptions = "fuse-overlayfs", "uidmapping=0:/x:1" }, "id mapping option"},
		{"an empty field", func(l *Layers) { l.Program, l.IDMapOptions = "fuse-overlayfs", "uidmapping=0::1" }, "id mapping option"},
		{"no value", func(l *Layers) { l.Program, l.IDMapOptions = "fuse-overlayfs", "uidmapping" }, "id mapping option"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			l := ok
			l.Lowers = append([]string(nil), ok.Lowers...)
			tc.edit(&l)
			err := l.Check()
			switch {
			case tc.want == "" && err != nil:
				t.Fatalf("Check() = %v, want nil", err)
			case tc.want != "" && (err == nil || !strings.Contains(err.Error(), tc.want)):
				t.Fatalf("Check() = %v, want an error containing %q", err, tc.want)
			}
		})
	}
}

func TestLowerdirPlan(t *testing.T) {
	paths := func(n int) []string {
		var out []string
		for i := 0; i < n; i++ {
			out = append(out, fmt.Sprintf("/proc/self/fd/%d", 10+i))
		}
		return out
	}
	key, vals := LowerdirPlan(paths(3))
	if key != "lowerdir" || len(vals) != 1 || vals[0] != "/proc/self/fd/10:/proc/self/fd/11:/proc/self/fd/12" {
		t.Errorf("3 layers: %s %q", key, vals)
	}
	// 15 fd paths of 16 bytes and 14 colons: 254 bytes, the most that fit.
	if key, vals := LowerdirPlan(paths(15)); key != "lowerdir" || len(vals) != 1 || len(vals[0]) != 254 {
		t.Errorf("15 layers: %s, %d values, %d bytes", key, len(vals), len(vals[0]))
	}
	if key, vals := LowerdirPlan(paths(16)); key != "lowerdir+" || len(vals) != 16 || vals[0] != "/proc/self/fd/10" {
		t.Errorf("16 layers: %s %q", key, vals)
	}
}
