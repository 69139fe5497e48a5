package initproc

import (
	"reflect"
	"testing"

	"golang.org/x/sys/unix"
)

func TestParseMountOptions(t *testing.T) {
	tests := []struct {
		name    string
		typ     string
		options []string
		want    mountOpts
	}{
		{name: "tmpfs", typ: "tmpfs", options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"},
			want: mountOpts{flags: unix.MS_NOSUID | unix.MS_STRICTATIME, data: []string{"mode=755", "size=65536k"}}},
		{name: "rbind ro", typ: "none", options: []string{"rbind", "ro", "rprivate"},
			want: mountOpts{flags: unix.MS_RDONLY, bind: true, recursive: true, propagation: unix.MS_PRIVATE | unix.MS_REC}},
		{name: "bind type", typ: "bind", options: []string{"nodev"},
			want: mountOpts{flags: unix.MS_NODEV, bind: true}},
		{name: "later option wins", typ: "tmpfs", options: []string{"ro", "rw"},
			want: mountOpts{clear: unix.MS_RDONLY}},
		{name: "defaults and x- ignored", typ: "tmpfs", options: []string{"defaults", "x-systemd.foo", "noexec"},
			want: mountOpts{flags: unix.MS_NOEXEC}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := parseMountOptions(tt.typ, tt.options)
			if !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestStatfsToMountFlags(t *testing.T) {
	got := statfsToMountFlags(unix.ST_RDONLY | unix.ST_NOSUID | unix.ST_RELATIME)
	if got != unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_RELATIME {
		t.Fatalf("got %#x", got)
	}
}

func FuzzParseMountOptions(f *testing.F) {
	f.Add("tmpfs", "nosuid,mode=755")
	f.Fuzz(func(t *testing.T, typ, opts string) {
		_ = parseMountOptions(typ, splitComma(opts))
	})
}

func splitComma(s string) []string {
	var out []string
	start := 0
	for i := 0; i <= len(s); i++ {
		if i == len(s) || s[i] == ',' {
			out = append(out, s[start:i])
			start = i + 1
		}
	}
	return out
}
