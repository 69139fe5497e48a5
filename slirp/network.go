//go:build linux

package slirp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// ResolvConf is what the init writes into the container's /etc/resolv.conf:
// slirp4netns answers DNS on 10.0.2.3 by forwarding to the host's resolver.
const ResolvConf = "nameserver 10.0.2.3\n"

// The addresses slirp4netns --configure gives the container.
const (
	ContainerIP = "10.0.2.100" // tap0, a /24
	GatewayIP   = "10.0.2.2"   // the host; its loopback only with HostLoopback
	DNSIP       = "10.0.2.3"
)

// Hidden subcommands of the sandy binary (see RunMonitor and RunPortChild).
const (
	MonitorCommand   = "slirp-monitor"
	PortChildCommand = "slirp-port-child"
)

// Port drivers.
const (
	DriverBuiltin     = "builtin"
	DriverSlirp4netns = "slirp4netns"
)

// DefaultMTU is slirp4netns' largest MTU; 1500 is about seven times slower.
const DefaultMTU = 65520

// startTimeout bounds each wait of the start-up (the monitor's report,
// slirp4netns' ready fd, the port child's handshake) when ctx has none.
const startTimeout = 10 * time.Second

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
	// Exe is the sandy binary that has the hidden MonitorCommand and
	// PortChildCommand subcommands; "" means os.Executable. The port child
	// runs it inside the container's user namespace: see doc.go, Security.
	Exe string
}

// Network is a running slirp4netns network with its port forwards, owned by
// a monitor process (see RunMonitor) that outlives the caller of Start.
type Network struct {
	stateDir string
	cmd      *exec.Cmd
	waited   chan struct{}

	once sync.Once
	err  error
}

// monitorConfig is what Start hands the monitor in StateDir/slirp.json.
type monitorConfig struct {
	PID          int        `json:"pid"`
	MTU          int        `json:"mtu"`
	HostLoopback bool       `json:"hostLoopback"`
	Ports        []PortSpec `json:"ports"`
	Driver       string     `json:"driver"`
	StateDir     string     `json:"stateDir"`
	Exe          string     `json:"exe"`
	Slirp4netns  string     `json:"slirp4netns"`
}

// report is the monitor's one message to Start over the ready fd.
type report struct {
	Error string `json:"error,omitempty"`
	Kind  string `json:"kind,omitempty"` // sentinel name, so errors.Is survives the process boundary
}

var kinds = map[string]error{
	"bad-port":        ErrBadPort,
	"port-in-use":     ErrPortInUse,
	"privileged-port": ErrPrivilegedPort,
	"unavailable":     ErrUnavailable,
}

func kindOf(err error) string {
	for k, s := range kinds {
		if errors.Is(err, s) {
			return k
		}
	}
	return ""
}

// remoteError is an error that happened in the monitor.
type remoteError struct {
	msg  string
	kind error
}

func (e *remoteError) Error() string { return e.msg }
func (e *remoteError) Unwrap() error { return e.kind }

func (o Options) withDefaults() (Options, error) {
	if o.PID <= 0 {
		return o, fmt.Errorf("starting network: no container pid")
	}
	if o.StateDir == "" {
		return o, fmt.Errorf("starting network: no state directory")
	}
	if o.MTU == 0 {
		o.MTU = DefaultMTU
	}
	if o.MTU < 1280 || o.MTU > DefaultMTU {
		return o, fmt.Errorf("starting network: mtu %d out of range 1280-%d", o.MTU, DefaultMTU)
	}
	switch o.Driver {
	case "":
		o.Driver = DriverBuiltin
	case DriverBuiltin, DriverSlirp4netns:
	default:
		return o, fmt.Errorf("starting network: unknown port driver %q (builtin or slirp4netns)", o.Driver)
	}
	if err := ValidatePorts(o.Ports); err != nil {
		return o, err
	}
	if o.Driver == DriverSlirp4netns {
		for _, p := range o.Ports {
			if p.HostIP != "" && net.ParseIP(p.HostIP).To4() == nil {
				return o, fmt.Errorf("%w -p %s: the slirp4netns port driver has no IPv6 (use the builtin driver)", ErrBadPort, p)
			}
			if p.Proto == "udp" && !o.HostLoopback {
				// Measured with slirp4netns 1.2.0 / libslirp 4.7.0: the
				// container's replies go to 10.0.2.2, which
				// --disable-host-loopback drops for UDP.
				return o, fmt.Errorf("%w -p %s: UDP through the slirp4netns port driver needs host loopback, whose replies libslirp drops otherwise (use the builtin driver)", ErrBadPort, p)
			}
		}
	}
	if o.Exe == "" {
		exe, err := os.Executable()
		if err != nil {
			return o, fmt.Errorf("starting network: finding the sandy binary: %w", err)
		}
		o.Exe = exe
	}
	return o, nil
}

