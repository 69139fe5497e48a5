//go:build linux

package slirp

import (
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"strconv"
	"syscall"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/port"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port/builtin/opaque"
	builtinparent "github.com/rootless-containers/rootlesskit/v3/pkg/port/builtin/parent"
	slirpport "github.com/rootless-containers/rootlesskit/v3/pkg/port/slirp4netns"
	"golang.org/x/sys/unix"
)

// RunMonitor is the hidden MonitorCommand of the sandy binary:
//
//	sandy slirp-monitor --config=STATEDIR/slirp.json --ready-fd=3
//
// args are the arguments after the subcommand name. Start runs it in its own
// session with stdout and stderr on STATEDIR/slirp.log. It starts
// slirp4netns and the port forwarders, writes one JSON report to the ready
// fd, then waits for the end: the container's process exiting (pidfd), a
// "stop" on STATEDIR/monitor.sock (Stop), SIGTERM, SIGINT or SIGHUP, or
// slirp4netns or the port child dying. It then ends its children and
// returns; the caller exits, which closes the control connection that Stop
// waits on.
func RunMonitor(args []string) error {
	fs := flag.NewFlagSet(MonitorCommand, flag.ContinueOnError)
	cfgPath := fs.String("config", "", "monitor configuration written by slirp.Start")
	readyFD := fs.Int("ready-fd", -1, "fd to write the start-up report to")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *cfgPath == "" || *readyFD < 3 {
		return errors.New("usage: slirp-monitor --config=PATH --ready-fd=N")
	}
	ready := os.NewFile(uintptr(*readyFD), "ready")
	unix.CloseOnExec(*readyFD)
	var cfg monitorConfig
	data, err := os.ReadFile(*cfgPath)
	if err == nil {
		err = json.Unmarshal(data, &cfg)
	}
	if err != nil {
		err = fmt.Errorf("reading monitor config: %w", err)
		sendReport(ready, err)
		return err
	}
	m := &monitor{cfg: cfg, log: slog.New(slog.NewTextHandler(os.Stderr, nil)).With("pid", cfg.PID)}
	signal.Ignore(unix.SIGPIPE)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	if err := m.start(); err != nil {
		m.teardown()
		sendReport(ready, err)
		return err
	}
	sendReport(ready, nil)
	m.log.Info("network up", "driver", cfg.Driver, "ports", len(cfg.Ports), "mtu", cfg.MTU, "hostLoopback", cfg.HostLoopback)
	m.wait(sigs)
	m.teardown()
	return nil
}

func sendReport(ready *os.File, err error) {
	var rep report
	if err != nil {
		rep = report{Error: err.Error(), Kind: kindOf(err)}
	}
	_ = json.NewEncoder(ready).Encode(rep)
	ready.Close()
}

// monitor owns one container's slirp4netns, port driver and port child.
type monitor struct {
	cfg monitorConfig
	log *slog.Logger

	pidfd   int
	control net.Listener
	stopReq chan struct{}

	slirp     *exec.Cmd
	slirpDone chan struct{}
	exitW     *os.File // slirp4netns --exit-fd: slirp exits when this closes

	child     *exec.Cmd
	childDone chan struct{}
	lifeline  *os.File // the port child's stdin: it exits on EOF

	driver port.ParentDriver
	quit   chan struct{}
}

func (m *monitor) start() error {
	m.pidfd = -1
	fd, err := unix.PidfdOpen(m.cfg.PID, 0)
	if err != nil {
		return fmt.Errorf("watching container process %d: %w", m.cfg.PID, err)
	}
	m.pidfd = fd
	if err := m.listenControl(); err != nil {
		return err
	}
	// slirp4netns and the port child do not depend on each other: start
	// both, then wait for both. This keeps the start-up cost near the
	// slower of the two instead of their sum.
	slirpReady, err := m.startSlirp()
	if err != nil {
		return err
	}
	var childReady <-chan error
	if m.cfg.Driver == DriverBuiltin {
		if childReady, err = m.startBuiltin(); err != nil {
			return err
		}
	}
	if err := m.waitSlirp(slirpReady); err != nil {
		return err
	}
	if m.cfg.Driver == DriverSlirp4netns {
		if childReady, err = m.startSlirpDriver(); err != nil {
			return err
		}
	}
	if err := m.waitDriver(childReady); err != nil {
		return err
	}
	return m.addPorts()
}

