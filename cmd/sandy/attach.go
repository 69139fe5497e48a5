package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"sync/atomic"

	"github.com/containerd/console"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/attach"
	"github.com/sandy-rt/sandy/internal/containers"
	"github.com/sandy-rt/sandy/internal/lifecycle"
)

// attachDefaultKeys is --detach-keys' default.
const attachDefaultKeys = attach.DefaultDetachKeys

const attachUsage = "attach [--no-stdin] [--detach-keys KEYS] [--sig-proxy=false] NAME|ID"

// cmdAttach is podman's attach: the output of a container that runs
// detached from now on, the terminal's input to its stdin (-i), until it
// exits (attach exits with its status) or the detach keys are typed (0:
// it goes on running).
func cmdAttach(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("attach", attachUsage, g.Stderr)
	noStdin := fs.Bool("no-stdin", false, "do not pass stdin to the container")
	keys := fs.String("detach-keys", attachDefaultKeys, "the keys that detach, the container left running: ctrl-<c> or a character, comma separated (\"\": none)")
	sigProxy := fs.Bool("sig-proxy", true, "pass the signals sandy gets on to the container (without -t)")
	if err := parseRefs(ctx, g, fs, args, true); err != nil {
		return 125, err
	}
	if fs.NArg() != 1 {
		return 125, errors.New("name one container (sandy " + attachUsage + ")")
	}
	detach, err := attach.ParseDetachKeys(*keys)
	if err != nil {
		return 125, err
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	o := attachOptions(ctx, m, !*noStdin, detach, *sigProxy)
	return o.finish(m.Attach(ctx, fs.Arg(0), o.AttachOptions))
}

// attachRun is an attach's options with what its Ready started.
type attachRun struct {
	containers.AttachOptions
	interrupted atomic.Int32 // the signal that ended a terminal's attach
	// early holds the signals from before the attach is made, under
	// --sig-proxy: caught from the start, they are relayed once attached
	// (a SIGINT right after the socket connects used to end sandy by its
	// default action, before Ready's relay existed).
	early chan os.Signal
}

// attachOptions makes the options of attach and start -a: stdin, the
// detach keys and, once attached, the terminal (raw mode, its size sent
// at once and on each SIGWINCH) or the signal relay (--sig-proxy).
func attachOptions(ctx context.Context, m containers.Manage, stdin bool, keys []byte, sigProxy bool) *attachRun {
	r := &attachRun{}
	r.Stdout, r.Stderr, r.DetachKeys = os.Stdout, os.Stderr, keys
	if stdin {
		r.Stdin = os.Stdin
	}
	if sigProxy {
		r.early = make(chan os.Signal, 64)
		signal.Notify(r.early)
	}
	r.Ready = func(info containers.AttachInfo) func() {
		if info.Terminal {
			if c, err := console.ConsoleFromFile(os.Stdin); err == nil {
				return r.terminal(c, info.Conn, r.Stdin != nil && info.Interactive)
			}
			r.stopEarly()
			return nil
		}
		if sigProxy {
			return proxySignals(ctx, m, info.ID, r.early)
		}
		return nil
	}
	return r
}

// stopEarly stops catching signals for a relay that will not come.
func (r *attachRun) stopEarly() {
	if r.early != nil {
		signal.Stop(r.early)
	}
}

// terminal puts the user's terminal in raw mode until the end when it is
// the container's input (every path returns through it, a signal too:
// TERM, HUP, INT or QUIT ends the attach, the container left running),
// and sends its size, at once and on each SIGWINCH.
func (r *attachRun) terminal(c console.Console, conn *attach.Conn, input bool) func() {
	if input {
		if err := c.SetRaw(); err != nil {
			return nil
		}
	}
	resize := func() {
		if ws, err := c.Size(); err == nil && ws.Height > 0 && ws.Width > 0 {
			_ = conn.Resize(ws.Height, ws.Width)
		}
	}
	resize()
	sigs := r.early // caught since the start, under --sig-proxy
	if sigs == nil {
		sigs = make(chan os.Signal, 8)
	}
	signal.Notify(sigs, unix.SIGWINCH, unix.SIGTERM, unix.SIGHUP, unix.SIGINT, unix.SIGQUIT)
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				switch s {
				case unix.SIGWINCH:
					resize()
					continue
				case unix.SIGTERM, unix.SIGHUP, unix.SIGINT, unix.SIGQUIT:
				default:
					continue // the others are not a terminal's to pass on
				}
				r.interrupted.Store(int32(s.(unix.Signal)))
				conn.Interrupt()
			case <-quit:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(quit)
		if input {
			_ = c.Reset()
		}
	}
}

// proxySignals passes the signals sandy gets on sigs (notified of every
// signal since attachOptions) to the container's main process (podman's
// --sig-proxy), but those of the job control and the runtime's own.
func proxySignals(ctx context.Context, m containers.Manage, id string, sigs chan os.Signal) func() {
	quit := make(chan struct{})
	go func() {
		for {
			select {
			case s := <-sigs:
				switch s {
				case unix.SIGCHLD, unix.SIGPIPE, unix.SIGURG, unix.SIGWINCH, unix.SIGTSTP, unix.SIGTTIN, unix.SIGTTOU, unix.SIGCONT:
					continue
				}
				if err := m.Kill(ctx, id, s.(unix.Signal)); err != nil {
					m.G.Debugf("passing %v on: %v", s, err)
				}
			case <-quit:
				return
			}
		}
	}()
	return func() {
		signal.Stop(sigs)
		close(quit)
	}
}

// finish is the status of an attach: the container's, 0 when detached,
// 128+N when signal N ended a terminal's attach.
func (r *attachRun) finish(code int, err error) (int, error) {
	r.stopEarly()
	if n := r.interrupted.Load(); n != 0 && err == nil {
		return 128 + int(n), nil
	}
	return code, err
}

// startAttach is `start -a [-i]`: started with the attach socket's client
// connected before the process runs.
func startAttach(ctx context.Context, g *lifecycle.Global, m containers.Manage, ref string, interactive bool, keys string, sigProxy bool) (int, error) {
	detach, err := attach.ParseDetachKeys(keys)
	if err != nil {
		return 125, err
	}
	o := attachOptions(ctx, m, interactive, detach, sigProxy)
	if interactive {
		ready := o.Ready
		o.Ready = func(info containers.AttachInfo) func() {
			if !info.Interactive {
				fmt.Fprintf(g.Stderr, "sandy: container %s was not run with -i: it has no stdin to pass yours to\n", info.ID[:12])
			}
			return ready(info)
		}
	}
	code, err := o.finish(m.StartAttach(ctx, ref, o.AttachOptions))
	if err != nil && code == containers.ExitSandyError {
		return startStatus(err), err
	}
	return code, err
}