// Start gives the network namespace of o.PID a slirp4netns network and
// forwards o.Ports into it. It returns once slirp4netns has configured tap0
// and every host port is listening; on error nothing is left running.
//
// Start runs on the host side, before the container's process runs. It
// starts a monitor, a re-exec of o.Exe as MonitorCommand in its own session,
// which owns slirp4netns and the forwarders and so outlives the caller (run
// --detach, create then start). The monitor ends with the container's
// process, on Close or Stop, or on SIGTERM. Ports are checked here first
// (privileged, in use), so that those errors cost no process start.
func Start(ctx context.Context, o Options) (*Network, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if err := Check(); err != nil {
		return nil, err
	}
	slirpPath, _ := exec.LookPath("slirp4netns")
	if err := preflightPorts(o.Ports); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, fmt.Errorf("starting network: %w", err)
	}
	cfg := monitorConfig{
		PID: o.PID, MTU: o.MTU, HostLoopback: o.HostLoopback, Ports: o.Ports,
		Driver: o.Driver, StateDir: o.StateDir, Exe: o.Exe, Slirp4netns: slirpPath,
	}
	cfgPath := filepath.Join(o.StateDir, "slirp.json")
	if err := writeJSON(cfgPath, cfg); err != nil {
		return nil, fmt.Errorf("starting network: %w", err)
	}
	n, err := startMonitor(ctx, o, cfgPath)
	if err != nil {
		removeStateFiles(o.StateDir)
		return nil, err
	}
	return n, nil
}

func startMonitor(ctx context.Context, o Options, cfgPath string) (*Network, error) {
	logf, err := os.OpenFile(filepath.Join(o.StateDir, "slirp.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("starting network: %w", err)
	}
	defer logf.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, fmt.Errorf("starting network: %w", err)
	}
	defer readyR.Close()
	cmd := exec.Command(o.Exe, MonitorCommand, "--config="+cfgPath, "--ready-fd=3")
	cmd.ExtraFiles = []*os.File{readyW}
	cmd.Stdout, cmd.Stderr = logf, logf
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	// Its own session: a ^C for the foreground container must not kill
	// the network before the container has handled it.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	if err := cmd.Start(); err != nil {
		readyW.Close()
		return nil, fmt.Errorf("starting network monitor %s: %w", o.Exe, err)
	}
	readyW.Close()
	n := &Network{stateDir: o.StateDir, cmd: cmd, waited: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(n.waited) }()

	got := make(chan error, 1)
	go func() { got <- readReport(readyR) }()
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	select {
	case err = <-got:
	case <-ctx.Done():
		err = fmt.Errorf("starting network: waiting for the monitor: %w", ctx.Err())
	}
	if err != nil {
		_ = cmd.Process.Kill()
		<-n.waited
		if errors.Is(err, io.ErrUnexpectedEOF) {
			err = fmt.Errorf("starting network: monitor %s exited without a report (%s); see %s", o.Exe, cmd.ProcessState, filepath.Join(o.StateDir, "slirp.log"))
		}
		return nil, err
	}
	return n, nil
}

