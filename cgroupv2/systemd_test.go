//go:build linux

package cgroupv2

import (
	"context"
	"fmt"
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestUserBusAddress(t *testing.T) {
	uid := fmt.Sprint(os.Getuid())
	for _, tc := range []struct {
		name, env, xdg     string
		wantAddr, wantSock string
	}{
		{"session address wins", "unix:path=/tmp/x/bus,guid=abc", "/run/user/7", "unix:path=/tmp/x/bus,guid=abc", "/tmp/x/bus"},
		{"abstract address has no socket to stat", "unix:abstract=/tmp/dbus-1", "", "unix:abstract=/tmp/dbus-1", ""},
		{"XDG_RUNTIME_DIR next", "", "/run/user/7", "unix:path=/run/user/7/bus", "/run/user/7/bus"},
		{"then /run/user/UID", "", "", "unix:path=/run/user/" + uid + "/bus", "/run/user/" + uid + "/bus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Setenv("DBUS_SESSION_BUS_ADDRESS", tc.env)
			t.Setenv("XDG_RUNTIME_DIR", tc.xdg)
			addr, sock := userBusAddress()
			if addr != tc.wantAddr || sock != tc.wantSock {
				t.Errorf("userBusAddress() = %q, %q; want %q, %q", addr, sock, tc.wantAddr, tc.wantSock)
			}
		})
	}
}

// TestManagerAddress: root asks the system's systemd on its private
// socket, whatever session variables it has (containerd's shims run sandy
// as root with none: it asked /run/user/0/bus, which a node does not
// have, and every pod of the systemd cgroup driver failed); a user asks
// its own manager on the session bus.
func TestManagerAddress(t *testing.T) {
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path=/tmp/x/bus")
	if addr, sock := managerAddress(0); addr != "unix:path=/run/systemd/private" || sock != "/run/systemd/private" || !isSystemManager(addr) {
		t.Errorf("managerAddress(0) = %q, %q; want the system manager's private socket", addr, sock)
	}
	if addr, sock := managerAddress(1000); addr != "unix:path=/tmp/x/bus" || sock != "/tmp/x/bus" || isSystemManager(addr) {
		t.Errorf("managerAddress(1000) = %q, %q; want the session bus", addr, sock)
	}
}

func TestScopeName(t *testing.T) {
	for _, tc := range []struct {
		cgroupsPath string
		system      bool
		unit, slice string
	}{
		{"", false, "sandy-c1.scope", "user.slice"},
		{"", true, "sandy-c1.scope", "system.slice"},
		{"machine.slice:libpod:abc", false, "libpod-abc.scope", "machine.slice"},
		{"::x", false, "sandy-x.scope", "user.slice"},
		{"a.slice::", false, "sandy-c1.scope", "a.slice"},
		// containerd's CRI with SystemdCgroup = true (kubelet's pod slice).
		{"kubepods-besteffort-podu_1.slice:cri-containerd:c1", true, "cri-containerd-c1.scope", "kubepods-besteffort-podu_1.slice"},
	} {
		unit, slice := scopeName(&Options{ID: "c1", CgroupsPath: tc.cgroupsPath}, tc.system)
		if unit != tc.unit || slice != tc.slice {
			t.Errorf("scopeName(%q, system %v) = %q, %q; want %q, %q", tc.cgroupsPath, tc.system, unit, slice, tc.unit, tc.slice)
		}
	}
}

func TestNoBusIsAnErrorNotAHang(t *testing.T) {
	sock := filepath.Join(t.TempDir(), "bus")
	t.Setenv("DBUS_SESSION_BUS_ADDRESS", "unix:path="+sock)
	if _, err := newSystemdAs(&Options{ID: "c1"}, &plan{}, 1000); err == nil || !strings.Contains(err.Error(), "no user session bus at "+sock) {
		t.Fatalf("newSystemd without a bus: %v", err)
	}
	// Root asks the system manager, whatever the session variables say.
	m, err := newSystemdAs(&Options{ID: "c1"}, &plan{}, 0)
	if _, serr := os.Stat(SystemManagerSocket); serr != nil {
		if err == nil || !strings.Contains(err.Error(), "no systemd manager at "+SystemManagerSocket) {
			t.Fatalf("newSystemd as root without systemd: %v", err)
		}
	} else if os.Geteuid() == 0 {
		if err != nil || !m.bus.direct || m.slice != "system.slice" {
			t.Fatalf("newSystemd as root on a systemd host: %v", err)
		}
		m.Close()
	}
	// Forced (the connection made on the side): a missing socket is
	// still an error of New, at once.
	_, err = New(Options{ID: "c1", Manager: KindSystemd})
	if err == nil {
		t.Fatal("forced systemd without a bus: no error")
	}
	t.Logf("forced systemd without a bus: %v", err)

	// A socket that takes the connection and never answers: New returns
	// at once, and the first use of the bus is an error within the
	// dial's timeout, not a hang; so is Close of a manager never used.
	wedged := filepath.Join(t.TempDir(), "wedged")
	ln, err := net.Listen("unix", wedged)
	if err != nil {
		t.Fatal(err)
	}
	defer ln.Close()
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			defer c.Close() // held open, never answered
		}
	}()
	const timeout = 300 * time.Millisecond
	for _, use := range []string{"Apply", "Close"} {
		t0 := time.Now()
		m, err := newSystemdAt(&Options{ID: "c1", Manager: KindSystemd}, &plan{}, "unix:path="+wedged, wedged, true, timeout)
		if err != nil || m.dial == nil || time.Since(t0) > timeout/2 {
			t.Fatalf("lazy newSystemd on a wedged bus: %v after %v, want a manager at once", err, time.Since(t0))
		}
		t0 = time.Now()
		if use == "Apply" {
			err = m.Apply(context.Background(), os.Getpid())
			if err == nil || !strings.Contains(err.Error(), "starting scope sandy-c1.scope") || !strings.Contains(err.Error(), wedged) {
				t.Fatalf("Apply on a wedged bus: %v", err)
			}
			t.Logf("Apply on a wedged bus: %v", err)
		}
		m.Close()
		if d := time.Since(t0); d > 5*timeout {
			t.Fatalf("%s on a wedged bus took %v, want about %v", use, d, timeout)
		}
	}
}

