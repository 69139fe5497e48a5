//go:build linux

package slirp

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// RunMonitor is the hidden MonitorCommand of the sandy binary; args are the
// arguments after the subcommand name. Launch starts it, in its own session
// with stdout and stderr on STATEDIR/slirp.log, as
//
//	/proc/self/fd/11 slirp-monitor --config=STATEDIR/slirp.json --report-fd=3
//	    --container-pidfd=4 --slirp-pidfd=5 --slirp-ready-fd=6 --slirp-exit-fd=7
//	    --child-pidfd=8 --child-lifeline-fd=9 --bind-notifier-fd=10
//
// where fd 11 is the sealed sandy binary (Options.Exe), so the monitor,
// which outlives the caller next to the container, runs from that copy.
//
// It owns the network: it holds the only write ends of slirp4netns' exit
// pipe and of the port child's stdin, so both end when it exits, however it
// exits. It runs the host half of the port driver (the listeners), writes
// one JSON report to the report fd once every port listens, then waits for
// the end: the container's process exiting, a "stop" on STATEDIR/monitor.sock
// (Stop), SIGTERM, SIGINT or SIGHUP, or slirp4netns or the port child dying.
// Then it ends slirp4netns and the port child, waits for them, removes its
// state files and returns; the caller exits, which closes the control
// connection that Stop waits on.
func RunMonitor(args []string) error {
	fs := flag.NewFlagSet(MonitorCommand, flag.ContinueOnError)
	cfgPath := fs.String("config", "", "monitor configuration written by slirp.Launch")
	reportFD := fs.Int("report-fd", -1, "fd to write the start-up report to")
	containerFD := fs.Int("container-pidfd", -1, "pidfd of the container's process")
	slirpFD := fs.Int("slirp-pidfd", -1, "pidfd of slirp4netns")
	slirpReadyFD := fs.Int("slirp-ready-fd", -1, "read end of slirp4netns' --ready-fd")
	slirpExitFD := fs.Int("slirp-exit-fd", -1, "write end of slirp4netns' --exit-fd")
	childFD := fs.Int("child-pidfd", -1, "pidfd of the port child (builtin driver)")
	lifelineFD := fs.Int("child-lifeline-fd", -1, "write end of the port child's stdin (builtin driver)")
	notifierFD := fs.Int("bind-notifier-fd", -1, "seccomp listener of the container's bind notifier (or /dev/null)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	for _, fd := range []*int{reportFD, containerFD, slirpFD, slirpReadyFD, slirpExitFD, childFD, lifelineFD, notifierFD} {
		if *fd < 3 {
			return errors.New("usage: slirp-monitor --config=PATH --report-fd=N --container-pidfd=N --slirp-pidfd=N --slirp-ready-fd=N --slirp-exit-fd=N --child-pidfd=N --child-lifeline-fd=N")
		}
		unix.CloseOnExec(*fd)
	}
	file := func(fd *int, name string) *os.File { return os.NewFile(uintptr(*fd), name) }
	m := &monitor{
		done:       make(chan struct{}),
		released:   make(chan struct{}),
		began:      time.Now(),
		container:  pidFile(*containerFD, "container-pidfd"),
		slirp:      pidFile(*slirpFD, "slirp-pidfd"),
		slirpReady: file(slirpReadyFD, "slirp-ready"),
		exitW:      file(slirpExitFD, "slirp-exit"),
		child:      pidFile(*childFD, "child-pidfd"),
		lifeline:   file(lifelineFD, "child-lifeline"),
		notifier:   pidFile(*notifierFD, "bind-notifier"),
	}
	report := file(reportFD, "report")
	data, err := os.ReadFile(*cfgPath)
	if err == nil {
		err = json.Unmarshal(data, &m.cfg)
	}
	if err != nil {
		err = fmt.Errorf("reading monitor config: %w", err)
		m.teardown()
		sendReport(report, err)
		return err
	}
	signal.Ignore(unix.SIGPIPE)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, unix.SIGTERM, unix.SIGINT, unix.SIGHUP)
	m.run(os.Stderr, report, sigs)
	return m.startErr
}

