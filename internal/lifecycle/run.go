package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"syscall"
	"time"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/userns"
)

// RunOptions are create's plus what run adds.
type RunOptions struct {
	CreateOptions
	Detach bool // return once started; the container lives on
	Keep   bool // don't delete the container after it exits
	// Started, when set, is called in the foreground once the process
	// runs (it was executed and the poststart hooks ran): a container's
	// monitor reports the detached run's success then (containers).
	Started func()
	// PtyMaster, when set, is called with the pty's master (process.terminal)
	// once its relay runs, before the process does: a container's monitor
	// writes its attached clients' stdin to it and sets its window size
	// (containers). The relay keeps the master; it is closed after Run.
	PtyMaster func(*os.File)
}

// Run creates, starts and (unless detached) waits for a container, then
// deletes it. It returns the container's exit status: its exit code, or
// 128+N when a signal N killed it (as runc run).
func Run(ctx context.Context, g *Global, o *RunOptions) (int, error) {
	o.owned = !o.Detach
	o.detachRun = o.Detach
	o.relayPty = !o.Detach && o.ConsoleSocket == ""
	o.startSocket = true // run starts it itself: no exec fifo (makeFifo)
	var sigs chan os.Signal
	var setup context.Context
	var endSetup func()
	if o.Detach {
		setup, endSetup = catchInterrupts(ctx, &o.CreateOptions)
	} else {
		sigs = relaySignals(g)
		setup, endSetup = interruptOnSignal(ctx, sigs)
	}
	cr, err := create(setup, g, &o.CreateOptions)
	endSetup()
	if err == nil && setup.Err() != nil {
		// The signal came as the last step finished: undo it all the same.
		_ = cr.awaitSaved()
		_ = destroy(ctx, g, cr.root, cr.c)
		cr.release()
		err = context.Cause(setup)
	}
	if err != nil {
		var ie *InterruptedError
		if errors.As(err, &ie) {
			return 128 + int(ie.Signal), err // as if the signal had killed sandy
		}
		return userns.ExitStatus(err), err // 127: not found, 126: not executable
	}
	if o.Detach {
		err := cr.releaseInit(ctx)
		if err == nil {
			runPoststart(g, cr.c)
		}
		if err != nil {
			err = cr.initError(err)
			_ = destroy(ctx, g, cr.root, cr.c)
			cr.release()
			return 1, err
		}
		cr.release()
		return 0, nil
	}
	// Other sandy commands (state, kill, ps) must work while it runs.
	cr.lock.Unlock()
	defer cr.release()
	t0 := time.Now()
	code, err := runForeground(ctx, g, cr, sigs, o.Started, o.PtyMaster)
	g.Debugf("start and wait: %v", time.Since(t0).Round(10*time.Microsecond))
	if serr := cr.awaitSaved(); serr != nil && err == nil {
		err = serr // the process never started (release waits for it)
	}
	reportOOM(g, cr)
	if cr.sentinel != nil {
		cr.sentinel.Close()
	}
	t0 = time.Now()
	defer func() { g.Debugf("teardown: %v", time.Since(t0).Round(10*time.Microsecond)) }()
	if !o.Keep && handsOff(cr.c) {
		// The rest of the teardown is a reaper's (reap.go).
		if terr := endRun(ctx, g, cr); terr != nil && err == nil {
			err = terr
		}
		return code, err
	}
	if cr.net != nil {
		_ = cr.net.Close()
	}
	cr.closeUserNet()
	if lock, lerr := cr.root.Lock(cr.c.ID); lerr == nil {
		if !o.Keep {
			if derr := destroy(context.Background(), g, cr.root, cr.c); derr != nil && err == nil {
				err = derr
			}
		} else {
			// Kept: no longer ours to collect when this process is gone.
			cr.c.Owner, cr.c.OwnerStart = 0, 0
			if serr := cr.root.Save(cr.c); serr != nil && err == nil {
				err = serr
			}
		}
		lock.Unlock()
	}
	return code, err
}

// runForeground starts the process, relays signals and the pty, and waits.
func runForeground(ctx context.Context, g *Global, cr *creation, sigs chan os.Signal, started func(), onPty func(*os.File)) (int, error) {
	f := &foreground{
		pty: cr.pty, stdin: cr.o.Stdin, stdout: cr.o.Stdout, sigs: sigs, onPty: onPty,
		release: func() error {
			if err := cr.releaseInit(ctx); err != nil {
				return cr.initError(err)
			}
			// The state is complete before the process counts as
			// started (the save ran beside the release: saveState).
			if err := cr.awaitSaved(); err != nil {
				return err
			}
			runPoststart(g, cr.c)
			if started != nil {
				started()
			}
			return nil
		},
		signal: func(sig unix.Signal) error { return signalInit(cr.c, sig) },
		wait:   cr.waitInit,
	}
	return f.run(g)
}

