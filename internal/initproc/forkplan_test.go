//go:build linux

package initproc

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/userns"
)

// fakeRoot is a container root with an /etc/passwd, and /etc/shadow a
// symlink out of it (which in-root resolution keeps inside).
func fakeRoot(t *testing.T, passwd string) *os.File {
	t.Helper()
	dir := t.TempDir()
	if err := os.MkdirAll(filepath.Join(dir, "etc"), 0o755); err != nil {
		t.Fatal(err)
	}
	if passwd != "" {
		if err := os.WriteFile(filepath.Join(dir, "etc/passwd"), []byte(passwd), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	f, err := os.Open(dir)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

func TestNewForkPlan(t *testing.T) {
	umask := uint32(0o077)
	p := &specs.Process{
		Args: []string{"sh", "-c", "true"},
		Env:  []string{"PATH=/usr/bin::/bin", "A=b"},
		Cwd:  "/work",
		User: specs.User{UID: 1000, GID: 100, AdditionalGids: []uint32{5, 6}, Umask: &umask},
		Capabilities: &specs.LinuxCapabilities{
			Bounding:    []string{"CAP_CHOWN", "CAP_KILL", "CAP_NET_RAW"},
			Effective:   []string{"CAP_KILL"},
			Permitted:   []string{"CAP_KILL", "CAP_NET_RAW"},
			Inheritable: []string{"CAP_KILL"},
			// CAP_NET_RAW is not inheritable: skipped, as the init does.
			Ambient: []string{"CAP_KILL", "CAP_NET_RAW"},
		},
		Rlimits: []specs.POSIXRlimit{
			{Type: "RLIMIT_NOFILE", Soft: 10, Hard: 20},
			{Type: "RLIMIT_AS", Soft: 1 << 40, Hard: 1 << 40},
		},
		NoNewPrivileges: true,
	}
	root := fakeRoot(t, "root:x:0:0::/root:/bin/sh\nu:x:1000:100::/home/u:/bin/sh\n")
	plan, err := NewForkPlan(ForkInput{Process: p, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	bit := func(cs ...uint) uint64 {
		var m uint64
		for _, c := range cs {
			m |= 1 << c
		}
		return m
	}
	if plan.KeepBounding != bit(unix.CAP_CHOWN, unix.CAP_KILL, unix.CAP_NET_RAW) ||
		plan.Effective != bit(unix.CAP_KILL) || plan.Permitted != bit(unix.CAP_KILL, unix.CAP_NET_RAW) ||
		plan.Inheritable != bit(unix.CAP_KILL) || plan.Ambient != bit(unix.CAP_KILL) {
		t.Errorf("caps: bounding %#x effective %#x permitted %#x inheritable %#x ambient %#x", plan.KeepBounding, plan.Effective, plan.Permitted, plan.Inheritable, plan.Ambient)
	}
	if want := []string{"/usr/bin/sh", "sh", "/bin/sh"}; !reflect.DeepEqual(plan.Paths, want) {
		t.Errorf("paths %q, want %q (an empty PATH entry is the working directory)", plan.Paths, want)
	}
	if want := []string{"PATH=/usr/bin::/bin", "A=b", "HOME=/home/u"}; !reflect.DeepEqual(plan.Env, want) {
		t.Errorf("env %q, want %q", plan.Env, want)
	}
	if !reflect.DeepEqual(plan.Args, p.Args) || plan.Cwd != "/work" || plan.UID != 1000 || plan.GID != 100 ||
		!plan.SetGroups || !reflect.DeepEqual(plan.Groups, []uint32{5, 6}) || plan.Umask != 0o077 || !plan.NoNewPrivs {
		t.Errorf("plan %+v", plan)
	}
	// RLIMIT_AS is the init's own, RLIMIT_NOFILE both's (spec.SetByInit).
	if want := []userns.Rlimit{{Resource: unix.RLIMIT_NOFILE, Soft: 10, Hard: 20}, {Resource: unix.RLIMIT_AS, Soft: 1 << 40, Hard: 1 << 40}}; !reflect.DeepEqual(plan.Rlimits, want) {
		t.Errorf("rlimits %+v, want %+v", plan.Rlimits, want)
	}
	if len(p.Env) != 2 {
		t.Errorf("the process's env was changed: %q", p.Env)
	}
}

func TestNewForkPlanDefaults(t *testing.T) {
	p := &specs.Process{Args: []string{"/bin/true"}, Env: []string{"HOME=/h"}, Cwd: "/"}
	plan, err := NewForkPlan(ForkInput{Process: p, Root: fakeRoot(t, "")})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(plan.Paths, []string{"/bin/true"}) || plan.Umask != 0o022 || plan.KeepBounding != 0 ||
		!reflect.DeepEqual(plan.Env, []string{"HOME=/h"}) {
		t.Errorf("plan %+v", plan)
	}
	// No passwd: HOME=/; no PATH: sandy's default.
	p = &specs.Process{Args: []string{"true"}, Cwd: "/", User: specs.User{UID: 7}}
	if plan, err = NewForkPlan(ForkInput{Process: p, Root: fakeRoot(t, "")}); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(plan.Env, []string{"HOME=/"}) || len(plan.Paths) != 6 || plan.Paths[0] != "/usr/local/sbin/true" {
		t.Errorf("env %q paths %q", plan.Env, plan.Paths)
	}
}

// HOME comes from the container's passwd resolved inside its root: a
// symlinked /etc/passwd pointing at an absolute path stays in the root.
func TestNewForkPlanHomeInRoot(t *testing.T) {
	root := fakeRoot(t, "")
	dir := root.Name()
	if err := os.WriteFile(filepath.Join(dir, "inner"), []byte("u:x:5:5::/inside:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/inner", filepath.Join(dir, "etc/passwd")); err != nil {
		t.Fatal(err)
	}
	p := &specs.Process{Args: []string{"/bin/true"}, Cwd: "/", User: specs.User{UID: 5}}
	plan, err := NewForkPlan(ForkInput{Process: p, Root: root})
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(plan.Env, []string{"HOME=/inside"}) {
		t.Errorf("env %q, want HOME=/inside (the symlink resolved in the root)", plan.Env)
	}
}

func TestNewForkPlanRefuses(t *testing.T) {
	for _, tt := range []struct {
		name string
		in   ForkInput
		want string
	}{
		{"uid -1", ForkInput{Process: &specs.Process{Args: []string{"x"}, User: specs.User{UID: 4294967295}}}, "switching to process.user: process.user.uid: 4294967295 is -1"},
		{"groups denied", ForkInput{Process: &specs.Process{Args: []string{"x"}, User: specs.User{AdditionalGids: []uint32{1}}}, SetgroupsDenied: true}, "switching to process.user: process.user.additionalGids needs setgroups(2)"},
		{"unknown cap", ForkInput{Process: &specs.Process{Args: []string{"x"}, Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_NOPE"}}}}, `dropping the capability bounding set: process.capabilities: unknown capability "CAP_NOPE"`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			_, err := NewForkPlan(tt.in)
			if err == nil || !strings.HasPrefix(err.Error(), tt.want) {
				t.Errorf("got %v, want %q...", err, tt.want)
			}
		})
	}
}

func TestForkFailure(t *testing.T) {
	p := &specs.Process{Args: []string{"prog"}, Cwd: "/proc/self/fd/5", User: specs.User{UID: 70000, GID: 9, AdditionalGids: []uint32{3}},
		Rlimits: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 1}, {Type: "RLIMIT_AS", Soft: 9, Hard: 10}}}
	in := ForkInput{Process: p}
	plan := &userns.ForkPlan{UID: 70000, GID: 9, Groups: []uint32{3}, Paths: []string{"/a/prog", "/b/prog"},
		Joins: []userns.NSJoin{{Name: "user"}, {Name: "mount"}}}
	uidMap := "         0       1000          1\n"
	for _, tt := range []struct {
		fe   userns.ForkError
		want string
		code int
	}{
		{userns.ForkError{Step: userns.StepExec, Errno: unix.ENOENT, Value: -1}, `finding the executable: exec: "prog": executable file not found in $PATH`, 127},
		{userns.ForkError{Step: userns.StepExec, Errno: unix.EACCES, Value: -1}, `finding the executable: exec: "prog": permission denied`, 126},
		{userns.ForkError{Step: userns.StepExec, Errno: unix.ENOEXEC, Value: 1}, `exec: "/b/prog": permission denied`, 126},
		{userns.ForkError{Step: userns.StepChdir, Errno: unix.ENOENT}, "entering process.cwd: /proc/self/fd/5: no such file or directory", 0},
		{userns.ForkError{Step: userns.StepCwdOutside}, "entering process.cwd: /proc/self/fd/5: the directory entered is outside the container's root (getcwd(2) finds it unreachable)", 0},
		{userns.ForkError{Step: userns.StepCwdOutsideAsUser, Value: 1}, `entering process.cwd as process.user: /proc/self/fd/5: the directory entered is outside the container's root (its ".." chain never reaches the root)`, 0},
		{userns.ForkError{Step: userns.StepCwdWalk, Errno: unix.EACCES, Value: int32(unix.EPERM)}, "entering process.cwd: /proc/self/fd/5: getcwd: operation not permitted; walking up to the root: permission denied", 0},
		{userns.ForkError{Step: userns.StepSetresuid, Errno: unix.EINVAL}, "switching to process.user: setresuid 70000: invalid argument (process.user.uid 70000 is not mapped in the container's user namespace (uid map: 0 1000 1)", 0},
		{userns.ForkError{Step: userns.StepSetgroups, Errno: unix.EINVAL}, "switching to process.user: setgroups [3]: invalid argument (is every additional gid mapped?)", 0},
		{userns.ForkError{Step: userns.StepRlimit, Errno: unix.EPERM, Value: 1}, "setting the init's rlimits: RLIMIT_AS 9/10: operation not permitted (above the hard limit", 0},
		{userns.ForkError{Step: userns.StepJoin, Errno: unix.EPERM, Value: 1}, "entering the container: setns into the mount namespace: operation not permitted: exec needs your uid mapped to root", 0},
		{userns.ForkError{Step: userns.StepSeccomp, Errno: unix.EACCES}, "loading seccomp: loading seccomp filter: seccomp(SECCOMP_SET_MODE_FILTER, 0x0): permission denied (no_new_privs is not set", 0},
	} {
		err := ForkFailure(in, plan, &tt.fe, uidMap, "")
		var ce *userns.ChildError
		if !errors.As(err, &ce) || !strings.HasPrefix(err.Error(), tt.want) || ce.ExitCode != tt.code {
			t.Errorf("%+v: got %v (%#v), want %q exit %d", tt.fe, err, ce, tt.want, tt.code)
		}
	}
	// With a slash: not found is the name's own ENOENT.
	in.Process = &specs.Process{Args: []string{"/x/prog"}}
	err := ForkFailure(in, &userns.ForkPlan{Paths: []string{"/x/prog"}}, &userns.ForkError{Step: userns.StepExec, Errno: unix.ENOENT, Value: -1}, "", "")
	if err == nil || err.Error() != `finding the executable: exec: "/x/prog": no such file or directory` || userns.ExitStatus(err) != 127 {
		t.Errorf("slash name: %v", err)
	}
}

// The step names ForkFailure uses are the ones the init's own steps
// carry (setup's table, finish's and setLateRlimits' callers).
func TestStepNames(t *testing.T) {
	src, err := os.ReadFile("process.go")
	if err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{stepBounding, stepCwd, stepUser, stepCwdAsUser, stepCaps, stepNoNewPrivs, stepFind} {
		if !strings.Contains(string(src), `{"`+name+`", p.`) {
			t.Errorf("setup has no step %q", name)
		}
	}
}