// run is the monitor's life, in a monitor process (RunMonitor) or, with
// Options.InProcess, in a goroutine of the caller: start, report, wait for
// the end, tear down. logw receives the drivers' and the monitor's logs;
// sigs may be nil.
func (m *monitor) run(logw io.Writer, report *os.File, sigs <-chan os.Signal) {
	defer close(m.done)
	m.logw = logw
	m.log = slog.New(slog.NewTextHandler(logw, nil)).With("container", m.cfg.PID)
	if err := m.start(); err != nil {
		m.startErr = err
		m.teardown()
		sendReport(report, err)
		return
	}
	sendReport(report, nil)
	m.log.Info("network up", "driver", m.cfg.Driver, "ports", len(m.cfg.Ports), "mtu", m.cfg.MTU, "hostLoopback", m.cfg.HostLoopback,
		"slirpReady", m.slirpUp, "driverReady", m.driverUp, "portsReady", m.portsUp)
	m.wait(sigs)
	m.teardown()
}

func sendReport(w *os.File, err error) {
	var rep report
	if err != nil {
		rep = report{Error: err.Error(), Kind: kindOf(err)}
	}
	_ = json.NewEncoder(w).Encode(rep)
	w.Close()
}

// monitor owns one container's network.
type monitor struct {
	cfg monitorConfig
	log *slog.Logger

	container  *os.File // pidfd
	slirp      *os.File // pidfd
	slirpReady *os.File
	exitW      *os.File // slirp4netns --exit-fd: slirp4netns exits when this closes
	child      *os.File // pidfd, /dev/null without a port child
	lifeline   *os.File // the port child's stdin: it exits on EOF
	notifier   *os.File // seccomp listener of the bind bypass, or /dev/null or nil

	control   net.Listener
	stopReq   chan struct{}
	abort     chan struct{} // closed by the in-process owner to end the network
	abortOnce sync.Once
	stopMu    sync.Mutex
	stoppers  []net.Conn // Stop's connections, closed once torn down
	tornDown  bool

	logw     io.Writer
	done     chan struct{} // closed when run returns
	released chan struct{} // closed by teardown once the ports, sockets and pipes are closed
	// abandoned (under stopMu): Abandon took over; teardown no longer
	// waits for slirp4netns and the port child, and leaves the state
	// files, which may be another container's by now, alone.
	abandoned bool
	startErr  error

	driver portDriver
	stops  []func() // one per forward added, run by removePorts
	// sockDir is the state directory as the port drivers dial their
	// sockets in it (socketDir); releaseDir closes its handle.
	sockDir    string
	releaseDir func()

	// start-up timings, logged once the network is up
	began                      time.Time
	slirpUp, driverUp, portsUp time.Duration
}

func (m *monitor) hasChild() bool {
	return hasPortChild(m.cfg.Driver, forwarded(m.cfg.Ports, m.cfg.Bypass))
}

func (m *monitor) start() error {
	if err := m.listenControl(); err != nil {
		return err
	}
	slirpDied, childDied := exited(m.slirp), exited(m.child)
	if !m.hasChild() {
		childDied = nil
	}
	var driverReady <-chan error
	var err error
	if m.sockDir, m.releaseDir, err = socketDir(m.cfg.StateDir, "slirp-api.sock"); err != nil {
		return fmt.Errorf("opening the state directory: %w", err)
	}
	if m.hasChild() {
		// The builtin driver does not need slirp4netns: start it now.
		d, err := newBuiltinDriver(m.logw, m.sockDir)
		if err != nil {
			return fmt.Errorf("creating builtin port driver: %w", err)
		}
		m.driver = d
		driverReady = waitDriver(d.waitChild)
	}
	if err := m.waitSlirp(slirpDied); err != nil {
		return err
	}
	m.slirpUp = time.Since(m.began)
	if m.cfg.Bypass {
		b := &bypass{listener: m.notifier, ports: m.cfg.Ports, log: m.log}
		go b.serve()
	}
	if len(forwarded(m.cfg.Ports, m.cfg.Bypass)) == 0 {
		m.driverUp, m.portsUp = m.slirpUp, m.slirpUp
		return nil
	}
	if !m.hasChild() {
		// slirp4netns serves its API once it is ready.
		m.driver = &slirpDriver{apiSocket: filepath.Join(m.sockDir, "slirp-api.sock"), childIP: ContainerIP}
		driverReady = waitDriver(func() error { return nil })
	}
	select {
	case err := <-driverReady:
		if err != nil {
			return fmt.Errorf("starting port driver %s: %w", m.cfg.Driver, err)
		}
	case <-childDied:
		return fmt.Errorf("port child exited before it was ready%s", logTail(filepath.Join(m.cfg.StateDir, "slirp.log")))
	case <-time.After(startTimeout):
		return fmt.Errorf("port driver %s not ready after %s", m.cfg.Driver, startTimeout)
	}
	m.driverUp = time.Since(m.began)
	err = m.addPorts()
	m.portsUp = time.Since(m.began)
	return err
}

