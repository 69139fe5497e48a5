package containers

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/attach"
	"github.com/sandy-rt/sandy/internal/ctrlog"
	"github.com/sandy-rt/sandy/internal/fds"
	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/overlay"
)

// A detached container (`sandy run -d IMAGE`) is owned by its monitor,
// conmon's job: the same sandy binary, re-exec'd as `sandy _monitor DIR`
// in a session of its own, with stdin and stdout on /dev/null, stderr on
// DIR/monitor.log and, as its only other fd, fd 3: the readiness pipe.
// It reads its orders from DIR/monitor.json (what the runtime path needs:
// the bundle, the layers, the network, the cgroup; the --rm and log
// choices) and runs the container through lifecycle.Run in the
// foreground, exactly as `sandy run IMAGE` does, so the network, the
// cgroup, the reaping and the teardown are the runtime path's own. It
//
//  1. records itself (pid, start time) in the container's record;
//  2. serves the attach socket DIR/attach (internal/attach; under
//     --wait-attach, `sandy start -a`, it waits for the first client
//     before the container runs, so that the client misses no output);
//  3. gives the container stdin /dev/null, or under -i a pipe it feeds
//     from the attached clients (the pty under -t), and its stdout and
//     stderr as pipes it copies into DIR/ctr.log in the k8s-file format
//     (ctrlog) and to the attached clients, or the pty's output under -t;
//  4. once the process runs (lifecycle's Started), writes a readyMsg to
//     fd 3 and closes it: `sandy run -d` prints the id and exits 0; a
//     set-up or exec error goes there instead, with its status (125, or
//     126/127 for a command that cannot be executed), and the CLI
//     removes the container, as the foreground run does;
//  5. waits, forwarding the signals it gets (lifecycle's foreground
//     relay: a SIGTERM to the monitor is a SIGTERM to the container);
//  6. records the exit status and time in the record and in the state
//     root's .exits/ID (which outlives a --rm container, for `sandy
//     wait`), sends it to the attached clients and removes the socket,
//     then, under --rm, removes the storage container and its anonymous
//     volumes through a fresh image helper.
//
// The container's init has the monitor's death as its parent-death
// signal (SIGKILL), as a foreground `sandy run`'s has: when the monitor
// is killed (kill -9, the OOM killer), the container dies with it, and
// nothing is left running that nobody owns or can log; its network ends
// with it too (slirp4netns exits on the monitor's exit fd). What the
// monitor could not do, `sandy container ls` tells (Exited, "monitor
// killed": no exit status) and `sandy container rm -f` finishes (the
// runtime state, the cgroup, the storage container).

// MonitorRole is the monitor's hidden argv[1].
const MonitorRole = "_monitor"

// Files in the container's directory (beside config.json and the record).
const (
	MonitorFile    = "monitor.json" // the monitor's orders
	LogFile        = "ctr.log"      // the container's output, k8s-file
	MonitorLogFile = "monitor.log"  // the monitor's own errors
)

// monitorFD is the readiness pipe's fd in the monitor.
const monitorFD = 3

// monitorConfig is MonitorFile: what the monitor runs, written by `sandy
// run -d` and read again by each `sandy container start`.
type monitorConfig struct {
	ID  string `json:"id"`
	Dir string `json:"dir"`
	// Root and CgroupManager are the runtime's global flags (--root,
	// --cgroup-manager) the container was run with.
	Root          string `json:"root,omitempty"`
	CgroupManager string `json:"cgroup_manager,omitempty"`
	Debug         bool   `json:"debug,omitempty"`

	Bundle     string                   `json:"bundle"`
	Layers     overlay.Layers           `json:"layers"`
	RootfsMode string                   `json:"rootfs_mode"`
	Seccomp    string                   `json:"seccomp,omitempty"`
	NoSeccomp  bool                     `json:"no_seccomp,omitempty"`
	Network    lifecycle.NetworkOptions `json:"network"`
	Cgroup     lifecycle.CgroupOptions  `json:"cgroup"`
	NetFiles   *lifecycle.NetFiles      `json:"net_files,omitempty"`
	Terminal   bool                     `json:"terminal,omitempty"`
	// Interactive is -i: the container's stdin stays open for the
	// attached clients (else it is /dev/null).
	Interactive bool `json:"interactive,omitempty"`

	Rm               bool     `json:"rm,omitempty"`
	AnonymousVolumes []string `json:"anonymous_volumes,omitempty"`
	LogDriver        string   `json:"log_driver"`
	// LogMaxSize is --log-opt max-size: the log is rotated past it (0: never).
	LogMaxSize int64 `json:"log_max_size,omitempty"`
	// Helper and HelperGlobal: the image helper and its store flags, for
	// --rm's removal.
	Helper       string   `json:"helper"`
	HelperGlobal []string `json:"helper_global,omitempty"`
	// GoInit is why the flags need the container's Go init
	// (goInitFlags; lifecycle.PendingBundle.GoInit), "" if they may not.
	GoInit string `json:"go_init,omitempty"`
}

