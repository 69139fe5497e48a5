package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/internal/spec"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/slirp"
	"github.com/sandy-rt/sandy/userns"
)

// Table tests of the host side's pure functions: what they compute from
// a config and the command line, with no process started.

func namespaces(nss ...specs.LinuxNamespace) *specs.Spec {
	return &specs.Spec{Process: &specs.Process{}, Linux: &specs.Linux{Namespaces: nss}}
}

func ns(typ specs.LinuxNamespaceType, path string) specs.LinuxNamespace {
	return specs.LinuxNamespace{Type: typ, Path: path}
}

func TestCloneFlags(t *testing.T) {
	all := unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_NEWPID | unix.CLONE_NEWIPC |
		unix.CLONE_NEWUTS | unix.CLONE_NEWNET | unix.CLONE_NEWCGROUP | unix.CLONE_NEWTIME
	tests := []struct {
		name string
		spec *specs.Spec
		want uintptr
	}{
		{"none", namespaces(), 0},
		{"every type, new", namespaces(ns("user", ""), ns("mount", ""), ns("pid", ""), ns("ipc", ""),
			ns("uts", ""), ns("network", ""), ns("cgroup", ""), ns("time", "")), uintptr(all)},
		{"joined ones are not cloned", namespaces(ns("user", ""), ns("mount", ""), ns("network", "/proc/1/ns/net"), ns("pid", "/proc/1/ns/pid")),
			unix.CLONE_NEWUSER | unix.CLONE_NEWNS},
		{"mount alone", namespaces(ns("mount", "")), unix.CLONE_NEWNS},
		{"an unknown type adds nothing", namespaces(ns("bogus", ""), ns("ipc", "")), unix.CLONE_NEWIPC},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := cloneFlags(tt.spec); got != tt.want {
				t.Errorf("cloneFlags = %#x, want %#x", got, tt.want)
			}
		})
	}
}

func TestNSCloneFlagsCoversEveryType(t *testing.T) {
	// The runtime-spec's namespace types, each with its own flag.
	types := []specs.LinuxNamespaceType{specs.PIDNamespace, specs.NetworkNamespace, specs.MountNamespace,
		specs.IPCNamespace, specs.UTSNamespace, specs.UserNamespace, specs.CgroupNamespace, specs.TimeNamespace}
	seen := map[uintptr]specs.LinuxNamespaceType{}
	for _, typ := range types {
		f, ok := nsCloneFlags[typ]
		if !ok || f == 0 {
			t.Errorf("nsCloneFlags has no flag for %q", typ)
			continue
		}
		if other, dup := seen[f]; dup {
			t.Errorf("%q and %q share flag %#x", typ, other, f)
		}
		seen[f] = typ
	}
}

func TestJoinedNamespaces(t *testing.T) {
	tests := []struct {
		name string
		spec *specs.Spec
		want []userns.Join
	}{
		{"nothing to join", namespaces(ns("user", ""), ns("mount", ""), ns("pid", "")), nil},
		{"user goes first", namespaces(ns("network", "/n"), ns("ipc", "/i"), ns("user", "/u"), ns("uts", "/h")),
			[]userns.Join{{Flag: "user", Path: "/u"}, {Flag: "net", Path: "/n"}, {Flag: "ipc", Path: "/i"}, {Flag: "uts", Path: "/h"}}},
		{"mount is left to the init", namespaces(ns("mount", "/m"), ns("pid", "/p"), ns("cgroup", "/c")),
			[]userns.Join{{Flag: "pid", Path: "/p"}, {Flag: "cgroup", Path: "/c"}}},
		{"new ones are not joined", namespaces(ns("network", ""), ns("pid", "/p")),
			[]userns.Join{{Flag: "pid", Path: "/p"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := joinedNamespaces(tt.spec); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("joinedNamespaces = %+v, want %+v", got, tt.want)
			}
		})
	}
}

