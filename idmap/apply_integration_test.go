//go:build integration && linux

package idmap

import (
	"bufio"
	"errors"
	"io"
	"os"
	"os/exec"
	"os/user"
	"reflect"
	"strconv"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// nsChild is a shell cloned into a new user namespace that waits for one
// line on stdin, then prints its own view of its maps and its uid.
type nsChild struct {
	cmd   *exec.Cmd
	stdin io.WriteCloser
	out   *strings.Builder
}

func startNSChild(t *testing.T) *nsChild {
	t.Helper()
	cmd := exec.Command("/bin/sh", "-c", `read x; cat /proc/self/uid_map; echo --; cat /proc/self/gid_map; echo --; id -u`)
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: syscall.CLONE_NEWUSER}
	in, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting a child in a new user namespace: %v (unprivileged user namespaces disabled? see hack/setup.sh)", err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	return &nsChild{cmd: cmd, stdin: in, out: out}
}

// finish releases the child and returns what it printed.
func (c *nsChild) finish(t *testing.T) string {
	t.Helper()
	if _, err := io.WriteString(c.stdin, "go\n"); err != nil {
		t.Fatal(err)
	}
	_ = c.stdin.Close()
	if err := c.cmd.Wait(); err != nil {
		t.Fatalf("child: %v: %s", err, c.out)
	}
	return c.out.String()
}

// readMap reads /proc/PID/{uid,gid}_map as seen from the initial namespace.
func readMap(t *testing.T, pid int, file string) []specs.LinuxIDMapping {
	t.Helper()
	f, err := os.Open("/proc/" + strconv.Itoa(pid) + "/" + file)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var m []specs.LinuxIDMapping
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var v [3]uint32
		for i, s := range strings.Fields(sc.Text()) {
			n, err := strconv.ParseUint(s, 10, 32)
			if err != nil || i > 2 {
				t.Fatalf("%s: bad line %q", file, sc.Text())
			}
			v[i] = uint32(n)
		}
		m = append(m, specs.LinuxIDMapping{ContainerID: v[0], HostID: v[1], Size: v[2]})
	}
	return m
}

func me(t *testing.T) Request {
	t.Helper()
	u, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	return Request{UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), User: u.Username}
}

func checkMaps(t *testing.T, pid int, p *Plan) {
	t.Helper()
	if got := readMap(t, pid, "uid_map"); !reflect.DeepEqual(got, p.UIDs) {
		t.Errorf("uid_map = %v, want %v", got, p.UIDs)
	}
	if got := readMap(t, pid, "gid_map"); !reflect.DeepEqual(got, p.GIDs) {
		t.Errorf("gid_map = %v, want %v", got, p.GIDs)
	}
}

// TestApplyHelpers resolves the automatic maps from the real /etc/subuid
// (through getsubids) and writes them with newuidmap/newgidmap.
func TestApplyHelpers(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "newuidmap", "apt-get install uidmap")
	req := me(t)
	p, err := Resolve(req)
	if err != nil {
		t.Fatal(err)
	}
	if p.Warning != "" || !p.Helpers {
		testutil.Skip(t, "no full mapping for %s: %s (run hack/setup.sh as root)", req.User, p.Warning)
	}
	if len(p.UIDs) < 2 || p.UIDs[0] != (specs.LinuxIDMapping{ContainerID: 0, HostID: req.UID, Size: 1}) {
		t.Fatalf("automatic uid map %v: want 0 -> %d then the subordinate ranges", p.UIDs, req.UID)
	}
	c := startNSChild(t)
	if err := p.Apply(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	checkMaps(t, c.cmd.Process.Pid, p)
	out := c.finish(t)
	if !strings.HasSuffix(out, "\n0\n") {
		t.Errorf("child is not root in its namespace:\n%s", out)
	}
	t.Logf("plan: uids %v gids %v; child saw:\n%s", p.UIDs, p.GIDs, out)
}

// TestApplyConfigMappings writes config.json-style mappings that use part
// of the subordinate range, out of order.
func TestApplyConfigMappings(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "newuidmap", "apt-get install uidmap")
	req := me(t)
	auto, err := Resolve(req)
	if err != nil {
		t.Fatal(err)
	}
	if !auto.Helpers {
		testutil.Skip(t, "no full mapping for %s: %s (run hack/setup.sh as root)", req.User, auto.Warning)
	}
	sub := auto.UIDs[1].HostID
	req.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 1000, HostID: sub, Size: 10}, {ContainerID: 0, HostID: req.UID, Size: 1}, {ContainerID: 1, HostID: sub + 10, Size: 5}}
	req.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: auto.GIDs[1].HostID, Size: 100}}
	p, err := Resolve(req)
	if err != nil {
		t.Fatal(err)
	}
	c := startNSChild(t)
	if err := p.Apply(c.cmd.Process.Pid); err != nil {
		t.Fatal(err)
	}
	checkMaps(t, c.cmd.Process.Pid, p)
	c.finish(t)
	if h, ok := p.ToHost(1005); !ok || h != sub+5 {
		t.Errorf("ToHost(1005) = %d, %v; want %d", h, ok, sub+5)
	}

	// A range outside the subordinate ids is refused before any helper runs.
	req.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: sub - 1000, Size: 10}}
	if _, err := Resolve(req); !errors.Is(err, ErrNotOwned) {
		t.Errorf("Resolve with foreign host ids: err = %v, want ErrNotOwned", err)
	}
}

