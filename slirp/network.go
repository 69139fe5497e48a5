//go:build linux

package slirp

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
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

// Hidden subcommands of the sandy binary (see RunMonitor and RunPortChild).
const (
	MonitorCommand   = "slirp-monitor"
	PortChildCommand = "slirp-port-child"
)

// startTimeout bounds each wait of the start-up (the monitor's report,
// slirp4netns' ready fd, the port child's handshake) when ctx has none.
const startTimeout = 10 * time.Second

// Network is a slirp4netns network with its port forwards. Its processes
// are started by Launch in the caller and owned, from the start, by a
// monitor process (see RunMonitor) that outlives the caller.
type Network struct {
	stateDir string
	monitor  *proc
	slirp    *proc
	child    *proc    // nil without a port child
	owner    *monitor // with Options.InProcess, instead of monitor
	report   *os.File

	readyOnce sync.Once
	readyErr  error
	closeOnce sync.Once
	closeErr  error
}

// proc is a started child process, reaped as soon as it exits.
type proc struct {
	cmd  *exec.Cmd
	done chan struct{}
}

func startProc(cmd *exec.Cmd) (*proc, *os.File, error) {
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	// The pidfd is taken before anything can reap the process, so it
	// names this process and no later one with a reused pid.
	fd, err := unix.PidfdOpen(cmd.Process.Pid, 0)
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	if err != nil {
		_ = cmd.Process.Kill()
		<-p.done
		return nil, nil, fmt.Errorf("pidfd_open(%d): %w", cmd.Process.Pid, err)
	}
	return p, pidFile(fd, "pidfd"), nil
}

// waitGone waits for p's exit, killing it after grace.
func (p *proc) waitGone(grace time.Duration) {
	if p == nil {
		return
	}
	select {
	case <-p.done:
	case <-time.After(grace):
		_ = p.cmd.Process.Kill()
		<-p.done
	}
}