// TestLeaveOutOwnNamespaces: a join of a namespace sandy is in already is
// dropped (setns(2) may refuse it: TestJoinOwnNamespace); another
// namespace, or a path that cannot be read, stays for nsenter.
func TestLeaveOutOwnNamespaces(t *testing.T) {
	own := func(flag string) userns.Join { return userns.Join{Flag: flag, Path: "/proc/self/ns/" + flag} }
	pid := "/proc/" + strconv.Itoa(os.Getpid()) + "/ns/"
	tests := []struct {
		name string
		in   []userns.Join
		want []userns.Join
	}{
		{"none", nil, nil},
		{"own ones left out", []userns.Join{own("user"), own("uts"), {Flag: "net", Path: pid + "net"}}, nil},
		{"another namespace kept", []userns.Join{{Flag: "uts", Path: pid + "net"}, own("ipc")},
			[]userns.Join{{Flag: "uts", Path: pid + "net"}}},
		{"a missing path kept", []userns.Join{{Flag: "net", Path: "/nonexistent/ns/net"}},
			[]userns.Join{{Flag: "net", Path: "/nonexistent/ns/net"}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := leaveOutOwnNamespaces(tt.in); !reflect.DeepEqual(got, tt.want) {
				t.Errorf("leaveOutOwnNamespaces(%+v) = %+v, want %+v", tt.in, got, tt.want)
			}
		})
	}
}

func TestPrlimits(t *testing.T) {
	tests := []struct {
		name    string
		in      []specs.POSIXRlimit
		want    []prlimit
		wantErr string
	}{
		{name: "none", want: []prlimit{}},
		{name: "types to resources, in order",
			in: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1024, Hard: 4096}, {Type: "RLIMIT_CORE", Soft: 0, Hard: 0}, {Type: "RLIMIT_AS", Soft: 1 << 30, Hard: 1 << 31}},
			want: []prlimit{
				{resource: unix.RLIMIT_NOFILE, lim: unix.Rlimit{Cur: 1024, Max: 4096}},
				{resource: unix.RLIMIT_CORE, lim: unix.Rlimit{}},
				{resource: unix.RLIMIT_AS, lim: unix.Rlimit{Cur: 1 << 30, Max: 1 << 31}},
			}},
		{name: "unlimited", in: []specs.POSIXRlimit{{Type: "RLIMIT_STACK", Soft: unix.RLIM_INFINITY, Hard: unix.RLIM_INFINITY}},
			want: []prlimit{{resource: unix.RLIMIT_STACK, lim: unix.Rlimit{Cur: unix.RLIM_INFINITY, Max: unix.RLIM_INFINITY}}}},
		// An unknown type must not become resource 0, RLIMIT_CPU.
		{name: "unknown type", in: []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS", Soft: 1, Hard: 1}}, wantErr: `unknown type "RLIMIT_BOGUS"`},
		{name: "lower-case type", in: []specs.POSIXRlimit{{Type: "rlimit_nofile", Soft: 1, Hard: 1}}, wantErr: "unknown type"},
		{name: "soft above hard", in: []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 2048, Hard: 1024}}, wantErr: "RLIMIT_NOFILE soft limit 2048 is above the hard limit 1024"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := prlimits(tt.in)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("prlimits error = %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("prlimits = %+v, want %+v", got, tt.want)
			}
		})
	}
}

func TestRlimitError(t *testing.T) {
	rl := specs.POSIXRlimit{Type: "RLIMIT_NOFILE", Soft: 1 << 20, Hard: 1 << 20}
	tests := []struct {
		name    string
		err     error
		ownHard uint64
		root    bool
		want    []string
		not     string
	}{
		{"rootless raise", unix.EPERM, 1024, false, []string{"RLIMIT_NOFILE 1048576/1048576: operation not permitted", "rootless", "caller's 1024", "ulimit -H"}, "CAP_SYS_RESOURCE"},
		{"root raise", unix.EPERM, 1024, true, []string{"RLIMIT_NOFILE 1048576/1048576: operation not permitted", "sandy's 1024", "CAP_SYS_RESOURCE"}, "rootless"},
		{"not raised", unix.EPERM, 1 << 20, false, []string{"not raised", "troubleshooting.md#rlimits"}, "ulimit"},
		{"other errno", unix.EINVAL, 1024, false, []string{"RLIMIT_NOFILE: invalid argument"}, "ulimit"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := rlimitError(rl, tt.err, tt.ownHard, tt.root)
			if !errors.Is(err, tt.err) {
				t.Errorf("%v is not %v", err, tt.err)
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("%q lacks %q", err, w)
				}
			}
			if strings.Contains(err.Error(), tt.not) {
				t.Errorf("%q has %q", err, tt.not)
			}
		})
	}
}