func (m *monitor) listenControl() error {
	path := filepath.Join(m.cfg.StateDir, "monitor.sock")
	_ = os.Remove(path)
	l, err := net.Listen("unix", path)
	if err != nil {
		return fmt.Errorf("listening for stop requests: %w", err)
	}
	m.control = l
	m.stopReq = make(chan struct{}, 1)
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				buf := make([]byte, 5)
				_ = c.SetReadDeadline(time.Now().Add(5 * time.Second))
				if _, err := io.ReadFull(c, buf); err != nil || string(buf) != "stop\n" {
					c.Close()
					return
				}
				// c stays open, and referenced by this read, until the
				// process exits: Stop waits for that EOF.
				select {
				case m.stopReq <- struct{}{}:
				default: // a stop is already under way
				}
				_, _ = io.Copy(io.Discard, c)
			}()
		}
	}()
	return nil
}

// startSlirp starts slirp4netns for the container's network namespace. The
// flags, in slirp4netns(1) terms:
//
//   - --configure: slirp4netns itself brings up lo and tap0 with 10.0.2.100/24,
//     the default route via 10.0.2.2, so no ip(8) and no nsenter are needed.
//   - --ready-fd: it writes "1" once tap0 is configured; the container's
//     process must not run before that.
//   - --exit-fd: it exits when the other end of this pipe closes, i.e. when
//     this monitor exits for any reason, kill -9 included.
//   - --api-socket: the slirp4netns port driver adds forwards through it.
//   - --disable-host-loopback: 10.0.2.2 does not reach the host's 127.0.0.1.
//   - --enable-seccomp: slirp4netns parses untrusted packets; a filter limits
//     what a bug there can do.
//
// slirp4netns joins the namespace of PID itself: as the owner of the
// container's user namespace it may enter it (user_namespaces(7)).
func (m *monitor) startSlirp() (*os.File, error) {
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyW.Close()
	exitR, exitW, err := os.Pipe()
	if err != nil {
		readyR.Close()
		return nil, err
	}
	defer exitR.Close()
	args := []string{
		"--configure",
		"--mtu=" + strconv.Itoa(m.cfg.MTU),
		"--ready-fd=3",
		"--exit-fd=4",
		"--api-socket=" + filepath.Join(m.cfg.StateDir, "slirp-api.sock"),
		"--enable-seccomp",
	}
	if !m.cfg.HostLoopback {
		args = append(args, "--disable-host-loopback")
	}
	args = append(args, strconv.Itoa(m.cfg.PID), "tap0")
	cmd := exec.Command(m.cfg.Slirp4netns, args...)
	cmd.ExtraFiles = []*os.File{readyW, exitR}
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	if err := cmd.Start(); err != nil {
		readyR.Close()
		exitW.Close()
		return nil, fmt.Errorf("starting slirp4netns: %w", err)
	}
	m.slirp, m.exitW = cmd, exitW
	m.slirpDone = make(chan struct{})
	go func() { _ = cmd.Wait(); close(m.slirpDone) }()
	return readyR, nil
}

func (m *monitor) waitSlirp(readyR *os.File) error {
	defer readyR.Close()
	got := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		_, err := io.ReadFull(readyR, b)
		got <- err
	}()
	select {
	case err := <-got:
		if err == nil {
			return nil
		}
		<-m.slirpDone
		return fmt.Errorf("slirp4netns %s exited before it was ready (%s); its output is in %s", m.slirp.Args[1:], m.slirp.ProcessState, filepath.Join(m.cfg.StateDir, "slirp.log"))
	case <-time.After(startTimeout):
		return fmt.Errorf("slirp4netns not ready after %s", startTimeout)
	}
}

// startBuiltin starts rootlesskit's builtin port driver: the parent half
// here, in the host's network namespace, and our child half in the
// container's network namespace (RunPortChild). The child must create its
// sockets in that namespace, which the container's user namespace owns;
// setns(CLONE_NEWUSER) is refused to a multi-threaded process, which every
// Go process is (setns(2)), so the child is a fresh process: nsenter enters
// the user and network namespaces and execs the sandy binary.
// --preserve-credentials keeps our uid, root inside, and skips setgroups,
// which the kernel denies once gid_map is written by an unprivileged user.
func (m *monitor) startBuiltin() (<-chan error, error) {
	d, err := builtinparent.NewDriver(os.Stderr, m.cfg.StateDir, false, "")
	if err != nil {
		return nil, fmt.Errorf("creating builtin port driver: %w", err)
	}
	m.driver = d
	op := d.OpaqueForChild()
	lifeR, lifeW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer lifeR.Close()
	cmd := exec.Command("nsenter", "-t", strconv.Itoa(m.cfg.PID), "-U", "-n", "--preserve-credentials", "--",
		m.cfg.Exe, PortChildCommand, "--socket="+op[opaque.SocketPath], "--ready-pipe="+op[opaque.ChildReadyPipePath])
	cmd.Stdin = lifeR
	cmd.Stdout, cmd.Stderr = os.Stderr, os.Stderr
	cmd.Env = []string{"PATH=" + os.Getenv("PATH")}
	if err := cmd.Start(); err != nil {
		lifeW.Close()
		return nil, fmt.Errorf("starting port child: %w", err)
	}
	m.child, m.lifeline = cmd, lifeW
	m.childDone = make(chan struct{})
	go func() { _ = cmd.Wait(); close(m.childDone) }()
	return m.runDriver(nil), nil
}