// monitorConfig is what Start hands the monitor in StateDir/slirp.json.
type monitorConfig struct {
	PID          int        `json:"pid"`
	MTU          int        `json:"mtu"`
	HostLoopback bool       `json:"hostLoopback"`
	Ports        []PortSpec `json:"ports"`
	Driver       string     `json:"driver"`
	StateDir     string     `json:"stateDir"`
	Bypass       bool       `json:"bypass,omitempty"` // a bind notifier came with fd 10
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

// Start gives the network namespace of o.PID a slirp4netns network and
// forwards o.Ports into it: Launch, then Ready. It returns once slirp4netns
// has configured tap0 and every host port is listening; on error nothing is
// left running.
func Start(ctx context.Context, o Options) (*Network, error) {
	n, err := Launch(ctx, o)
	if err != nil {
		return nil, err
	}
	if err := n.Ready(ctx); err != nil {
		return nil, err
	}
	return n, nil
}

// Launch checks o, then starts the network's three processes at once and
// returns without waiting for them; Ready waits. The lifecycle calls it as
// soon as the container's maps are written and calls Ready just before the
// container's process may run, so that the network comes up while the init
// sets up the root filesystem.
//
// It runs on the host side and starts, in parallel:
//
//   - slirp4netns --configure --mtu --ready-fd --exit-fd --api-socket
//     [--disable-host-loopback] PID tap0 (see slirpArgs);
//   - with the builtin driver, the port child inside the container's user and
//     network namespaces: nsenter -t PID -n [-U --preserve-credentials] --
//     (by Options.NetNS and UserNS where set: --net=/proc/self/fd/4
//     [--user=/proc/self/fd/5 --preserve-credentials] --)
//     /proc/self/fd/3 slirp-port-child (see RunPortChild);
//   - the monitor, /proc/self/fd/11 slirp-monitor, in its own session (see
//     RunMonitor).
//
// Both run o.Exe, the sealed binary handle, passed as an fd and exec'd by
// its /proc/self/fd path (exeFDPath), never a path on disk: Launch refuses
// a handle the caller could write (checkExe), and the builtin driver when
// the container shares the caller's pid namespace (checkPidNamespace).
//
// From the start, the monitor holds the only write ends of slirp4netns'
// exit pipe and the port child's lifeline pipe: whenever the monitor exits,
// kill -9 included, both follow. Starting the three at once instead of
// letting the monitor start the other two takes one process start-up (a
// few ms to tens of ms on a loaded machine) off the critical path.
//
// Host ports are checked first (privileged, in use), so those errors cost
// no process start.
func Launch(ctx context.Context, o Options) (*Network, error) {
	o, err := o.withDefaults()
	if err != nil {
		return nil, err
	}
	if !o.InProcess || hasPortChild(o.Driver, forwarded(o.Ports, o.BindNotifier != nil)) {
		if err := checkExe(o.Exe); err != nil {
			return nil, err
		}
	}
	if (o.NetNS == nil) != (o.UserNS == nil) || o.PidNS != nil && o.NetNS == nil {
		return nil, errors.New("the network namespace's handle and its user namespace's go together (and the pid namespace's with them)")
	}
	if err := Check(); err != nil {
		return nil, err
	}
	if hasPortChild(o.Driver, forwarded(o.Ports, o.BindNotifier != nil)) {
		if _, err := exec.LookPath("nsenter"); err != nil {
			return nil, fmt.Errorf("%w: the builtin port driver needs nsenter, which is not in PATH (apt-get install util-linux, or use port_handler=slirp4netns)", ErrUnavailable)
		}
		if o.NetNS != nil && o.PidNS == nil {
			return nil, errors.New("the builtin port driver needs the pid namespace's handle with the network's")
		}
		if err := checkPidNamespaceOf(o.namespaces()); err != nil {
			return nil, err
		}
	}
	if err := preflightPorts(o.Ports); err != nil {
		return nil, err
	}
	if err := os.MkdirAll(o.StateDir, 0o700); err != nil {
		return nil, err
	}
	removeStateFiles(o.StateDir)
	n, err := launch(o)
	if err != nil {
		removeStateFiles(o.StateDir)
		return nil, err
	}
	return n, nil
}

// launch starts the processes. Every fd it opens is closed when it returns,
// except the read end of the report pipe, kept in n.report; on error the
// closes alone end whatever was started (exit pipe, lifeline).
func launch(o Options) (n *Network, err error) {
	var files closers
	defer files.close()
	pipe := func() (r, w *os.File) {
		if err != nil {
			return nil, nil
		}
		r, w, err = os.Pipe()
		files = append(files, r, w)
		return r, w
	}
	containerFD, err := unix.PidfdOpen(o.PID, unix.PIDFD_NONBLOCK)
	if err != nil {
		return nil, fmt.Errorf("container process %d: pidfd_open: %w", o.PID, err)
	}
	containerPidfd := pidFile(containerFD, "container-pidfd")
	files = append(files, containerPidfd)
	reportR, reportW := pipe()
	slirpReadyR, slirpReadyW := pipe()
	exitR, exitW := pipe()
	lifeR, lifeW := pipe()
	if err != nil {
		return nil, err
	}
	logf, err := os.OpenFile(filepath.Join(o.StateDir, "slirp.log"), os.O_WRONLY|os.O_CREATE|os.O_APPEND|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, err
	}
	files = append(files, logf)
	// The three get PATH only, run from "/" (a long-lived process must not
	// pin the caller's working directory, or its mount) and each in its own
	// session (a ^C meant for a foreground container must not end its
	// network before the container has handled it).
	env := []string{"PATH=" + os.Getenv("PATH")}
	session := &syscall.SysProcAttr{Setsid: true}

	// slirp4netns names its API socket through a handle on the state
	// directory (slirpArgs), so its unlink at exit stays in this directory
	// after a rename (the lifecycle's hand-off to a reaper).
	stateDirFD, err := os.OpenFile(o.StateDir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening the state directory: %w", err)
	}
	files = append(files, stateDirFD)
	slirpPath, _ := exec.LookPath("slirp4netns")
	slirpCmd := exec.Command(slirpPath, slirpArgs(o)...)
	slirpCmd.ExtraFiles = []*os.File{slirpReadyW, exitR, stateDirFD} // fds 3, 4, 5
	if o.NetNS != nil {
		slirpCmd.ExtraFiles = append(slirpCmd.ExtraFiles, o.NetNS, o.UserNS) // fds 6, 7 (slirpArgs)
	}
	slirpCmd.Stdout, slirpCmd.Stderr = logf, logf
	slirpCmd.Env, slirpCmd.SysProcAttr, slirpCmd.Dir = env, session, "/"
	slirp, slirpPidfd, err := startProc(slirpCmd)
	if err != nil {
		return nil, fmt.Errorf("starting slirp4netns: %w", err)
	}
	files = append(files, slirpPidfd)
	n = &Network{stateDir: o.StateDir, slirp: slirp}
	defer func() {
		if err != nil {
			n.reapAll()
			n = nil
		}
	}()

	childPidfd, err := devNull(&files)
	if err != nil {
		return nil, err
	}
	notifier, err := devNull(&files)
	if err != nil {
		return nil, err
	}
	if o.BindNotifier != nil {
		fd, err := unix.FcntlInt(o.BindNotifier.Fd(), unix.F_DUPFD_CLOEXEC, 0)
		if err != nil {
			return nil, fmt.Errorf("duplicating the bind notifier: %w", err)
		}
		notifier = pidFile(fd, "bind-notifier")
		files = append(files, notifier)
	}
	if hasPortChild(o.Driver, forwarded(o.Ports, o.BindNotifier != nil)) {
		ownUser, err := sharesUserNS(o.namespaces())
		if err != nil {
			return nil, fmt.Errorf("starting port child: %w", err)
		}
		childCmd := exec.Command("nsenter", append(portChildNsenterArgs(o.PID, ownUser, o.NetNS != nil),
			append([]string{exeFDPath(0), PortChildCommand}, portChildArgs(o.StateDir)...)...)...)
		childCmd.ExtraFiles = []*os.File{o.Exe} // exeFDPath(0)
		if o.NetNS != nil {
			childCmd.ExtraFiles = append(childCmd.ExtraFiles, o.NetNS, o.UserNS) // exeFDPath(1), (2)
		}
		childCmd.Stdin = lifeR
		childCmd.Stdout, childCmd.Stderr = logf, logf
		childCmd.Env, childCmd.SysProcAttr, childCmd.Dir = env, session, "/"
		n.child, childPidfd, err = startProc(childCmd)
		if err != nil {
			return nil, fmt.Errorf("starting port child: %w", err)
		}
		files = append(files, childPidfd)
	}

	cfgPath := filepath.Join(o.StateDir, "slirp.json")
	if err = writeJSON(cfgPath, monitorConfig{
		PID: o.PID, MTU: o.MTU, HostLoopback: o.HostLoopback, Ports: o.Ports,
		Driver: o.Driver, StateDir: o.StateDir, Bypass: o.BindNotifier != nil,
	}); err != nil {
		return nil, err
	}
	if o.InProcess {
		n.owner = &monitor{
			cfg: monitorConfig{
				PID: o.PID, MTU: o.MTU, HostLoopback: o.HostLoopback, Ports: o.Ports,
				Driver: o.Driver, StateDir: o.StateDir, Bypass: o.BindNotifier != nil,
			},
			done: make(chan struct{}), abort: make(chan struct{}), released: make(chan struct{}), began: time.Now(),
			container: containerPidfd, slirp: slirpPidfd, slirpReady: slirpReadyR,
			exitW: exitW, child: childPidfd, lifeline: lifeW,
		}
		if o.BindNotifier != nil {
			n.owner.notifier = notifier
			files.remove(notifier)
		}
		for _, f := range []*os.File{containerPidfd, slirpPidfd, slirpReadyR, exitW, childPidfd, lifeW, reportW, reportR, logf} {
			files.remove(f) // the owner closes them, reportR is n.report, logf stays open for the logs
		}
		n.report = reportR
		go func() {
			defer logf.Close()
			n.owner.run(logf, reportW, nil)
		}()
		return n, nil
	}
	monFiles := []*os.File{reportW, containerPidfd, slirpPidfd, slirpReadyR, exitW, childPidfd, lifeW, notifier, o.Exe}
	monCmd := exec.Command(exeFDPath(len(monFiles)-1), MonitorCommand, "--config="+cfgPath,
		"--report-fd=3", "--container-pidfd=4", "--slirp-pidfd=5", "--slirp-ready-fd=6", "--slirp-exit-fd=7",
		"--child-pidfd=8", "--child-lifeline-fd=9", "--bind-notifier-fd=10")
	monCmd.ExtraFiles = monFiles
	monCmd.Stdout, monCmd.Stderr = logf, logf
	monCmd.Env, monCmd.SysProcAttr, monCmd.Dir = env, session, "/"
	if n.monitor, _, err = startProcNoPidfd(monCmd); err != nil {
		return nil, fmt.Errorf("starting network monitor %s: %w", o.Exe.Name(), err)
	}
	// Keep reportR open past the deferred close.
	files.remove(reportR)
	n.report = reportR
	return n, nil
}

// exeFDPath is the path a child execs Options.Exe by, when the handle is
// its ExtraFiles[i]: /proc/self/fd/N, resolved by execve(2) in the child
// after the fds are in place, so no path of the binary on disk is ever
// exec'd. nsenter resolves it too, after setns(2) into the container's user
// and network namespaces: it joins neither the mount nor the pid namespace,
// so /proc is still the host's and /proc/self still names nsenter. The fd
// stays open in the child, a handle on the binary it already runs (no more
// access than its own /proc/self/exe).
func exeFDPath(i int) string { return fmt.Sprintf("/proc/self/fd/%d", 3+i) }

func startProcNoPidfd(cmd *exec.Cmd) (*proc, *os.File, error) {
	if err := cmd.Start(); err != nil {
		return nil, nil, err
	}
	p := &proc{cmd: cmd, done: make(chan struct{})}
	go func() { _ = cmd.Wait(); close(p.done) }()
	return p, nil, nil
}

// hasPortChild reports whether the network needs a port child: only the
// builtin driver has one, and only forwards need it.
func hasPortChild(driver string, ports []PortSpec) bool {
	return driver == DriverBuiltin && len(ports) > 0
}

// forwarded are the ports that need a forwarder: with the bind bypass,
// TCP ports need none.
func forwarded(ports []PortSpec, bypass bool) []PortSpec {
	if !bypass {
		return ports
	}
	var out []PortSpec
	for _, p := range ports {
		if p.Proto != "tcp" {
			out = append(out, p)
		}
	}
	return out
}

// slirpArgs is slirp4netns' command line, in slirp4netns(1) terms:
//
//   - --configure: slirp4netns itself brings up lo and tap0 with
//     10.0.2.100/24 and the default route via 10.0.2.2, so neither ip(8) nor
//     nsenter is needed for the link.
//   - --mtu: 65520 by default; a larger MTU means fewer packets through
//     libslirp, several times the throughput of 1500.
//   - --ready-fd=3: it writes "1" once tap0 is configured. The monitor waits
//     for that before it reports ready, and the container's process does not
//     run before that.
//   - --exit-fd=4: it exits when the other end of this pipe closes. The
//     monitor holds the only write end, so slirp4netns ends with the monitor
//     whatever ends it, kill -9 included.
//   - --api-socket: the slirp4netns port driver adds forwards through it.
//     It is named through fd 5, a handle on StateDir, not by StateDir's
//     path: slirp4netns unlinks the socket by that name when it exits,
//     which may be after the caller has renamed the directory and a new
//     container of the same id has made its own socket at the old path
//     (the lifecycle hands a finished container's teardown to a reaper).
//   - --disable-host-loopback, unless o.HostLoopback: 10.0.2.2 does not
//     reach the host's 127.0.0.1.
//   - --enable-seccomp: slirp4netns parses the container's packets; a
//     filter limits what a bug there can do.
//
// slirp4netns joins the network namespace of PID through the user namespace
// that owns it: the caller, as that namespace's owner, may (user_namespaces(7)).
func slirpArgs(o Options) []string {
	args := []string{
		"--configure",
		"--mtu=" + strconv.Itoa(o.MTU),
		"--ready-fd=3",
		"--exit-fd=4",
		"--api-socket=/proc/self/fd/5/slirp-api.sock",
		"--enable-seccomp",
	}
	if !o.HostLoopback {
		args = append(args, "--disable-host-loopback")
	}
	if o.NetNS != nil {
		// The handles at fds 6 and 7 (launch), named in slirp4netns's
		// own /proc.
		return append(args, "--netns-type=path", "--userns-path=/proc/self/fd/7", "/proc/self/fd/6", "tap0")
	}
	return append(args, strconv.Itoa(o.PID), "tap0")
}

// portChildArgs are the flags of PortChildCommand: the socket and fifo
// paths that rootlesskit's builtin parent driver uses in stateDir.
func portChildArgs(stateDir string) []string {
	return []string{
		"--socket=" + filepath.Join(stateDir, ".bp.sock"),
		"--ready-pipe=" + filepath.Join(stateDir, ".bp-ready.pipe"),
	}
}

// Ready waits until the network is up: slirp4netns has configured tap0,
// the port driver runs and every host port listens. On error, or when ctx
// ends first, it ends every process of the network before it returns.
// Later calls return the first result.
func (n *Network) Ready(ctx context.Context) error {
	n.readyOnce.Do(func() {
		n.readyErr = n.waitReport(ctx)
		n.report.Close()
		if n.readyErr != nil {
			n.reapAll()
			removeStateFiles(n.stateDir)
		}
	})
	return n.readyErr
}

func (n *Network) waitReport(ctx context.Context) error {
	if _, ok := ctx.Deadline(); !ok {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, startTimeout)
		defer cancel()
	}
	got := make(chan error, 1)
	go func() { got <- readReport(n.report) }()
	select {
	case err := <-got:
		if errors.Is(err, io.ErrUnexpectedEOF) && n.monitor != nil {
			<-n.monitor.done
			return fmt.Errorf("monitor %s exited without a report (%s); see %s",
				n.monitor.cmd.Path, n.monitor.cmd.ProcessState, filepath.Join(n.stateDir, "slirp.log"))
		}
		return err
	case <-ctx.Done():
		return fmt.Errorf("waiting for the monitor: %w", ctx.Err())
	}
}

