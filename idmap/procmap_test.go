package idmap

import (
	"errors"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestParseProcMap(t *testing.T) {
	tests := []struct {
		name    string
		text    string
		want    []specs.LinuxIDMapping
		wantErr error
	}{
		{name: "rootless, padded as the kernel prints it",
			text: "         0       1001          1\n         1     100000      65536\n",
			want: []specs.LinuxIDMapping{mapping(0, 1001, 1), mapping(1, 100000, 65536)}},
		{name: "initial namespace", text: "         0          0 4294967295\n",
			want: []specs.LinuxIDMapping{mapping(0, 0, 4294967295)}},
		{name: "empty (no map written yet)", text: "", wantErr: ErrMalformed},
		{name: "two numbers", text: "0 1001\n", wantErr: ErrMalformed},
		{name: "not a number", text: "0 x 1\n", wantErr: ErrMalformed},
		{name: "past uint32", text: "0 0 4294967296\n", wantErr: ErrMalformed},
		{name: "overlap", text: "0 1000 10\n5 2000 10\n", wantErr: ErrInvalidMapping},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParseProcMap("uid_map", tt.text)
			if tt.wantErr != nil {
				if !errors.Is(err, tt.wantErr) {
					t.Fatalf("error %v, want %v", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tt.want) {
				t.Fatalf("got %v, %v; want %v", got, err, tt.want)
			}
		})
	}
}

func TestMapped(t *testing.T) {
	rootless := []specs.LinuxIDMapping{mapping(0, 1001, 1), mapping(1, 100000, 65536)}
	initial := []specs.LinuxIDMapping{mapping(0, 0, 4294967295)}
	tests := []struct {
		name string
		m    []specs.LinuxIDMapping
		id   uint32
		want bool
	}{
		{"root", rootless, 0, true},
		{"first subordinate", rootless, 1, true},
		{"last subordinate", rootless, 65536, true},
		{"one past the end", rootless, 65537, false},
		{"-1 in a rootless map", rootless, 4294967295, false},
		{"last id of the initial namespace", initial, 4294967294, true},
		{"-1 in the initial namespace", initial, 4294967295, false},
		{"no map", nil, 0, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Mapped(tt.m, tt.id); got != tt.want {
				t.Fatalf("Mapped(%v, %d) = %v", tt.m, tt.id, got)
			}
		})
	}
	if s := FormatMap(rootless); s != "0 1001 1, 1 100000 65536" {
		t.Fatalf("FormatMap: %q", s)
	}
}

func FuzzParseProcMap(f *testing.F) {
	f.Add("         0       1001          1\n         1     100000      65536\n")
	f.Add("0 0 4294967295")
	f.Fuzz(func(t *testing.T, text string) {
		m, err := ParseProcMap("uid_map", text)
		if err == nil && ValidateMappings("uid_map", m) != nil {
			t.Fatalf("accepted an invalid map %v", m)
		}
	})
}
