//go:build linux

package slirp

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
)

func TestCheckMissingSlirp4netns(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Check()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "apt-get install slirp4netns") {
		t.Fatalf("Check() with an empty PATH = %v, want ErrUnavailable with the install hint", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("Check() error is not one line: %q", err)
	}
}

func TestLaunchWithoutNsenter(t *testing.T) {
	slirp, err := exec.LookPath("slirp4netns")
	if err != nil {
		testutil.Skip(t, "slirp4netns not in PATH (apt-get install slirp4netns)")
	}
	if err := Check(); err != nil {
		testutil.Skip(t, "%v", err)
	}
	dir := t.TempDir()
	if err := os.Symlink(slirp, filepath.Join(dir, "slirp4netns")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	_, err = Launch(context.Background(), Options{PID: os.Getpid(), StateDir: t.TempDir(), Exe: testExe(t), Ports: []PortSpec{{HostPort: 40000, ContainerPort: 80, Proto: "tcp"}}})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "needs nsenter") {
		t.Fatalf("Launch without nsenter = %v, want ErrUnavailable naming nsenter", err)
	}
}

func TestOptionsErrors(t *testing.T) {
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no pid", Options{StateDir: "/tmp/x"}, "no container pid"},
		{"no state dir", Options{PID: 1}, "no state directory"},
		{"mtu", Options{PID: 1, StateDir: "/tmp/x", MTU: 100}, "mtu 100 out of range"},
		{"driver", Options{PID: 1, StateDir: "/tmp/x", Driver: "pasta"}, `unknown port driver "pasta"`},
		{"duplicate ports", Options{PID: 1, StateDir: "/tmp/x", Ports: []PortSpec{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, {HostPort: 8080, ContainerPort: 81, Proto: "tcp"}}}, "both use host port 8080/tcp"},
		{"ipv6 with slirp4netns driver", Options{PID: 1, StateDir: "/tmp/x", Driver: DriverSlirp4netns, Ports: []PortSpec{{HostIP: "::1", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}}, "has no IPv6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Start(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start(%+v) = %v, want an error containing %q", tt.o, err, tt.want)
			}
			// The caller names its step ("starting the network: ..."):
			// a prefix of slirp's own would read twice.
			if strings.HasPrefix(err.Error(), "starting network") {
				t.Errorf("Start(%+v) = %q: the caller's step name would be doubled", tt.o, err)
			}
		})
	}
	if _, err := os.Stat("/tmp/x"); err == nil {
		t.Errorf("Start created /tmp/x for invalid options")
	}
}

// TestLaunchRefusesUnsafeExe: the network's helpers run Options.Exe, the
// port child inside the container's user namespace, so Launch takes only a
// sealed memfd or a binary the caller cannot write, and never falls back
// to os.Executable() (CVE-2019-5736). It refuses before it starts anything
// or creates the state directory.
func TestLaunchRefusesUnsafeExe(t *testing.T) {
	onDisk := filepath.Join(t.TempDir(), "sandy")
	if err := os.WriteFile(onDisk, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	writable, err := os.Open(onDisk) // read-only handle, but the caller owns (and can write) the file
	if err != nil {
		t.Fatal(err)
	}
	defer writable.Close()
	tests := []struct {
		name  string
		exe   *os.File
		seals int // -1: not a memfd
		want  string
	}{
		{name: "none", seals: -1, want: "no sandy binary handle"},
		{name: "own file", exe: writable, seals: -1, want: "is writable by uid"},
		{name: "unsealed memfd", seals: 0, want: "is writable by uid"},
		{name: "write seal only", seals: unix.F_SEAL_WRITE, want: "is writable by uid"},
		{name: "directory", seals: -1, want: "not a regular file"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			exe := tt.exe
			switch {
			case tt.name == "directory":
				d, err := os.Open(t.TempDir())
				if err != nil {
					t.Fatal(err)
				}
				defer d.Close()
				exe = d
			case tt.seals >= 0:
				exe = memfd(t, tt.seals)
			}
			dir := filepath.Join(t.TempDir(), "state")
			_, err := Launch(context.Background(), Options{PID: os.Getpid(), StateDir: dir, Exe: exe})
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Launch with Exe %v = %v, want an error containing %q", exe, err, tt.want)
			}
			if _, err := os.Stat(dir); err == nil {
				t.Errorf("Launch created %s", dir)
			}
		})
	}
	if err := checkExe(testExe(t)); err != nil {
		t.Errorf("a sealed memfd refused: %v", err)
	}
}