// reapAll kills the network's processes and waits for them: a failed or
// abandoned start-up, where there is nothing to end cleanly.
func (n *Network) reapAll() {
	for _, p := range []*proc{n.monitor, n.child, n.slirp} {
		if p != nil {
			_ = p.cmd.Process.Kill()
			<-p.done
		}
	}
	if n.owner != nil {
		n.owner.closeAbort()
		<-n.owner.done
	}
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
// forwarders: the caller's own with Options.InProcess.
func (n *Network) MonitorPID() int {
	if n.owner != nil {
		return os.Getpid()
	}
	return n.monitor.cmd.Process.Pid
}

// Close ends the forwarders and slirp4netns and waits for them and the
// monitor to exit. It is idempotent and safe after the network has ended on
// its own (the container exited).
func (n *Network) Close() error {
	n.closeOnce.Do(func() {
		// Closed before Ready succeeded (the container failed to start):
		// there is nothing to end cleanly.
		n.readyOnce.Do(func() {
			n.readyErr = errors.New("closed before it was ready")
			n.report.Close()
		})
		if n.readyErr != nil {
			n.reapAll()
			removeStateFiles(n.stateDir)
			return
		}
		if n.owner != nil {
			n.owner.closeAbort()
			<-n.owner.done
		} else {
			n.closeErr = Stop(n.stateDir)
		}
		n.monitor.waitGone(5 * time.Second)
		n.child.waitGone(2 * time.Second)
		n.slirp.waitGone(2 * time.Second)
		removeStateFiles(n.stateDir)
	})
	return n.closeErr
}

// Abandon ends a network owned in-process (Options.InProcess) without
// waiting for its processes to exit: it closes the host ports and the
// control socket and removes the state files before it returns, so the
// ports and the state directory are free at once; slirp4netns and the port
// child are told to exit (their exit pipe and lifeline close, the port
// child gets SIGTERM) and exit on their own within milliseconds, also
// if the caller exits first. It returns pidfds (close-on-exec) of those
// processes, for a reaper to wait on with EndProcesses; the caller owns
// them. A network owned by a monitor process, or one never ready, is
// closed as Close does and nothing is returned.
func (n *Network) Abandon() ([]*os.File, error) {
	if n.owner == nil {
		return nil, n.Close()
	}
	var pidfds []*os.File
	n.closeOnce.Do(func() {
		n.readyOnce.Do(func() {
			n.readyErr = errors.New("closed before it was ready")
			n.report.Close()
		})
		if n.readyErr != nil {
			n.reapAll()
			removeStateFiles(n.stateDir)
			return
		}
		// The owner may be tearing down already (the container's process
		// exited): then it waits for the processes in the background, and
		// this returns all the same.
		pidfds = n.owner.keepPidfds()
		n.owner.closeAbort()
		<-n.owner.released
		n.owner.stopMu.Lock()
		n.owner.abandoned = true
		removeStateFiles(n.stateDir)
		n.owner.stopMu.Unlock()
	})
	return pidfds, nil
}

// EndProcesses waits for the processes of pidfds (Abandon's) to exit,
// killing each one that is still there after a grace of two seconds, and
// closes the pidfds.
func EndProcesses(pidfds []*os.File) {
	for _, p := range pidfds {
		endProcess(p)
		p.Close()
	}
}

// KillProcesses ends the processes of pidfds (Abandon's) at once with
// SIGKILL, without waiting for them, and closes the pidfds: for a caller
// that has nothing left for them to do (its container's process has
// exited, Abandon closed the host ports and removed the state files) and
// would rather not wait EndProcesses' grace. A signal through a pidfd
// reaches that process or none (no reused pid); the kernel finishes the
// exit, and their parent's end hands them to its reaper.
func KillProcesses(pidfds []*os.File) {
	for _, p := range pidfds {
		signalPidfd(p, unix.SIGKILL)
		p.Close()
	}
}

// closers closes its files once.
type closers []*os.File

func (c *closers) close() {
	for _, f := range *c {
		if f != nil {
			f.Close()
		}
	}
	*c = nil
}

func (c *closers) remove(f *os.File) {
	for i, g := range *c {
		if g == f {
			(*c)[i] = nil
		}
	}
}

// devNull opens /dev/null as a placeholder for an absent fd, so that the
// monitor's fd numbers stay fixed.
func devNull(files *closers) (*os.File, error) {
	f, err := os.Open(os.DevNull)
	if err != nil {
		return nil, err
	}
	*files = append(*files, f)
	return f, nil
}

// Stop ends the network whose state is in stateDir, from any process (the
// `delete` of a detached container): it asks the monitor over its control
// socket and returns once the monitor, slirp4netns and the port child are
// gone. A monitor that is already gone is not an error.
func Stop(stateDir string) error {
	sock, done, err := sockPath(stateDir, "monitor.sock")
	if err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stopping network: %w", err)
	}
	c, err := net.DialTimeout("unix", sock, 2*time.Second)
	done()
	if err != nil {
		if errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ECONNREFUSED) {
			removeStateFiles(stateDir)
			return nil
		}
		return fmt.Errorf("stopping network: %w", err)
	}
	defer c.Close()
	deadline := time.Now().Add(stopWait)
	_ = c.SetDeadline(deadline)
	if _, err := c.Write([]byte("stop\n")); err != nil {
		if errors.Is(err, unix.EPIPE) || errors.Is(err, unix.ECONNRESET) {
			return awaitTeardown(stateDir, deadline)
		}
		return fmt.Errorf("stopping network: %w", err)
	}
	// The monitor closes the connection by exiting, after its children.
	if _, err := io.Copy(io.Discard, c); err != nil {
		if errors.Is(err, unix.ECONNRESET) {
			return awaitTeardown(stateDir, deadline)
		}
		return fmt.Errorf("stopping network: waiting for the monitor: %w", err)
	}
	return nil
}

