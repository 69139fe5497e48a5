package spec

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestValidateProcess(t *testing.T) {
	base := func() *specs.Process {
		p := *Example(true).Process
		return &p
	}
	tests := []struct {
		name    string
		edit    func(p *specs.Process)
		wantErr string // "" = valid
	}{
		{name: "example", edit: func(*specs.Process) {}},
		{name: "no args", edit: func(p *specs.Process) { p.Args = nil }, wantErr: "process.args: empty"},
		{name: "empty program", edit: func(p *specs.Process) { p.Args = []string{""} }, wantErr: "process.args: empty"},
		{name: "relative cwd", edit: func(p *specs.Process) { p.Cwd = "tmp" }, wantErr: `process.cwd "tmp": must be an absolute path`},
		{name: "empty cwd (callers default it)", edit: func(p *specs.Process) { p.Cwd = "" }, wantErr: `process.cwd ""`},
		{name: "uid -1", edit: func(p *specs.Process) { p.User.UID = 4294967295 }, wantErr: `process.user.uid 4294967295 is (uid_t)-1, which no user namespace maps and setresuid(2) reads as "leave unchanged"`},
		{name: "gid -1", edit: func(p *specs.Process) { p.User.GID = 4294967295 }, wantErr: "process.user.gid 4294967295 is (gid_t)-1, which no user namespace maps and setresgid(2)"},
		{name: "additional gid -1", edit: func(p *specs.Process) { p.User.AdditionalGids = []uint32{1, 4294967295} }, wantErr: "process.user.additionalGids[1] 4294967295 is (gid_t)-1"},
		{name: "last real ids", edit: func(p *specs.Process) {
			p.User = specs.User{UID: 4294967294, GID: 4294967294, AdditionalGids: []uint32{4294967294}}
		}},
		{name: "unknown rlimit", edit: func(p *specs.Process) {
			p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 1}, {Type: "RLIMIT_BOGUS", Soft: 1, Hard: 1}}
		}, wantErr: `process.rlimits[1]: unknown type "RLIMIT_BOGUS" (want one of RLIMIT_AS, RLIMIT_CORE,`},
		{name: "lower-case rlimit", edit: func(p *specs.Process) { p.Rlimits = []specs.POSIXRlimit{{Type: "rlimit_nofile"}} }, wantErr: "unknown type"},
		{name: "soft above hard", edit: func(p *specs.Process) {
			p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2048, Hard: 1024}}
		}, wantErr: "process.rlimits[0]: RLIMIT_NOFILE soft limit 2048 above hard limit 1024"},
		{name: "soft equals hard, unlimited", edit: func(p *specs.Process) {
			p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_CORE", Soft: ^uint64(0), Hard: ^uint64(0)}}
		}},
		{name: "duplicate rlimit", edit: func(p *specs.Process) {
			p.Rlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 1}, {Type: "RLIMIT_CPU"}, {Type: "RLIMIT_NOFILE", Soft: 2, Hard: 2}}
		}, wantErr: "process.rlimits[2]: RLIMIT_NOFILE is already set by process.rlimits[0]"},
		{name: "unknown capability", edit: func(p *specs.Process) {
			p.Capabilities = &specs.LinuxCapabilities{Ambient: []string{"CAP_KILL", "CAP_BOGUS"}}
		}, wantErr: `process.capabilities.ambient: unknown capability "CAP_BOGUS"`},
		{name: "capability without CAP_", edit: func(p *specs.Process) {
			p.Capabilities = &specs.LinuxCapabilities{Bounding: []string{"KILL"}}
		}, wantErr: `process.capabilities.bounding: unknown capability "KILL"`},
		{name: "capabilities in any case, the newest known", edit: func(p *specs.Process) {
			p.Capabilities = &specs.LinuxCapabilities{Effective: []string{"cap_kill", "CAP_CHECKPOINT_RESTORE", "CAP_BPF"}}
		}},
		{name: "no capabilities", edit: func(p *specs.Process) { p.Capabilities = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := base()
			tt.edit(p)
			err := ValidateProcess(p)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ValidateProcess: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

func TestCheckUserMapped(t *testing.T) {
	// What sandy writes for sandytest (uid 1001, subuid 100000:65536).
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1001, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}}
	single := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1001, Size: 1}}
	tests := []struct {
		name       string
		user       specs.User
		uids, gids []specs.LinuxIDMapping
		wantErr    string
	}{
		{name: "root", user: specs.User{}, uids: m, gids: m},
		{name: "last mapped", user: specs.User{UID: 65536, GID: 65536, AdditionalGids: []uint32{1, 65536}}, uids: m, gids: m},
		{name: "uid past the map", user: specs.User{UID: 70000}, uids: m, gids: m,
			wantErr: "process.user.uid 70000 is not mapped in the container's user namespace (uid map: 0 1001 1, 1 100000 65536); fix: "},
		{name: "uid one past the map", user: specs.User{UID: 65537}, uids: m, gids: m, wantErr: "process.user.uid 65537 is not mapped"},
		{name: "gid past the map", user: specs.User{GID: 70000}, uids: m, gids: m,
			wantErr: "process.user.gid 70000 is not mapped in the container's user namespace (gid map: 0 1001 1, 1 100000 65536)"},
		{name: "additional gid past the map", user: specs.User{AdditionalGids: []uint32{5, 70000}}, uids: m, gids: m,
			wantErr: "process.user.additionalGids[1] 70000 is not mapped"},
		{name: "uid -1 says why", user: specs.User{UID: 4294967295}, uids: m, gids: m, wantErr: "process.user.uid 4294967295 is (uid_t)-1"},
		{name: "single mapping: only root", user: specs.User{UID: 1}, uids: single, gids: single,
			wantErr: "process.user.uid 1 is not mapped in the container's user namespace (uid map: 0 1001 1)"},
		{name: "the fix names the config field and the file", user: specs.User{GID: 1}, uids: single, gids: single,
			wantErr: "linux.gidMappings in config.json, or a larger range in /etc/subgid"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := CheckUserMapped(tt.user, tt.uids, tt.gids)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("CheckUserMapped: %v", err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}
