package lifecycle

import (
	"context"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/cgroupv2"
	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/internal/spec"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/seccomp"
	"github.com/sandy-rt/sandy/slirp"
	"github.com/sandy-rt/sandy/userns"
)

// CreateOptions are the options of create (and of run, which adds its own).
type CreateOptions struct {
	ID            string
	Bundle        string
	PidFile       string
	ConsoleSocket string
	RootfsMode    string // --rootfs-mode
	KeepLayer     string // --keep-layer DIR
	// Layers is the root of a container made from an image (sandy run
	// IMAGE): a storage container's layers, mounted by the init instead
	// of a layer over the bundle's rootfs.
	Layers    *overlay.Layers
	NoSeccomp bool
	Seccomp   string // --seccomp: "" (the config's) or "default" (moby's profile when the config has none)
	Network   NetworkOptions
	Cgroup    CgroupOptions
	Stdin     io.Reader
	Stdout    io.Writer
	Stderr    io.Writer
	// EditSpec, when set, changes the bundle's spec in memory right after
	// it is loaded, before anything is checked or made: run's COMMAND
	// after a bundle path and its -e, -v, -w, -t (containers.EditBundle).
	// config.json is not written. create leaves it nil: an engine's
	// bundle runs as written.
	EditSpec func(*specs.Spec) error
	// NetFiles: a container made from an image gets /etc/resolv.conf and
	// /etc/hosts on every network, with --dns and --add-host applied.
	NetFiles *NetFiles
	// Pending, when set, is a bundle written while create runs (sandy
	// run IMAGE: the image helper makes the storage container that holds
	// it meanwhile), instead of Bundle and Layers: the init starts on
	// the start spec and gets the bundle's (awaitBundle).
	Pending *PendingBundle
	// SharedUserNS, when set, opens a user namespace that has the
	// container's maps already, for the init to start in instead of a
	// new one mapped by newuidmap and newgidmap (containers: the image
	// store's, imagehelper.StoreUserNS); nil, and why not, where there is
	// none. A new namespace is made then, as without it.
	SharedUserNS func(*idmap.Plan) (*os.File, string)

	// set by run
	owned     bool // `sandy run` in the foreground: the container dies with it
	detachRun bool // `sandy run --detach`
	relayPty  bool // run relays the pty itself instead of a console socket
	// startSocket: run releases the init itself, through a socket pair
	// instead of an exec fifo on disk (makeFifo)
	startSocket bool
	// catchInterrupts starts catching the signals that interrupt the
	// set-up; nil where they are caught already (run in the foreground).
	catchInterrupts func()
}

// creation is one create in progress: the named steps share it.
type creation struct {
	g      *Global
	o      *CreateOptions
	undo   cleanups
	bundle *spec.Bundle
	root   *state.Root
	lock   *state.Lock
	c      *state.Container
	plan   *idmap.Plan
	fifo   *os.File // the init's exec fifo (O_PATH), or its end of the start socket
	start  *os.File // run's end of the start socket (startSocket)
	conn   *userns.Conn
	child  *userns.Child
	pty    *os.File // pty master, when run relays it

	// raw is the raw init's plan (rawinit.go), forked the child it
	// started until it has exec'd or failed; stopRaw ends the
	// interrupt's watch on it.
	raw     *userns.ForkPlan
	forked  *userns.Forked
	stopRaw func()
	// deferInit: a pending bundle that may take the raw init; its init
	// starts once the bundle is in (startDeferred), not beside the image
	// helper.
	deferInit bool
	// rawNetNS, rawUserNS and rawPidNS are the raw init's namespaces,
	// opened while they could be (rawMaps), for slirp4netns and the port
	// child (the pid namespace's only with published ports).
	rawNetNS, rawUserNS, rawPidNS *os.File
	rawWarnings                   []string // the plan's (initproc.RawInit), said in rawReady

	cg       cgroupv2.Manager
	early    *earlyApply // the cgroup's Apply, started with the init (applyEarly)
	sentinel *os.File    // write end of the cgroup sentinel stdin

	netMode string
	netOpts *slirp.Options // nil: no slirp4netns network
	unet    *userNet       // nil: not sandy's own network (usernet.go)
	net     *slirp.Network
	exe     *os.File // the init's sealed sandy binary, kept for the network (keepExe)
	exeCopy *exeCopy // that handle, made while the first steps run

	stopWatch func() bool // ends watchInterrupt

	// saved reports the state's save that saveState left running, for a
	// foreground run (awaitSaved); nil when it is done.
	saved chan error
	// claim reports the state directory's creation that createState left
	// running (awaitState); claimErr is its error once joined.
	claim    chan stateClaim
	claimErr error
	// initStopped: the undo killed and reaped the init (stopInit).
	initStopped bool
	// pendingChecked: the pending bundle is in (awaitBundle), so
	// process.user is checked on its spec.
	pendingChecked bool
	// seccomp: the container's seccomp profile being compiled (planSeccomp,
	// awaitSeccomp); nil when it is not filtered.
	seccomp *seccompJob
}