// stopWait bounds Stop's wait for the monitor's teardown.
var stopWait = 10 * time.Second

// awaitTeardown waits for the teardown of a monitor that reset Stop's
// connection: one tearing down already (its container exited: `delete
// --force` killed it just before) closes its listener with the
// connection not yet accepted, or exits with "stop" unread. Its teardown
// removes the state files last, once slirp4netns and the port child are
// gone: Stop returns then, as it would have on the monitor's EOF.
func awaitTeardown(stateDir string, deadline time.Time) error {
	for {
		if _, err := os.Lstat(filepath.Join(stateDir, "slirp.json")); errors.Is(err, fs.ErrNotExist) {
			return nil
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("stopping network: the monitor reset the connection and did not end its teardown within %v (its state: %s)", stopWait, stateDir)
		}
		time.Sleep(10 * time.Millisecond)
	}
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
	c, err := listen(p)
	if err != nil {
		return err
	}
	return c.Close()
}

// ListenFile binds p's host address for a process that serves it
// (sandy-net, --network=usernet): a listening TCP socket or a bound UDP
// one, as a file, or the error with the fix (bindError).
func ListenFile(p PortSpec) (*os.File, error) {
	c, err := listen(p)
	if err != nil {
		return nil, err
	}
	defer c.Close()
	return c.(interface{ File() (*os.File, error) }).File()
}

