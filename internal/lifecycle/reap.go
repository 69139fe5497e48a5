package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/fds"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/slirp"
)

// The end of a foreground `sandy run`, once its process's exit status is
// known. What must be done before the status is returned is done here:
// the host ports and the network's sockets are closed (the next run may
// publish the same port), the cgroup is removed (its name, a systemd scope
// or a cgroupfs leaf, is the container's id), and the state directory is
// retired, renamed under its lock to a hidden name, so that the id is free
// at once. What only takes time is handed to a reaper: waiting for
// slirp4netns and the port child to exit (15-40 ms), removing the
// container's layer (a user-namespace helper when the container made files
// as a subordinate id) and the retired directory. `sandy run` returns the
// status as soon as the reaper is started.
//
// The reaper is the sealed sandy binary the init ran from, in its own
// session, with stdio on /dev/null, and inherits exactly: fd 3, the state
// directory's locked file (the lock is held until the reaper exits,
// however it exits); fd 4, the binary; fds 5..., pidfds of the network's
// processes. A retired directory whose lock nobody holds (its reaper was
// killed, or `sandy run` died between the rename and the start) is
// finished by the next sandy command that creates a container or lists
// them (collectRetired); `sandy list` also waits, up to settleTimeout, for
// the reapers still at work, so that what it prints and what is left on
// disk agree. A reaper never touches what is named by the container's id
// (the cgroup): a new container may have that id already.
//
// Poststop hooks, --keep-layer and a fuse-overlayfs root keep the whole
// teardown on the wait path, as before: the hooks must run before run
// returns (the runtime spec: before the delete operation returns), after
// the network is gone; the kept layer must be where it was asked for when
// run returns; and a fuse-overlayfs that outlived the container (no pid
// namespace of its own) is found by its layer's path, which the retired
// directory no longer has.

// ReapRole is the hidden argv[1] of the reaper.
const ReapRole = "_reap"

// settleTimeout bounds how long `sandy list` waits for the reapers at work.
const settleTimeout = 5 * time.Second

// errGone: the container was deleted by another command while its `sandy
// run` was waiting; nothing is left to tear down.
var errGone = errors.New("the container is gone")

// handsOff reports whether c's teardown may leave the wait path: it has no
// poststop hooks, keeps no layer and its root is not fuse-overlayfs.
func handsOff(c *state.Container) bool {
	return (c.Hooks == nil || len(c.Hooks.Poststop) == 0) && c.KeepLayer == "" && overlay.Mode(c.RootfsMode) != overlay.ModeFuse
}

// runEnd is one foreground run's teardown in progress: the named steps
// share it.
type runEnd struct {
	g      *Global
	cr     *creation
	lock   *state.Lock
	pidfds []*os.File // the network's processes, still exiting
	dir    string     // the retired state directory
	errs   []error
}

// endRun tears down a foreground run whose process has exited and hands
// the rest to a reaper. A step that fails leaves the rest to be done here,
// synchronously, as before (finishHere).
func endRun(ctx context.Context, g *Global, cr *creation) error {
	e := &runEnd{g: g, cr: cr}
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"ending the network", e.endNetwork},
		{"locking the state", e.lockState},
		{"removing the cgroup", e.removeCgroup},
		{"retiring the state", e.retireState},
		{"finishing the teardown", e.finish},
	}
	for _, s := range steps {
		t0 := time.Now()
		err := s.fn(ctx)
		g.Debugf("%s: %v", s.name, time.Since(t0).Round(10*time.Microsecond))
		if err != nil {
			e.finishHere(ctx)
			if errors.Is(err, errGone) {
				return nil
			}
			return errors.Join(append(e.errs, fmt.Errorf("%s: %w", s.name, err))...)
		}
	}
	return errors.Join(e.errs...)
}

// endNetwork closes the host ports and the network's sockets and tells
// slirp4netns and the port child to exit, without waiting for them.
func (e *runEnd) endNetwork(context.Context) error {
	e.cr.closeUserNet()
	if e.cr.net == nil {
		return nil
	}
	pidfds, err := e.cr.net.Abandon()
	e.pidfds = pidfds
	if err != nil {
		// Reported; the rest of the teardown goes on.
		e.errs = append(e.errs, fmt.Errorf("ending the network: %w", err))
	}
	return nil
}

func (e *runEnd) lockState(context.Context) error {
	lock, err := e.cr.root.Lock(e.cr.c.ID)
	if errors.Is(err, state.ErrNotExist) {
		return errGone
	}
	if err != nil {
		return err
	}
	e.lock = lock
	return nil
}

// removeCgroup ends whatever is left of the container (the init is gone;
// without a pid namespace its children may not be) and removes its cgroup,
// whose name the next container of this id takes. Its error is reported;
// the teardown goes on, as destroy's does.
func (e *runEnd) removeCgroup(ctx context.Context) error {
	c := e.cr.c
	if c.Pid != 0 && state.Alive(c.Pid, c.PidStart) {
		_ = signalInit(c, unix.SIGKILL)
		waitGone(ctx, c.Pid, c.PidStart)
	}
	if err := destroyCgroup(ctx, c); err != nil {
		e.errs = append(e.errs, fmt.Errorf("removing the cgroup: %w", err))
	}
	return nil
}