// foreground is a process that sandy waits for in the foreground (run,
// exec): it relays the pty (raw mode on the caller's terminal, window size
// followed), forwards every signal it gets to the process, and returns the
// process's exit status.
type foreground struct {
	pty     *os.File       // pty master to relay, or nil
	onPty   func(*os.File) // RunOptions.PtyMaster
	stdin   io.Reader
	stdout  io.Writer
	release func() error   // lets the process run, once the relay is up
	sigs    chan os.Signal // relaySignals, started early by the caller, or by run
	signal  func(unix.Signal) error
	wait    func() (*os.ProcessState, error)
	// waitStatus, when set, is used instead of wait: a wait4(2) of the
	// process, for a child that os has not started (exec's fork), with
	// no os.FindProcess (whose first call probes pidfd support with a
	// clone of its own).
	waitStatus func() (unix.WaitStatus, error)
}

// relaySignals starts catching every signal for a foreground process,
// in the background: signal.Notify for all of them costs 1-2 ms (a
// sigaction per signal), which overlaps the container's set-up this way.
// Signals caught before the process runs are buffered and forwarded once
// it does. Catching never stops (signal.Stop costs as much again): `sandy
// run` and `sandy exec` exit soon after their process, and a signal that
// comes during the teardown must not cut the clean-up short. Until the
// catching is in place a signal has its default action (SIGINT ends sandy
// at once, as kill -9 does); --debug says when it is ("catching
// signals"), for the tests that interrupt a set-up.
func relaySignals(g *Global) chan os.Signal {
	ch := make(chan os.Signal, 64)
	go func() {
		signal.Notify(ch)
		g.Debugf("catching signals")
	}()
	return ch
}

// InterruptedError is the cause of a set-up (run, create) that sandy
// stopped and undid because it got Signal before the container's process
// ran; the command exits 128+Signal.
type InterruptedError struct{ Signal unix.Signal }

func (e *InterruptedError) Error() string {
	return fmt.Sprintf("interrupted by %s during set-up (undone: nothing is left behind)", unix.SignalName(e.Signal))
}

// interruptOnSignal watches sigs (relaySignals' channel, or
// catchInterrupts') while sandy sets the container up: SIGINT, SIGTERM, SIGHUP or SIGQUIT cancels the
// returned context with an *InterruptedError, which stops the set-up at
// whatever step it is in (a hook with no timeout included: its process
// group is killed) and undoes it. Other signals are kept; end stops the
// watch and puts them back into sigs, to be forwarded once the process
// runs. The watch reuses the catching that relaySignals started anyway: it
// costs no signal.Notify of its own.
func interruptOnSignal(ctx context.Context, sigs chan os.Signal) (context.Context, func()) {
	ctx, cancel := context.WithCancelCause(ctx)
	quit := make(chan struct{})
	kept := make(chan []os.Signal)
	go func() {
		var keep []os.Signal
		for {
			select {
			case s := <-sigs:
				switch s {
				case unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT:
					cancel(&InterruptedError{Signal: s.(syscall.Signal)})
				default:
					keep = append(keep, s)
				}
			case <-quit:
				kept <- keep
				return
			}
		}
	}()
	return ctx, func() {
		close(quit)
		for _, s := range <-kept {
			select {
			case sigs <- s:
			default: // full: more signals came since; these are old
			}
		}
	}
}

// catchInterrupts is interruptOnSignal for create and `run --detach`,
// which relay no signals. Catching costs (signal.Notify, even of four
// signals, ~0.1-0.6 ms), so it is lazy: only a set-up that runs hooks,
// user code that may never return, catches the four signals that
// interrupt (o.catchInterrupts, called once the bundle is loaded), in the
// background, overlapping the rest of the set-up, and never stops (the
// command exits right after the set-up). Without hooks a signal ends
// sandy at once, as before.
func catchInterrupts(ctx context.Context, o *CreateOptions) (context.Context, func()) {
	ch := make(chan os.Signal, 4)
	o.catchInterrupts = func() {
		go signal.Notify(ch, unix.SIGINT, unix.SIGTERM, unix.SIGHUP, unix.SIGQUIT)
	}
	return interruptOnSignal(ctx, ch)
}