func memfd(t *testing.T, seals int) *os.File {
	t.Helper()
	fd, err := unix.MemfdCreate("test", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		t.Fatal(err)
	}
	f := os.NewFile(uintptr(fd), fmt.Sprintf("memfd:test-%#x", seals))
	t.Cleanup(func() { f.Close() })
	if _, err := f.Write([]byte("#!/bin/sh\n")); err != nil {
		t.Fatal(err)
	}
	if seals != 0 {
		if _, err := unix.FcntlInt(f.Fd(), unix.F_ADD_SEALS, seals); err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// TestBuiltinDriverRefusedInCallersPidNamespace: the builtin driver's port
// child runs inside the container's user namespace and in the caller's pid
// namespace, so a container sharing that pid namespace could ptrace it;
// slirp refuses the combination (the slirp4netns driver has no process
// inside).
func TestBuiltinDriverRefusedInCallersPidNamespace(t *testing.T) {
	err := checkPidNamespace(os.Getpid())
	if !errors.Is(err, ErrPortDriver) || !strings.Contains(err.Error(), "port_handler=slirp4netns") {
		t.Fatalf("checkPidNamespace(own pid) = %v, want ErrPortDriver naming the fix", err)
	}
	if err := checkPidNamespace(1 << 30); err == nil || errors.Is(err, ErrPortDriver) {
		t.Fatalf("checkPidNamespace(no such pid) = %v, want a stat error", err)
	}
}

// TestSlirp4netnsDriverAdviceWithoutPidNamespace: for a container in the
// caller's pid namespace, where the builtin driver is refused, the
// slirp4netns driver's port errors do not advise the builtin driver
// alone: they say that it needs the container's own pid namespace.
func TestSlirp4netnsDriverAdviceWithoutPidNamespace(t *testing.T) {
	ports := map[string]PortSpec{
		"ipv6": {HostIP: "::1", HostPort: 8080, ContainerPort: 80, Proto: "tcp"},
		"udp":  {HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 53, Proto: "udp"},
	}
	for name, p := range ports {
		t.Run(name, func(t *testing.T) {
			o := Options{PID: os.Getpid(), StateDir: "/tmp/x", Driver: DriverSlirp4netns, Ports: []PortSpec{p}}
			_, err := o.withDefaults()
			if !errors.Is(err, ErrBadPort) || !strings.Contains(err.Error(), `add {"type": "pid"} to linux.namespaces`) {
				t.Fatalf("withDefaults(%+v) = %v, want ErrBadPort saying the builtin driver needs a pid namespace", o, err)
			}
		})
	}
}

// TestCheckWithTun: an unopenable tun device is named with its fix, the
// one-line form run prints and doctor splits.
func TestCheckWithTun(t *testing.T) {
	found := func(string) (string, error) { return "/usr/bin/slirp4netns", nil }
	missing := filepath.Join(t.TempDir(), "tun")
	err := CheckWith(found, missing)
	if !errors.Is(err, ErrUnavailable) || !strings.HasSuffix(err.Error(), "(load the tun module: modprobe tun; in a container, pass --device /dev/net/tun)") {
		t.Errorf("CheckWith(missing tun) = %v, want ErrUnavailable ending in the modprobe fix", err)
	}
	if err := CheckWith(found, "/dev/null"); err != nil {
		t.Errorf("CheckWith(/dev/null) = %v: opening is all Check does", err)
	}
}

// TestTunProbe: in a throwaway user and network namespace the probe makes
// a tap device on /dev/net/tun, and names TUNSETIFF when the device is not
// a tun device (/dev/null stands for a tun device that will not make one).
func TestTunProbe(t *testing.T) {
	if _, err := os.Stat("/dev/net/tun"); err != nil {
		testutil.Skip(t, "/dev/net/tun: %v (modprobe tun)", err)
	}
	probe := func(dev string) (string, error) {
		cmd := exec.Command("/proc/self/exe", TunProbeRole, dev)
		cmd.SysProcAttr = &syscall.SysProcAttr{
			Cloneflags:  syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | syscall.CLONE_NEWNET,
			UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
			GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		}
		out, err := cmd.CombinedOutput()
		return string(out), err
	}
	if out, err := probe("/dev/net/tun"); err != nil {
		t.Fatalf("probe on /dev/net/tun: %v: %s", err, out)
	}
	out, err := probe("/dev/null")
	if err == nil || !strings.Contains(out, "creating tap device tap0 (TUNSETIFF) in a new network namespace") {
		t.Errorf("probe on /dev/null: %v: %s; want the TUNSETIFF error", err, out)
	}
}

// TestCheckPing: an ICMP socket refused while no group of the caller is in
// net.ipv4.ping_group_range is that range, with the sysctl fix; refused
// with a group in range, it is some other cause, reported as it is.
func TestCheckPing(t *testing.T) {
	procSys := t.TempDir()
	if err := os.MkdirAll(filepath.Join(procSys, "net/ipv4"), 0o755); err != nil {
		t.Fatal(err)
	}
	write := func(s string) {
		if err := os.WriteFile(filepath.Join(procSys, "net/ipv4/ping_group_range"), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	refused := fmt.Errorf("opening an ICMP echo socket: %w", unix.EACCES)
	if err := CheckPing(procSys, []uint32{1000}, nil); err != nil {
		t.Errorf("socket opened: %v", err)
	}
	write("1\t0\n")
	err := CheckPing(procSys, []uint32{1000, 27}, refused)
	if err == nil || !strings.Contains(err.Error(), `net.ipv4.ping_group_range is "1 0", which holds none of your groups [1000 27]`) ||
		!strings.HasSuffix(err.Error(), `(as root: sysctl -w "net.ipv4.ping_group_range=0 2147483647", persist it in /etc/sysctl.d/)`) {
		t.Errorf("range 1 0: %v", err)
	}
	write("0 100\n")
	if err := CheckPing(procSys, []uint32{1000, 27}, refused); err == nil || err.Error() != refused.Error() {
		t.Errorf("a group in range: %v, want the socket error as it is", err)
	}
}

func TestUnprivilegedPortStart(t *testing.T) {
	procSys := t.TempDir()
	if got := UnprivilegedPortStart(procSys); got != 1024 {
		t.Errorf("no file: %d, want the kernel default 1024", got)
	}
	if err := os.MkdirAll(filepath.Join(procSys, "net/ipv4"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(procSys, "net/ipv4/ip_unprivileged_port_start"), []byte("80\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := UnprivilegedPortStart(procSys); got != 80 {
		t.Errorf("80 written: %d", got)
	}
}