func (e *runEnd) retireState(context.Context) error {
	dir, err := e.cr.root.Retire(e.cr.c.ID)
	if err != nil {
		return err
	}
	e.dir = dir
	return nil
}

// finish removes what the retired directory holds here when that is
// quick (quick), and otherwise starts the reaper on it.
func (e *runEnd) finish(ctx context.Context) error {
	if e.quick() {
		// The network's processes were told to exit (endNetwork); with
		// nothing else left to wait for, they are killed now rather than
		// given a reaper's grace.
		slirp.KillProcesses(e.pidfds)
		e.pidfds = nil
		err := finishQuick(e.dir, e.cr.c)
		if err == nil {
			e.g.Debugf("the teardown is finished here: the network's processes killed, nothing written in the layer")
			e.lock.Unlock()
			e.lock = nil
			return nil
		}
		// Whatever is left (an entry of a subordinate id, say) is the
		// reaper's, which goes on from where this stopped.
		e.g.Debugf("finishing the teardown here: %v; the reaper goes on", err)
	}
	e.g.Debugf("the reaper finishes the teardown")
	return e.startReaper(ctx)
}

// quick reports whether the rest of the teardown is a handful of system
// calls that this process may make itself rather than start the reaper
// (a Go process: some 300 page faults and 3-5 ms of CPU, which a 2-core
// machine's next command shares, and 0.2 ms of the user's wait for its
// exec): nothing the container wrote in its layer (no upper directory, a
// read-only root's bind, or an empty one), whose removal could take as
// long as the container wrote. The network's processes need no reaper
// to wait for them: they are killed (finish).
func (e *runEnd) quick() bool {
	c := e.cr.c
	if c.LayerDir == "" {
		return true
	}
	upper := filepath.Join(rebaseRetired(e.dir, c, c.LayerDir), "upper")
	f, err := os.Open(upper)
	if errors.Is(err, fs.ErrNotExist) {
		return true
	}
	if err != nil {
		return false
	}
	defer f.Close()
	names, _ := f.Readdirnames(1)
	return len(names) == 0
}

// finishQuick removes the retired directory dir of c, whose layer holds
// nothing the container wrote (quick): the layer's directories, its
// temporary directory, the directory. An entry it may not remove (a
// subordinate id's) is left, with the error, for the reaper, which
// removes such entries in a user namespace.
func finishQuick(dir string, c *state.Container) error {
	if c.LayerDir != "" {
		if err := overlay.CleanupMode(rebaseRetired(dir, c, c.LayerDir), overlay.Mode(c.RootfsMode)); err != nil {
			return err
		}
	}
	if err := removeLayerTemp(c); err != nil {
		return err
	}
	return removeRetired(dir)
}

// startReaper starts the reaper on the retired directory and gives it the
// lock and the network's pidfds; this process keeps neither.
func (e *runEnd) startReaper(context.Context) error {
	exe := e.cr.exe
	if exe == nil {
		// The raw init took no handle on the binary (nothing of sandy's
		// runs in the container): the reaper runs on the host, after the
		// container's end, from this process's own binary.
		self, err := os.Open("/proc/self/exe")
		if err != nil {
			return fmt.Errorf("opening the sandy binary for the reaper: %w", err)
		}
		defer self.Close()
		exe = self
	}
	// Fds this process inherited without close-on-exec (a caller's pipe)
	// must not live on in the reaper: a caller reading that pipe to its
	// end would wait for the reaper. ExtraFiles are dup2'ed into place in
	// the child, which clears the flag on them.
	// (The CLI marked them at its start; the monitor, which runs
	// lifecycle.Run too, did not.)
	if err := fds.CloexecFrom(3); err != nil {
		return fmt.Errorf("marking fds close-on-exec: %w", err)
	}
	lockFile := e.lock.Detach()
	files := append([]*os.File{lockFile, exe}, e.pidfds...) // fds 3, 4, 5...
	cmd := &exec.Cmd{
		Path: "/proc/self/fd/4", // exe, resolved in the child after the fds are in place
		Args: []string{"sandy", ReapRole, e.dir, strconv.Itoa(len(e.pidfds))},
		// The caller's PATH: the layer's removal may run newuidmap and
		// newgidmap (removeInUserNS), found where this process finds them.
		Env:         []string{"PATH=" + os.Getenv("PATH"), "GOMAXPROCS=1"},
		Dir:         "/",
		ExtraFiles:  files,
		SysProcAttr: &syscall.SysProcAttr{Setsid: true},
	}
	err := cmd.Start()
	if err != nil {
		e.lock = state.LockFile(lockFile) // still ours: finishHere unlocks it
		return err
	}
	_ = cmd.Process.Release()
	lockFile.Close()
	e.lock = nil
	for _, f := range e.pidfds {
		f.Close()
	}
	e.pidfds = nil
	return nil
}