// TestApplyRlimits sets limits on a child of the test with prlimit(2) and
// reads them back: the part of applyRlimits that is not pure.
func TestApplyRlimits(t *testing.T) {
	var cur unix.Rlimit
	if err := unix.Getrlimit(unix.RLIMIT_NOFILE, &cur); err != nil {
		t.Fatal(err)
	}
	p, err := os.StartProcess("/bin/sleep", []string{"sleep", "60"}, &os.ProcAttr{})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = p.Kill(); _, _ = p.Wait() })
	want := unix.Rlimit{Cur: 7, Max: min(cur.Max, 100)}
	if err := applyRlimits(p.Pid, []specs.POSIXRlimit{
		{Type: "RLIMIT_NOFILE", Soft: want.Cur, Hard: want.Max},
		{Type: "RLIMIT_CORE", Soft: 0, Hard: 0},
	}); err != nil {
		t.Fatal(err)
	}
	for res, w := range map[int]unix.Rlimit{unix.RLIMIT_NOFILE: want, unix.RLIMIT_CORE: {}} {
		var got unix.Rlimit
		if err := unix.Prlimit(p.Pid, res, nil, &got); err != nil {
			t.Fatal(err)
		}
		if got != w {
			t.Errorf("resource %d: %+v, want %+v", res, got, w)
		}
	}
	if err := applyRlimits(p.Pid, []specs.POSIXRlimit{{Type: "RLIMIT_BOGUS"}}); err == nil {
		t.Error("an unknown type was applied")
	}
}

func TestCleanupsRunNewestFirst(t *testing.T) {
	var c cleanups
	var order []int
	for i := 1; i <= 3; i++ {
		c.add(func() { order = append(order, i) })
	}
	c.run()
	if !reflect.DeepEqual(order, []int{3, 2, 1}) {
		t.Errorf("order = %v, want [3 2 1]", order)
	}
	c.run() // emptied: nothing runs twice
	if len(order) != 3 {
		t.Errorf("ran again: %v", order)
	}
	c.add(func() { order = append(order, 9) })
	c.release()
	c.run()
	if len(order) != 3 {
		t.Errorf("a released cleanup ran: %v", order)
	}
}

func TestHookState(t *testing.T) {
	c := &state.Container{ID: "c1", Pid: 42, Bundle: "/b", Annotations: map[string]string{"k": "v"}}
	for _, tt := range []struct {
		status specs.ContainerState
		pid    int
	}{{specs.StateCreating, 42}, {specs.StateCreated, 42}, {specs.StateRunning, 42}, {specs.StateStopped, 0}} {
		var st specs.State
		if err := json.Unmarshal(hookState(c, tt.status), &st); err != nil {
			t.Fatal(err)
		}
		want := specs.State{Version: specs.Version, ID: "c1", Status: tt.status, Pid: tt.pid, Bundle: "/b", Annotations: map[string]string{"k": "v"}}
		if !reflect.DeepEqual(st, want) {
			t.Errorf("%s: %+v, want %+v", tt.status, st, want)
		}
	}
}

