package initproc

import (
	"strings"
	"testing"
)

const sampleMountinfo = `26 1 254:0 / / rw,relatime - ext4 /dev/vda rw
30 26 0:25 / /run rw,nosuid shared:5 - tmpfs tmpfs rw
31 30 0:26 / /run/with\040space rw shared:7 master:2 - tmpfs tmpfs rw
32 26 0:27 / /mnt/slave rw master:9 - tmpfs tmpfs rw
33 26 0:28 / /mnt/back\134slash rw unbindable - tmpfs tmpfs rw
`

func TestMountByID(t *testing.T) {
	tests := []struct {
		id      uint64
		want    mountEntry
		wantErr string
	}{
		{id: 26, want: mountEntry{id: 26, mountPoint: "/"}},
		{id: 30, want: mountEntry{id: 30, mountPoint: "/run", shared: true}},
		{id: 31, want: mountEntry{id: 31, mountPoint: "/run/with space", shared: true}},
		{id: 32, want: mountEntry{id: 32, mountPoint: "/mnt/slave"}},
		{id: 33, want: mountEntry{id: 33, mountPoint: `/mnt/back\slash`}},
		{id: 99, wantErr: "mount ID 99 not in mountinfo"},
	}
	for _, tt := range tests {
		got, err := mountByID([]byte(sampleMountinfo), tt.id)
		if tt.wantErr != "" {
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Errorf("id %d: err %v, want %q", tt.id, err, tt.wantErr)
			}
			continue
		}
		if err != nil || got != tt.want {
			t.Errorf("id %d: %+v, %v; want %+v", tt.id, got, err, tt.want)
		}
	}
}

// A "shared:" after the separator is a super option, not a peer group.
func TestMountByIDSharedOnlyBeforeSeparator(t *testing.T) {
	got, err := mountByID([]byte("40 26 0:30 / /x rw - tmpfs shared:1 rw\n"), 40)
	if err != nil || got.shared {
		t.Fatalf("%+v, %v: want not shared", got, err)
	}
}

func TestRootPropagation(t *testing.T) {
	for p, want := range map[string]string{
		"": "rslave", "rslave": "rslave", "slave": "slave", "rshared": "rshared", "shared": "shared",
		"rprivate": "rprivate", "private": "private", "runbindable": "rslave", "unbindable": "rslave", "bogus": "rslave",
	} {
		if got := rootPropagation(p); got != want {
			t.Errorf("rootPropagation(%q) = %q, want %q", p, got, want)
		}
	}
}

func FuzzMountByID(f *testing.F) {
	f.Add([]byte(sampleMountinfo), uint64(31))
	f.Add([]byte(`1 1 0:1 / /a\ rw - x y z`), uint64(1))
	f.Add([]byte(`1 1 0:1 / /a\999 rw shared:1 - x y z`), uint64(1))
	f.Fuzz(func(t *testing.T, data []byte, id uint64) {
		e, err := mountByID(data, id)
		if err == nil && e.id != id {
			t.Fatalf("asked for %d, got %d", id, e.id)
		}
	})
}