// listen binds p's host address: a *net.TCPListener or a *net.UDPConn,
// or the error with the fix (bindError).
func listen(p PortSpec) (io.Closer, error) {
	addr := net.JoinHostPort(p.HostIP, strconv.Itoa(p.HostPort))
	var c io.Closer
	var err error
	if p.Proto == "udp" {
		c, err = net.ListenPacket(p.Proto, addr)
	} else {
		c, err = net.Listen(p.Proto, addr)
	}
	if err != nil {
		return nil, bindError(p, err)
	}
	return c, nil
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
		return fmt.Errorf("%w: -p %s: host address %s is not on this host: %w", ErrBadPort, p, p.HostIP, err)
	}
	return fmt.Errorf("forwarding -p %s: %w", p, err)
}

func writeJSON(path string, v any) error {
	data, err := json.Marshal(v)
	if err != nil {
		return err
	}
	_ = os.Remove(path)
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return err
	}
	if _, err := f.Write(data); err != nil {
		f.Close()
		return err
	}
	return f.Close()
}

// stateFiles are the files of StateDir that belong to this package, all
// removed at teardown except slirp.log.
var stateFiles = []string{"slirp.json", "monitor.sock", "slirp-api.sock", ".bp.sock", ".bp-ready.pipe"}

func removeStateFiles(dir string) {
	for _, f := range stateFiles {
		_ = os.Remove(filepath.Join(dir, f))
	}
}