// finishHere does, in this process, what the steps that failed or did not
// run would have handed to the reaper.
func (e *runEnd) finishHere(ctx context.Context) {
	switch {
	case e.lock == nil:
		// Gone (deleted meanwhile) or handed off: nothing is ours.
		for _, f := range e.pidfds {
			f.Close()
		}
		return
	case e.dir == "":
		slirp.EndProcesses(e.pidfds)
		if err := destroy(ctx, e.g, e.cr.root, e.cr.c); err != nil {
			e.errs = append(e.errs, err)
		}
	default:
		slirp.EndProcesses(e.pidfds)
		if err := finishRetired(e.g, e.dir); err != nil {
			e.errs = append(e.errs, err)
		}
	}
	e.pidfds = nil
	e.lock.Unlock()
}

// ReapMain is the reaper: `sandy _reap DIR N`, with the lock on fd 3, the
// binary on fd 4 and N pidfds from fd 5 (startReaper). It waits for the
// network's processes, then removes what the retired directory DIR still
// holds. A reaper that fails leaves DIR; its lock ends with it, and the
// next sandy command finishes the job (collectRetired).
func ReapMain(args []string) int {
	if len(args) != 2 {
		fmt.Fprintln(os.Stderr, "usage: sandy _reap DIR NPIDFDS")
		return 2
	}
	n, err := strconv.Atoi(args[1])
	if err != nil || n < 0 || n > 8 {
		fmt.Fprintln(os.Stderr, "usage: sandy _reap DIR NPIDFDS")
		return 2
	}
	// None of these goes to the layer helper finishRetired may start.
	for fd := 3; fd < 5+n; fd++ {
		unix.CloseOnExec(fd)
	}
	lock := os.NewFile(3, "state-lock")
	defer lock.Close()
	os.NewFile(4, "sandy").Close()
	pidfds := make([]*os.File, n)
	for i := range pidfds {
		fd := 5 + i
		_ = unix.SetNonblock(fd, true) // for the runtime poller (slirp.EndProcesses)
		pidfds[i] = os.NewFile(uintptr(fd), "pidfd")
	}
	slirp.EndProcesses(pidfds)
	if err := finishRetired(&Global{Stderr: io.Discard}, args[0]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

// finishRetired removes what a retired state directory still holds: the
// network's state files, the layer (in a user namespace where the
// container made files as a subordinate id) and the directory itself. It
// is idempotent. Paths the state recorded under the container's old state
// directory are taken from the retired one; nothing named by the id is
// touched.
func finishRetired(g *Global, dir string) error {
	c, err := state.LoadDir(dir)
	if errors.Is(err, fs.ErrNotExist) {
		// Already removed but for the directory, or never a container's.
		return removeRetired(dir)
	}
	if err != nil {
		return err
	}
	return finishRetiredContainer(g, dir, c)
}

// rebaseRetired is the path p, which the state of c recorded under the
// container's state directory, under the retired directory dir instead;
// a path elsewhere is p.
func rebaseRetired(dir string, c *state.Container, p string) string {
	old := state.RetiredPath(dir, c)
	if p == old || strings.HasPrefix(p, old+"/") {
		return dir + p[len(old):]
	}
	return p
}

// finishRetiredContainer is finishRetired for the container c of the
// retired directory dir, whose paths it rebases (c is changed).
func finishRetiredContainer(g *Global, dir string, c *state.Container) error {
	rebase := func(p string) string { return rebaseRetired(dir, c, p) }
	c.LayerDir = rebase(c.LayerDir)
	var errs []error
	if len(c.Network) > 0 {
		var ns networkState
		if err := json.Unmarshal(c.Network, &ns); err == nil && ns.StateDir != "" {
			ns.StateDir = rebase(ns.StateDir)
			c.Network, _ = json.Marshal(ns)
		}
		if err := stopNetwork(c); err != nil {
			errs = append(errs, err)
		}
	}
	if err := removeLayer(g, c); err != nil {
		errs = append(errs, err)
	}
	if len(errs) == 0 {
		if err := removeRetired(dir); err != nil {
			errs = append(errs, err)
		}
	}
	if err := errors.Join(errs...); err != nil {
		return fmt.Errorf("finishing the teardown of container %s (%s): %w", c.ID, dir, err)
	}
	return nil
}

func removeRetired(dir string) error {
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}

// collectRetired finishes the retired state directories whose reaper is
// gone. With settle > 0 it first waits, up to settle in all, for the
// reapers still at work (`sandy list`); without, it leaves their
// directories to them (`sandy run`, which must not wait for the previous
// run's teardown).
func collectRetired(g *Global, root *state.Root, settle time.Duration) {
	deadline := time.Now().Add(settle)
	for _, dir := range root.Retired() {
		lock, ok := state.TryLock(dir)
		for !ok && time.Now().Before(deadline) {
			if _, err := os.Lstat(dir); err != nil {
				break // its reaper has finished
			}
			time.Sleep(2 * time.Millisecond)
			lock, ok = state.TryLock(dir)
		}
		if !ok {
			continue // its reaper is at work, or has finished
		}
		g.Debugf("finishing the teardown left in %s by a dead reaper", dir)
		if err := finishRetired(g, dir); err != nil {
			g.Debugf("%v", err)
		}
		lock.Unlock()
	}
}