func TestParseResources(t *testing.T) {
	r, err := ParseResources([]byte(`{"pids": {"limit": 10}, "memory": {"limit": 1048576}}`))
	if err != nil {
		t.Fatal(err)
	}
	if r.Pids == nil || r.Pids.Limit == nil || *r.Pids.Limit != 10 || r.Memory == nil || *r.Memory.Limit != 1<<20 {
		t.Errorf("ParseResources = %+v", r)
	}
	if _, err := ParseResources([]byte(`{"pids": `)); err == nil || !strings.HasPrefix(err.Error(), "resources JSON: ") {
		t.Errorf("truncated JSON: %v", err)
	}
}

func TestNewLogger(t *testing.T) {
	var buf bytes.Buffer
	l, err := NewLogger(&buf, "json", false)
	if err != nil {
		t.Fatal(err)
	}
	l.Debug("hidden")
	l.Warn("shown")
	var rec map[string]any
	if err := json.Unmarshal(buf.Bytes(), &rec); err != nil {
		t.Fatalf("%q: %v", buf.String(), err)
	}
	if rec["level"] != "warning" || rec["msg"] != "shown" {
		t.Errorf("record %v: want level warning (logrus's name, as runc writes it), msg shown", rec)
	}
	buf.Reset()
	if l, err = NewLogger(&buf, "", true); err != nil {
		t.Fatal(err)
	}
	l.Debug("seen")
	if !strings.Contains(buf.String(), "level=debug msg=seen") {
		t.Errorf("text, debug: %q", buf.String())
	}
	if _, err := NewLogger(&buf, "xml", false); err == nil {
		t.Error("--log-format xml accepted")
	}
}

func TestGlobalWarnOnce(t *testing.T) {
	var buf bytes.Buffer
	g := &Global{Stderr: &buf}
	g.Warn("a")
	g.Warn("b")
	g.Warn("a")
	g.Debugf("not shown %d", 1)
	if got, want := buf.String(), "sandy: warning: a\nsandy: warning: b\n"; got != want {
		t.Errorf("stderr %q, want %q", got, want)
	}
	g.Debug = true
	g.Debugf("shown %d", 2)
	if !strings.HasSuffix(buf.String(), "sandy: debug: shown 2\n") {
		t.Errorf("stderr %q", buf.String())
	}
}

// TestGlobalLogOnly: with --log, warnings and debug lines go to the log
// only (runc's: under an engine's shim, stderr is the container's).
func TestGlobalLogOnly(t *testing.T) {
	var stderr, log bytes.Buffer
	l, err := NewLogger(&log, "json", true)
	if err != nil {
		t.Fatal(err)
	}
	g := &Global{Stderr: &stderr, Logger: l, LogOnly: true, Debug: true}
	g.Warn("degraded")
	g.Debugf("step %d", 1)
	if stderr.Len() != 0 {
		t.Errorf("stderr %q, want nothing", stderr.String())
	}
	if !strings.Contains(log.String(), `"level":"warning","msg":"degraded"`) || !strings.Contains(log.String(), `"msg":"step 1"`) {
		t.Errorf("log %q, want the warning and the debug line", log.String())
	}
}

// execOf is an exec of o into a container whose process is base; the
// container's id maps are this test process's own.
func execOf(base *specs.Process, o *ExecOptions) (*execution, *bytes.Buffer) {
	var stderr bytes.Buffer
	c := &state.Container{Pid: os.Getpid()}
	return &execution{g: &Global{Stderr: &stderr}, o: o, c: c, spec: &specs.Spec{Process: base}}, &stderr
}

func baseProcess() *specs.Process {
	return &specs.Process{
		Args: []string{"sh"}, Env: []string{"PATH=/bin", "HOME=/root"}, Cwd: "/work", Terminal: true,
		User:         specs.User{UID: 0, GID: 0, AdditionalGids: []uint32{10}},
		Capabilities: &specs.LinuxCapabilities{Bounding: []string{"CAP_CHOWN"}, Effective: []string{"CAP_CHOWN"}},
		Rlimits:      []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Soft: 1, Hard: 2}},
	}
}

