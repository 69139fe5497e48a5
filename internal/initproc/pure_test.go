//go:build linux

package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/seccomp"
	"github.com/sandy-rt/sandy/userns"
)

// Table tests of the init's pure functions (and of lookPath, against a
// temporary PATH on the host).

func TestChildFailure(t *testing.T) {
	tests := []struct {
		name     string
		err      error
		want     userns.ChildError
		wantCode int
	}{
		{"a plain error", errors.New("boom"), userns.ChildError{Message: "boom"}, 1},
		{"a step's error", stepError("pivot_root", unix.EINVAL), userns.ChildError{Step: "pivot_root", Message: "invalid argument"}, 1},
		{"not found", &userns.ChildError{Message: "exec: \"x\": not found", ExitCode: 127}, userns.ChildError{Message: "exec: \"x\": not found", ExitCode: 127}, 127},
		{"not executable, wrapped", fmt.Errorf("wrapped: %w", &userns.ChildError{Step: "s", Message: "m", ExitCode: 126}),
			userns.ChildError{Step: "s", Message: "m", ExitCode: 126}, 126},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			ce, code := childFailure(tt.err)
			if *ce != tt.want || code != tt.wantCode {
				t.Errorf("childFailure = %+v, %d; want %+v, %d", *ce, code, tt.want, tt.wantCode)
			}
		})
	}
}

func TestStepError(t *testing.T) {
	plain := stepError("gaining capabilities", errors.New("no"))
	var ce *userns.ChildError
	if !errors.As(plain, &ce) || ce.Step != "gaining capabilities" || ce.Message != "no" || plain.Error() != "gaining capabilities: no" {
		t.Errorf("plain error: %#v", plain)
	}
	// A ChildError keeps the innermost step that named it.
	inner := &userns.ChildError{Step: "mounting /proc", Message: "EPERM", Hint: "h"}
	if got := stepError("setting up the root filesystem", fmt.Errorf("x: %w", inner)); got != inner || inner.Step != "mounting /proc" {
		t.Errorf("named ChildError: %#v", got)
	}
	unnamed := &userns.ChildError{Message: "exec: not found", ExitCode: 127}
	if got := stepError("finding the executable", unnamed); got != unnamed || unnamed.Step != "finding the executable" || unnamed.ExitCode != 127 {
		t.Errorf("unnamed ChildError: %#v", got)
	}
}

func TestCapSets(t *testing.T) {
	p := &process{p: &specs.Process{Capabilities: &specs.LinuxCapabilities{
		Bounding:  []string{"CAP_CHOWN", "cap_kill"},
		Effective: []string{"CAP_NET_BIND_SERVICE"},
		Permitted: []string{"CAP_NET_BIND_SERVICE", "CAP_SETUID"},
	}}}
	got, err := p.capSets()
	if err != nil {
		t.Fatal(err)
	}
	want := map[capability.CapType][]capability.Cap{
		capability.BOUNDING:    {capability.CAP_CHOWN, capability.CAP_KILL},
		capability.EFFECTIVE:   {capability.CAP_NET_BIND_SERVICE},
		capability.PERMITTED:   {capability.CAP_NET_BIND_SERVICE, capability.CAP_SETUID},
		capability.INHERITABLE: nil,
		capability.AMBIENT:     nil,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("capSets = %v, want %v", got, want)
	}

	none := &process{p: &specs.Process{}}
	if got, err := none.capSets(); err != nil || len(got[capability.BOUNDING]) != 0 || len(got) != 5 {
		t.Errorf("no capabilities: %v, %v", got, err)
	}
	for _, bad := range []string{"CAP_BOGUS", "CHOWN", ""} {
		p := &process{p: &specs.Process{Capabilities: &specs.LinuxCapabilities{Ambient: []string{bad}}}}
		if _, err := p.capSets(); err == nil || err.Error() != fmt.Sprintf("process.capabilities: unknown capability %q", bad) {
			t.Errorf("%q: %v", bad, err)
		}
	}
}

func TestEnvHelpers(t *testing.T) {
	env := []string{"PATH=/bin", "HOMEDIR=/x", "PATH=/usr/bin", "EMPTY="}
	for _, tt := range []struct {
		key  string
		has  bool
		want string
	}{{"PATH", true, "/usr/bin"}, {"HOME", false, ""}, {"HOMEDIR", true, "/x"}, {"EMPTY", true, ""}, {"PAT", false, ""}} {
		if got := hasEnv(env, tt.key); got != tt.has {
			t.Errorf("hasEnv(%q) = %v", tt.key, got)
		}
		if got := envValue(env, tt.key); got != tt.want {
			t.Errorf("envValue(%q) = %q, want %q", tt.key, got, tt.want)
		}
	}
}