func TestScopeProps(t *testing.T) {
	props := func(r *specs.LinuxResources) map[string]string {
		p, err := planFor(r)
		if err != nil {
			t.Fatal(err)
		}
		m := &sdManager{unit: "sandy-c1.scope", slice: "user.slice", opts: &Options{ID: "c1"}, plan: p}
		out := map[string]string{}
		for _, pr := range m.scopeProps(42) {
			if _, dup := out[pr.Name]; dup {
				t.Errorf("property %s set twice", pr.Name)
			}
			out[pr.Name] = fmt.Sprint(pr.Value.Value())
		}
		return out
	}
	got := props(nil)
	for k, v := range map[string]string{
		"Delegate": "true", "PIDs": "[42]", "Slice": "user.slice", "DefaultDependencies": "false",
		"CollectMode": "inactive-or-failed", "MemoryAccounting": "true", "TasksAccounting": "true",
		"TasksMax": "18446744073709551615", // no pids limit asked: not the user manager's DefaultTasksMax
	} {
		if got[k] != v {
			t.Errorf("%s = %q, want %q", k, got[k], v)
		}
	}
	got = props(&specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](20)}, Memory: &specs.LinuxMemory{Limit: ptr[int64](1 << 20)}})
	if got["TasksMax"] != "52" || got["MemoryMax"] != "1048576" {
		t.Errorf("TasksMax %q MemoryMax %q, want 52 (20 + SupervisorTasks) and 1048576", got["TasksMax"], got["MemoryMax"])
	}
}

func TestWithoutControllers(t *testing.T) {
	p, err := planFor(&specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0", Shares: ptr[uint64](1024)}, BlockIO: &specs.LinuxBlockIO{Weight: ptr[uint16](100)}})
	if err != nil {
		t.Fatal(err)
	}
	q := withoutControllers(p, []string{"cpuset", "io"})
	files, props, limits, _ := render(q)
	if want := []string{"cpu.weight=100"}; fmt.Sprint(files) != fmt.Sprint(want) {
		t.Errorf("files %q, want %q", files, want)
	}
	if want := []string{"CPUWeight=100"}; fmt.Sprint(props) != fmt.Sprint(want) {
		t.Errorf("props %q, want %q", props, want)
	}
	if want := []string{"cpu:cpu shares"}; fmt.Sprint(limits) != fmt.Sprint(want) {
		t.Errorf("limits %q, want %q", limits, want)
	}
}

func TestCgroupfsBase(t *testing.T) {
	own, err := ownCgroup("self")
	if err != nil {
		t.Fatal(err)
	}
	if filepath.Base(own) == SupervisorLeaf {
		own = filepath.Dir(own)
	}
	for _, tc := range []struct {
		cp, base, path, err string
	}{
		{"", own, own + "/sandy-c1", ""},
		{"user.slice:pfx:name", own, own + "/pfx-name", ""},
		{"/ci/job/c1", Root + "/ci/job", Root + "/ci/job/c1", ""},
		{"sub/c1", own + "/sub", own + "/sub/c1", ""},
		{"../escape", "", "", "leaves the delegated cgroup"},
	} {
		t.Run(tc.cp, func(t *testing.T) {
			base, path, err := cgroupfsBase(&Options{ID: "c1", CgroupsPath: tc.cp})
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("cgroupfsBase(%q) = %q, %q, %v; want error %q", tc.cp, base, path, err, tc.err)
				}
				return
			}
			if err != nil || base != tc.base || path != tc.path {
				t.Errorf("cgroupfsBase(%q) = %q, %q, %v; want %q, %q", tc.cp, base, path, err, tc.base, tc.path)
			}
		})
	}
}

func TestUnenforcedErrorText(t *testing.T) {
	one := (&UnenforcedError{Limits: []string{"pids limit (x)"}, Reason: "why", Fix: "do this"}).Error()
	if want := "cannot enforce pids limit (x): why\nhint: do this; or pass --allow-unenforced to run without it (an engine: SANDY_ALLOW_UNENFORCED=1 in sandy's environment; docs/cgroups.md)"; one != want {
		t.Errorf("got\n%s\nwant\n%s", one, want)
	}
	two := (&UnenforcedError{Limits: []string{"a", "b"}, Reason: "why"}).Error()
	if want := "cannot enforce a, b: why\nhint: pass --allow-unenforced to run without them (an engine: SANDY_ALLOW_UNENFORCED=1 in sandy's environment; docs/cgroups.md)"; two != want {
		t.Errorf("got\n%s\nwant\n%s", two, want)
	}
}

func FuzzParseKV(f *testing.F) {
	f.Add("oom 0\noom_kill 3\n")
	f.Add("usage_usec 12\nbad\n x 1")
	f.Fuzz(func(t *testing.T, s string) {
		for k := range parseKV(s) {
			if strings.Contains(k, "\n") {
				t.Fatalf("key %q spans lines", k)
			}
		}
	})
}