// TestApplySingleFallback forces the single mapping by hiding the helpers
// and checks the warning and what the kernel got.
func TestApplySingleFallback(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	req := me(t)
	req.LookPath = func(name string) (string, error) {
		return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
	}
	p, err := Resolve(req)
	if err != nil {
		t.Fatal(err)
	}
	if p.Helpers {
		t.Fatal("plan uses helpers that LookPath hid")
	}
	for _, s := range []string{"newuidmap not found in PATH", "apt-get install uidmap", "only uid " + strconv.Itoa(int(req.UID))} {
		if !strings.Contains(p.Warning, s) {
			t.Errorf("warning %q lacks %q", p.Warning, s)
		}
	}
	if strings.Contains(p.Warning, "\n") {
		t.Errorf("warning is not one line: %q", p.Warning)
	}
	c := startNSChild(t)
	pid := c.cmd.Process.Pid
	if err := p.Apply(pid); err != nil {
		t.Fatal(err)
	}
	checkMaps(t, pid, p)
	if b, _ := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/setgroups"); strings.TrimSpace(string(b)) != "deny" {
		t.Errorf("setgroups = %q, want deny", b)
	}
	// Maps are written once: a second Apply fails, with a hint.
	if err := p.Apply(pid); err == nil || !strings.Contains(err.Error(), "hint:") {
		t.Errorf("second Apply: err = %v, want an error with a hint", err)
	}
	if out := c.finish(t); !strings.HasSuffix(out, "\n0\n") {
		t.Errorf("child is not root in its namespace:\n%s", out)
	}
}

// TestApplyHelperError makes newuidmap refuse a range and checks that the
// error carries the argv, the helper's output and a hint.
func TestApplyHelperError(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "newuidmap", "apt-get install uidmap")
	req := me(t)
	// uid 1 (daemon) is never a subordinate id of the test user.
	p := &Plan{Helpers: true,
		UIDs: []specs.LinuxIDMapping{{ContainerID: 0, HostID: req.UID, Size: 1}, {ContainerID: 1, HostID: 1, Size: 1}},
		GIDs: singleMapping(req.GID)}
	c := startNSChild(t)
	pid := strconv.Itoa(c.cmd.Process.Pid)
	err := p.Apply(c.cmd.Process.Pid)
	var he *HelperError
	if !errors.As(err, &he) {
		t.Fatalf("err = %v, want a *HelperError", err)
	}
	want := []string{"writing uid map for pid " + pid, "newuidmap [" + pid + " 0 " + strconv.Itoa(int(req.UID)) + " 1 1 1 1]", "exit status 1", "not allowed", "\nhint: a host range is not yours in /etc/subuid"}
	for _, s := range want {
		if !strings.Contains(err.Error(), s) {
			t.Errorf("error %q lacks %q", err, s)
		}
	}
	t.Logf("error as printed:\n%v", err)
}

// TestApplyNotSetuid copies newuidmap without its setuid bit and checks
// that Resolve sees it and degrades, naming the copy and the fix.
func TestApplyNotSetuid(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	src := testutil.RequireBinary(t, "newuidmap", "apt-get install uidmap")
	b, err := os.ReadFile(src)
	if err != nil {
		t.Fatal(err)
	}
	dir := t.TempDir()
	for _, n := range []string{"newuidmap", "newgidmap"} {
		if err := os.WriteFile(dir+"/"+n, b, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	req := me(t)
	req.LookPath = func(name string) (string, error) { return dir + "/" + name, nil }
	p, err := Resolve(req)
	if err != nil {
		t.Fatal(err)
	}
	if p.Helpers {
		t.Fatalf("plan uses a newuidmap without setuid: %+v", p)
	}
	for _, s := range []string{dir + "/newuidmap is not setuid root", "chmod u+s " + dir + "/newuidmap"} {
		if !strings.Contains(p.Warning, s) {
			t.Errorf("warning %q lacks %q", p.Warning, s)
		}
	}
}