func (f *foreground) run(g *Global) (int, error) {
	sigs := f.sigs
	if sigs == nil {
		sigs = relaySignals(g)
	}

	var relay *ptyRelay
	if f.pty != nil {
		var err error
		if relay, err = startPtyRelay(f.pty, f.stdin, f.stdout); err != nil {
			return 1, err
		}
		defer relay.restore()
		if f.onPty != nil {
			f.onPty(f.pty)
		}
	}
	if err := f.release(); err != nil {
		return userns.ExitStatus(err), err // 127: not found, 126: not executable
	}
	type exited struct {
		code int
		err  error
	}
	done := make(chan exited, 1)
	go func() {
		if f.waitStatus != nil {
			code, err := waitCode(f.waitStatus())
			done <- exited{code, err}
			return
		}
		ps, err := f.wait()
		code, err := exitCode(ps, err)
		done <- exited{code, err}
	}()
	for {
		select {
		case e := <-done:
			if relay != nil {
				relay.drain()
			}
			return e.code, e.err
		case s := <-sigs:
			sig := s.(syscall.Signal)
			switch sig {
			case unix.SIGCHLD, unix.SIGURG, unix.SIGPIPE:
				// SIGURG is the Go runtime's preemption signal.
			case unix.SIGWINCH:
				if relay != nil {
					relay.resize()
				}
			default:
				if err := f.signal(sig); err != nil {
					g.Debugf("forwarding %v: %v", sig, err)
				}
			}
		}
	}
}

// waitCode is exitCode for a wait4(2) status.
func waitCode(ws unix.WaitStatus, err error) (int, error) {
	switch {
	case err != nil:
		return 1, err
	case ws.Signaled():
		return 128 + int(ws.Signal()), nil
	}
	return ws.ExitStatus(), nil
}

func exitCode(ps *os.ProcessState, err error) (int, error) {
	if ps == nil {
		return 1, err
	}
	if ws, ok := ps.Sys().(syscall.WaitStatus); ok {
		if ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return ws.ExitStatus(), nil
	}
	var ee *exec.ExitError
	if errors.As(err, &ee) {
		return ee.ExitCode(), nil
	}
	return ps.ExitCode(), nil
}

// ptyRelay copies between the caller's stdio and the container's pty. When
// stdin is a terminal it is put in raw mode (restored at the end) and its
// size follows SIGWINCH.
type ptyRelay struct {
	master  *os.File
	current console.Console // nil when stdin is not a terminal
	outDone chan struct{}
}

func startPtyRelay(master *os.File, stdin io.Reader, stdout io.Writer) (*ptyRelay, error) {
	r := &ptyRelay{master: master, outDone: make(chan struct{})}
	if f, ok := stdin.(*os.File); ok {
		if c, err := console.ConsoleFromFile(f); err == nil {
			r.current = c
			if err := c.SetRaw(); err != nil {
				return nil, fmt.Errorf("setting the terminal raw: %w", err)
			}
			r.resize()
		}
	}
	go func() {
		_, _ = io.Copy(master, stdin)
	}()
	go func() {
		_, _ = io.Copy(stdout, master)
		close(r.outDone)
	}()
	return r, nil
}

func (r *ptyRelay) resize() {
	if r.current == nil {
		return
	}
	ws, err := r.current.Size()
	if err != nil {
		return
	}
	_ = unix.IoctlSetWinsize(int(r.master.Fd()), unix.TIOCSWINSZ, &unix.Winsize{Row: ws.Height, Col: ws.Width})
}

// drain waits for the output the container wrote before it exited: the
// slave side is closed, so the master reads EIO once the buffer is empty.
func (r *ptyRelay) drain() { <-r.outDone }

func (r *ptyRelay) restore() {
	if r.current != nil {
		_ = r.current.Reset()
	}
}

// reportOOM says so when the kernel's OOM killer killed a process in the
// container's cgroup (memory.events oom_kill), the usual reason for a 137.
func reportOOM(g *Global, cr *creation) {
	if cr.cg == nil {
		return
	}
	ev, err := cr.cg.Events()
	if err != nil || ev.OOMKill == 0 {
		return
	}
	g.Warn(fmt.Sprintf("the container's memory limit was hit: the OOM killer killed %d process(es) (memory.events oom_kill)", ev.OOMKill))
}