// newMonitorConfig takes what the monitor needs from the runtime options
// runtimeOptions made.
func newMonitorConfig(g *lifecycle.Global, r RunRequest, o *lifecycle.RunOptions, dir string, anon []string, terminal, interactive bool) monitorConfig {
	c := monitorConfig{
		ID: o.ID, Dir: dir, Root: g.Root, CgroupManager: g.CgroupManager, Debug: g.Debug,
		Bundle: o.Bundle, RootfsMode: o.RootfsMode, Seccomp: o.Seccomp, NoSeccomp: o.NoSeccomp,
		Network: o.Network, Cgroup: o.Cgroup, NetFiles: o.NetFiles, Terminal: terminal, Interactive: interactive,
		Rm: r.Rm, AnonymousVolumes: anon, LogDriver: r.LogDriver, LogMaxSize: r.LogMaxSize,
		Helper: r.Helper, HelperGlobal: r.HelperGlobal, GoInit: goInitFlags(r.Options),
	}
	if o.Layers != nil {
		c.Layers = *o.Layers
	}
	if c.LogDriver == "" {
		c.LogDriver = LogDriverK8sFile
	}
	return c
}

// The log drivers: podman's names.
const (
	LogDriverK8sFile = "k8s-file"
	LogDriverNone    = "none"
)

func writeMonitorConfig(c monitorConfig) error {
	b, err := json.MarshalIndent(c, "", "\t")
	if err != nil {
		return err
	}
	tmp := filepath.Join(c.Dir, "."+MonitorFile+".tmp")
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("writing the monitor's orders: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(c.Dir, MonitorFile)); err != nil {
		return fmt.Errorf("writing the monitor's orders: %w", err)
	}
	return nil
}

func readMonitorConfig(dir string) (monitorConfig, error) {
	var c monitorConfig
	b, err := os.ReadFile(filepath.Join(dir, MonitorFile))
	if err != nil {
		return c, fmt.Errorf("reading the monitor's orders: %w", err)
	}
	if err := json.Unmarshal(b, &c); err != nil {
		return c, fmt.Errorf("%s: %w", filepath.Join(dir, MonitorFile), err)
	}
	return c, nil
}

// readyMsg is what the monitor writes on the readiness pipe: nothing but
// the warnings when the process runs, else the error and its status.
// Under --wait-attach a first line with Listening comes before: the
// attach socket is up, the monitor waits for a client.
type readyMsg struct {
	Error     string `json:"error,omitempty"`
	Code      int    `json:"code,omitempty"`
	Warnings  string `json:"warnings,omitempty"`
	Listening bool   `json:"listening,omitempty"`
}

// waitAttachFlag makes the monitor wait for an attach client before the
// container runs (startMonitor's attach).
const waitAttachFlag = "--wait-attach"

// attachWait bounds that wait: a client that never comes (its sandy was
// killed) delays the container, it does not stop it.
const attachWait = 10 * time.Second

// MonitorError is a detached run whose container did not start: the
// monitor's error, with the status the foreground run would have exited
// with.
type MonitorError struct {
	Msg  string
	Code int
}

