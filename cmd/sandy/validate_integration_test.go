//go:build integration

package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestUnmappedUser: process.user ids that are (uid_t)-1 or outside the
// container's id maps are refused before the container starts. setresuid(2)
// and setresgid(2) read -1 as "leave unchanged": before the fix a config
// with uid 4294967295 ran its process as the container's root.
func TestUnmappedUser(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	tests := []struct {
		name string
		user specs.User
		want []string // in stderr
	}{
		{"uid -1", specs.User{UID: 4294967295}, []string{"process.user.uid 4294967295", "(uid_t)-1"}},
		{"gid -1", specs.User{GID: 4294967295}, []string{"process.user.gid 4294967295", "(gid_t)-1"}},
		{"additional gid -1", specs.User{AdditionalGids: []uint32{4294967295}}, []string{"process.user.additionalGids[0] 4294967295"}},
		{"uid outside the map", specs.User{UID: 70000}, []string{"process.user.uid 70000 is not mapped in the container's user namespace", "uid map: 0 ", "fix:"}},
		{"gid outside the map", specs.User{GID: 70000}, []string{"process.user.gid 70000 is not mapped", "gid map: 0 "}},
		{"additional gid outside the map", specs.User{AdditionalGids: []uint32{5, 70000}}, []string{"process.user.additionalGids[1] 70000 is not mapped"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newEnv(t, "sh", "-c", "echo ran as $(id -u):$(id -g)")
			e.spec.Process.User = tt.user
			e.write()
			r := e.run("", "run", e.bundle)
			if r.code == 0 {
				t.Fatalf("sandy run succeeded; the process printed %q", r.stdout)
			}
			t.Logf("stderr: %s", r.stderr)
			if strings.Contains(r.stdout, "ran as") {
				t.Errorf("the process ran: %q", r.stdout)
			}
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q, want it to contain %q", r.stderr, w)
				}
			}
		})
	}
}

// TestJoinedUserNSUnmappedUser: a container that joins another's user
// namespace by path has no map sandy decided; its init refuses an unmapped
// process.user.uid (setresuid fails) and names the map it read there.
func TestJoinedUserNSUnmappedUser(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	a := newEnv(t, "sleep", "100")
	id := uniqueID("joined-ids")
	pid := startDetached(t, a, id)
	b := newEnv(t, "sh", "-c", "echo ran as $(id -u)")
	b.root = a.root
	for i, n := range b.spec.Linux.Namespaces {
		if n.Type == specs.UserNamespace {
			b.spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/user", pid)
		}
	}
	b.spec.Process.User.UID = 70000
	b.write()
	r := b.run("", "run", b.bundle)
	t.Logf("stderr: %s", r.stderr)
	if r.code == 0 || strings.Contains(r.stdout, "ran as") {
		t.Fatalf("exit %d, stdout %q", r.code, r.stdout)
	}
	if want := "process.user.uid 70000 is not mapped in the container's user namespace (uid map: 0 "; !strings.Contains(r.stderr, want) {
		t.Fatalf("stderr %q, want it to contain %q", r.stderr, want)
	}
}

// TestExecUnmappedUser: exec -u and -g with (uid_t)-1 or an id outside the
// container's maps are refused, naming the flag and the map, and exit 255;
// so is such an id in a --process file.
func TestExecUnmappedUser(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sleep", "100")
	id := uniqueID("exec-ids")
	startDetached(t, e, id)
	procFile := func(u specs.User) string {
		data, _ := json.Marshal(specs.Process{Args: []string{"id"}, Cwd: "/", User: u})
		f := filepath.Join(testutil.TempDir(t), "process.json")
		if err := os.WriteFile(f, data, 0o644); err != nil {
			t.Fatal(err)
		}
		return f
	}
	tests := []struct {
		name string
		args []string
		want []string
	}{
		{"-u -1", []string{"-u", "4294967295"}, []string{"--user", "4294967295", "(uid_t)-1"}},
		{"-u 0:-1", []string{"-u", "0:4294967295"}, []string{"--user", "(gid_t)-1"}},
		{"-g -1", []string{"-g", "4294967295"}, []string{"--additional-gids", "4294967295"}},
		{"-u unmapped", []string{"-u", "70000"}, []string{"--user uid 70000 is not mapped in the container's user namespace", "uid map: 0 "}},
		{"-u 0:unmapped", []string{"-u", "0:70000"}, []string{"--user gid 70000 is not mapped", "gid map: 0 "}},
		{"-g unmapped", []string{"-g", "70000"}, []string{"--additional-gids 70000 is not mapped", "gid map: 0 "}},
		{"--process uid -1", []string{"--process", procFile(specs.User{UID: 4294967295})}, []string{"process.user.uid 4294967295", "(uid_t)-1"}},
		{"--process unmapped uid", []string{"--process", procFile(specs.User{UID: 70000})}, []string{"process.user.uid 70000 is not mapped", "uid map: 0 "}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			args := append([]string{"exec"}, tt.args...)
			args = append(args, id)
			if !strings.Contains(strings.Join(tt.args, " "), "--process") {
				args = append(args, "id")
			}
			r := e.run("", args...)
			if r.code != 255 {
				t.Fatalf("exit %d, want 255; the process printed %q; stderr %s", r.code, r.stdout, r.stderr)
			}
			t.Logf("stderr: %s", r.stderr)
			for _, w := range tt.want {
				if !strings.Contains(r.stderr, w) {
					t.Errorf("stderr %q, want it to contain %q", r.stderr, w)
				}
			}
		})
	}
}

