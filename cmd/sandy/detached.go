package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strconv"
	"time"

	"github.com/sandy-rt/sandy/internal/containers"
	"github.com/sandy-rt/sandy/internal/ctrlog"
	"github.com/sandy-rt/sandy/internal/lifecycle"
)

// The verbs of the detached lifecycle (podman's names and flags). logs,
// stop, wait and restart are also top-level commands: runc has none of
// those names. start and kill are runc's (engines call them), so they are
// under `sandy container` only.

func cmdLogs(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("logs", "logs [-f] [-t] [--tail N] [--since T] NAME|ID", g.Stderr)
	follow := fs.BoolP("follow", "f", false, "go on printing the output until the container exits")
	ts := fs.BoolP("timestamps", "t", false, "print each line's timestamp")
	tail := fs.Int("tail", -1, "print the last N lines only (-1: all)")
	since := fs.String("since", "", "print the lines since a time: RFC 3339, a Unix time, or a duration before now (10m)")
	if err := parseRefs(ctx, g, fs, args, true); err != nil {
		return 125, err
	}
	if fs.NArg() != 1 {
		return 125, errors.New("name one container (sandy logs [flags] NAME|ID)")
	}
	o := containers.LogsOptions{Options: ctrlog.Options{Tail: *tail, Timestamps: *ts}, Follow: *follow}
	if *since != "" {
		t, err := parseSince(*since, time.Now())
		if err != nil {
			return 125, err
		}
		o.Since = t
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	if err := m.Logs(ctx, fs.Arg(0), os.Stdout, o); err != nil {
		return 125, err
	}
	return 0, nil
}

// parseSince reads --since as podman does: an RFC 3339 time (with or
// without nanoseconds, or a date), a Unix time in seconds (with a
// fraction), or a Go duration back from now.
func parseSince(s string, now time.Time) (time.Time, error) {
	if d, err := time.ParseDuration(s); err == nil {
		return now.Add(-d), nil
	}
	for _, layout := range []string{time.RFC3339Nano, "2006-01-02T15:04:05", "2006-01-02"} {
		if t, err := time.ParseInLocation(layout, s, time.Local); err == nil {
			return t, nil
		}
	}
	if f, err := strconv.ParseFloat(s, 64); err == nil && f >= 0 {
		sec := int64(f)
		return time.Unix(sec, int64((f-float64(sec))*1e9)), nil
	}
	return time.Time{}, fmt.Errorf("--since %q: want an RFC 3339 time, a Unix time or a duration (10m)", s)
}

func stopFlags(verb string, g *lifecycle.Global) (*flagSet, *uint) {
	fs := newFlags(verb, verb+" [-t SECONDS] NAME|ID...", g.Stderr)
	t := fs.UintP("time", "t", 10, "seconds to wait after the stop signal before SIGKILL")
	return fs, t
}

func cmdStop(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs, t := stopFlags("stop", g)
	if err := parseRefs(ctx, g, fs, args, true); err != nil {
		return 125, err
	}
	if fs.NArg() == 0 {
		return 125, errors.New("name at least one container (sandy stop [-t SECONDS] NAME|ID...)")
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	return eachContainer(fs.Args(), func(ref string) error {
		return m.Stop(ctx, ref, time.Duration(*t)*time.Second)
	})
}

func cmdRestart(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs, t := stopFlags("restart", g)
	if err := parseRefs(ctx, g, fs, args, true); err != nil {
		return 125, err
	}
	if fs.NArg() == 0 {
		return 125, errors.New("name at least one container (sandy restart [-t SECONDS] NAME|ID...)")
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	return eachContainer(fs.Args(), func(ref string) error {
		if err := m.Stop(ctx, ref, time.Duration(*t)*time.Second); err != nil {
			return err
		}
		_, err := m.Start(ctx, ref)
		return err
	})
}

// eachContainer runs fn for each container named and prints the name as
// podman does; the error lists what failed.
func eachContainer(refs []string, fn func(string) error) (int, error) {
	var errs []error
	for _, ref := range refs {
		if err := fn(ref); err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(os.Stdout, ref)
	}
	if err := errors.Join(errs...); err != nil {
		return 125, err
	}
	return 0, nil
}

func cmdWait(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("wait", "wait NAME|ID...", g.Stderr)
	if err := parseRefs(ctx, g, fs, args, true); err != nil {
		return 125, err
	}
	if fs.NArg() == 0 {
		return 125, errors.New("name at least one container (sandy wait NAME|ID...)")
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	var errs []error
	for _, ref := range fs.Args() {
		code, err := m.Wait(ctx, ref)
		if err != nil {
			errs = append(errs, err)
			continue
		}
		fmt.Fprintln(os.Stdout, code)
	}
	if err := errors.Join(errs...); err != nil {
		return 125, err
	}
	return 0, nil
}

const containerStartUsage = "container start [-a] [-i] [--detach-keys KEYS] [--sig-proxy=false] NAME|ID..."

func cmdContainerStart(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("container start", containerStartUsage, g.Stderr)
	attach := fs.BoolP("attach", "a", false, "attach to the container: its output until it exits, and exit with its status")
	interactive := fs.BoolP("interactive", "i", false, "attach with stdin passed to the container (run with -i); implies -a")
	keys := fs.String("detach-keys", attachDefaultKeys, "with -a, the keys that detach, the container left running (\"\": none)")
	sigProxy := fs.Bool("sig-proxy", true, "with -a, pass the signals sandy gets on to the container (without -t)")
	if err := parseRefs(ctx, g, fs, args, true); err != nil {
		return 125, err
	}
	*attach = *attach || *interactive // as docker's start -i
	if fs.NArg() == 0 || *attach && fs.NArg() != 1 {
		return 125, errors.New("name the containers to start (with -a, one: sandy " + containerStartUsage + ")")
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	if *attach {
		return startAttach(ctx, g, m, fs.Arg(0), *interactive, *keys, *sigProxy)
	}
	code := 0
	var errs []error
	for _, ref := range fs.Args() {
		if _, err := m.Start(ctx, ref); err != nil {
			errs = append(errs, err)
			code = startStatus(err)
			continue
		}
		fmt.Fprintln(os.Stdout, ref)
	}
	return code, errors.Join(errs...)
}

// startStatus is a failed start's status: the run's own (126, 127 for a
// command that cannot be executed), else 125.
func startStatus(err error) int {
	var me *containers.MonitorError
	if errors.As(err, &me) && me.Code != 0 {
		return me.Code
	}
	return 125
}

func cmdContainerKill(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("container kill", "container kill [-s SIGNAL] NAME|ID...", g.Stderr)
	s := fs.StringP("signal", "s", "SIGKILL", "the signal to send (a name or a number)")
	if err := parseRefs(ctx, g, fs, args, true); err != nil {
		return 125, err
	}
	if fs.NArg() == 0 {
		return 125, errors.New("name at least one container (sandy container kill [-s SIGNAL] NAME|ID...)")
	}
	sig, err := parseSignal(*s)
	if err != nil {
		return 125, err
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	return eachContainer(fs.Args(), func(ref string) error { return m.Kill(ctx, ref, sig) })
}