// pidFile makes an *os.File of a pidfd that the runtime poller watches:
// the fd must be non-blocking before os.NewFile sees it.
func pidFile(fd int, name string) *os.File {
	_ = unix.SetNonblock(fd, true)
	return os.NewFile(uintptr(fd), name)
}

// exited returns a channel closed when the process of pidfd exits; a pidfd
// becomes readable then (pidfd_open(2)). It works for processes that are
// not our children, as slirp4netns and the port child are not. The wait
// goes through the runtime poller, so closing pidfd ends it (without
// closing the channel) and no thread stays blocked in poll(2) on an fd
// number that may be reused: that matters when the monitor runs inside a
// long-lived caller (Options.InProcess).
func exited(pidfd *os.File) <-chan struct{} {
	ch := make(chan struct{})
	rc, err := pidfd.SyscallConn()
	if err != nil {
		return ch
	}
	go func() {
		err := rc.Read(func(fd uintptr) bool {
			n, err := unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 0)
			return n > 0 || (err != nil && !errors.Is(err, unix.EINTR))
		})
		if err == nil {
			close(ch)
		}
	}()
	return ch
}

// signal sends sig to pidfd's process.
func signalPidfd(pidfd *os.File, sig unix.Signal) {
	if rc, err := pidfd.SyscallConn(); err == nil {
		_ = rc.Control(func(fd uintptr) { _ = unix.PidfdSendSignal(int(fd), sig, nil, 0) })
	}
}

func (m *monitor) listenControl() error {
	_ = os.Remove(filepath.Join(m.cfg.StateDir, "monitor.sock"))
	path, done, err := sockPath(m.cfg.StateDir, "monitor.sock")
	if err != nil {
		return fmt.Errorf("listening for stop requests: %w", err)
	}
	l, err := net.Listen("unix", path)
	done()
	if err != nil {
		return fmt.Errorf("listening for stop requests: %w", err)
	}
	if ul, ok := l.(*net.UnixListener); ok && path != filepath.Join(m.cfg.StateDir, "monitor.sock") {
		// The fd path means nothing once done closed it (or names another
		// directory when the fd number is reused): the state files are
		// removed by path at teardown (removeStateFiles).
		ul.SetUnlinkOnClose(false)
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
				_ = c.SetReadDeadline(time.Time{})
				// c stays open until teardown has ended everything (or
				// the process has exited): Stop waits for that EOF.
				m.stopMu.Lock()
				if m.tornDown {
					m.stopMu.Unlock()
					c.Close()
					return
				}
				m.stoppers = append(m.stoppers, c)
				m.stopMu.Unlock()
				select {
				case m.stopReq <- struct{}{}:
				default: // a stop is already under way
				}
			}()
		}
	}()
	return nil
}

func (m *monitor) waitSlirp(died <-chan struct{}) error {
	got := make(chan error, 1)
	go func() {
		b := make([]byte, 1)
		_, err := io.ReadFull(m.slirpReady, b)
		got <- err
	}()
	select {
	case err := <-got:
		if err == nil {
			return nil
		}
		return fmt.Errorf("slirp4netns exited before it was ready%s", logTail(filepath.Join(m.cfg.StateDir, "slirp.log")))
	case <-died:
		return fmt.Errorf("slirp4netns exited before it was ready%s", logTail(filepath.Join(m.cfg.StateDir, "slirp.log")))
	case <-time.After(startTimeout):
		return fmt.Errorf("slirp4netns not ready after %s", startTimeout)
	}
}

// waitDriver runs a driver's wait for readiness on a goroutine; the
// returned channel yields its result. With the builtin driver that is the
// port child's ready fifo, which the child opens only once it listens on
// STATEDIR/.bp.sock (RunPortChild); a child that dies first is caught by
// start's select on its pidfd.
func waitDriver(wait func() error) <-chan error {
	ready := make(chan error, 1)
	go func() { ready <- wait() }()
	return ready
}

