package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/cgroupv2"
	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/userns"
)

// The raw init: `sandy run` of a bundle or an image (and an image's
// monitor) whose set-up the host can plan as system calls
// (initproc.RawInit) forks the init itself (userns.ForkInit), as exec
// forks its process (execfork.go): no exec of the sandy binary, no second
// Go runtime, no sync socket, no config to send. The Go init runs instead
// for everything else: a create (runc's create and start: the init
// outlives sandy), a bundle's detached run, a terminal, hooks, keep-id's
// maps, and any config RawInit does not plan; and when the raw program
// fails at run time, after the failed child is gone, with --debug saying
// which op failed. SANDY_RAW_INIT=0 turns it off. With slirp4netns, the
// network (slirp4netns and the port child of published ports) joins the
// child's namespaces by handles opened while it could be (rawMaps), or,
// in the image store's user namespace, handed over by the fork
// (startRawInit).

// rawInitEnv turns the raw init off when "0".
const rawInitEnv = "SANDY_RAW_INIT"

// rawCandidate reports whether the loaded bundle may take the raw init,
// as far as create's options and the spec say before the later steps
// (the network, the id maps, the cgroup) are planned: where it may not,
// the protected handle on the sandy binary, which only the Go init needs,
// is made beside those steps (copySelfExe).
//
// An image's container (sandy run IMAGE) may take it too, with its
// bundle pending while the image helper makes the storage container:
// its init then starts once the bundle is in (startDeferred), not beside
// the helper. In the store's user namespace (SharedUserNS) the child is
// not dumpable from its start, so slirp4netns's namespaces cannot be
// opened by its pid: the fork hands them over (ForkPlan.Handles).
//
// What the start spec already says is checked before the bundle is in,
// so that a pending bundle the plan would refuse keeps starting its Go
// init beside the helper: the flags (PendingBundle.GoInit), the id maps
// (keep-id's do not make the caller root), a read-only root.
func (cr *creation) rawCandidate() bool {
	o := cr.o
	s := cr.bundle.Spec
	if o.Pending != nil && (o.Pending.GoInit != "" || cr.plan == nil || !cr.plan.RootIsCaller(uint32(os.Getuid())) || s.Root != nil && s.Root.Readonly) {
		return false
	}
	return os.Getenv(rawInitEnv) != "0" && o.owned && o.startSocket && o.ConsoleSocket == "" && o.KeepLayer == "" &&
		s.Process != nil && !s.Process.Terminal && (s.Root != nil || o.Pending != nil && !cr.pendingChecked)
}

// planRawInit plans the raw init where the container can take it
// (cr.raw), and says in --debug why not where it cannot.
func (cr *creation) planRawInit(ctx context.Context) error {
	if cr.o.Pending != nil && cr.rawCandidate() {
		// The plan needs the final bundle: the init waits for it.
		cr.deferInit = true
		cr.seccomp.start() // beside the image helper
		if cr.netOpts != nil && len(cr.netOpts.Ports) > 0 {
			cr.exeCopy = copySelfExe() // the port child's
		}
		cr.g.Debugf("the init starts once the image's bundle is in: the raw init may take it")
		return nil
	}
	why, err := cr.rawPlan(ctx)
	if err != nil {
		return err
	}
	if (cr.raw == nil || cr.netOpts != nil && len(cr.netOpts.Ports) > 0) && cr.exeCopy == nil {
		// The Go init's binary, or the port child's: the builtin
		// driver's forwarder runs sandy inside the container's user
		// namespace (slirp.Options.Exe).
		cr.exeCopy = copySelfExe()
	}
	if cr.raw == nil && why != "" {
		cr.g.Debugf("the init is sandy's Go init: %s", why)
	}
	return nil
}

