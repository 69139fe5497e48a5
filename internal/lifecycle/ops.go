package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"text/tabwriter"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/internal/state"
)

// open locks and loads a container.
func open(g *Global, id string) (*state.Root, *state.Container, *state.Lock, error) {
	root, err := state.OpenRoot(g.Root)
	if err != nil {
		return nil, nil, nil, err
	}
	lock, err := root.Lock(id)
	if err != nil {
		return nil, nil, nil, err
	}
	c, err := root.Load(id)
	if err != nil {
		lock.Unlock()
		return nil, nil, nil, err
	}
	return root, c, lock, nil
}

// Start runs the process of a created container: it opens the exec fifo,
// which releases the init into execve.
func Start(ctx context.Context, g *Global, id string) error {
	root, c, lock, err := open(g, id)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	switch st := root.Status(c); st {
	case state.Created:
		if c.NoProcess {
			// Nothing can ever run in it: it stops here (the spec: start
			// MUST fail when process is not set).
			_ = signalInit(c, unix.SIGKILL)
			waitGone(ctx, c.Pid, c.PidStart)
			return fmt.Errorf("container %s has no process (config.json sets none): nothing to start", id)
		}
	case state.Stopped:
		return fmt.Errorf("container %s is stopped: cannot start it (delete it and create it again)", id)
	default:
		return fmt.Errorf("container %s is %s: only a created container can be started", id, st)
	}
	if err := releaseInit(ctx, root, c); err != nil {
		return err
	}
	runPoststart(g, c)
	return nil
}

// releaseStarted releases the init of a container that this process
// created with a start socket (`sandy run`): one byte on it, then the same
// reading as the fifo's until execve. An init that dies closes its end,
// which ends the read too.
func releaseStarted(f *os.File, c *state.Container) error {
	if _, err := f.Write([]byte{0}); err != nil {
		return fmt.Errorf("container %s: releasing its init (pid %d): %w", c.ID, c.Pid, err)
	}
	return awaitExec(f, c.ID, initproc.InitReadyTimeout)
}