// NewID makes a container id for `sandy run` without one. It needs to be
// unique, not secret (the state directory is made with RENAME_NOREPLACE),
// so math/rand/v2's generator (ChaCha8, seeded from the kernel for each
// process) serves: crypto/rand would link the FIPS 140 module, whose
// package inits every sandy process pays (TestRuntimeDeps).
func NewID() string {
	b := binary.LittleEndian.AppendUint64(nil, rand.Uint64())
	return "sandy-" + hex.EncodeToString(b[:6])
}

// Create creates a container and returns once its init waits on the exec
// fifo (runc semantics); the container outlives this process. SIGINT,
// SIGTERM, SIGHUP or SIGQUIT during the set-up stops and undoes it (an
// *InterruptedError).
func Create(ctx context.Context, g *Global, o *CreateOptions) error {
	setup, endSetup := catchInterrupts(ctx, o)
	cr, err := create(setup, g, o)
	endSetup()
	if err != nil {
		return err
	}
	if setup.Err() != nil {
		// The signal came as the last step finished: undo it all the same.
		_ = destroy(ctx, g, cr.root, cr.c)
		cr.release()
		return context.Cause(setup)
	}
	cr.release()
	return nil
}

func create(ctx context.Context, g *Global, o *CreateOptions) (*creation, error) {
	cr := &creation{g: g, o: o}
	defer func() {
		if cr.exeCopy != nil {
			cr.exeCopy.close()
		}
	}()
	defer cr.stopInterrupt()
	steps := []struct {
		name string
		fn   func(context.Context) error
	}{
		{"loading the bundle", cr.loadBundle},
		{"checking the config", cr.checkConfig},
		{"planning the network", cr.planNetwork},
		{"creating the state", cr.createState},
		{"resolving id maps", cr.resolveIDMaps},
		{"checking process.user against the id maps", cr.checkUserIDs},
		{"checking the rootfs", cr.checkRootfs},
		{"preparing the cgroup", cr.prepareCgroup},
		{"planning the raw init", cr.planRawInit},
		{"making the exec fifo", cr.makeFifo},
		{"starting the init", cr.startInit},
		// While the init's Go runtime starts (about 10 ms here), on
		// another CPU where there is one: nothing the clone needs.
		{"scanning the rootfs owners", cr.scanRootfs},
		{"making the layer directory", cr.makeLayerDir},
		{"waiting for the init's hello", cr.awaitHello},
		// Nothing unless the bundle is pending (sandy run IMAGE): the init
		// started without it, while the image helper made it.
		{"waiting for the bundle", cr.awaitBundle},
		// A pending bundle's raw init candidate starts here, the bundle in.
		{"starting the init on the bundle", cr.startDeferred},
		{"joining the cgroup", cr.joinCgroup},
		{"compiling the seccomp profile", cr.awaitSeccomp},
		// The init gets its config first: it builds its root while the
		// network's processes start (the files it writes for the network,
		// /etc/resolv.conf and hosts, come from the plan, not from them).
		{"configuring the init", cr.configureInit},
		{"starting the network", cr.startNetwork},
		{"waiting for the init", cr.waitReady},
		{"waiting for the network", cr.networkReady},
		{"saving the state", cr.saveState},
		{"writing the pid file", cr.writePidFile},
	}
	for _, s := range steps {
		t0 := time.Now()
		err := s.fn(ctx)
		cr.g.Debugf("%s: %v", s.name, time.Since(t0).Round(10*time.Microsecond))
		if ctx.Err() != nil {
			// Interrupted (sandy got a signal): whatever the step
			// returned, the set-up stops here and is undone.
			err = context.Cause(ctx)
		}
		if err != nil {
			_ = cr.awaitSaved() // before the state it writes is undone
			cr.undo.run()
			var ce *userns.ChildError
			if errors.As(err, &ce) {
				return nil, err // already says where
			}
			var se *stateError
			if errors.As(err, &se) {
				return nil, fmt.Errorf("creating the state: %w", se.err)
			}
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
	}
	return cr, nil
}

// watchInterrupt makes the cancellation of ctx unblock whatever waits on
// the init's socket (its hello, its set-up messages): shutdown(2) wakes a
// blocked recvmsg with end-of-file, and the init reads end-of-file too. The
// step that waited then sees ctx's cause instead of waiting for the init
// to exit; the undo stack kills the init. Through the file's SyscallConn,
// so that a socket already closed is never confused with a reused fd.
func (cr *creation) watchInterrupt(ctx context.Context) {
	f := cr.conn.File()
	cr.stopWatch = context.AfterFunc(ctx, func() {
		if rc, err := f.SyscallConn(); err == nil {
			_ = rc.Control(func(fd uintptr) { _ = unix.Shutdown(int(fd), unix.SHUT_RDWR) })
		}
	})
}

// stopInterrupt ends watchInterrupt: once create returns, ctx is no
// longer its business.
func (cr *creation) stopInterrupt() {
	if cr.stopWatch != nil {
		cr.stopWatch()
	}
}

// release keeps what create made and lets go of the host-side handles.
func (cr *creation) release() {
	cr.undo.release()
	if cr.exe != nil {
		cr.exe.Close()
	}
	if cr.cg != nil {
		_ = cr.cg.Close()
	}
	if cr.conn != nil {
		cr.conn.Close()
	}
	if cr.fifo != nil {
		cr.fifo.Close()
	}
	if cr.start != nil {
		cr.start.Close()
	}
	cr.lock.Unlock()
	cr.lock = nil
}

func (cr *creation) loadBundle(context.Context) error {
	if p := cr.o.Pending; p != nil {
		// The steps up to the init's start run on the start spec; the
		// bundle comes in awaitBundle.
		b, err := startBundle(p, cr.o.EditSpec)
		cr.bundle = b
		return err // the Go init's binary: planRawInit
	}
	dir := cr.o.Bundle
	if dir == "" {
		dir = "."
	}
	b, err := spec.Load(dir)
	if err != nil {
		return err
	}
	if cr.o.EditSpec != nil {
		if err := b.Edit(cr.o.EditSpec); err != nil {
			return err
		}
	}
	cr.bundle = b
	cr.catchForHooks()
	if !cr.rawCandidate() {
		// The Go init's binary, made beside the next steps; a candidate
		// for the raw init needs none (planRawInit makes it otherwise).
		cr.exeCopy = copySelfExe()
	}
	return nil
}

// catchForHooks starts catching the signals that interrupt the set-up
// when the bundle has hooks to run (catchInterrupts).
func (cr *creation) catchForHooks() {
	if h := cr.bundle.Spec.Hooks; cr.o.catchInterrupts != nil && h != nil &&
		//lint:ignore SA1019 prestart hooks are deprecated, not gone: runtimes still run them
		len(h.Prestart)+len(h.CreateRuntime)+len(h.CreateContainer) > 0 {
		cr.o.catchInterrupts()
		cr.o.catchInterrupts = nil
	}
}

// checkConfig refuses, before anything starts, what this build cannot do
// faithfully.
func (cr *creation) checkConfig(context.Context) error {
	s := cr.bundle.Spec
	if cr.bundle.NoProcess && (cr.o.owned || cr.o.detachRun) {
		return errors.New("config.json has no process: nothing to run (create a container without one, or add process.args)")
	}
	switch cr.o.Seccomp {
	case "", "config":
	case "default":
		if s.Linux.Seccomp == nil {
			var bounding []string
			if s.Process.Capabilities != nil {
				bounding = s.Process.Capabilities.Bounding
			}
			p, err := seccomp.DefaultProfileFor(bounding)
			if err != nil {
				return err
			}
			s.Linux.Seccomp = p
		}
	default:
		return fmt.Errorf("--seccomp %q: want default", cr.o.Seccomp)
	}
	cr.planSeccomp(s) // compiled while the init starts (seccomp.go)
	for _, ns := range s.Linux.Namespaces {
		if ns.Path != "" {
			if err := userns.CheckNamespaceFile(ns.Path, nsCloneFlags[ns.Type]); err != nil {
				return fmt.Errorf("linux.namespaces: %s namespace path: %w", ns.Type, err)
			}
		}
		if ns.Type == specs.TimeNamespace {
			return errors.New("linux.namespaces: time namespaces are not supported yet")
		}
	}
	if _, ok := spec.Namespace(s, specs.UserNamespace); !ok && os.Geteuid() != 0 {
		// Rootless needs a user namespace; add it rather than fail.
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		cr.g.Debugf("config.json has no user namespace: adding one (rootless)")
	}
	if s.Process.ApparmorProfile != "" || s.Process.SelinuxLabel != "" || s.Linux.MountLabel != "" {
		cr.g.Warn("process.apparmorProfile, process.selinuxLabel and linux.mountLabel are not applied: sandy has no AppArmor or SELinux support")
	}
	if _, err := overlay.ParseMode(cr.o.RootfsMode); err != nil {
		return err
	}
	if s.Process.Terminal && !cr.o.relayPty && cr.o.ConsoleSocket == "" {
		return errors.New("process.terminal is true: pass --console-socket (or use `sandy run` in the foreground, or set \"terminal\": false)")
	}
	if cr.o.ConsoleSocket != "" && !s.Process.Terminal {
		return errors.New("--console-socket given, but process.terminal is false")
	}
	return nil
}

func (cr *creation) resolveIDMaps(context.Context) error {
	s := cr.bundle.Spec
	if ns, ok := spec.Namespace(s, specs.UserNamespace); !ok || ns.Path != "" {
		return nil // no user namespace, or a joined one: its maps exist
	}
	req := idmap.CallerRequest()
	req.UIDMappings, req.GIDMappings = s.Linux.UIDMappings, s.Linux.GIDMappings
	plan, err := idmap.Resolve(req)
	if err != nil {
		return err
	}
	if plan.Warning != "" {
		cr.g.Warn(plan.Warning)
	}
	cr.plan = plan
	cr.c.UIDMappings, cr.c.GIDMappings, cr.c.MapHelpers = plan.UIDs, plan.GIDs, plan.Helpers
	return nil
}

// checkUserIDs refuses process.user ids that the container's user
// namespace will not map, before anything starts: the maps are the ones
// resolveIDMaps decided, or sandy's own for a container without a user
// namespace. A joined user namespace (linux.namespaces path) is left to
// the init, whose setresuid(2) fails there with the map in the message.
func (cr *creation) checkUserIDs(context.Context) error {
	if cr.bundle.NoProcess || cr.o.Pending != nil && !cr.pendingChecked {
		return nil // no user yet: checked on the pending bundle's spec (awaitBundle)
	}
	var uids, gids []specs.LinuxIDMapping
	_, userNS := spec.Namespace(cr.bundle.Spec, specs.UserNamespace)
	switch {
	case cr.plan != nil:
		uids, gids = cr.plan.UIDs, cr.plan.GIDs
	case userNS:
		return nil // joined: resolveIDMaps made no plan
	default:
		var err error
		if uids, gids, err = readIDMaps(os.Getpid()); err != nil {
			return err
		}
	}
	return spec.CheckUserMapped(cr.bundle.Spec.Process.User, uids, gids)
}

// makeLayerDir makes the directory that holds the container's writable
// layer, next to its state, and arranges its removal on failure.
func (cr *creation) makeLayerDir(context.Context) error {
	if cr.c.LayerDir != "" {
		return nil // made for the raw init's writable root (rawMaps)
	}
	if err := cr.awaitState(); err != nil {
		return err
	}
	dir := cr.layerDirPath()
	owner, foreign := cr.foreignRoot()
	if foreign {
		// The init runs as the container's root, a uid that may not
		// traverse the caller's private state root: the layer goes into
		// a directory of its own that anyone may traverse (not list).
		tmp, err := os.MkdirTemp("", "sandy-layer-")
		if err != nil {
			return fmt.Errorf("making a layer directory the container's root can reach: %w", err)
		}
		cr.c.LayerTemp = tmp
		cr.undo.add(func() { _ = os.RemoveAll(tmp) })
		if err := os.Chmod(tmp, 0o711); err != nil {
			return err
		}
		dir = filepath.Join(tmp, "layer")
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	if foreign {
		if err := os.Chown(dir, int(owner[0]), int(owner[1])); err != nil {
			return fmt.Errorf("giving the layer directory to the container's root (host uid %d): %w", owner[0], err)
		}
	}
	cr.c.LayerDir = dir
	if cr.o.KeepLayer != "" {
		keep, err := filepath.Abs(cr.o.KeepLayer)
		if err != nil {
			return err
		}
		if _, err := os.Lstat(keep); err == nil {
			return fmt.Errorf("--keep-layer %s: already exists (name a directory to create)", keep)
		}
		cr.c.KeepLayer = keep
	}
	cr.undo.add(func() {
		// The init may be building its root in the layer (it gets its
		// config before the network starts): it goes first.
		cr.stopInit()
		removeLayer(cr.g, cr.c)
	})
	return cr.root.Save(cr.c)
}

// layerDirPath is where the layer directory goes in the state directory
// (makeLayerDir).
func (cr *creation) layerDirPath() string { return filepath.Join(cr.root.Path(cr.o.ID), "layer") }

// foreignRoot reports whether the container's root is a host uid other
// than the caller's (a privileged caller's own mappings: root mapping host
// ids 1000-2999, podman's keep-id), and which host uid and gid it is.
func (cr *creation) foreignRoot() ([2]uint32, bool) {
	p := cr.plan
	if p == nil || !p.Privileged {
		return [2]uint32{}, false
	}
	uid, uok := p.ToHost(0)
	gid, gok := p.ToHostGID(0)
	if !uok || !gok || uid == uint32(os.Getuid()) && gid == uint32(os.Getgid()) {
		return [2]uint32{}, false
	}
	return [2]uint32{uid, gid}, true
}

// makeFifo makes what the init waits on until it is started: the exec
// fifo in the state directory, which `sandy start` opens (runc's
// create/start), or, when the same process starts it (`sandy run`), a
// socket pair, which costs no file on disk (a fifo made and removed:
// 0.8-1 ms of run's wait on this project's machines' /tmp). The state then
// reads "running" once the pid is saved, since no fifo exists: the pid is
// saved as the init is released (saveState).
func (cr *creation) makeFifo(context.Context) error {
	if cr.raw != nil || cr.deferInit {
		return nil // released through its go pipe (userns.Forked), or later (startDeferred)
	}
	if cr.o.startSocket {
		fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_STREAM|unix.SOCK_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("making the start socket: %w", err)
		}
		// Run's end non-blocking, so that os.File reads it through the
		// poller, with deadlines (awaitExec); the init's stays blocking.
		if err := unix.SetNonblock(fds[0], true); err != nil {
			unix.Close(fds[0])
			unix.Close(fds[1])
			return fmt.Errorf("making the start socket: %w", err)
		}
		cr.start = os.NewFile(uintptr(fds[0]), "start-socket")
		cr.fifo = os.NewFile(uintptr(fds[1]), "start-socket-init")
		return nil
	}
	if err := cr.awaitState(); err != nil {
		return err
	}
	p := cr.root.FifoPath(cr.o.ID)
	if err := unix.Mkfifo(p, 0o600); err != nil {
		return fmt.Errorf("mkfifo %s: %w", p, err)
	}
	// The init reopens it after switching to process.user, which may be a
	// subordinate id on the host: writable by all, like runc's; the state
	// directory (0700) keeps everyone else from reaching it by path.
	if err := os.Chmod(p, 0o622); err != nil {
		return err
	}
	f, err := os.OpenFile(p, unix.O_PATH|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	cr.fifo = f
	return nil
}

// nsCloneFlags are the clone(2) flags of the namespace types.
var nsCloneFlags = map[specs.LinuxNamespaceType]uintptr{
	specs.PIDNamespace: unix.CLONE_NEWPID, specs.NetworkNamespace: unix.CLONE_NEWNET,
	specs.MountNamespace: unix.CLONE_NEWNS, specs.IPCNamespace: unix.CLONE_NEWIPC,
	specs.UTSNamespace: unix.CLONE_NEWUTS, specs.UserNamespace: unix.CLONE_NEWUSER,
	specs.CgroupNamespace: unix.CLONE_NEWCGROUP, specs.TimeNamespace: unix.CLONE_NEWTIME,
}

// cloneFlags turns the config's new namespaces into clone(2) flags.
func cloneFlags(s *specs.Spec) uintptr {
	var f uintptr
	for _, ns := range s.Linux.Namespaces {
		if ns.Path == "" {
			f |= nsCloneFlags[ns.Type]
		}
	}
	return f
}

func (cr *creation) startInit(ctx context.Context) error {
	if cr.deferInit {
		return nil // startDeferred
	}
	if cr.raw != nil {
		return cr.startRawInit(ctx)
	}
	s := cr.bundle.Spec
	if _, ok := spec.Namespace(s, specs.MountNamespace); !ok {
		return errors.New("linux.namespaces: sandy needs a mount namespace (add {\"type\": \"mount\"})")
	}
	link, err := newChildLink(true, cr.exeCopy)
	if err != nil {
		return err
	}
	cr.g.Debugf("the init runs %s", link.how)
	defer link.started()
	cr.conn = link.parent
	cr.watchInterrupt(ctx)
	cfg := userns.Config{
		Exe:        link.exe,
		Args:       []string{"init"},
		Env:        childEnv,
		Cloneflags: cloneFlags(s),
		Stdin:      cr.o.Stdin,
		Stdout:     cr.o.Stdout,
		Stderr:     cr.o.Stderr,
		ExtraFiles: []*os.File{link.child, cr.fifo}, // initproc.SyncFD, initproc.FifoFD
		CgroupFD:   -1,
		AwaitsMaps: true, // initproc.MsgMaps, then GainCaps
	}
	if cr.unet != nil {
		cfg.ExtraFiles = cr.userNetGoInit(cfg.ExtraFiles)
	}
	if cr.cg != nil {
		if fd, ok := cr.cg.CgroupFD(); ok {
			cfg.CgroupFD = fd
		}
	}
	if cr.cgroupNSLater() {
		cfg.Cloneflags &^= unix.CLONE_NEWCGROUP
	}
	cfg.Join = leaveOutOwnNamespaces(joinedNamespaces(s))
	if cr.o.owned && len(cfg.Join) == 0 {
		// Through the spawn helper the init sets it itself (initproc).
		cfg.Pdeathsig = syscall.SIGKILL
	}
	if cr.plan != nil {
		cfg.Maps = cr.plan
		if cr.o.SharedUserNS != nil && cfg.Cloneflags&unix.CLONE_NEWUSER != 0 && len(cfg.Join) == 0 {
			ns, why := cr.o.SharedUserNS(cr.plan)
			if ns != nil {
				defer ns.Close()
				cfg.SharedUserNS = ns
			} else {
				cr.g.Debugf("the init makes a user namespace of its own: no shared one (%s)", why)
			}
		}
	}
	c, err := userns.Start(cfg)
	if err == nil && cfg.SharedUserNS != nil {
		if shared, why := c.SharedUserNS(); shared {
			cr.g.Debugf("the init started in the image store's user namespace (the same maps): no newuidmap, newgidmap or gate")
		} else {
			cr.g.Debugf("the init makes a user namespace of its own: %s", why)
		}
	}
	if cr.netOpts != nil || cr.o.owned {
		// The network's helpers run from it too, and the reaper of a
		// foreground run (endRun).
		cr.keepExe(link.keepExe())
	}
	link.started()
	if cr.start != nil {
		// The init's end is the init's alone: the end of file on run's
		// end must come when the init execs or dies (awaitExec).
		cr.fifo.Close()
		cr.fifo = nil
	}
	if err != nil {
		return err
	}
	cr.child = c
	cr.undo.add(cr.stopInit)
	if cr.unet != nil {
		cr.startUserNet()
	}
	cr.applyEarly(ctx)
	cr.seccomp.start() // beside the init's start-up (seccomp.go)
	return nil
}

// stopInit kills the init of a set-up being undone and waits for it; once.
func (cr *creation) stopInit() {
	if cr.forked != nil {
		cr.forked.Kill()
		cr.forked = nil
		return
	}
	c := cr.child
	if c == nil || cr.initStopped {
		return
	}
	cr.initStopped = true
	_ = c.Cmd.Process.Kill()
	if cr.c.Pid > 0 && c.Spawned() {
		if p, err := os.FindProcess(cr.c.Pid); err == nil {
			_ = p.Kill()
		}
	}
	_, _ = c.Wait(cr.c.Pid)
}

// awaitHello waits for the init's hello, which carries its own pid: the
// child itself, or the one the nsenter → spawn chain started, in the
// host's pid namespace either way; maps the init could not have at its
// start are written for that pid.
func (cr *creation) awaitHello(ctx context.Context) error {
	if cr.raw != nil || cr.deferInit {
		return nil // its pid came from the fork, or it starts later (startDeferred)
	}
	c := cr.child
	m, err := cr.conn.Expect(initproc.MsgHello)
	if errors.Is(err, userns.ErrClosed) {
		if ctx.Err() != nil {
			return context.Cause(ctx) // the init may still run: undo kills it
		}
		return fmt.Errorf("the init exited before it started (%s)", cr.exitStatus())
	}
	if err != nil {
		return err
	}
	if m.PID <= 0 {
		return errors.New("the init's hello carried no pid")
	}
	cr.c.Pid = m.PID
	cr.c.PidStart, _, _ = state.ProcStart(cr.c.Pid)
	if c.Spawned() {
		// The init is ours from here on, also where it had to be
		// reparented to us; only then may it set its parent-death signal.
		if err := c.Adopt(); err != nil {
			cr.g.Debugf("the nsenter chain: %v", err)
		}
	}
	if c.Spawned() && cr.plan != nil {
		if err := cr.plan.Apply(cr.c.Pid); err != nil {
			return err
		}
	}
	return nil
}

// joinedNamespaces lists the config's namespaces that have a path, user
// first (joining it gives the capabilities the others need).
func joinedNamespaces(s *specs.Spec) []userns.Join {
	flags := map[specs.LinuxNamespaceType]string{
		specs.UserNamespace: "user", specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc",
		specs.UTSNamespace: "uts", specs.PIDNamespace: "pid", specs.CgroupNamespace: "cgroup",
	}
	var joins []userns.Join
	for _, ns := range s.Linux.Namespaces {
		if ns.Path == "" || ns.Type == specs.MountNamespace {
			continue // the init joins a mount namespace itself (initproc)
		}
		j := userns.Join{Flag: flags[ns.Type], Path: ns.Path}
		if ns.Type == specs.UserNamespace {
			joins = append([]userns.Join{j}, joins...)
		} else {
			joins = append(joins, j)
		}
	}
	return joins
}

// leaveOutOwnNamespaces drops the joins of namespaces sandy is in already
// (the same nsfs inode as /proc/self/ns/NAME): the init is in them without
// setns(2), which can refuse such a join: re-entering one's own user
// namespace (EINVAL), or a namespace whose owning user namespace is an
// ancestor of sandy's, where sandy, root in its own user namespace only,
// lacks CAP_SYS_ADMIN (EPERM). containerd in rootlesskit is that case: its
// CRI gives a host-network pod's containers the paths of the sandbox's
// namespaces, whose UTS namespace is the host's (rootlesskit does not
// unshare it). exec's openNamespaces leaves them out the same way. A path
// that cannot be stat'ed is kept: nsenter reports it.
func leaveOutOwnNamespaces(joins []userns.Join) []userns.Join {
	var kept []userns.Join
	for _, j := range joins {
		var mine, theirs unix.Stat_t
		if unix.Stat("/proc/self/ns/"+j.Flag, &mine) == nil && unix.Stat(j.Path, &theirs) == nil &&
			mine.Dev == theirs.Dev && mine.Ino == theirs.Ino {
			continue
		}
		kept = append(kept, j)
	}
	return kept
}

func (cr *creation) configureInit(context.Context) error {
	if cr.raw != nil {
		return nil // its config is its plan
	}
	if err := cr.conn.Send(initproc.MsgMaps, nil); err != nil {
		return err
	}
	filter, err := cr.seccompFilter()
	if err != nil {
		return err
	}
	cfg := initproc.Config{
		Spec:            initSpec(cr.bundle.Spec, filter != nil),
		SeccompFilter:   filter,
		ID:              cr.c.ID,
		Bundle:          cr.bundle.Dir,
		Rootfs:          cr.bundle.Rootfs,
		RootfsMode:      cr.o.RootfsMode,
		LayerDir:        cr.c.LayerDir,
		Layers:          cr.o.Layers,
		SetgroupsDenied: cr.plan != nil && !cr.plan.Helpers && !cr.plan.Privileged,
		NoSeccomp:       cr.o.NoSeccomp,
		NoProcess:       cr.bundle.NoProcess,
		Debug:           cr.g.Debug,
	}
	if ns, ok := spec.Namespace(cr.bundle.Spec, specs.MountNamespace); ok {
		cfg.MountNS = ns.Path
	}
	cfg.ResolvConf, cfg.Hosts = cr.networkFiles()
	cfg.UnshareCgroupNS = cr.cgroupNSLater()
	cfg.CgroupOwned = cr.cgroupOwned()
	cfg.StartSocket = cr.start != nil
	if cr.o.owned {
		cfg.Pdeathsig = int(syscall.SIGKILL)
	}
	if cr.unet != nil {
		cfg.Tap = cr.unet.goTap
	}
	return initproc.SendConfig(cr.conn, &cfg)
}

// initSpec is the spec the init gets: s without linux.seccomp when the
// filter compiled from it goes along (the default profile is some 300
// syscall names the init would only decode).
func initSpec(s *specs.Spec, filtered bool) *specs.Spec {
	if !filtered || s.Linux == nil || s.Linux.Seccomp == nil {
		return s
	}
	c, l := *s, *s.Linux
	l.Seccomp = nil
	c.Linux = &l
	return &c
}

// waitReady reads the init's messages until it reports ready: warnings,
// the rootfs rung, the hooks moment, the pty master and a seccomp listener
// on the way, or the one error it sends.
func (cr *creation) waitReady(ctx context.Context) error {
	if cr.raw != nil {
		err := cr.rawReady(ctx)
		var rf *rawFailed
		if !errors.As(err, &rf) {
			return err
		}
		cr.g.Debugf("%v: the Go init runs instead", err)
		if cr.unet != nil {
			if err := cr.restartUserNet(); err != nil {
				return fmt.Errorf("%w; and sandy's own network for the Go init: %w", rf, err)
			}
		}
		if err := cr.goInitInstead(ctx); err != nil {
			return err
		}
	}
	exited := func() error {
		if ctx.Err() != nil {
			return context.Cause(ctx) // the init may still run: undo kills it
		}
		return fmt.Errorf("the init exited during set-up (%s)", cr.exitStatus())
	}
	return awaitReady(cr.conn, exited, map[string]func(*userns.Msg) error{
		initproc.MsgWarn: func(m *userns.Msg) error {
			var w string
			if err := m.Decode(&w); err == nil {
				cr.g.Warn(w)
			}
			return nil
		},
		initproc.MsgDebug: func(m *userns.Msg) error {
			var d string
			if err := m.Decode(&d); err == nil {
				cr.g.Debugf("%s", d)
			}
			return nil
		},
		initproc.MsgRootfs: func(m *userns.Msg) error {
			_ = m.Decode(&cr.c.RootfsMode)
			cr.g.Debugf("root filesystem: %s", cr.c.RootfsMode)
			return nil
		},
		initproc.MsgHooks:   func(*userns.Msg) error { return cr.runCreateHooks(ctx) },
		initproc.MsgRlimits: func(*userns.Msg) error { return setRlimits(cr.conn, cr.c.Pid, cr.bundle.Spec.Process.Rlimits) },
		initproc.MsgSeccomp: func(m *userns.Msg) error {
			fd, err := oneFD(m)
			if err != nil {
				return err
			}
			return handOnListener(cr.conn, cr.bundle.Spec.Linux.Seccomp, cr.c, specs.StateCreating, fd)
		},
		initproc.MsgPty: func(m *userns.Msg) error {
			fd, err := oneFD(m)
			if err != nil {
				return err
			}
			return cr.handlePty(os.NewFile(uintptr(fd), "pty-master"))
		},
	})
}

// awaitReady reads messages from an init (or an exec init) until it
// reports ready, handing each other message to its handler; the init's
// error message becomes the error, and for an init gone before it is ready
// exited says why (called only then: it may wait for the process).
func awaitReady(conn *userns.Conn, exited func() error, handlers map[string]func(*userns.Msg) error) error {
	for {
		m, err := conn.Recv()
		if errors.Is(err, userns.ErrClosed) {
			return exited()
		}
		if err != nil {
			return err
		}
		if m.Type == initproc.MsgReady {
			return nil
		}
		if m.Type == userns.MsgError {
			var ce userns.ChildError
			if err := m.Decode(&ce); err != nil {
				return err
			}
			return &ce
		}
		h, ok := handlers[m.Type]
		if !ok {
			return fmt.Errorf("sync protocol: unexpected %q message", m.Type)
		}
		if err := h(m); err != nil {
			return err
		}
	}
}

// oneFD returns the one fd a message must carry.
func oneFD(m *userns.Msg) (int, error) {
	if len(m.FDs) != 1 {
		return -1, fmt.Errorf("%s message with %d fds", m.Type, len(m.FDs))
	}
	return m.FDs[0], nil
}

// initError returns the error the init reported after it was released (it
// is dead, so the socket holds its last message or is closed), else err.
func (cr *creation) initError(err error) error {
	if cr.conn == nil || state.Alive(cr.c.Pid, cr.c.PidStart) {
		return err
	}
	m, rerr := cr.conn.Recv()
	if rerr != nil || m.Type != userns.MsgError {
		return err
	}
	var ce userns.ChildError
	if m.Decode(&ce) != nil {
		return err
	}
	return &ce
}

func (cr *creation) exitStatus() string {
	if cr.c.Pid == 0 && cr.child.Spawned() {
		// The init never said hello: what the chain said is all there is.
		if err := cr.child.ReapChain(); err != nil {
			return "starting it through nsenter: " + err.Error()
		}
		return "the nsenter chain exited 0, the init never reported"
	}
	if _, err := cr.child.Wait(cr.c.Pid); err != nil {
		return err.Error()
	}
	return "exit status 0"
}

func (cr *creation) handlePty(master *os.File) error {
	if cr.o.relayPty {
		cr.pty = master
		cr.undo.add(func() { master.Close() })
		return nil
	}
	defer master.Close()
	return sendConsole(cr.o.ConsoleSocket, master)
}

// releaseInit lets the init exec the process: through the start socket
// when this process made one, else by opening the exec fifo as `sandy
// start` does.
func (cr *creation) releaseInit(ctx context.Context) error {
	if cr.raw != nil {
		return cr.releaseRaw()
	}
	if cr.start != nil {
		return releaseStarted(cr.start, cr.c)
	}
	return releaseInit(ctx, cr.root, cr.c)
}
