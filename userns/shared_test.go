//go:build linux

package userns

import (
	"bytes"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestStartSharedUserNS starts a child in a user namespace another
// process holds (Config.SharedUserNS): it is pid 1 of its own pid
// namespace, in the held user namespace, uid 0 there, in a mount
// namespace of its own; with stdio that the fork cannot pass (not a
// file), Start makes a new user namespace instead and says why.
func TestStartSharedUserNS(t *testing.T) {
	if os.Getuid() != 0 {
		testutil.Skip(t, "needs root: the held namespace maps root (run the unit tests as root, as hack/test.sh does)")
	}
	holder := exec.Command("unshare", "--user", "--map-root-user", "sleep", "60")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Process.Kill(); _ = holder.Wait() }()
	nsPath := "/proc/" + strconv.Itoa(holder.Process.Pid) + "/ns/user"
	var want string
	for end := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		// unshare(1) execs sleep once its namespace is made and mapped.
		if b, err := os.ReadFile("/proc/" + strconv.Itoa(holder.Process.Pid) + "/comm"); err == nil && string(b) == "sleep\n" {
			want, _ = os.Readlink(nsPath)
			break
		}
		if time.Now().After(end) {
			t.Fatal("unshare did not exec sleep")
		}
	}
	ns, err := os.Open(nsPath)
	if err != nil {
		t.Fatal(err)
	}
	defer ns.Close()
	sh, err := os.Open("/bin/sh")
	if err != nil {
		t.Fatal(err)
	}
	defer sh.Close()
	ownMnt, _ := os.Readlink("/proc/self/ns/mnt")
	script := `echo $(readlink /proc/self/ns/user) $(readlink /proc/self/ns/mnt) $$ $(id -u)`
	start := func(stdout any) (*Child, string) {
		t.Helper()
		cfg := Config{Exe: sh, Args: []string{"-c", script}, Env: []string{"PATH=/usr/bin:/bin"},
			Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWPID, CgroupFD: -1, SharedUserNS: ns}
		var buf bytes.Buffer
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		defer r.Close()
		if stdout == nil {
			cfg.Stdout = w
		} else {
			cfg.Stdout = &buf
		}
		c, err := Start(cfg)
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		if stdout == nil {
			b, _ := io.ReadAll(r)
			buf.Write(b)
		}
		if err := c.Cmd.Wait(); err != nil {
			t.Fatalf("the child: %v (output %q)", err, buf.String())
		}
		return c, strings.TrimSpace(buf.String())
	}

	c, out := start(nil)
	f := strings.Fields(out)
	if shared, why := c.SharedUserNS(); !shared || why != "" {
		t.Errorf("SharedUserNS() = %v, %q; want true", shared, why)
	}
	if len(f) != 4 || f[0] != want || f[1] == ownMnt || f[2] != "1" || f[3] != "0" {
		t.Errorf("output %q: want the held user namespace %s, a mount namespace other than %s, pid 1, uid 0", out, want, ownMnt)
	}

	c, out = start(&bytes.Buffer{})
	if shared, why := c.SharedUserNS(); shared || why != "stdio that is not a file" {
		t.Errorf("with a bytes.Buffer for stdout: SharedUserNS() = %v, %q; want false, the reason", shared, why)
	}
	if f := strings.Fields(out); len(f) != 4 || f[0] == want {
		t.Errorf("with a bytes.Buffer for stdout: output %q: want a new user namespace", out)
	}
}

func TestSharedUnforkable(t *testing.T) {
	base := Config{Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWPID, CgroupFD: -1, Stdin: (*os.File)(nil), Stdout: os.Stdout}
	if why := sharedUnforkable(base); why != "" {
		t.Errorf("the base config: %q, want forkable", why)
	}
	for _, tc := range []struct {
		why  string
		edit func(*Config)
	}{
		{"no new user namespace asked", func(c *Config) { c.Cloneflags = syscall.CLONE_NEWPID }},
		{"namespaces to join", func(c *Config) { c.Join = []Join{{Flag: "net", Path: "/proc/1/ns/net"}} }},
		{"a cgroup to clone into", func(c *Config) { c.CgroupFD = 3 }},
		{"a detached start", func(c *Config) { c.Detach = true }},
	} {
		cfg := base
		tc.edit(&cfg)
		if got := sharedUnforkable(cfg); got != tc.why {
			t.Errorf("%s: %q", tc.why, got)
		}
	}
}

// rootMapper is a RootMapper whose maps need no writing.
type rootMapper struct{ rootIsCaller bool }

func (rootMapper) Apply(int) error            { return nil }
func (m rootMapper) RootIsCaller(uint32) bool { return m.rootIsCaller }

// TestStartAwaitsMaps: a child that waits for its maps (the init) is
// exec'd at once with its capabilities in the ambient set, also where
// the maps make the caller 0; any other child with such maps waits in
// the /bin/sh gate until they are written, and a Detach start keeps the
// gate too.
func TestStartAwaitsMaps(t *testing.T) {
	if !shAvailable() {
		testutil.Skip(t, "no /bin/sh for the gate")
	}
	exe, err := os.Open("/bin/true")
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	for _, tc := range []struct {
		name         string
		rootIsCaller bool
		awaits       bool
		detach       bool
		gate         bool
	}{
		{"the init, maps that make the caller 0", true, true, false, false},
		{"another child, maps that make the caller 0", true, false, false, true},
		{"another child, keep-id's maps", false, false, false, false},
		{"a detached start", true, true, true, true},
	} {
		c, err := Start(Config{Exe: exe, Cloneflags: syscall.CLONE_NEWUSER, Maps: rootMapper{tc.rootIsCaller}, AwaitsMaps: tc.awaits, Detach: tc.detach, CgroupFD: -1})
		if err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		gated := c.Cmd.Path == shPath
		ambient := len(c.Cmd.SysProcAttr.AmbientCaps) > 0
		if err := c.Cmd.Wait(); err != nil {
			t.Errorf("%s: the child: %v", tc.name, err)
		}
		if gated != tc.gate || ambient == tc.gate {
			t.Errorf("%s: exec'd %s (ambient capabilities: %v); want the gate: %v", tc.name, c.Cmd.Path, ambient, tc.gate)
		}
	}
}