func (cr *creation) rawPlan(ctx context.Context) (string, error) {
	if !cr.rawCandidate() {
		return "", nil
	}
	switch {
	case cr.plan == nil || !cr.plan.RootIsCaller(uint32(os.Getuid())):
		return "id maps that do not make the caller root in the container", nil
	}
	if _, foreign := cr.foreignRoot(); foreign {
		return "a layer directory of the container's root's own", nil
	}
	files, why, err := stdioFiles(&ExecOptions{Stdin: cr.o.Stdin, Stdout: cr.o.Stdout, Stderr: cr.o.Stderr}, &cr.undo)
	if err != nil || why != "" {
		return why, err
	}
	if err := cr.awaitSeccomp(ctx); err != nil {
		return "", err
	}
	in := initproc.RawInput{
		Spec: cr.bundle.Spec, Bundle: cr.bundle.Dir, Rootfs: cr.bundle.Rootfs,
		RootfsMode:      cr.o.RootfsMode,
		SetgroupsDenied: !cr.plan.Helpers && !cr.plan.Privileged,
		GIDMapped:       func(gid uint32) bool { _, ok := cr.plan.ToHostGID(gid); return ok },
	}
	in.ResolvConf, in.Hosts = cr.networkFiles()
	in.CgroupOwned = cr.cgroupOwned()
	in.Layers = cr.o.Layers
	if cr.unet != nil {
		files, in.Tap = cr.userNetTap(files)
	}
	if !cr.bundle.Spec.Root.Readonly || in.Layers != nil {
		// The kernel overlay's layers, in the directory makeLayerDir
		// makes (rawMaps: before the program runs).
		in.LayerDir = cr.layerDirPath()
		in.ToContainer = func(uid, gid uint32) (uint32, uint32, bool) {
			cuid, uok := cr.plan.ToContainer(uid)
			cgid, gok := cr.plan.ToContainerGID(gid)
			return cuid, cgid, uok && gok
		}
	}
	if cr.seccomp != nil {
		in.Filter = cr.seccomp.f
	}
	plan, why, warnings, err := initproc.RawInit(in)
	if err != nil || plan == nil {
		return why, err
	}
	cr.rawWarnings = warnings // said once the program ran (rawReady)
	plan.Files = files
	plan.Pdeathsig = syscall.SIGKILL
	cr.raw = plan
	return "", nil
}