func TestBuildProcess(t *testing.T) {
	yes, no := true, false
	tests := []struct {
		name    string
		o       ExecOptions
		check   func(t *testing.T, p *specs.Process)
		wantErr string
	}{
		{name: "the container's process with new args",
			o: ExecOptions{Args: []string{"ls", "-l"}},
			check: func(t *testing.T, p *specs.Process) {
				want := baseProcess()
				want.Args, want.Terminal = []string{"ls", "-l"}, false
				if !reflect.DeepEqual(p, want) {
					t.Errorf("got %+v\nwant %+v", p, want)
				}
			}},
		{name: "--env overrides, in place",
			o: ExecOptions{Args: []string{"env"}, Env: []string{"HOME=/tmp", "X=1"}},
			check: func(t *testing.T, p *specs.Process) {
				if want := []string{"PATH=/bin", "HOME=/tmp", "X=1"}; !reflect.DeepEqual(p.Env, want) {
					t.Errorf("env %q, want %q", p.Env, want)
				}
			}},
		{name: "--cap in every set, CAP_ added and upper-cased",
			o: ExecOptions{Args: []string{"x"}, Caps: []string{"net_admin", "CAP_SYS_TIME"}},
			check: func(t *testing.T, p *specs.Process) {
				c := p.Capabilities
				want := []string{"CAP_NET_ADMIN", "CAP_SYS_TIME"}
				if !reflect.DeepEqual(c.Bounding, append([]string{"CAP_CHOWN"}, want...)) ||
					!reflect.DeepEqual(c.Effective, append([]string{"CAP_CHOWN"}, want...)) ||
					!reflect.DeepEqual(c.Permitted, want) || !reflect.DeepEqual(c.Inheritable, want) || !reflect.DeepEqual(c.Ambient, want) {
					t.Errorf("capabilities %+v", c)
				}
			}},
		{name: "--user UID keeps the gid",
			o: ExecOptions{Args: []string{"id"}, User: "1000", AdditionalGID: []int64{20, 30}},
			check: func(t *testing.T, p *specs.Process) {
				if want := (specs.User{UID: 1000, GID: 0, AdditionalGids: []uint32{10, 20, 30}}); !reflect.DeepEqual(p.User, want) {
					t.Errorf("user %+v, want %+v", p.User, want)
				}
			}},
		{name: "--user UID:GID",
			o: ExecOptions{Args: []string{"id"}, User: "1000:1001"},
			check: func(t *testing.T, p *specs.Process) {
				if p.User.UID != 1000 || p.User.GID != 1001 {
					t.Errorf("user %+v", p.User)
				}
			}},
		{name: "--tty, --no-new-privs, --cwd",
			o: ExecOptions{Args: []string{"x"}, Tty: &yes, NoNewPrivs: &yes, Cwd: "/tmp"},
			check: func(t *testing.T, p *specs.Process) {
				if !p.Terminal || !p.NoNewPrivileges || p.Cwd != "/tmp" {
					t.Errorf("terminal %v, noNewPrivileges %v, cwd %q", p.Terminal, p.NoNewPrivileges, p.Cwd)
				}
			}},
		{name: "--no-new-privs=false", o: ExecOptions{Args: []string{"x"}, NoNewPrivs: &no},
			check: func(t *testing.T, p *specs.Process) {
				if p.NoNewPrivileges {
					t.Error("noNewPrivileges")
				}
			}},
		{name: "no command", o: ExecOptions{}, wantErr: "no command"},
		{name: "bad --user", o: ExecOptions{Args: []string{"x"}, User: "root"}, wantErr: `--user "root"`},
		{name: "negative --additional-gids", o: ExecOptions{Args: []string{"x"}, AdditionalGID: []int64{-1}}, wantErr: "--additional-gids -1: out of range"},
		{name: "--additional-gids of (gid_t)-1", o: ExecOptions{Args: []string{"x"}, AdditionalGID: []int64{1<<32 - 1}}, wantErr: "(gid_t)-1"},
		{name: "relative --cwd", o: ExecOptions{Args: []string{"x"}, Cwd: "tmp"}, wantErr: `process.cwd "tmp": must be an absolute path`},
		{name: "--tty --detach without a console socket", o: ExecOptions{Args: []string{"x"}, Tty: &yes, Detach: true}, wantErr: "--console-socket"},
		{name: "a console socket without --tty", o: ExecOptions{Args: []string{"x"}, ConsoleSocket: "/s"}, wantErr: "no terminal"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			base := baseProcess()
			ex, _ := execOf(base, &tt.o)
			err := ex.buildProcess(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			tt.check(t, ex.proc)
			// The container's own process (saved in its state) is not changed.
			if !reflect.DeepEqual(base, baseProcess()) {
				t.Errorf("the container's process changed: %+v", base)
			}
		})
	}
}