// portChildNsenterArgs are nsenter's options for the port child: the
// container's network namespace, and its user namespace unless it is
// sandy's own (a container of root without one): nsenter cannot enter
// the user namespace it is in (setns(2): EINVAL), so -U there failed
// every `-p` of such a container.
//
// byHandle: the namespaces are the ones of Options.NetNS and UserNS,
// passed to nsenter as its fds exeFDPath(1) and (2) (the raw init's, whose
// namespaces nobody may open by its pid).
func portChildNsenterArgs(pid int, sameUserNS, byHandle bool) []string {
	args := []string{"-t", strconv.Itoa(pid), "-n"}
	user := "-U"
	if byHandle {
		args, user = []string{"--net=" + exeFDPath(1)}, "--user="+exeFDPath(2)
	}
	if !sameUserNS {
		args = append(args, user, "--preserve-credentials")
	}
	return append(args, "--")
}

// namespaces names the container's namespaces for the checks: by the
// handles o has, else by o.PID.
func (o Options) namespaces() nsOf { return nsOf{pid: o.PID, pidNS: o.PidNS, user: o.UserNS} }

// sharesUserNS reports whether the container's user namespace (n's) is
// this process's.
func sharesUserNS(n nsOf) (bool, error) {
	var mine unix.Stat_t
	if err := unix.Stat("/proc/self/ns/user", &mine); err != nil {
		return false, err
	}
	theirs, err := n.stat("user")
	if err != nil {
		return false, fmt.Errorf("the container's user namespace: %w", err)
	}
	return mine.Dev == theirs.Dev && mine.Ino == theirs.Ino, nil
}