// startDeferred starts the init of a pending bundle that planRawInit
// deferred, now that the bundle is in: the raw init where it plans, else
// the Go init, late (the steps it skipped: the fifo, the start, the
// hello).
func (cr *creation) startDeferred(ctx context.Context) error {
	if !cr.deferInit {
		return nil
	}
	cr.deferInit = false
	why, err := cr.rawPlan(ctx)
	if err != nil {
		return err
	}
	if cr.raw != nil {
		return cr.startRawInit(ctx)
	}
	cr.g.Debugf("the init is sandy's Go init, started once the bundle is in: %s", why)
	if cr.exeCopy == nil {
		cr.exeCopy = copySelfExe()
	}
	for _, step := range []func(context.Context) error{cr.makeFifo, cr.startInit, cr.awaitHello} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// startRawInit forks the raw init and writes its maps, or starts it in
// the image store's user namespace, which has them (SharedUserNS).
func (cr *creation) startRawInit(ctx context.Context) error {
	joined := false
	if cr.o.SharedUserNS != nil {
		ns, why := cr.o.SharedUserNS(cr.plan)
		if ns != nil {
			// Joined by the fork; slirp4netns joins it too (rawUserNS,
			// closed once it has).
			if cr.netOpts != nil {
				cr.rawUserNS = ns
				cr.undo.add(func() { ns.Close() })
			} else {
				defer ns.Close()
			}
			p := cr.raw
			p.Joins = []userns.NSJoin{{File: ns, Flag: unix.CLONE_NEWUSER, Name: "user"}}
			p.Unshare, p.Cloneflags = p.Cloneflags&^unix.CLONE_NEWUSER, 0
			// The child is not dumpable from its start: its namespaces
			// come from the fork itself (rawNamespaces opens them by
			// pid otherwise).
			p.Handles = cr.netOpts != nil
			p.HandlesPid = p.Handles && len(cr.netOpts.Ports) > 0
			joined = true
		} else {
			cr.g.Debugf("the raw init makes a user namespace of its own: no shared one (%s)", why)
		}
	}
	f, err := userns.ForkInit(cr.raw, func(pid int) error { return cr.rawMaps(ctx, pid, joined) })
	if err != nil {
		return err
	}
	for _, h := range []*os.File{f.NetNS, f.PidNS} {
		if h != nil {
			cr.undo.add(func() { h.Close() })
		}
	}
	if joined {
		cr.rawNetNS, cr.rawPidNS = f.NetNS, f.PidNS
	}
	cr.forked = f
	cr.c.Pid = f.Pid
	cr.c.PidStart, _, _ = state.ProcStart(f.Pid)
	switch {
	case cr.o.Layers != nil:
		cr.c.RootfsMode = "direct" // the image's own layer, as overlay.Mount says of it
	case cr.bundle.Spec.Root.Readonly:
		cr.c.RootfsMode = "bind"
	default:
		cr.c.RootfsMode = "overlay"
	}
	if joined {
		cr.g.Debugf("the init started in the image store's user namespace (the same maps): no newuidmap, newgidmap or gate")
	}
	cr.undo.add(cr.stopInit)
	// An interrupt kills the child through its pidfd (never another
	// process that got its pid): its status pipe then ends, and the step
	// that waits on it returns.
	if fd, err := unix.PidfdOpen(f.Pid, 0); err == nil {
		pidfd := os.NewFile(uintptr(fd), "init-pidfd")
		stop := context.AfterFunc(ctx, func() { _ = unix.PidfdSendSignal(int(pidfd.Fd()), unix.SIGKILL, nil, 0) })
		cr.stopRaw = sync.OnceFunc(func() { stop(); pidfd.Close() })
		cr.undo.add(cr.stopRaw)
	}
	cr.g.Debugf("the init is forked: %d system calls planned for its root filesystem, no second Go start", len(cr.raw.Program))
	if cr.unet != nil {
		cr.startUserNet()
	}
	if cr.netOpts == nil {
		return nil
	}
	// slirp4netns, by the handles on the child's namespaces, beside the
	// child's program; its files go into the state directory, which it
	// waits for.
	if err := cr.awaitState(); err != nil {
		return err
	}
	if len(cr.netOpts.Ports) > 0 && cr.exeCopy == nil && cr.exe == nil {
		// An image's -P: its ports are known from its config, after
		// planRawInit.
		cr.exeCopy = copySelfExe()
	}
	if cr.exeCopy != nil && cr.exe == nil {
		exe, how, err := cr.exeCopy.take()
		cr.exeCopy = nil // the Go init that may run instead makes its own
		if err != nil {
			return err
		}
		cr.g.Debugf("the port child runs %s", how)
		cr.keepExe(exe)
	}
	return cr.startNetwork(ctx)
}

// rawMaps writes the raw init's maps and, for slirp4netns, opens its
// network and user namespaces while it is still dumpable: from its maps on
// it is not, and its namespaces cannot be opened by its pid. A writable
// root's layer directory is made first: the program makes the overlay's
// directories in it as soon as it has its maps. A cgroup of its own: the
// child is moved into it (the cgroup's Apply, beside the maps) before
// the program runs, whose first op makes its cgroup namespace there.
//
// In the image store's user namespace (joined) there are no maps to
// write, and the namespaces come from the fork (ForkPlan.Handles).
func (cr *creation) rawMaps(ctx context.Context, pid int, joined bool) error {
	if !cr.bundle.Spec.Root.Readonly || cr.o.Layers != nil {
		if err := cr.makeLayerDir(ctx); err != nil {
			return fmt.Errorf("making the layer directory: %w", err)
		}
	}
	if cr.cg != nil && cr.cg.Kind() != cgroupv2.KindNone {
		cr.startApply(ctx, pid)
	}
	if !joined {
		if err := cr.rawNamespaces(pid); err != nil {
			return err
		}
		if err := cr.plan.Apply(pid); err != nil {
			return err
		}
	}
	if cr.early != nil {
		if err := cr.early.wait(); err != nil {
			return fmt.Errorf("putting the init (pid %d) into its cgroup: %w", pid, err)
		}
		// A systemd scope ends with its last process: the sentinel
		// keeps it from now on, so that the Go init that runs where the
		// program fails (its child gone) finds the scope to join.
		if err := cr.startSentinel(ctx); err != nil {
			return err
		}
	}
	return nil
}

// rawNamespaces opens, for slirp4netns, the child's network and user
// namespaces, and for the port child of published ports its pid
// namespace too (rawMaps).
func (cr *creation) rawNamespaces(pid int) error {
	if cr.netOpts == nil {
		return nil
	}
	type handle struct {
		name string
		f    **os.File
	}
	handles := []handle{{"net", &cr.rawNetNS}, {"user", &cr.rawUserNS}}
	if len(cr.netOpts.Ports) > 0 {
		handles = append(handles, handle{"pid", &cr.rawPidNS})
	}
	for _, ns := range handles {
		f, err := os.Open(fmt.Sprintf("/proc/%d/ns/%s", pid, ns.name))
		if err != nil {
			return fmt.Errorf("opening the container's %s namespace: %w", ns.name, err)
		}
		*ns.f = f
		cr.undo.add(func() { f.Close() })
	}
	return nil
}

// rawReady waits until the raw init has built the root (or failed), then
// sets process.rlimits on it, as the Go init asks the host to.
func (cr *creation) rawReady(ctx context.Context) error {
	t0 := time.Now()
	err := cr.forked.AwaitReady()
	if err != nil {
		cr.forked = nil
		if ctx.Err() != nil {
			return context.Cause(ctx)
		}
		var pe *userns.ProgramError
		if errors.As(err, &pe) {
			return &rawFailed{err: pe}
		}
		var fe *userns.ForkError
		if errors.As(err, &fe) {
			return cr.rawForkFailure(fe)
		}
		return err
	}
	cr.g.Debugf("init: the raw program: %v", time.Since(t0).Round(10*time.Microsecond))
	// The Go init's warnings, once: where the program fails, the Go init
	// that runs instead says them itself.
	for _, w := range cr.rawWarnings {
		cr.g.Warn(w)
	}
	if err := applyRlimits(cr.c.Pid, cr.bundle.Spec.Process.Rlimits); err != nil {
		return fmt.Errorf("setting rlimits: %w", err)
	}
	return nil
}

// rawForkFailure says a raw child's failure in the Go init's words, with
// the container's maps for the hint on an unmapped process.user.
func (cr *creation) rawForkFailure(fe *userns.ForkError) error {
	return initproc.ForkFailure(initproc.ForkInput{Process: cr.bundle.Spec.Process}, cr.raw, fe,
		mapLines(cr.plan.UIDs), mapLines(cr.plan.GIDs))
}

// mapLines is an id map as /proc/PID/uid_map shows it.
func mapLines(m []specs.LinuxIDMapping) string {
	var b strings.Builder
	for _, l := range m {
		fmt.Fprintf(&b, "%d %d %d\n", l.ContainerID, l.HostID, l.Size)
	}
	return b.String()
}

// rawFailed is a raw program that failed: the Go init runs instead.
type rawFailed struct{ err *userns.ProgramError }

func (e *rawFailed) Error() string { return "the raw init's program: " + e.err.Error() }

// releaseRaw lets the raw init exec the process and waits until it has.
func (cr *creation) releaseRaw() error {
	err := cr.forked.Release()
	if cr.stopRaw != nil {
		cr.stopRaw()
	}
	cr.forked = nil // exec'd, or failed and reaped
	var fe *userns.ForkError
	if errors.As(err, &fe) {
		return cr.rawForkFailure(fe)
	}
	return err
}

// goInitInstead starts the Go init where the raw program failed (its
// child is gone): the steps from the exec fifo to the config, as create
// runs them.
func (cr *creation) goInitInstead(ctx context.Context) error {
	cr.raw = nil
	cr.c.Pid, cr.c.PidStart, cr.c.RootfsMode = 0, 0, ""
	if cr.stopRaw != nil {
		cr.stopRaw()
		cr.stopRaw = nil
	}
	// The raw child made this process not dumpable (its memory was
	// ours): the Go init's start needs it dumpable, as before.
	userns.Redumpable()
	if cr.exeCopy == nil {
		cr.exeCopy = copySelfExe()
	}
	if cr.net != nil {
		// Started in the raw child's network namespace, gone with it.
		_ = cr.net.Close()
		cr.net = nil
	}
	for _, step := range []func(context.Context) error{cr.makeFifo, cr.startInit, cr.awaitHello, cr.rejoinCgroup, cr.configureInit, cr.startNetwork} {
		if err := step(ctx); err != nil {
			return err
		}
	}
	return nil
}

// rejoinCgroup puts the Go init that runs instead of a failed raw program
// into the cgroup the raw child was moved into (rawMaps): a systemd
// scope exists by now (its sentinel keeps it), so it is joined, not
// started again; a cgroupfs cgroup the Go init was cloned into already.
// The Go init makes its cgroup namespace once configured, after this.
func (cr *creation) rejoinCgroup(ctx context.Context) error {
	if cr.early == nil {
		return nil
	}
	if err := cr.cg.Join(ctx, cr.c.Pid); err != nil {
		return fmt.Errorf("putting the init (pid %d) into its cgroup: %w", cr.c.Pid, err)
	}
	return nil
}

// waitInit waits for the container's init, the raw init or the Go init.
func (cr *creation) waitInit() (*os.ProcessState, error) {
	if cr.raw != nil {
		p, err := os.FindProcess(cr.c.Pid)
		if err != nil {
			return nil, err
		}
		return p.Wait()
	}
	return cr.child.Wait(cr.c.Pid)
}