func TestBuildProcessFile(t *testing.T) {
	dir := t.TempDir()
	write := func(name, content string) string {
		p := filepath.Join(dir, name)
		if err := os.WriteFile(p, []byte(content), 0o600); err != nil {
			t.Fatal(err)
		}
		return p
	}
	good := write("good.json", `{"args": ["top"], "env": ["A=1", "A=2"], "user": {"uid": 5}}`)
	ex, _ := execOf(baseProcess(), &ExecOptions{ProcessFile: good, Args: []string{"ignored"}, Caps: []string{"CAP_SYS_ADMIN"}})
	if err := ex.buildProcess(context.Background()); err != nil {
		t.Fatal(err)
	}
	// As given: none of the container's process, nor --cap, leaks in.
	want := &specs.Process{Args: []string{"top"}, Env: []string{"A=2"}, User: specs.User{UID: 5}, Cwd: "/"}
	if !reflect.DeepEqual(ex.proc, want) {
		t.Errorf("got %+v, want %+v", ex.proc, want)
	}
	for _, tt := range []struct{ name, content, wantErr string }{
		{"syntax.json", `{"args": [`, "--process " + filepath.Join(dir, "syntax.json")},
		{"noargs.json", `{"cwd": "/"}`, "process.args: empty"},
	} {
		ex, _ := execOf(baseProcess(), &ExecOptions{ProcessFile: write(tt.name, tt.content)})
		if err := ex.buildProcess(context.Background()); err == nil || !strings.Contains(err.Error(), tt.wantErr) {
			t.Errorf("%s: error %v, want one containing %q", tt.name, err, tt.wantErr)
		}
	}
	ex, _ = execOf(baseProcess(), &ExecOptions{ProcessFile: filepath.Join(dir, "missing.json")})
	if err := ex.buildProcess(context.Background()); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("missing file: %v", err)
	}
}