func TestDropOption(t *testing.T) {
	for _, tt := range []struct {
		opts   []string
		prefix string
		want   string
	}{
		{[]string{"mode=755", "size=1m", "nr_inodes=10"}, "size=", "mode=755,nr_inodes=10"},
		{[]string{"size=1m"}, "size=", ""},
		{nil, "size=", ""},
		{[]string{"newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}, "gid=", "newinstance,ptmxmode=0666,mode=0620"},
	} {
		if got := dropOption(tt.opts, tt.prefix); got != tt.want {
			t.Errorf("dropOption(%q, %q) = %q, want %q", tt.opts, tt.prefix, got, tt.want)
		}
	}
}

func TestMountHint(t *testing.T) {
	for _, tt := range []struct {
		err  error
		want string
	}{
		{unix.EPERM, "operation not permitted (a sysfs mount needs a network namespace that the container's user namespace owns; one shared with the host is not)"},
		{unix.ENODEV, `no such device (the kernel has no "sysfs" filesystem)`},
		{unix.EBUSY, "device or resource busy"},
	} {
		got := mountHint("sysfs", tt.err)
		if got.Error() != tt.want || !errors.Is(got, tt.err) {
			t.Errorf("mountHint(%v) = %q, want %q (wrapping it)", tt.err, got, tt.want)
		}
	}
	if got, want := mountHint("tmpfs", unix.EPERM).Error(), "operation not permitted (a tmpfs mount is not allowed in a user namespace)"; got != want {
		t.Errorf("mountHint(tmpfs, EPERM) = %q, want %q", got, want)
	}
}

func TestExecError(t *testing.T) {
	for _, tt := range []struct {
		err  error
		msg  string
		code int
	}{
		{os.ErrNotExist, `exec: "/x": no such file or directory`, 127},
		{unix.ENOENT, `exec: "/x": no such file or directory`, 127},
		{os.ErrPermission, `exec: "/x": permission denied`, 126},
		{unix.ENOEXEC, `exec: "/x": permission denied`, 126},
	} {
		var ce *userns.ChildError
		if err := execError("/x", tt.err); !errors.As(err, &ce) || ce.Message != tt.msg || ce.ExitCode != tt.code {
			t.Errorf("execError(%v) = %#v, want %q exit %d", tt.err, err, tt.msg, tt.code)
		}
	}
}

func TestUnmappedHint(t *testing.T) {
	m := filepath.Join(t.TempDir(), "uid_map")
	if err := os.WriteFile(m, []byte("         0       1000          1\n         1     100000      65536\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if got := unmappedHint(unix.EPERM, "uid", 5, readMap(m)); got != "" {
		t.Errorf("EPERM: %q, want no hint", got)
	}
	got := unmappedHint(unix.EINVAL, "uid", 70000, readMap(m))
	for _, want := range []string{"process.user.uid 70000 is not mapped", "(uid map: 0 1000 1, 1 100000 65536)", "docs/troubleshooting.md#unmapped-user"} {
		if !strings.Contains(got, want) {
			t.Errorf("hint %q lacks %q", got, want)
		}
	}
}

func TestNamespace(t *testing.T) {
	s := &specs.Spec{Linux: &specs.Linux{Namespaces: []specs.LinuxNamespace{{Type: "pid"}, {Type: "network", Path: "/n"}}}}
	if ns, ok := namespace(s, specs.NetworkNamespace); !ok || ns.Path != "/n" {
		t.Errorf("network: %+v, %v", ns, ok)
	}
	if _, ok := namespace(s, specs.UserNamespace); ok {
		t.Error("user namespace found")
	}
}

// TestLookPath resolves args[0] as execvp does, against a PATH of
// temporary directories: 127 for not found, 126 for not executable.
func TestLookPath(t *testing.T) {
	dir1, dir2 := t.TempDir(), t.TempDir()
	write := func(path string, mode os.FileMode) string {
		if err := os.WriteFile(path, []byte("#!/bin/sh\n"), mode); err != nil {
			t.Fatal(err)
		}
		return path
	}
	write(filepath.Join(dir1, "plain"), 0o644)
	write(filepath.Join(dir1, "both"), 0o644)
	both := write(filepath.Join(dir2, "both"), 0o755)
	prog := write(filepath.Join(dir2, "prog"), 0o755)
	if err := os.Mkdir(filepath.Join(dir1, "adir"), 0o755); err != nil {
		t.Fatal(err)
	}
	path := "PATH=" + dir1 + ":" + dir2
	tests := []struct {
		name     string
		arg0     string
		env      []string
		wantPath string
		wantCode int // 0: found
		wantMsg  string
	}{
		{name: "found in the second dir", arg0: "prog", env: []string{path}, wantPath: prog},
		{name: "the first executable one", arg0: "both", env: []string{path}, wantPath: both},
		{name: "PATH set twice: the last", arg0: "prog", env: []string{"PATH=" + dir1, "PATH=" + dir2}, wantPath: prog},
		{name: "only a non-executable one", arg0: "plain", env: []string{path}, wantCode: 126, wantMsg: "permission denied"},
		{name: "a directory", arg0: "adir", env: []string{path}, wantCode: 126, wantMsg: "permission denied"},
		{name: "nowhere", arg0: "missing", env: []string{path}, wantCode: 127, wantMsg: `exec: "missing": executable file not found in $PATH`},
		{name: "a path", arg0: prog, env: []string{"PATH=/nonexistent"}, wantPath: prog},
		{name: "a missing path", arg0: dir1 + "/missing", env: []string{path}, wantCode: 127, wantMsg: "no such file or directory"},
		{name: "a non-executable path", arg0: dir1 + "/plain", env: []string{path}, wantCode: 126, wantMsg: "permission denied"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			env := append(append([]string(nil), tt.env...), "HOME=/home/given")
			p := newProcess(&specs.Process{Args: []string{tt.arg0}, Env: env}, nil, false, 0)
			err := p.lookPath()
			if tt.wantCode != 0 {
				var ce *userns.ChildError
				if !errors.As(err, &ce) || ce.ExitCode != tt.wantCode || !strings.Contains(ce.Message, tt.wantMsg) {
					t.Fatalf("lookPath error %#v, want exit %d and %q", err, tt.wantCode, tt.wantMsg)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.path != tt.wantPath {
				t.Errorf("path %q, want %q", p.path, tt.wantPath)
			}
			if !reflect.DeepEqual(p.env, env) {
				t.Errorf("env %q changed (HOME was given)", p.env)
			}
		})
	}

	// No PATH: execvp's default; no HOME: one is added.
	p := newProcess(&specs.Process{Args: []string{"sh"}, User: specs.User{UID: 4294967294}}, nil, false, 0)
	if err := p.lookPath(); err != nil {
		t.Fatal(err)
	}
	if filepath.Base(p.path) != "sh" || !strings.HasPrefix(p.path, "/") {
		t.Errorf("sh resolved to %q", p.path)
	}
	if !reflect.DeepEqual(p.env, []string{"HOME=/"}) {
		t.Errorf("env %q, want HOME=/ (uid without a passwd entry)", p.env)
	}
}

// TestDirectRootHint: with --rootfs-mode=direct and a rootfs the
// container's root may not write, creating the /etc/resolv.conf mountpoint
// failed with a bare "permission denied"; the error now says why and the
// fixes.
func TestDirectRootHint(t *testing.T) {
	err := directRootHint("/etc/resolv.conf", fmt.Errorf("creating /etc/resolv.conf: %w", unix.EACCES))
	if !errors.Is(err, unix.EACCES) {
		t.Fatalf("directRootHint lost the cause: %v", err)
	}
	for _, want := range []string{"creating /etc/resolv.conf: permission denied\nhint: ", "not writable by the container's root", "without --rootfs-mode=direct", "chown the rootfs", "--network=none", "docs/troubleshooting.md#direct-rootfs-not-writable"} {
		if !strings.Contains(err.Error(), want) {
			t.Errorf("directRootHint = %q, lacks %q", err, want)
		}
	}
	other := fmt.Errorf("creating /etc/resolv.conf: %w", unix.ELOOP)
	if got := directRootHint("/etc/resolv.conf", other); got != other {
		t.Errorf("directRootHint(ELOOP) = %v, want the error unchanged", got)
	}
}

// TestCompiledSeccomp: the init takes the host's compiled filter, and
// refuses a spec that still has a profile with no filter (unless seccomp
// is off): it never starts a container less filtered than asked.
func TestCompiledSeccomp(t *testing.T) {
	prof := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActErrno}}}
	f, err := seccomp.Compile(prof)
	if err != nil {
		t.Fatal(err)
	}
	bin, err := f.MarshalBinary()
	if err != nil {
		t.Fatal(err)
	}
	withProfile := &specs.Spec{Linux: &specs.Linux{Seccomp: prof}}
	pf, err := compiledSeccomp(&Config{Spec: &specs.Spec{Linux: &specs.Linux{}}, SeccompFilter: bin})
	if err != nil || pf == nil || len(pf.f.Instructions()) != len(f.Instructions()) {
		t.Fatalf("the host's filter: %v, %v", pf, err)
	}
	if _, err := compiledSeccomp(&Config{Spec: withProfile}); err == nil {
		t.Error("a profile without its filter was taken")
	}
	if pf, err := compiledSeccomp(&Config{Spec: withProfile, NoSeccomp: true}); err != nil || pf != nil {
		t.Errorf("seccomp off: %v, %v", pf, err)
	}
	if pf, err := compiledSeccomp(&Config{Spec: &specs.Spec{}}); err != nil || pf != nil {
		t.Errorf("no profile: %v, %v", pf, err)
	}
	if _, err := compiledSeccomp(&Config{Spec: &specs.Spec{}, SeccompFilter: bin[:len(bin)-1]}); err == nil {
		t.Error("a damaged filter was taken")
	}
}