func (m *monitor) startSlirpDriver() (<-chan error, error) {
	d, err := slirpport.NewParentDriver(os.Stderr, filepath.Join(m.cfg.StateDir, "slirp-api.sock"))
	if err != nil {
		return nil, fmt.Errorf("creating slirp4netns port driver: %w", err)
	}
	m.driver = d
	return m.runDriver(&port.ChildContext{IP: net.ParseIP(ContainerIP), GatewayIP: net.ParseIP(GatewayIP)}), nil
}

// runDriver runs the parent driver until m.quit closes; the returned
// channel yields nil once it is ready, or its error.
func (m *monitor) runDriver(cctx *port.ChildContext) <-chan error {
	m.quit = make(chan struct{})
	initComplete := make(chan struct{}, 1)
	ready := make(chan error, 2)
	go func() {
		err := m.driver.RunParentDriver(initComplete, m.quit, cctx)
		if err != nil {
			ready <- err
		}
	}()
	go func() {
		select {
		case <-initComplete:
			ready <- nil
		case <-m.quit:
		}
	}()
	return ready
}

func (m *monitor) waitDriver(ready <-chan error) error {
	var childDone <-chan struct{}
	if m.child != nil {
		childDone = m.childDone
	}
	select {
	case err := <-ready:
		if err != nil {
			return fmt.Errorf("starting port driver %s: %w", m.cfg.Driver, err)
		}
		return nil
	case <-childDone:
		return fmt.Errorf("port child %s exited before it was ready (%s); its output is in %s", m.child.Args, m.child.ProcessState, filepath.Join(m.cfg.StateDir, "slirp.log"))
	case <-time.After(startTimeout):
		return fmt.Errorf("port driver %s not ready after %s", m.cfg.Driver, startTimeout)
	}
}

func (m *monitor) addPorts() error {
	ctx, cancel := context.WithTimeout(context.Background(), startTimeout)
	defer cancel()
	for _, p := range m.cfg.Ports {
		spec := port.Spec{
			Proto:      p.Proto,
			ParentIP:   p.HostIP,
			ParentPort: p.HostPort,
			ChildPort:  p.ContainerPort,
		}
		if ip := net.ParseIP(p.HostIP); ip != nil {
			if ip.To4() != nil {
				spec.Proto += "4"
			} else {
				spec.Proto += "6"
			}
		}
		if m.cfg.Driver == DriverBuiltin {
			// Dial the container's own loopback, where a server bound to
			// 0.0.0.0 or 127.0.0.1 both answer.
			spec.ChildIP = "127.0.0.1"
		}
		if _, err := m.driver.AddPort(ctx, spec); err != nil {
			return bindError(p, err)
		}
	}
	return nil
}

func (m *monitor) wait(sigs <-chan os.Signal) {
	exited := make(chan struct{})
	go func() {
		fds := []unix.PollFd{{Fd: int32(m.pidfd), Events: unix.POLLIN}}
		for {
			if _, err := unix.Poll(fds, -1); err != nil && errors.Is(err, unix.EINTR) {
				continue
			}
			close(exited)
			return
		}
	}()
	var childDone <-chan struct{}
	if m.child != nil {
		childDone = m.childDone
	}
	select {
	case <-m.stopReq:
		m.log.Info("stop requested")
	case s := <-sigs:
		m.log.Info("signal", "signal", s)
	case <-exited:
		m.log.Info("container process exited")
	case <-m.slirpDone:
		m.log.Error("slirp4netns exited", "status", m.slirp.ProcessState.String())
	case <-childDone:
		m.log.Error("port child exited", "status", m.child.ProcessState.String())
	}
}

// teardown ends the children and removes the state files. Closing the
// lifeline and the exit pipe ends them cleanly; SIGKILL after a grace period
// covers a child that hangs.
func (m *monitor) teardown() {
	if m.quit != nil {
		close(m.quit)
	}
	if m.control != nil {
		m.control.Close()
	}
	if m.lifeline != nil {
		m.lifeline.Close()
	}
	if m.exitW != nil {
		m.exitW.Close()
	}
	if m.child != nil {
		_ = m.child.Process.Signal(syscall.SIGTERM)
		reap(m.child, m.childDone)
	}
	if m.slirp != nil {
		reap(m.slirp, m.slirpDone)
	}
	if m.pidfd >= 0 {
		unix.Close(m.pidfd)
	}
	removeStateFiles(m.cfg.StateDir)
}

func reap(cmd *exec.Cmd, done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(2 * time.Second):
		_ = cmd.Process.Kill()
		<-done
	}
}