func TestPlanNetwork(t *testing.T) {
	newNet := func() *specs.Spec { return namespaces(ns("user", ""), ns("mount", ""), ns("network", "")) }
	tests := []struct {
		name      string
		spec      *specs.Spec
		o         CreateOptions
		wantMode  string
		wantPorts int  // -1: no slirp4netns options
		keepsNet  bool // the config still has its network namespace
		wantErr   string
	}{
		{name: "create adds no network", spec: newNet(), wantMode: slirp.ModeNone, wantPorts: -1, keepsNet: true},
		{name: "run without a network namespace", spec: namespaces(ns("mount", "")), o: CreateOptions{owned: true},
			wantMode: slirp.ModeNone, wantPorts: -1},
		{name: "run in a joined network namespace", spec: namespaces(ns("mount", ""), ns("network", "/proc/1/ns/net")), o: CreateOptions{owned: true},
			wantMode: slirp.ModeNone, wantPorts: -1, keepsNet: true},
		{name: "--network=none", spec: newNet(), o: CreateOptions{owned: true, Network: NetworkOptions{Mode: "none"}},
			wantMode: slirp.ModeNone, wantPorts: -1, keepsNet: true},
		{name: "--network=host drops the namespace", spec: newNet(), o: CreateOptions{Network: NetworkOptions{Mode: "host"}},
			wantMode: slirp.ModeHost, wantPorts: -1},
		{name: "--network=slirp4netns with ports", spec: newNet(),
			o:        CreateOptions{Network: NetworkOptions{Mode: "slirp4netns", Publish: []string{"8080:80", "127.0.0.1:5353:53/udp"}}},
			wantMode: slirp.ModeSlirp4netns, wantPorts: 2, keepsNet: true},
		{name: "-p without slirp4netns", spec: newNet(), o: CreateOptions{Network: NetworkOptions{Publish: []string{"8080:80"}}},
			wantErr: "-p needs a network: --network=slirp4netns or usernet"},
		{name: "-p with host", spec: newNet(), o: CreateOptions{Network: NetworkOptions{Mode: "host", Publish: []string{"8080:80"}}},
			wantErr: "-p with --network=host"},
		{name: "slirp4netns needs a new namespace", spec: namespaces(ns("mount", "")), o: CreateOptions{Network: NetworkOptions{Mode: "slirp4netns"}},
			wantErr: "needs a new network namespace"},
		{name: "slirp4netns into a joined namespace", spec: namespaces(ns("mount", ""), ns("network", "/n")), o: CreateOptions{Network: NetworkOptions{Mode: "slirp4netns"}},
			wantErr: "needs a new network namespace"},
		{name: "a bad port", spec: newNet(), o: CreateOptions{Network: NetworkOptions{Mode: "slirp4netns", Publish: []string{"80"}}},
			wantErr: `-p "80"`},
		{name: "the same host port twice", spec: newNet(), o: CreateOptions{Network: NetworkOptions{Mode: "slirp4netns", Publish: []string{"8080:80", "8080:81"}}},
			wantErr: "8080"},
		{name: "a bad mode", spec: newNet(), o: CreateOptions{Network: NetworkOptions{Mode: "bridge"}}, wantErr: "bridge"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var stderr bytes.Buffer
			cr := &creation{g: &Global{Stderr: &stderr}, o: &tt.o, bundle: &spec.Bundle{Spec: tt.spec}}
			err := cr.planNetwork(context.Background())
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("error %v, want one containing %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if cr.netMode != tt.wantMode {
				t.Errorf("mode %q, want %q", cr.netMode, tt.wantMode)
			}
			switch {
			case tt.wantPorts < 0 && cr.netOpts != nil:
				t.Errorf("slirp4netns options %+v, want none", cr.netOpts)
			case tt.wantPorts >= 0 && (cr.netOpts == nil || len(cr.netOpts.Ports) != tt.wantPorts):
				t.Errorf("slirp4netns options %+v, want %d ports", cr.netOpts, tt.wantPorts)
			}
			if _, ok := spec.Namespace(tt.spec, specs.NetworkNamespace); ok != tt.keepsNet {
				t.Errorf("network namespace in the config: %v, want %v", ok, tt.keepsNet)
			}
			if stderr.Len() != 0 {
				t.Errorf("warned: %q", stderr.String())
			}
		})
	}
}

func TestExitCode(t *testing.T) {
	run := func(script string) (*os.ProcessState, error) {
		p, err := os.StartProcess("/bin/sh", []string{"sh", "-c", script}, &os.ProcAttr{})
		if err != nil {
			t.Fatal(err)
		}
		return p.Wait()
	}
	for _, tt := range []struct {
		script string
		want   int
	}{{"exit 0", 0}, {"exit 3", 3}, {"exit 255", 255}, {"kill -KILL $$", 128 + 9}, {"kill -TERM $$", 128 + 15}} {
		ps, err := run(tt.script)
		if got, err := exitCode(ps, err); got != tt.want || err != nil {
			t.Errorf("%q: exitCode = %d, %v; want %d", tt.script, got, err, tt.want)
		}
	}
	werr := errors.New("wait failed")
	if got, err := exitCode(nil, werr); got != 1 || err != werr {
		t.Errorf("no process state: %d, %v", got, err)
	}
}