func (m *monitor) addPorts() error {
	for _, p := range m.cfg.Ports {
		spec := forwardSpec{
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
		if m.cfg.Bypass && p.Proto == "tcp" {
			continue // the container's own socket will be a host socket
		}
		if m.hasChild() {
			// Dial the container's own loopback, where a server bound to
			// 0.0.0.0 or 127.0.0.1 answers; the slirp4netns driver dials
			// 10.0.2.100.
			spec.ChildIP = "127.0.0.1"
		}
		stop, err := m.driver.add(spec)
		if err != nil {
			return bindError(p, err)
		}
		m.stops = append(m.stops, stop)
	}
	return nil
}

func (m *monitor) wait(sigs <-chan os.Signal) {
	var childDied <-chan struct{}
	if m.hasChild() {
		childDied = exited(m.child)
	}
	select {
	case <-m.stopReq:
		m.log.Info("stop requested")
	case <-m.abort:
		m.log.Info("closed by its owner")
	case s := <-sigs:
		m.log.Info("signal", "signal", s)
	case <-exited(m.container):
		m.log.Info("container process exited")
	case <-exited(m.slirp):
		m.log.Error("slirp4netns exited")
	case <-childDied:
		m.log.Error("port child exited")
	}
}

// teardown ends slirp4netns and the port child and removes the state files.
// Closing the exit pipe and the lifeline ends them cleanly; SIGKILL through
// their pidfds after a grace period covers one that hangs.
func (m *monitor) teardown() {
	m.removePorts()
	if m.control != nil {
		m.control.Close()
	}
	m.lifeline.Close()
	m.exitW.Close()
	if m.hasChild() {
		signalPidfd(m.child, unix.SIGTERM)
	}
	close(m.released)
	m.stopMu.Lock()
	wait := !m.abandoned
	m.stopMu.Unlock()
	if wait {
		if m.hasChild() {
			endProcess(m.child)
		}
		endProcess(m.slirp)
	}
	for _, f := range []*os.File{m.container, m.slirp, m.slirpReady, m.child, m.notifier} {
		f.Close()
	}
	if m.releaseDir != nil {
		m.releaseDir()
	}
	m.stopMu.Lock()
	if !m.abandoned {
		removeStateFiles(m.cfg.StateDir)
	}
	m.tornDown = true
	for _, c := range m.stoppers {
		c.Close()
	}
	m.stoppers = nil
	m.stopMu.Unlock()
}

// keepPidfds duplicates the pidfds of slirp4netns and, if there is one,
// the port child, for Abandon's caller: teardown closes its own.
func (m *monitor) keepPidfds() []*os.File {
	procs := []*os.File{m.slirp}
	if m.hasChild() {
		procs = append(procs, m.child)
	}
	var out []*os.File
	for _, p := range procs {
		rc, err := p.SyscallConn()
		if err != nil {
			continue
		}
		_ = rc.Control(func(fd uintptr) {
			if nfd, err := unix.FcntlInt(fd, unix.F_DUPFD_CLOEXEC, 0); err == nil {
				out = append(out, pidFile(nfd, p.Name()))
			}
		})
	}
	return out
}

// closeAbort ends an in-process network; once only.
func (m *monitor) closeAbort() {
	m.abortOnce.Do(func() { close(m.abort) })
}

// removePorts closes every host listener before the monitor exits. Exit
// alone would close them too, but not before Stop's connection sees EOF:
// the kernel closes a process' fds one by one as its last thread exits, so
// a `delete` followed at once by a `run -p` of the same port could find it
// still taken. With the slirp4netns driver the removals are API calls.
func (m *monitor) removePorts() {
	for _, stop := range m.stops {
		stop()
	}
	m.stops = nil
}

// endProcess waits up to two seconds for pidfd's process to exit, then
// kills it and waits for that.
func endProcess(pidfd *os.File) {
	select {
	case <-exited(pidfd):
	case <-time.After(2 * time.Second):
		signalPidfd(pidfd, unix.SIGKILL)
		<-exited(pidfd)
	}
}

// logTail is the end of the network's log for an error: the run that
// fails removes the state directory, the log with it, so naming the file
// would send the user to nothing.
func logTail(path string) string {
	data, err := os.ReadFile(path)
	if err != nil {
		return fmt.Sprintf(" (its log %s: %v)", path, err)
	}
	lines := strings.Split(strings.TrimSpace(string(data)), "\n")
	if len(lines) > 5 {
		lines = lines[len(lines)-5:]
	}
	if len(lines) == 1 && lines[0] == "" {
		return " (its log is empty)"
	}
	return ": " + strings.Join(lines, " | ")
}
