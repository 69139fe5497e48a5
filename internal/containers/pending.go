package containers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/fds"
	"github.com/sandy-rt/sandy/internal/lifecycle"
)

// A pending monitor is `sandy run -d IMAGE`'s: started as `sandy _monitor
// --pending ID` (the container's id, which names it in ps) before the image helper has made the storage container, so
// that the container's init starts while the helper works, as the
// foreground run's does (Run, lifecycle.PendingBundle). Its fd 4 is the
// orders pipe, on which the CLI writes two JSON lines:
//
//  1. pendingStart: the runtime's options as far as run's flags decide
//     them (monitorConfig without the directory, the bundle and the
//     layers) and the start spec (GenerateStart). The monitor runs
//     lifecycle.Run with the start spec as a pending bundle: the state,
//     the cgroup, the init's clone, maps and Go start happen now. The
//     container's stdio pipes are made now too; what the container
//     writes waits for the log (sinkWriter), and it writes nothing before
//     its process runs.
//  2. pendingDir, once the helper answered and the CLI wrote the bundle,
//     the record and the monitor's orders (prepareMonitor) in the storage
//     container's directory: the monitor's stderr becomes that
//     directory's monitor.log, and it does what a monitor started on a
//     directory does first (dirSteps: its record, the log, the attach
//     socket); lifecycle's "waiting for the bundle" then loads the bundle
//     (awaitDir) and the container is made as any other.
//
// When the CLI fails before the second line (the helper's error, an image
// config Generate refuses, an interrupt), or dies, the pipe ends without
// it: the monitor's wait fails, lifecycle undoes what it made (the init,
// the state), the monitor exits, and the CLI, which waits for that exit,
// removes the storage container as it did before. When the monitor dies
// (kill -9), the CLI reads the end of the readiness pipe as before and
// removes the runtime state and the storage container. Nothing is written
// in the container's directory before the second line, so a container
// whose monitor never got it has no record that names a monitor.

// pendingFlag is a pending monitor's argv[2] (the id is argv[3]);
// ordersFD its orders pipe.
const (
	pendingFlag = "--pending"
	ordersFD    = 4
)

// pendingStart is the first order: what the init starts from.
type pendingStart struct {
	Config monitorConfig `json:"config"`
	Spec   *specs.Spec   `json:"spec"`
}

// pendingDir is the second order: the container's directory, with the
// bundle, the record and monitor.json written.
type pendingDir struct {
	Dir string `json:"dir"`
}

// errNoDir is a pending monitor's wait that ended without the directory.
var errNoDir = errors.New("the CLI gave no container directory (it failed or was killed before the storage container was made)")

// runPending is a pending monitor's run: the first order, then the
// container (whose pending bundle is awaitDir) and its end.
func (m *monitor) runPending(id string) error {
	line, err := m.orders.ReadBytes('\n')
	if err != nil {
		return fmt.Errorf("reading the start order: %w", err)
	}
	var ps pendingStart
	if err := json.Unmarshal(line, &ps); err != nil {
		return fmt.Errorf("reading the start order %q: %w", line, err)
	}
	if ps.Spec == nil {
		return fmt.Errorf("the start order %q has no start spec", line)
	}
	if ps.Config.ID != id {
		return fmt.Errorf("the start order is container %s's, not %s's", ps.Config.ID, id)
	}
	m.cfg, m.start = ps.Config, ps.Spec
	m.g = &lifecycle.Global{Root: m.cfg.Root, CgroupManager: m.cfg.CgroupManager, Debug: m.cfg.Debug, Stderr: &m.setup}
	if err := m.makeStdin(); err != nil {
		return fmt.Errorf("making the container's stdin: %w", err)
	}
	return m.steps(m.runSteps())
}