// TestAwaitReady plays the init's side of the protocol over a socket pair.
func TestAwaitReady(t *testing.T) {
	exitedErr := errors.New("exited")
	exited := func() error { return exitedErr }
	tests := []struct {
		name    string
		send    func(c *userns.Conn)
		want    []string // the handlers called, in order
		wantErr func(error) bool
	}{
		{name: "handlers, then ready",
			send: func(c *userns.Conn) {
				_ = c.Send(initproc.MsgWarn, "w1")
				_ = c.Send(initproc.MsgRootfs, "overlay")
				_ = c.Send(initproc.MsgReady, nil)
			},
			want: []string{"warn:w1", "rootfs:overlay"}, wantErr: func(err error) bool { return err == nil }},
		{name: "the init's error",
			send: func(c *userns.Conn) {
				_ = c.Send(initproc.MsgWarn, "w")
				_ = c.Send(userns.MsgError, userns.ChildError{Step: "pivot_root", Message: "EINVAL", ExitCode: 0})
			},
			want: []string{"warn:w"},
			wantErr: func(err error) bool {
				var ce *userns.ChildError
				return errors.As(err, &ce) && ce.Step == "pivot_root" && err.Error() == "pivot_root: EINVAL"
			}},
		{name: "an unexpected message",
			send: func(c *userns.Conn) { _ = c.Send(initproc.MsgHooksDone, nil) },
			wantErr: func(err error) bool {
				return err != nil && err.Error() == `sync protocol: unexpected "hooks-done" message`
			}},
		{name: "the init exits", send: func(c *userns.Conn) {},
			wantErr: func(err error) bool { return err == exitedErr }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			parent, childFile, err := userns.NewPair()
			if err != nil {
				t.Fatal(err)
			}
			defer parent.Close()
			// The child's own fd, so that each *os.File closes its own.
			fd, err := unix.Dup(int(childFile.Fd()))
			childFile.Close()
			if err != nil {
				t.Fatal(err)
			}
			child := userns.NewConn(fd)
			go func() {
				tt.send(child)
				child.Close()
			}()
			var got []string
			record := func(m *userns.Msg) error {
				var s string
				_ = m.Decode(&s)
				got = append(got, m.Type+":"+s)
				return nil
			}
			err = awaitReady(parent, exited, map[string]func(*userns.Msg) error{
				initproc.MsgWarn: record, initproc.MsgRootfs: record,
			})
			if !tt.wantErr(err) {
				t.Errorf("error %v", err)
			}
			if !reflect.DeepEqual(got, tt.want) {
				t.Errorf("handled %q, want %q", got, tt.want)
			}
		})
	}
}

func TestOneFD(t *testing.T) {
	if fd, err := oneFD(&userns.Msg{Type: "pty", FDs: []int{7}}); fd != 7 || err != nil {
		t.Errorf("one fd: %d, %v", fd, err)
	}
	for _, fds := range [][]int{nil, {1, 2}} {
		if _, err := oneFD(&userns.Msg{Type: "pty", FDs: fds}); err == nil || !strings.Contains(err.Error(), "pty message with") {
			t.Errorf("%v: %v", fds, err)
		}
	}
}

// FuzzParseUser: whatever parseUser accepts is UID[:GID] in decimal, and
// the ids it returns are those numbers.
func FuzzParseUser(f *testing.F) {
	for _, s := range []string{"0", "1000:100", "4294967295", "-1", "a:b", ":", "1:2:3"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		uid, gid, hasGID, err := parseUser(s)
		if err != nil {
			return
		}
		us, gs, _ := strings.Cut(s, ":")
		if u, _ := strconv.ParseUint(us, 10, 32); uint32(u) != uid {
			t.Errorf("%q: uid %d", s, uid)
		}
		if hasGID != strings.Contains(s, ":") {
			t.Errorf("%q: hasGID %v", s, hasGID)
		}
		if g, _ := strconv.ParseUint(gs, 10, 32); hasGID && uint32(g) != gid || !hasGID && gid != 0 {
			t.Errorf("%q: gid %d", s, gid)
		}
	})
}