func (e *MonitorError) Error() string { return e.Msg }

// startMonitor starts the monitor of the container in dir and waits until
// its process runs (nil), or it failed (a *MonitorError, the monitor gone).
// The warnings of the set-up are printed to stderr. With attach, the
// monitor waits for a client before the container runs, and attach is
// called to connect it once the socket is up (start -a).
func startMonitor(dir string, stderr io.Writer, attach func() error) error {
	// Fds this process inherited without close-on-exec (a caller's pipe:
	// out=$(sandy run -d ...)) must not live on in the monitor, or the
	// caller would wait for the container's end (as in lifecycle's
	// startReaper). ExtraFiles are dup2'ed into place, which clears the flag.
	if err := fds.CloexecFrom(3); err != nil {
		return fmt.Errorf("marking fds close-on-exec: %w", err)
	}
	log, err := os.OpenFile(filepath.Join(dir, MonitorLogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("opening the monitor's log: %w", err)
	}
	defer log.Close()
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	args := []string{"sandy", MonitorRole, dir}
	if attach != nil {
		args = []string{"sandy", MonitorRole, waitAttachFlag, dir}
	}
	cmd := &exec.Cmd{
		Path:        "/proc/self/exe",
		Args:        args,
		Dir:         "/",
		Stderr:      log,
		ExtraFiles:  []*os.File{w}, // monitorFD
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err = cmd.Start()
	w.Close()
	if err != nil {
		return fmt.Errorf("starting the container's monitor: %w", err)
	}
	return awaitReady(cmd, r, dir, stderr, attach)
}

// awaitReady reads the monitor's readiness pipe r until its process runs
// (nil) or it failed (a *MonitorError, the monitor gone); see
// startMonitor.
func awaitReady(cmd *exec.Cmd, r io.Reader, dir string, stderr io.Writer, attach func() error) error {
	br := bufio.NewReader(r)
	var m readyMsg
	for {
		line, _ := br.ReadBytes('\n')
		if len(line) == 0 {
			err := cmd.Wait()
			return &MonitorError{Code: ExitSandyError, Msg: fmt.Sprintf("the container's monitor exited before the container ran (%v): its log is %s", err, filepath.Join(dir, MonitorLogFile))}
		}
		m = readyMsg{}
		if err := json.Unmarshal(line, &m); err != nil {
			_ = cmd.Process.Kill()
			_ = cmd.Wait()
			return fmt.Errorf("the container's monitor answered %q: %w", line, err)
		}
		if !m.Listening {
			break
		}
		if attach != nil {
			if err := attach(); err != nil {
				// The monitor runs the container all the same once its
				// wait is over: the error is the caller's to report.
				_ = cmd.Process.Release()
				return err
			}
		}
	}
	if m.Warnings != "" {
		_, _ = io.WriteString(stderr, m.Warnings)
	}
	if m.Error != "" {
		_ = cmd.Wait() // it has undone the run: the caller removes the rest
		return &MonitorError{Msg: m.Error, Code: m.Code}
	}
	return cmd.Process.Release()
}

// MonitorMain is `sandy _monitor DIR` (startMonitor) or `sandy _monitor
// --pending ID` (startPendingMonitor). Its status is 0 once the container
// ran, whatever its own status; 1 when it did not.
func MonitorMain(args []string) int {
	unix.CloseOnExec(monitorFD)
	m := newMonitor(os.NewFile(monitorFD, "ready"))
	var err error
	switch {
	case len(args) == 2 && args[0] == pendingFlag:
		unix.CloseOnExec(ordersFD)
		m.orders = bufio.NewReader(os.NewFile(ordersFD, "orders"))
		err = m.runPending(args[1])
	case len(args) == 2 && args[0] == waitAttachFlag:
		m.waitAttach = true
		err = m.run(args[1])
	case len(args) == 1:
		err = m.run(args[0])
	default:
		fmt.Fprintln(os.Stderr, "usage: sandy _monitor [--wait-attach] DIR | --pending ID")
		return 2
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s sandy monitor: %v\n", time.Now().Format(time.RFC3339), err)
		if !m.started {
			m.fail(m.cfg.Dir, readyMsg{Error: err.Error(), Code: ExitSandyError})
			return 1
		}
	}
	return 0
}

// fail ends a run whose process never ran: its status goes in the record
// (a start that failed is an exited container, not one whose monitor was
// killed), then to the CLI, which removes a container that run -d made.
// A pending monitor that never got its directory has no record.
func (m *monitor) fail(dir string, msg readyMsg) {
	if m.ready == nil {
		return // reported already
	}
	now := time.Now().UTC()
	code := msg.Code
	if dir != "" {
		_ = updateRecord(dir, func(r *Record) { r.ExitCode, r.Finished = &code, &now })
	}
	m.report(msg)
}

// monitor is one monitor's run: the named steps share it.
type monitor struct {
	cfg     monitorConfig
	g       *lifecycle.Global
	setup   switchWriter // the warnings: of the set-up for the CLI, then the monitor's log
	ready   *os.File
	log     *ctrlog.Log
	logFile *logFile
	null    *os.File
	pipes   []*os.File // the ends of the stdio pipes the container's init gets
	copies  sync.WaitGroup
	started bool
	code    int

	// The attach socket (attach.go).
	waitAttach bool
	srv        *attach.Server
	stdinR     *os.File                // -i without -t: the container's stdin pipe
	stdinW     *os.File                // (our end)
	master     atomic.Pointer[os.File] // -t: the pty's master, once open
	// masterReady is closed once master is set; attachDone when the
	// sessions end.
	masterReady, attachDone chan struct{}

	// A pending monitor's (runPending): the CLI's orders, fd 4, and the
	// start spec the container's init starts from before the container's
	// directory exists.
	orders *bufio.Reader
	start  *specs.Spec
	// sinksReady is closed once the log and the attach socket are open:
	// the container's output waits for them (a pending monitor's init
	// starts before the directory that holds them exists).
	sinksReady chan struct{}
}

func newMonitor(ready *os.File) *monitor {
	return &monitor{ready: ready, masterReady: make(chan struct{}), attachDone: make(chan struct{}), sinksReady: make(chan struct{})}
}

func (m *monitor) run(dir string) error {
	m.cfg.Dir = dir // for fail's record, whatever comes
	cfg, err := readMonitorConfig(dir)
	if err != nil {
		return err
	}
	m.cfg = cfg
	m.g = &lifecycle.Global{Root: cfg.Root, CgroupManager: cfg.CgroupManager, Debug: cfg.Debug, Stderr: &m.setup}
	return m.steps(append(m.dirSteps(), m.runSteps()...))
}

type monitorStep struct {
	name string
	fn   func() error
}

// dirSteps need the container's directory: the record, the log, the
// attach socket. Once done, the container's output has somewhere to go.
func (m *monitor) dirSteps() []monitorStep {
	return []monitorStep{
		{"recording the monitor", m.recordSelf},
		{"opening the log", m.openLog},
		{"serving the attach socket", m.serveAttach},
		{"", func() error { close(m.sinksReady); return nil }},
	}
}

// runSteps run the container and end it.
func (m *monitor) runSteps() []monitorStep {
	return []monitorStep{
		{"running the container", m.runContainer},
		{"recording the exit status", m.recordExit},
		{"ending the attach sessions", m.endAttach},
		{"removing the container (--rm)", m.removeContainer},
	}
}

func (m *monitor) steps(steps []monitorStep) error {
	defer m.closeAttach(-1)
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return nil
}

func (m *monitor) report(msg readyMsg) {
	if m.ready == nil {
		return
	}
	msg.Warnings = m.setup.switchTo(os.Stderr)
	b, _ := json.Marshal(msg)
	_, _ = m.ready.Write(append(b, '\n'))
	m.ready.Close()
	m.ready = nil
}

func (m *monitor) recordSelf() error {
	pid := os.Getpid()
	start, _, err := state.ProcStart(pid)
	if err != nil {
		return err
	}
	return updateRecord(m.cfg.Dir, func(r *Record) {
		r.Monitor = &Proc{Pid: pid, Start: start}
		r.ExitCode, r.Finished, r.Started = nil, nil, nil
	})
}

// openLog opens the container's stdio: /dev/null for stdin, the log for
// its output.
func (m *monitor) openLog() error {
	var err error
	if m.null, err = os.OpenFile(os.DevNull, os.O_RDWR|unix.O_CLOEXEC, 0); err != nil {
		return err
	}
	if m.cfg.LogDriver == LogDriverNone {
		return nil
	}
	m.logFile, err = openLogFile(filepath.Join(m.cfg.Dir, LogFile), m.cfg.LogMaxSize)
	if err != nil {
		return err
	}
	m.log = ctrlog.New(m.logFile, nil)
	return nil
}

// output returns the container's stdout or stderr: the write end of a
// pipe copied into the log (a file, so that the init gets it as it is)
// and to the attached clients, or that writer itself under -t, where the
// runtime path relays the pty. Neither the log nor the clients block the
// copy: a full disk drops the log's writes (ctrlog), a client that does
// not read is disconnected (attach).
func (m *monitor) output(stream string, kind byte) (io.Writer, error) {
	to := &sinkWriter{ready: m.sinksReady, open: func() io.Writer {
		var to io.Writer = m.srv.Stream(kind)
		if m.log != nil {
			to = io.MultiWriter(m.log.Stream(stream), to)
		}
		return to
	}}
	if m.cfg.Terminal {
		return to, nil
	}
	r, w, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	m.pipes = append(m.pipes, w)
	m.copies.Add(1)
	go func() {
		defer m.copies.Done()
		defer r.Close()
		_, _ = io.Copy(to, r)
	}()
	return w, nil
}

func (m *monitor) closePipes() {
	for _, w := range m.pipes {
		w.Close()
	}
	m.pipes = nil
}

// runContainer is the runtime path, in the foreground. A pending
// monitor's container starts from the start spec, and its bundle comes
// with the CLI's second order (awaitDir).
func (m *monitor) runContainer() error {
	c := m.cfg
	o := &lifecycle.RunOptions{}
	o.ID, o.RootfsMode = c.ID, c.RootfsMode
	if m.start != nil {
		o.Pending = &lifecycle.PendingBundle{Spec: m.start, Wait: m.awaitDir, GoInit: c.GoInit}
	} else {
		o.Bundle = c.Bundle
		layers := c.Layers
		o.Layers = &layers
	}
	o.Seccomp, o.NoSeccomp = c.Seccomp, c.NoSeccomp
	o.Network, o.Cgroup, o.NetFiles = c.Network, c.Cgroup, c.NetFiles
	if c.Helper != "" {
		o.SharedUserNS = imagehelper.StoreUserNS // an image's container (flagOptions)
	}
	var err error
	if o.Stdin, err = m.input(); err != nil {
		return err
	}
	if o.Stdout, err = m.output(ctrlog.Stdout, attach.KindStdout); err != nil {
		return err
	}
	if o.Stderr, err = m.output(ctrlog.Stderr, attach.KindStderr); err != nil {
		return err
	}
	if c.Terminal {
		o.PtyMaster = m.setMaster
	}
	o.Started = func() {
		// The init has its copies: ours would keep the log open.
		m.closePipes()
		now := time.Now().UTC()
		dir := m.cfg.Dir // a pending monitor's is known by now
		if err := updateRecord(dir, func(r *Record) { r.Started = &now }); err != nil {
			m.g.Debugf("recording the start: %v", err)
		}
		if err := firstUseDone(dir); err != nil {
			m.g.Debugf("dropping the volumes' first-use options: %v", err)
		}
		m.started = true
		m.report(readyMsg{})
	}
	code, err := lifecycle.Run(context.Background(), m.g, o)
	m.closePipes()
	m.closeStdin()
	if !m.started {
		if err == nil {
			err = errors.New("the container's process did not start")
		}
		if code == 1 || code == 0 {
			code = ExitSandyError
		}
		m.fail(m.cfg.Dir, readyMsg{Error: err.Error(), Code: code})
		return err
	}
	m.code = code
	m.waitCopies()
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s sandy monitor: %v\n", time.Now().Format(time.RFC3339), err)
	}
	return nil
}

// waitCopies lets the copies drain what the container wrote. A process
// that left the container's pid namespace keeps a pipe open: the copy is
// not waited for past a bound.
func (m *monitor) waitCopies() {
	done := make(chan struct{})
	go func() { m.copies.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(2 * time.Second):
	}
	if m.log != nil {
		if err := m.log.Err(); err != nil {
			fmt.Fprintf(os.Stderr, "%s sandy monitor: %v\n", time.Now().Format(time.RFC3339), err)
		}
	}
	if m.logFile != nil {
		m.logFile.Close()
	}
}

func (m *monitor) recordExit() error {
	now := time.Now().UTC()
	code := m.code
	if err := writeExitFile(m.g, m.cfg.ID, exitFile{Code: code, Finished: now}); err != nil {
		fmt.Fprintf(os.Stderr, "%s sandy monitor: %v\n", time.Now().Format(time.RFC3339), err)
	}
	return updateRecord(m.cfg.Dir, func(r *Record) { r.ExitCode, r.Finished = &code, &now })
}

func (m *monitor) removeContainer() error {
	if !m.cfg.Rm {
		return nil
	}
	var errs []error
	errs = append(errs, removeVolumes(m.cfg.AnonymousVolumes))
	if err := imagehelper.Remove(context.Background(), m.cfg.Helper, m.cfg.HelperGlobal, m.cfg.ID, os.Stderr); err != nil {
		errs = append(errs, err)
	}
	return errors.Join(errs...)
}

// exitFile is the state root's .exits/ID: the last exit status of a
// detached container, which outlives its record under --rm (`sandy wait`
// of a run -d --rm container), until the runtime directory goes (a
// reboot). A hidden name: no container id starts with a dot.
type exitFile struct {
	Code     int       `json:"exit_code"`
	Finished time.Time `json:"finished"`
}

func exitsDir(g *lifecycle.Global) (string, error) {
	root, err := state.OpenRoot(g.Root)
	if err != nil {
		return "", err
	}
	return filepath.Join(root.Dir, ".exits"), nil
}

func writeExitFile(g *lifecycle.Global, id string, e exitFile) error {
	dir, err := exitsDir(g)
	if err != nil {
		return err
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return fmt.Errorf("recording the exit status: %w", err)
	}
	b, _ := json.Marshal(e)
	tmp := filepath.Join(dir, "."+id+"."+strconv.Itoa(os.Getpid()))
	if err := os.WriteFile(tmp, b, 0o600); err != nil {
		return fmt.Errorf("recording the exit status: %w", err)
	}
	return os.Rename(tmp, filepath.Join(dir, id))
}

func readExitFile(g *lifecycle.Global, id string) (exitFile, bool) {
	var e exitFile
	dir, err := exitsDir(g)
	if err != nil {
		return e, false
	}
	b, err := os.ReadFile(filepath.Join(dir, id))
	if err != nil || json.Unmarshal(b, &e) != nil {
		return e, false
	}
	return e, true
}

// switchWriter keeps what is written until switchTo, then writes through.
type switchWriter struct {
	mu  sync.Mutex
	buf bytes.Buffer
	to  io.Writer
}

func (w *switchWriter) Write(p []byte) (int, error) {
	w.mu.Lock()
	defer w.mu.Unlock()
	if w.to != nil {
		return w.to.Write(p)
	}
	return w.buf.Write(p)
}

// switchTo returns what was kept and writes to to from now on.
func (w *switchWriter) switchTo(to io.Writer) string {
	w.mu.Lock()
	defer w.mu.Unlock()
	w.to = to
	s := w.buf.String()
	w.buf.Reset()
	return s
}

// removeExitFile forgets id's exit status (rm: the container is gone for
// good).
func removeExitFile(g *lifecycle.Global, id string) {
	if dir, err := exitsDir(g); err == nil {
		_ = os.Remove(filepath.Join(dir, id))
	}
}
