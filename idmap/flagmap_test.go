package idmap

import (
	"errors"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseFlagMap(t *testing.T) {
	for _, tc := range []struct {
		name, text string
		want       []specs.LinuxIDMapping
	}{
		{"one", "0:1:1000", []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1, Size: 1000}}},
		{"keep-id", "0:1:1001,1001:0:1,1002:1002:64535", []specs.LinuxIDMapping{
			{ContainerID: 0, HostID: 1, Size: 1001}, {ContainerID: 1001, HostID: 0, Size: 1}, {ContainerID: 1002, HostID: 1002, Size: 64535}}},
		{"empty", "", nil},
		{"two fields", "0:1", nil},
		{"not a number", "0:x:1", nil},
		{"negative", "0:-1:1", nil},
		{"zero size", "0:1:0", nil},
		{"overlap", "0:1:10,5:100:1", nil},
		{"space", "0:1: 1", nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := ParseFlagMap("--uidmap", tc.text)
			if tc.want == nil {
				if err == nil || !errors.Is(err, ErrInvalidMapping) {
					t.Fatalf("got %v, %v; want an ErrInvalidMapping", got, err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tc.want)
			}
			if s := FlagMap(got); s != tc.text {
				t.Errorf("FlagMap: %q, want %q", s, tc.text)
			}
		})
	}
}

func FuzzParseFlagMap(f *testing.F) {
	f.Add("0:1:1001,1001:0:1,1002:1002:64535")
	f.Add("0:0:4294967295")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := ParseFlagMap("--uidmap", text)
		if err != nil {
			return
		}
		if ValidateMappings("--uidmap", m) != nil {
			t.Fatalf("accepted an invalid map %v", m)
		}
		if again, err := ParseFlagMap("--uidmap", FlagMap(m)); err != nil || !reflect.DeepEqual(again, m) {
			t.Fatalf("round trip of %v: %v, %v", m, again, err)
		}
	})
}

func TestRootIsCaller(t *testing.T) {
	auto := &Plan{UIDs: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1001, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}}
	keepID := &Plan{UIDs: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 100000, Size: 1001}, {ContainerID: 1001, HostID: 1001, Size: 1}}}
	if !auto.RootIsCaller(1001) || keepID.RootIsCaller(1001) || auto.RootIsCaller(1002) || (&Plan{}).RootIsCaller(0) {
		t.Error("RootIsCaller")
	}
}