func readReport(r io.Reader) error {
	var rep report
	if err := json.NewDecoder(bufio.NewReader(r)).Decode(&rep); err != nil {
		return io.ErrUnexpectedEOF
	}
	if rep.Error == "" {
		return nil
	}
	return &remoteError{msg: rep.Error, kind: kinds[rep.Kind]}
}

// MonitorPID is the pid of the process that owns slirp4netns and the
// forwarders.
func (n *Network) MonitorPID() int { return n.cmd.Process.Pid }

// Close ends the forwarders and slirp4netns and waits for the monitor to
// exit. It is idempotent and safe after the monitor has exited on its own.
func (n *Network) Close() error {
	n.once.Do(func() {
		n.err = Stop(n.stateDir)
		select {
		case <-n.waited:
		case <-time.After(5 * time.Second):
			_ = n.cmd.Process.Kill()
			<-n.waited
		}
	})
	return n.err
}

// Stop ends the network whose state is in stateDir, from any process (the
// `delete` of a detached container): it asks the monitor over its control
// socket and returns once the monitor, slirp4netns and the port child are
// gone. A monitor that is already gone is not an error.
func Stop(stateDir string) error {
	sock := filepath.Join(stateDir, "monitor.sock")
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
			removeStateFiles(stateDir)
			return nil
		}
		return fmt.Errorf("stopping network: %w", err)
	}
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	if _, err := c.Write([]byte("stop\n")); err != nil {
		return fmt.Errorf("stopping network: %w", err)
	}
	// The monitor closes the connection by exiting, after its children.
	if _, err := io.Copy(io.Discard, c); err != nil {
		return fmt.Errorf("stopping network: waiting for the monitor: %w", err)
	}
	return nil
}

// preflightPorts fails fast on host ports that cannot be bound: below
// ip_unprivileged_port_start, or held by another socket. The monitor's own
// bind reports the same errors if the port is taken in between.
func preflightPorts(ports []PortSpec) error {
	start := unprivilegedPortStart()
	for _, p := range ports {
		if p.HostPort < start {
			return privilegedPortError(p, start)
		}
	}
	for _, p := range ports {
		if err := tryBind(p); err != nil {
			return err
		}
	}
	return nil
}

func tryBind(p PortSpec) error {
	network := p.Proto
	addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
	var c io.Closer
	var err error
	if p.Proto == "udp" {
		c, err = net.ListenPacket(network, addr)
	} else {
		c, err = net.Listen(network, addr)
	}
	if err != nil {
		return bindError(p, err)
	}
	return c.Close()
}

// bindError turns a failed bind of p's host address into an error with the
// fix.
func bindError(p PortSpec, err error) error {
	switch {
	case errors.Is(err, unix.EADDRINUSE):
		return fmt.Errorf("%w: -p %s: %w (stop what listens there, see `ss -lntup 'sport = :%d'`, or pick another host port)", ErrPortInUse, p, err, p.HostPort)
	case errors.Is(err, unix.EACCES), errors.Is(err, unix.EPERM):
		if start := unprivilegedPortStart(); p.HostPort < start {
			return privilegedPortError(p, start)
		}
	case errors.Is(err, unix.EADDRNOTAVAIL):
		return fmt.Errorf("%w -p %s: host address %s is not on this host: %w", ErrBadPort, p, p.HostIP, err)
	}
	return fmt.Errorf("forwarding -p %s: %w", p, err)
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_ = os.Remove(path)
	return os.WriteFile(path, data, 0o600)
}

// stateFiles are the files of StateDir that belong to this package, all
// removed at teardown except slirp.log.
var stateFiles = []string{"slirp.json", "monitor.sock", "slirp-api.sock", ".bp.sock", ".bp-ready.pipe"}

func removeStateFiles(dir string) {
	for _, f := range stateFiles {
		_ = os.Remove(filepath.Join(dir, f))
	}
}
