//go:build linux

package slirp

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Check reports whether this host can give a container slirp4netns
// networking: slirp4netns is in PATH and /dev/net/tun can be opened. It
// returns nil, or an error wrapping ErrUnavailable whose text is one line:
// what is missing and the fix. The caller prints it once and falls back to
// loopback-only networking.
//
// Check does not create a tap device: TUNSETIFF needs CAP_NET_ADMIN in the
// container's network namespace, which only the container side has, and
// slirp4netns reports that failure itself when Start runs it. `sandy
// doctor` tries that too, in a throwaway namespace (TunProbeMain).
func Check() error { return CheckWith(exec.LookPath, "/dev/net/tun") }

// CheckWith is Check with slirp4netns looked up by lookPath and the tun
// device at tun (tests and `sandy doctor` pass others).
func CheckWith(lookPath func(string) (string, error), tun string) error {
	if _, err := lookPath("slirp4netns"); err != nil {
		return fmt.Errorf("%w: slirp4netns not in PATH (apt-get install slirp4netns, or dnf install slirp4netns)", ErrUnavailable)
	}
	return CheckTun(tun)
}

// CheckTun reports whether the tun device at tun opens for reading and
// writing, as a container's tap needs (slirp4netns's, and usernet's,
// which the container's init makes): nil, or an error wrapping
// ErrUnavailable with the fix.
func CheckTun(tun string) error {
	f, err := os.OpenFile(tun, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%w: %s: %w", ErrUnavailable, tun, tunFix(err))
	}
	f.Close()
	return nil
}

// tunFix adds the fix to an error opening or using /dev/net/tun.
func tunFix(err error) error {
	switch {
	case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
		return fmt.Errorf("%w (load the tun module: modprobe tun; in a container, pass --device /dev/net/tun)", err)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		return fmt.Errorf("%w (make it mode 0666, as udev does: chmod 0666 /dev/net/tun)", err)
	}
	return err
}

// TunProbeRole is the hidden argv[1] of TunProbeMain.
const TunProbeRole = "_probe-tun"

// TunProbeMain runs inside a throwaway user, mount and network namespace
// (userns.ProbeFlags with CLONE_NEWNET), as root there: it makes the tap
// device slirp4netns makes for a container (TUNSETIFF, IFF_TAP|IFF_NO_PI,
// tap0) on the tun device args[0], which goes with the namespace. An
// error is one line with the fix.
func TunProbeMain(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: sandy " + TunProbeRole + " /dev/net/tun")
	}
	f, err := os.OpenFile(args[0], os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("%s: %w", args[0], tunFix(err))
	}
	defer f.Close()
	ifr, err := unix.NewIfreq("tap0")
	if err != nil {
		return err
	}
	ifr.SetUint16(unix.IFF_TAP | unix.IFF_NO_PI)
	if err := unix.IoctlIfreq(int(f.Fd()), unix.TUNSETIFF, ifr); err != nil {
		return fmt.Errorf("creating tap device tap0 (TUNSETIFF) in a new network namespace: %w", tunFix(err))
	}
	return nil
}

// UnprivilegedPortStart is net.ipv4.ip_unprivileged_port_start read from
// procSys (normally /proc/sys), 1024 when it cannot be read: host ports
// below it are refused by -p (ErrPrivilegedPort).
func UnprivilegedPortStart(procSys string) int {
	b, err := os.ReadFile(filepath.Join(procSys, "net/ipv4/ip_unprivileged_port_start"))
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}

// LowPortsSysctl is the sysctl that lets -p publish the web ports.
const LowPortsSysctl = "net.ipv4.ip_unprivileged_port_start=80"

// PingSysctl is the sysctl that lets every group open ICMP echo sockets,
// the systemd default (50-default.conf).
const PingSysctl = "net.ipv4.ping_group_range=0 2147483647"

// PingSocket tries what slirp4netns does for a container's ping: an ICMP
// echo socket (socket(AF_INET, SOCK_DGRAM, IPPROTO_ICMP), icmp(7)) opened
// on the host as the caller.
func PingSocket() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM|unix.SOCK_CLOEXEC, unix.IPPROTO_ICMP)
	if err != nil {
		return fmt.Errorf("opening an ICMP echo socket: %w", err)
	}
	return unix.Close(fd)
}

// CheckPing explains sockErr, PingSocket's result, for a caller whose
// effective and supplementary gids are gids, with
// net.ipv4.ping_group_range read from procSys: nil when ping works, else
// one line with the fix. The kernel lets a process open an ICMP echo
// socket when one of its gids is in the range (ping_init_sock); slirp4netns
// runs as the caller, so that is whether ping from a container gets an
// answer.
func CheckPing(procSys string, gids []uint32, sockErr error) error {
	if sockErr == nil {
		return nil
	}
	b, err := os.ReadFile(filepath.Join(procSys, "net/ipv4/ping_group_range"))
	if err != nil {
		return sockErr
	}
	f := strings.Fields(string(b))
	var lo, hi uint64
	if len(f) == 2 {
		lo, _ = strconv.ParseUint(f[0], 10, 32)
		hi, _ = strconv.ParseUint(f[1], 10, 32)
	}
	for _, g := range gids {
		if uint64(g) >= lo && uint64(g) <= hi {
			return sockErr // the range is not why
		}
	}
	return fmt.Errorf("%w: net.ipv4.ping_group_range is %q, which holds none of your groups %v (as root: sysctl -w %s, persist it in /etc/sysctl.d/)",
		sockErr, strings.Join(f, " "), gids, strconv.Quote(PingSysctl))
}

// LoopbackWarning is the line `run` prints, and `sandy doctor` shows, when
// Check fails and the container gets loopback only.
func LoopbackWarning(err error) string {
	return FallbackLoopback.Line(err)
}

// unprivilegedPortStart is the host's UnprivilegedPortStart.
func unprivilegedPortStart() int { return UnprivilegedPortStart("/proc/sys") }

// privilegedPortError is the error for a host port the kernel will not let
// an unprivileged process bind.
func privilegedPortError(p PortSpec, start int) error {
	return fmt.Errorf("%w: -p %s: host port %d is below net.ipv4.ip_unprivileged_port_start=%d (use a host port >= %d, or allow it: sysctl -w net.ipv4.ip_unprivileged_port_start=%d, persist it in /etc/sysctl.d/)",
		ErrPrivilegedPort, p, p.HostPort, start, start, p.HostPort)
}