// TestExecProcessValidation: a --process file is validated with the rules
// of config.json's process: before the fix an unknown rlimit type became
// resource 0 (RLIMIT_CPU) and the process ran.
func TestExecProcessValidation(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sleep", "100")
	id := uniqueID("exec-proc")
	startDetached(t, e, id)
	tests := []struct {
		name string
		proc string
		want string
	}{
		{"unknown rlimit", `{"args": ["sh", "-c", "ulimit -t"], "cwd": "/", "rlimits": [{"type": "RLIMIT_BOGUS", "soft": 1, "hard": 1}]}`, `process.rlimits[0]: unknown type "RLIMIT_BOGUS"`},
		{"soft above hard", `{"args": ["true"], "cwd": "/", "rlimits": [{"type": "RLIMIT_NOFILE", "soft": 2048, "hard": 1024}]}`, "soft limit 2048 above hard limit 1024"},
		{"empty args", `{"args": [], "cwd": "/"}`, "process.args: empty"},
		{"bad capability", `{"args": ["true"], "cwd": "/", "capabilities": {"bounding": ["CAP_BOGUS"]}}`, `process.capabilities.bounding: unknown capability "CAP_BOGUS"`},
		{"relative cwd", `{"args": ["true"], "cwd": "tmp"}`, `process.cwd "tmp": must be an absolute path`},
		{"not JSON", `{"args": [`, "--process"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := filepath.Join(testutil.TempDir(t), "process.json")
			if err := os.WriteFile(f, []byte(tt.proc), 0o644); err != nil {
				t.Fatal(err)
			}
			r := e.run("", "exec", "--process", f, id)
			if r.code != 255 || !strings.Contains(r.stderr, tt.want) {
				t.Fatalf("exit %d (want 255), stdout %q, stderr %q (want it to contain %q)", r.code, r.stdout, r.stderr, tt.want)
			}
			t.Logf("stderr: %s", r.stderr)
		})
	}
}

// TestExecExitCodes: runc's exec.bats "runc exec [exit codes]": the
// process's own status passes through, and every failure of the runtime
// (before the process runs) is 255.
func TestExecExitCodes(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sleep", "100")
	id := uniqueID("exec-codes")
	startDetached(t, e, id)
	tests := []struct {
		name string
		args []string
		want int
	}{
		{"false", []string{"exec", id, "false"}, 1},
		{"exit 42", []string{"exec", id, "sh", "-c", "exit 42"}, 42},
		{"killed by a signal", []string{"exec", id, "sh", "-c", "kill -9 $$"}, 137},
		{"unwritable pid file", []string{"exec", "--pid-file", "/non-existent/directory", id, "true"}, 255},
		{"no such binary", []string{"exec", id, "no-such-binary"}, 255},
		{"not executable", []string{"exec", id, "/etc/passwd"}, 255},
		{"no such container", []string{"exec", "no_such_container", "true"}, 255},
		{"malformed --user", []string{"exec", "-u", "root", id, "true"}, 255},
		{"missing process file", []string{"exec", "--process", "/non-existent/process.json", id}, 255},
		{"usage: no container", []string{"exec"}, 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := e.run("", tt.args...)
			if r.code != tt.want {
				t.Fatalf("sandy %v: exit %d, want %d; stderr %s", tt.args, r.code, tt.want, r.stderr)
			}
			if tt.want == 255 && !strings.Contains(r.stderr, "sandy exec: ") {
				t.Errorf("stderr %q: want the error, once", r.stderr)
			}
		})
	}
}
