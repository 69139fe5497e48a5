package lifecycle

import (
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/spec"
)

func TestParseUser(t *testing.T) {
	tests := []struct {
		in       string
		uid, gid uint32
		hasGID   bool
		wantErr  bool
	}{
		{in: "0", uid: 0},
		{in: "1000:1001", uid: 1000, gid: 1001, hasGID: true},
		{in: "4294967295", uid: 4294967295}, // parsed; refused by the map check
		{in: "4294967296", wantErr: true},
		{in: "-1", wantErr: true},
		{in: "root", wantErr: true},
		{in: "0:", wantErr: true},
		{in: "", wantErr: true},
	}
	for _, tt := range tests {
		t.Run(tt.in, func(t *testing.T) {
			uid, gid, hasGID, err := parseUser(tt.in)
			if tt.wantErr {
				if err == nil {
					t.Fatalf("parseUser(%q) = %d, %d: want an error", tt.in, uid, gid)
				}
				return
			}
			if err != nil || uid != tt.uid || gid != tt.gid || hasGID != tt.hasGID {
				t.Fatalf("parseUser(%q) = %d, %d, %v, %v", tt.in, uid, gid, hasGID, err)
			}
		})
	}
}

// TestBuildProcessFromFlags: the flags change the container's process, and
// ids outside the container's maps are refused with the flag's name.
func TestBuildProcessFromFlags(t *testing.T) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1001, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}
	tests := []struct {
		name    string
		o       ExecOptions
		want    specs.User
		wantErr string
	}{
		{name: "no user flags", o: ExecOptions{Args: []string{"id"}}, want: specs.User{UID: 0, GID: 0}},
		{name: "uid only keeps the gid", o: ExecOptions{Args: []string{"id"}, User: "1000"}, want: specs.User{UID: 1000, GID: 0}},
		{name: "uid and gid, additional gids", o: ExecOptions{Args: []string{"id"}, User: "1000:1001", AdditionalGID: []int64{5, 65536}},
			want: specs.User{UID: 1000, GID: 1001, AdditionalGids: []uint32{5, 65536}}},
		{name: "no command", o: ExecOptions{}, wantErr: "no command"},
		{name: "uid -1", o: ExecOptions{Args: []string{"id"}, User: "4294967295"}, wantErr: "--user uid 4294967295 is (uid_t)-1"},
		{name: "gid -1", o: ExecOptions{Args: []string{"id"}, User: "0:4294967295"}, wantErr: "--user gid 4294967295 is (gid_t)-1"},
		{name: "uid unmapped", o: ExecOptions{Args: []string{"id"}, User: "65537"}, wantErr: "--user uid 65537 is not mapped in the container's user namespace (uid map: 0 1001 1, 1 100000 65536)"},
		{name: "additional gid -1", o: ExecOptions{Args: []string{"id"}, AdditionalGID: []int64{4294967295}}, wantErr: "--additional-gids 4294967295 is (gid_t)-1"},
		{name: "additional gid unmapped", o: ExecOptions{Args: []string{"id"}, AdditionalGID: []int64{70000}}, wantErr: "--additional-gids 70000 is not mapped"},
		{name: "additional gid out of range", o: ExecOptions{Args: []string{"id"}, AdditionalGID: []int64{-1}}, wantErr: "--additional-gids -1: out of range"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.o
			ex := &execution{o: &o, spec: spec.Example(true)}
			p, err := ex.processFromFlags(m, m)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(p.User, tt.want) {
				t.Fatalf("user %+v, want %+v", p.User, tt.want)
			}
			if ex.spec.Process.User.AdditionalGids != nil {
				t.Fatal("the container's process was changed")
			}
		})
	}
}

// TestPrivilegedCaps: exec --privileged adds its set to the bounding set,
// and to the effective and permitted ones for uid 0 only; the
// container's process is not changed.
func TestPrivilegedCaps(t *testing.T) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1001, Size: 65536}}
	extra := []string{"CAP_SYS_ADMIN", "CAP_KILL"}
	for _, tc := range []struct {
		user    string
		wantEff bool
	}{{"", true}, {"0:5", true}, {"1000", false}} {
		sp := spec.Example(true)
		before := *sp.Process.Capabilities
		o := ExecOptions{Args: []string{"id"}, User: tc.user, PrivilegedCaps: extra}
		ex := &execution{o: &o, spec: sp}
		p, err := ex.processFromFlags(m, m)
		if err != nil {
			t.Fatal(err)
		}
		c := p.Capabilities
		if !slices.Contains(c.Bounding, "CAP_SYS_ADMIN") || !slices.Contains(c.Bounding, "CAP_KILL") {
			t.Errorf("-u %q: bounding %v lacks the privileged set", tc.user, c.Bounding)
		}
		if n := len(slices.DeleteFunc(slices.Clone(c.Bounding), func(x string) bool { return x != "CAP_KILL" })); n != 1 {
			t.Errorf("-u %q: CAP_KILL %d times in the bounding set", tc.user, n)
		}
		if got := slices.Contains(c.Effective, "CAP_SYS_ADMIN") && slices.Contains(c.Permitted, "CAP_SYS_ADMIN"); got != tc.wantEff {
			t.Errorf("-u %q: effective and permitted hold CAP_SYS_ADMIN: %v, want %v", tc.user, got, tc.wantEff)
		}
		if slices.Contains(c.Ambient, "CAP_SYS_ADMIN") || slices.Contains(c.Inheritable, "CAP_SYS_ADMIN") {
			t.Errorf("-u %q: ambient %v, inheritable %v: want neither to gain", tc.user, c.Ambient, c.Inheritable)
		}
		if !reflect.DeepEqual(*sp.Process.Capabilities, before) {
			t.Errorf("-u %q: the container's capabilities changed", tc.user)
		}
	}
}

// TestReadIDMaps: this process's own maps parse, and hold uid 0 in the
// initial user namespace.
func TestReadIDMaps(t *testing.T) {
	uids, gids, err := readIDMaps(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	if len(uids) == 0 || len(gids) == 0 {
		t.Fatalf("maps %v %v", uids, gids)
	}
	if _, _, err := readIDMaps(-1); err == nil {
		t.Fatal("readIDMaps(-1) succeeded")
	}
}

func TestDedupEnv(t *testing.T) {
	got := dedupEnv([]string{"A=1", "B=2", "A=3", "C"})
	if want := []string{"A=3", "B=2", "C"}; !reflect.DeepEqual(got, want) {
		t.Fatalf("dedupEnv: %v, want %v", got, want)
	}
}
