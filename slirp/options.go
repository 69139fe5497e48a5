package slirp

import (
	"errors"
	"fmt"
	"net"
	"os"
	"path/filepath"
)

// Options describe the network for one container.
type Options struct {
	// PID is a process inside the container's network namespace and its
	// user namespace, normally the container's init. The network lives as
	// long as this process: when it exits, the monitor tears down.
	PID int
	// MTU of tap0; 0 means DefaultMTU.
	MTU int
	// HostLoopback lets the container reach the host's 127.0.0.1 through
	// 10.0.2.2; false passes --disable-host-loopback.
	HostLoopback bool
	// Ports to forward from the host into the container.
	Ports []PortSpec
	// Driver is the port driver: "builtin" (default; fast, the container
	// sees the client's address) or "slirp4netns" (through slirp4netns'
	// API socket; no process inside the namespace, container sees 10.0.2.2).
	Driver string
	// StateDir is the container's private state directory (0700). Start
	// puts slirp.json, slirp.log and the sockets there; Stop(StateDir)
	// from any process ends the network.
	StateDir string
	// InProcess keeps the network's owner, the forwarders included, in the
	// calling process instead of a monitor process: for `sandy run` in the
	// foreground, whose process lives as long as the container anyway. It
	// saves a process start-up, and the network then also ends with the
	// caller, kill -9 included. Leave it false for run --detach and create.
	InProcess bool
	// BindNotifier, when set, is the listener of InstallBindNotifier's
	// seccomp filter in the container (experimental): published TCP ports
	// then get no forwarder; the container's own listening socket becomes
	// a host socket (see bypass_linux.go). Start takes its own copy.
	BindNotifier *os.File
	// Exe is a handle on the sandy binary that has the hidden
	// MonitorCommand and PortChildCommand subcommands: the protected copy
	// that the container's init runs from (userns.SelfExe): a sealed
	// memfd, a file on a read-only overlayfs, or a file the caller cannot
	// write. Required where one of them runs (not InProcess, or a port
	// child): the port child runs it
	// inside the container's user namespace and the monitor next to the
	// container, so the path of a binary the caller can write would let the
	// container rewrite it (CVE-2019-5736; doc.go, Security). Launch
	// refuses anything else. The caller keeps it and may close it once
	// Launch has returned.
	Exe *os.File
	// NetNS and UserNS, when set, are handles on the container's network
	// namespace and the user namespace that owns it, which slirp4netns
	// (and the builtin driver's port child, with PidNS) joins instead of
	// PID's (--netns-type=path, --userns-path): for a
	// container whose pid 1 nobody may open the namespaces of by pid (the
	// raw init, which is not dumpable until its execve). The caller
	// keeps them and may close them once Launch has returned.
	NetNS, UserNS *os.File
	// PidNS, with NetNS and UserNS, is a handle on the container's pid
	// namespace, for the builtin driver's check that the container has
	// one of its own (checkPidNamespace); its port child then joins NetNS
	// and UserNS by these handles too.
	PidNS *os.File
}

func (o Options) withDefaults() (Options, error) {
	if o.PID <= 0 {
		return o, errors.New("no container pid")
	}
	if o.StateDir == "" {
		return o, errors.New("no state directory")
	}
	// The network's processes run from "/".
	dir, err := filepath.Abs(o.StateDir)
	if err != nil {
		return o, err
	}
	o.StateDir = dir
	// A state directory too long for a socket address (sockaddr_un holds
	// 108 bytes) is reached through /proc/self/fd (sockPath, socketDir).
	if o.MTU == 0 {
		o.MTU = DefaultMTU
	}
	if o.MTU < 1280 || o.MTU > DefaultMTU {
		return o, fmt.Errorf("mtu %d out of range 1280-%d", o.MTU, DefaultMTU)
	}
	switch o.Driver {
	case "":
		o.Driver = DriverBuiltin
	case DriverBuiltin, DriverSlirp4netns:
	default:
		return o, fmt.Errorf("unknown port driver %q (builtin or slirp4netns)", o.Driver)
	}
	if err := ValidatePorts(o.Ports); err != nil {
		return o, err
	}
	if o.Driver == DriverSlirp4netns {
		advice := builtinAdvice(o.PID)
		for _, p := range o.Ports {
			if p.HostIP != "" && net.ParseIP(p.HostIP).To4() == nil {
				return o, fmt.Errorf("%w: -p %s: the slirp4netns port driver has no IPv6 (%s)", ErrBadPort, p, advice)
			}
			if p.Proto == "udp" && !o.HostLoopback {
				// Measured with slirp4netns 1.2.0 / libslirp 4.7.0: the
				// container's replies go to 10.0.2.2, which
				// --disable-host-loopback drops for UDP.
				return o, fmt.Errorf("%w: -p %s: UDP through the slirp4netns port driver needs host loopback, whose replies libslirp drops otherwise (%s)", ErrBadPort, p, advice)
			}
		}
	}
	return o, nil
}