func releaseInit(ctx context.Context, root *state.Root, c *state.Container) error {
	p := root.FifoPath(c.ID)
	type result struct {
		f   *os.File
		err error
	}
	ch := make(chan result, 1)
	go func() {
		f, err := os.OpenFile(p, os.O_RDONLY|unix.O_CLOEXEC, 0)
		ch <- result{f, err}
	}()
	read := func(r result) error {
		if r.err != nil {
			return fmt.Errorf("opening the exec fifo: %w", r.err)
		}
		defer r.f.Close()
		// Removed once read, as runc does: the state is "created" until
		// the process runs.
		defer os.Remove(p)
		return awaitExec(r.f, c.ID, initproc.InitReadyTimeout)
	}
	tick := time.NewTicker(50 * time.Millisecond)
	defer tick.Stop()
	for {
		select {
		case r := <-ch:
			return read(r)
		case <-tick.C:
			if state.Alive(c.Pid, c.PidStart) {
				continue
			}
			// The process may have started and already exited.
			select {
			case r := <-ch:
				return read(r)
			default:
			}
			// Unblock the goroutine's open, then report.
			if w, err := os.OpenFile(p, os.O_WRONLY|unix.O_NONBLOCK, 0); err == nil {
				w.Close()
			}
			return fmt.Errorf("container %s: its init (pid %d) is gone", c.ID, c.Pid)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// awaitExec reads the exec fifo f of container id, whose init `start` has
// just released, until EOF. EOF comes when the init execs the process
// (the fifo is close-on-exec there), or dies: only then has the process
// been executed, which poststart hooks must follow. An init that fails
// first (a startContainer hook, execve) writes FifoFailed. One that execs
// sandy's own pid 1 (`run --init`) writes FifoHandedOn and hands its end
// on: EOF then comes once pid 1's signal handlers exist (pid1.Main), so
// that no stop signal sent after `start` (or `run -d`) returns can kill
// the Go program or be dropped; that wait is bounded by ready.
func awaitExec(f *os.File, id string, ready time.Duration) error {
	var b [1]byte
	n, err := f.Read(b[:])
	if n != 1 {
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading the exec fifo: %w", err)
		}
		return fmt.Errorf("container %s: the init exited before it could start the process", id)
	}
	handedOn := false
	for {
		n, err := f.Read(b[:])
		switch {
		case n == 1 && b[0] == initproc.FifoHandedOn && !handedOn:
			handedOn = true
			if err := f.SetReadDeadline(time.Now().Add(ready)); err != nil {
				return fmt.Errorf("reading the exec fifo: %w", err)
			}
		case n == 1:
			return fmt.Errorf("container %s: its init failed after start, before running the process (its error is on the container's stderr)", id)
		case errors.Is(err, io.EOF):
			return nil
		case errors.Is(err, os.ErrDeadlineExceeded):
			return fmt.Errorf("container %s: its pid 1 (sandy's init, --init) did not install its signal handlers within %v of its execve: is it stopped, or the machine starved? (docs/troubleshooting.md#init-ready)", id, ready)
		case err != nil:
			return fmt.Errorf("reading the exec fifo: %w", err)
		}
	}
}

// State prints the runtime-spec state JSON of id.
func State(g *Global, id string, w io.Writer) error {
	root, c, lock, err := open(g, id)
	if err != nil {
		return err
	}
	lock.Unlock()
	out, err := json.MarshalIndent(root.OCIState(c), "", "  ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", out)
	return err
}

// Kill sends sig to the container's init, or with all to every process in
// its cgroup (killAll). Signal 0 sends nothing and checks that the init
// (or, with all, the cgroup) can be signalled, as kill(2) and runc do.
func Kill(g *Global, id string, sig unix.Signal, all bool) error {
	root, c, lock, err := open(g, id)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	st := root.Status(c)
	if all {
		return killAll(g, c, st, sig)
	}
	if st != state.Created && st != state.Running && st != state.Paused {
		return notRunning(id, "kill", st)
	}
	return signalInit(c, sig)
}

// signalInit signals the init through a pidfd, so a reused pid can never
// be hit.
func signalInit(c *state.Container, sig unix.Signal) error {
	fd, err := unix.PidfdOpen(c.Pid, 0)
	if err != nil {
		return fmt.Errorf("pidfd_open %d: %w", c.Pid, err)
	}
	defer unix.Close(fd)
	if !state.Alive(c.Pid, c.PidStart) {
		return notRunning(c.ID, "kill", state.Stopped)
	}
	if err := unix.PidfdSendSignal(fd, sig, nil, 0); err != nil {
		return fmt.Errorf("signalling pid %d: %w", c.Pid, err)
	}
	return nil
}

// Delete removes a stopped container (force: kills a running one first).
func Delete(ctx context.Context, g *Global, id string, force bool) error {
	root, c, lock, err := open(g, id)
	if err != nil {
		if force && errors.Is(err, state.ErrNotExist) {
			return nil
		}
		return err
	}
	defer lock.Unlock()
	st := root.Status(c)
	if st != state.Stopped && st != state.Creating && !force {
		return fmt.Errorf("container %s is %s: stop it first or use delete --force", id, st)
	}
	return destroy(ctx, g, root, c)
}

// CollectTemp removes the state root's temporary directories whose
// creator died before it renamed one into place (state.Root.CollectTemp):
// a run -d whose monitor was killed while it made the container's state
// directory, which the caller then finds no state of to delete.
func CollectTemp(g *Global) {
	if root, err := state.OpenRoot(g.Root); err == nil {
		root.CollectTemp()
	}
}

// destroy kills whatever is left of c and removes everything it owns. It
// is idempotent: a second call, or one after a crash, finishes the job.
func destroy(ctx context.Context, g *Global, root *state.Root, c *state.Container) error {
	if c.Pid != 0 && state.Alive(c.Pid, c.PidStart) {
		_ = signalInit(c, unix.SIGKILL)
		waitGone(ctx, c.Pid, c.PidStart)
	}
	var errs []error
	runPoststop(g, c)
	if err := stopNetwork(c); err != nil {
		errs = append(errs, err)
	}
	if err := destroyCgroup(ctx, c); err != nil {
		errs = append(errs, fmt.Errorf("removing the cgroup: %w", err))
	}
	if err := removeLayer(g, c); err != nil {
		errs = append(errs, err)
	}
	if err := root.Remove(c.ID); err != nil {
		errs = append(errs, fmt.Errorf("removing state of %s: %w", c.ID, err))
	}
	return errors.Join(errs...)
}

func waitGone(ctx context.Context, pid int, start uint64) {
	deadline := time.Now().Add(5 * time.Second)
	for state.Alive(pid, start) && time.Now().Before(deadline) && ctx.Err() == nil {
		time.Sleep(10 * time.Millisecond)
	}
}

// collectLeftovers deletes containers whose `sandy run` died without
// cleaning up (kill -9): their owner process is gone. It also finishes the
// retired state directories of finished runs whose reaper is gone, after
// waiting up to settle for those still at work (collectRetired).
func collectLeftovers(g *Global, root *state.Root, settle time.Duration) {
	root.CollectTemp()
	collectRetired(g, root, settle)
	ids, err := root.IDs()
	if err != nil {
		return
	}
	for _, id := range ids {
		c, err := root.Load(id)
		if err != nil || c.Owner == 0 || state.Alive(c.Owner, c.OwnerStart) {
			continue
		}
		lock, err := root.Lock(id)
		if err != nil {
			continue
		}
		g.Debugf("collecting container %s left by a dead `sandy run` (pid %d)", id, c.Owner)
		_ = destroy(context.Background(), g, root, c)
		lock.Unlock()
	}
}

// List prints the containers: a table, JSON, or ids only (quiet).
func List(g *Global, w io.Writer, format string, quiet bool) error {
	root, err := state.OpenRoot(g.Root)
	if err != nil {
		return err
	}
	collectLeftovers(g, root, settleTimeout)
	ids, err := root.IDs()
	if err != nil {
		return err
	}
	var list []listEntry
	for _, id := range ids {
		c, err := root.Load(id)
		if err != nil {
			continue
		}
		st := root.Status(c)
		pid := c.Pid
		if st == state.Stopped {
			pid = 0
		}
		list = append(list, listEntry{Version: specs.Version, ID: id, Pid: pid, Status: st, Bundle: c.Bundle, Rootfs: c.Rootfs,
			Created: c.Created, Owner: fmt.Sprint(os.Getuid()), Annotations: c.Annotations})
	}
	return writeList(w, list, format, quiet)
}

// listEntry is one container of `list --format json`: runc's
// containerState (runc list.go), with its keys in its order.
type listEntry struct {
	// Version is the runtime-spec version, as in sandy's state.
	Version     string            `json:"ociVersion"`
	ID          string            `json:"id"`
	Pid         int               `json:"pid"`
	Status      string            `json:"status"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Owner       string            `json:"owner"`
}

// writeList prints list as `list` does: ids only, JSON, or a table.
func writeList(w io.Writer, list []listEntry, format string, quiet bool) error {
	switch {
	case quiet:
		for _, e := range list {
			fmt.Fprintln(w, e.ID)
		}
	case format == "json":
		if list == nil {
			list = []listEntry{}
		}
		return json.NewEncoder(w).Encode(list)
	case format == "table" || format == "":
		tw := tabwriter.NewWriter(w, 12, 1, 3, ' ', 0)
		fmt.Fprintln(tw, "ID\tPID\tSTATUS\tBUNDLE\tCREATED\tOWNER")
		for _, e := range list {
			fmt.Fprintf(tw, "%s\t%d\t%s\t%s\t%s\t%s\n", e.ID, e.Pid, e.Status, e.Bundle, e.Created.Format(time.RFC3339Nano), e.Owner)
		}
		return tw.Flush()
	default:
		return fmt.Errorf("--format %q: want table or json", format)
	}
	return nil
}

// Holds reports whether the runtime holds state for id (a container in
// any status, one being created included), without the lock and the
// reads of StatusOf: the dispatch of exec, kill and start asks only
// whose an id is, and exec loads the container itself.
func Holds(g *Global, id string) (bool, error) {
	root, err := state.OpenRoot(g.Root)
	if err != nil {
		return false, err
	}
	return root.Holds(id)
}

// StatusOf is the runtime status of id (created, running, paused,
// stopped, creating), or "" when the runtime holds no state for it.
func StatusOf(g *Global, id string) (string, error) {
	root, c, lock, err := open(g, id)
	if errors.Is(err, state.ErrNotExist) {
		return "", nil
	}
	if err != nil {
		return "", err
	}
	defer lock.Unlock()
	return root.Status(c), nil
}