// awaitDir is a pending monitor's lifecycle.PendingBundle.Wait: the
// second order, then the steps that need the directory.
func (m *monitor) awaitDir(ctx context.Context) (*lifecycle.ReadyBundle, error) {
	type answer struct {
		d   pendingDir
		err error
	}
	ch := make(chan answer, 1)
	go func() {
		var a answer
		line, err := m.orders.ReadBytes('\n')
		switch {
		case err != nil:
			a.err = errNoDir
		default:
			a.err = json.Unmarshal(line, &a.d)
			if a.err == nil && !filepath.IsAbs(a.d.Dir) {
				a.err = fmt.Errorf("the CLI's order %q names no directory", line)
			}
		}
		ch <- a
	}()
	var a answer
	select {
	case a = <-ch:
	case <-ctx.Done():
		return nil, context.Cause(ctx)
	}
	if a.err != nil {
		return nil, a.err
	}
	cfg, err := readMonitorConfig(a.d.Dir)
	if err != nil {
		return nil, err
	}
	if cfg.ID != m.cfg.ID {
		return nil, fmt.Errorf("%s is container %s's, not %s's", a.d.Dir, cfg.ID, m.cfg.ID)
	}
	m.cfg = cfg
	if err := logToDir(cfg.Dir); err != nil {
		return nil, err
	}
	for _, s := range m.dirSteps() {
		if err := s.fn(); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	layers := cfg.Layers
	return &lifecycle.ReadyBundle{Dir: cfg.Bundle, Layers: &layers, Publish: cfg.Network.Publish}, nil
}

// logToDir makes dir's monitor.log the monitor's stderr, as startMonitor
// gives it to a monitor started on a directory.
func logToDir(dir string) error {
	f, err := os.OpenFile(filepath.Join(dir, MonitorLogFile), os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("opening the monitor's log: %w", err)
	}
	defer f.Close()
	if err := unix.Dup3(int(f.Fd()), 2, 0); err != nil {
		return fmt.Errorf("opening the monitor's log: %w", err)
	}
	return nil
}

// sinkWriter is where the container's output goes: open's writer (the log
// and the attach clients), once ready is closed.
type sinkWriter struct {
	ready <-chan struct{}
	open  func() io.Writer
	once  sync.Once
	to    io.Writer
}

func (w *sinkWriter) Write(p []byte) (int, error) {
	<-w.ready
	w.once.Do(func() { w.to = w.open() })
	return w.to.Write(p)
}

// pendingMonitor is the CLI's end of a pending monitor.
type pendingMonitor struct {
	cmd    *exec.Cmd
	ready  *os.File // the readiness pipe's read end
	orders *os.File // the orders pipe's write end (nil once closed)
}

// startPendingMonitor starts a pending monitor and gives it its first
// order: cfg (no directory yet) and the start spec.
func startPendingMonitor(cfg monitorConfig, start *specs.Spec) (*pendingMonitor, error) {
	// As startMonitor: the caller's inherited fds must not live on in the
	// monitor.
	if err := fds.CloexecFrom(3); err != nil {
		return nil, fmt.Errorf("marking fds close-on-exec: %w", err)
	}
	order, err := json.Marshal(pendingStart{Config: cfg, Spec: start})
	if err != nil {
		return nil, err
	}
	null, err := os.OpenFile(os.DevNull, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	defer null.Close()
	readyR, readyW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer readyW.Close()
	ordersR, ordersW, err := os.Pipe()
	if err != nil {
		readyR.Close()
		return nil, err
	}
	defer ordersR.Close()
	cmd := &exec.Cmd{
		Path: "/proc/self/exe",
		Args: []string{"sandy", MonitorRole, pendingFlag, cfg.ID},
		Dir:  "/",
		// Until it has the container's directory, whose monitor.log it
		// then writes to; what goes wrong before is said on fd 3.
		Stderr:      null,
		ExtraFiles:  []*os.File{readyW, ordersR}, // monitorFD, ordersFD
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	if err := cmd.Start(); err != nil {
		readyR.Close()
		ordersW.Close()
		return nil, fmt.Errorf("starting the container's monitor: %w", err)
	}
	pm := &pendingMonitor{cmd: cmd, ready: readyR, orders: ordersW}
	// A monitor that died already makes this fail with EPIPE (not
	// SIGPIPE: Go raises that for fds 1 and 2 only): the readiness pipe
	// says so in wait.
	_, _ = ordersW.Write(append(order, '\n'))
	return pm, nil
}

// send gives the monitor its container's directory: the bundle, the
// record and monitor.json are written.
func (pm *pendingMonitor) send(dir string) {
	b, _ := json.Marshal(pendingDir{Dir: dir})
	_, _ = pm.orders.Write(append(b, '\n'))
	pm.closeOrders()
}

func (pm *pendingMonitor) closeOrders() {
	if pm.orders != nil {
		pm.orders.Close()
		pm.orders = nil
	}
}

// wait is startMonitor's wait for the process to run, once the directory
// is sent.
func (pm *pendingMonitor) wait(dir string, stderr io.Writer) error {
	defer pm.ready.Close()
	return awaitReady(pm.cmd, pm.ready, dir, stderr, nil)
}

// abort ends a pending monitor whose container will not be made: its wait
// for the directory fails, it undoes what it made (the init, the runtime
// state) and exits; abort returns then, so that the caller may remove
// the storage container.
func (pm *pendingMonitor) abort() {
	pm.closeOrders()
	_, _ = io.Copy(io.Discard, pm.ready) // its report, then the end
	pm.ready.Close()
	_ = pm.cmd.Wait()
}
