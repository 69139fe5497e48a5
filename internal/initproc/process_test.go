//go:build linux

package initproc

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestRefuseUnchanged: the init's last check before setresuid(2): -1 in
// any id of process.user is refused, every real id passes.
func TestRefuseUnchanged(t *testing.T) {
	tests := []struct {
		name    string
		user    specs.User
		wantErr string
	}{
		{name: "root", user: specs.User{}},
		{name: "last real ids", user: specs.User{UID: 4294967294, GID: 4294967294, AdditionalGids: []uint32{4294967294}}},
		{name: "uid -1", user: specs.User{UID: 4294967295}, wantErr: "process.user.uid: 4294967295 is -1"},
		{name: "gid -1", user: specs.User{UID: 1, GID: 4294967295}, wantErr: "process.user.gid: 4294967295 is -1"},
		{name: "additional gid -1", user: specs.User{AdditionalGids: []uint32{5, 4294967295}}, wantErr: "process.user.additionalGids: 4294967295 is -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := refuseUnchanged(tt.user)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
