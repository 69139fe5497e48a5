//go:build linux

package slirp

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
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
// slirp4netns reports that failure itself when Start runs it.
func Check() error {
	if _, err := exec.LookPath("slirp4netns"); err != nil {
		return fmt.Errorf("%w: slirp4netns not in PATH (apt-get install slirp4netns, or dnf install slirp4netns)", ErrUnavailable)
	}
	f, err := os.OpenFile("/dev/net/tun", os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		switch {
		case errors.Is(err, unix.ENOENT), errors.Is(err, unix.ENODEV), errors.Is(err, unix.ENXIO):
			return fmt.Errorf("%w: /dev/net/tun: %w (load the tun module: modprobe tun)", ErrUnavailable, err)
		case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
			return fmt.Errorf("%w: /dev/net/tun: %w (make it mode 0666, as udev does: chmod 0666 /dev/net/tun)", ErrUnavailable, err)
		default:
			return fmt.Errorf("%w: /dev/net/tun: %w", ErrUnavailable, err)
		}
	}
	f.Close()
	return nil
}

// LoopbackWarning is the line `run` prints, and `sandy doctor` shows, when
// Check fails and the container gets loopback only.
func LoopbackWarning(err error) string {
	return "network: loopback only (no outside network): " + err.Error()
}

// unprivilegedPortStart reads net.ipv4.ip_unprivileged_port_start (the
// kernel applies it to IPv6 too). It returns 1024, the kernel default, when
// the file cannot be read.
func unprivilegedPortStart() int {
	b, err := os.ReadFile("/proc/sys/net/ipv4/ip_unprivileged_port_start")
	if err != nil {
		return 1024
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 1024
	}
	return n
}

// privilegedPortError is the error for a host port the kernel will not let
// an unprivileged process bind.
func privilegedPortError(p PortSpec, start int) error {
	return fmt.Errorf("%w: -p %s: host port %d is below net.ipv4.ip_unprivileged_port_start=%d (use a host port >= %d, or allow it: sysctl -w net.ipv4.ip_unprivileged_port_start=%d, persist it in /etc/sysctl.d/)",
		ErrPrivilegedPort, p, p.HostPort, start, start, p.HostPort)
}
