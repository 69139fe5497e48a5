package initproc

import (
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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
		{name: "recursive attributes", typ: "bind", options: []string{"rbind", "rro", "rnosuid", "rnodev", "rnoexec", "rnosymfollow"},
			want: mountOpts{bind: true, recursive: true,
				attrSet: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC | unix.MOUNT_ATTR_NOSYMFOLLOW}},
		{name: "rro then rrw", typ: "bind", options: []string{"rro", "rrw"},
			want: mountOpts{bind: true, attrClr: unix.MOUNT_ATTR_RDONLY}},
		{name: "ro and rro are separate", typ: "bind", options: []string{"ro", "rro"},
			want: mountOpts{bind: true, flags: unix.MS_RDONLY, attrSet: unix.MOUNT_ATTR_RDONLY}},
		{name: "recursive atime clears the whole field", typ: "bind", options: []string{"rnoatime"},
			want: mountOpts{bind: true, attrSet: unix.MOUNT_ATTR_NOATIME, attrClr: unix.MOUNT_ATTR__ATIME}},
		{name: "later atime wins", typ: "bind", options: []string{"rnoatime", "rstrictatime"},
			want: mountOpts{bind: true, attrSet: unix.MOUNT_ATTR_STRICTATIME, attrClr: unix.MOUNT_ATTR__ATIME}},
		{name: "rrelatime", typ: "bind", options: []string{"rnoatime", "rrelatime"},
			want: mountOpts{bind: true, attrSet: unix.MOUNT_ATTR_RELATIME, attrClr: unix.MOUNT_ATTR__ATIME}},
		{name: "idmap", typ: "bind", options: []string{"rbind", "idmap"},
			want: mountOpts{bind: true, recursive: true, idmap: "idmap"}},
		{name: "ridmap", typ: "bind", options: []string{"ridmap"},
			want: mountOpts{bind: true, idmap: "ridmap"}},
		{name: "tmpcopyup", typ: "tmpfs", options: []string{"tmpcopyup", "mode=755"},
			want: mountOpts{tmpcopyup: true, data: []string{"mode=755"}}},
		{name: "volume first use", typ: "bind", options: []string{"rbind", "copyup", "chownup", "rchown"},
			want: mountOpts{bind: true, recursive: true, copyup: true, chownup: true, rchown: true}},
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

func TestRefuseOptions(t *testing.T) {
	tests := []struct {
		name string
		m    specs.Mount
		want string // a part of the error, "" for none
	}{
		{name: "idmap", m: specs.Mount{Type: "bind", Source: "/src", Destination: "/d", Options: []string{"rbind", "idmap"}}, want: `option "idmap": an idmapped mount needs CAP_SYS_ADMIN in the initial user namespace`},
		{name: "ridmap", m: specs.Mount{Type: "bind", Source: "/src", Destination: "/d", Options: []string{"ridmap"}}, want: `remove "ridmap"`},
		{name: "tmpcopyup on a bind", m: specs.Mount{Type: "bind", Source: "/src", Destination: "/d", Options: []string{"tmpcopyup"}}, want: `"tmpcopyup" is for tmpfs mounts`},
		{name: "tmpcopyup on tmpfs", m: specs.Mount{Type: "tmpfs", Destination: "/d", Options: []string{"tmpcopyup"}}},
		{name: "copyup on tmpfs", m: specs.Mount{Type: "tmpfs", Destination: "/d", Options: []string{"copyup"}}, want: `are for bind mounts`},
		{name: "rchown on tmpfs", m: specs.Mount{Type: "tmpfs", Destination: "/d", Options: []string{"rchown"}}, want: `"rchown" is for bind mounts`},
		{name: "chownup on a bind", m: specs.Mount{Type: "none", Source: "/src", Destination: "/d", Options: []string{"rbind", "chownup"}}},
		{name: "rro", m: specs.Mount{Type: "bind", Source: "/src", Destination: "/d", Options: []string{"rbind", "rro"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := refuseOptions(tt.m, parseMountOptions(tt.m.Type, tt.m.Options))
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Fatalf("got %v, want an error with %q", err, tt.want)
			}
		})
	}
}

// TestMountOptionsListed: every option `sandy features` lists is one the
// parser knows (none falls through to filesystem data).
func TestMountOptionsListed(t *testing.T) {
	opts := MountOptions()
	for _, want := range []string{"rro", "rnosymfollow", "tmpcopyup", "ro", "rprivate"} {
		found := false
		for _, o := range opts {
			found = found || o == want
		}
		if !found {
			t.Errorf("%q not listed", want)
		}
	}
	for _, o := range opts {
		if got := parseMountOptions("tmpfs", []string{o}); len(got.data) != 0 {
			t.Errorf("%q is listed but parsed as data", o)
		}
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
