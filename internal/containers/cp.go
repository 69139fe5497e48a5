package containers

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"path"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/copier"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/userns"
)

// CopyOptions are `sandy cp`'s arguments and flags.
type CopyOptions struct {
	Src, Dst string
	// Archive (-a): files copied into the container keep their owners,
	// mapped through the container's id map; else they are the
	// container root's.
	Archive bool
	// Overwrite lets a directory replace a non-directory and the other
	// way round.
	Overwrite bool
	// Stdin and Stdout carry the tar stream of "-".
	Stdin  io.Reader
	Stdout io.Writer
}

// Copy copies between a container made from an image and the host, as
// podman cp does (docs/cli/cp.md). The container's side is done by a
// worker process (copyWorker, the hidden `sandy _cp`) that runs in the
// container's user namespace and sees nothing of the host but its own
// pipes: for a running container it works in the init's root
// (/proc/PID/root), for a stopped one in the container's layers, which it
// mounts in a mount namespace of its own. The host side (this process,
// the calling user) and the worker exchange one tar stream, and each
// side resolves only its own paths (internal/copier).
func (m Manage) Copy(ctx context.Context, o CopyOptions) error {
	src, dst, err := copier.ParseArgs(o.Src, o.Dst)
	if err != nil {
		return err
	}
	ref := src.Container
	if ref == "" {
		ref = dst.Container
	}
	t0 := time.Now()
	c, err := m.Get(ctx, ref)
	if err != nil {
		return err
	}
	if c.External {
		return externalError(c, refuseCopy)
	}
	m.G.Debugf("cp: finding container %s (%s): %v", short(c.ID), c.State, time.Since(t0).Round(10*time.Microsecond))
	t0 = time.Now()
	w, err := m.startCopyWorker(c)
	if err != nil {
		return err
	}
	w.warn = m.G.Warn
	m.G.Debugf("cp: starting the worker: %v", time.Since(t0).Round(10*time.Microsecond))
	t0 = time.Now()
	if src.Container != "" {
		err = w.get(containerPath(src.Path), dst, o)
	} else {
		err = w.put(src, containerPath(dst.Path), o)
	}
	err = errors.Join(err, w.close(err != nil))
	m.G.Debugf("cp: copying: %v", time.Since(t0).Round(10*time.Microsecond))
	return err
}

// containerPath is a container path made absolute (relative to the
// root, as podman's are when the container has no working directory)
// with its trailing "/" or "/." kept.
func containerPath(p string) string {
	if !strings.HasPrefix(p, "/") {
		p = "/" + p
	}
	return p
}

// cpHostPath is a host path made absolute with its trailing "/" or "/."
// kept (they carry docker cp's meaning).
func cpHostPath(p string) (string, error) {
	abs, err := filepath.Abs(p)
	if err != nil {
		return "", err
	}
	switch {
	case strings.HasSuffix(p, "/.") || p == ".":
		if abs != "/" {
			abs += "/."
		}
	case strings.HasSuffix(p, "/") && abs != "/":
		abs += "/"
	}
	return abs, nil
}

// The worker's protocol, over its sync socket (userns.Conn):
//
//	worker → sandy   hello  {pid}
//	sandy  → worker  request copyRequest
//	worker → sandy   source {is_dir}        (get: then the tar on its stdout)
//	worker → sandy   plan   copier.Transfer (put: then the tar on its stdin)
//	worker → sandy   done
//
// An error at any step is an "error" message (userns.ChildError).
const (
	msgCopyHello   = "hello"
	msgCopyRequest = "request"
	msgCopySource  = "source"
	msgCopyPlan    = "plan"
	msgCopyDone    = "done"
)

// copyRequest is what the worker is asked to do.
type copyRequest struct {
	// Get: write Source as a tar stream; else extract one into Dst.
	Get    bool          `json:"get,omitempty"`
	Source copier.Source `json:"source"`
	// SrcDir: the host source is a directory (put).
	SrcDir bool   `json:"src_dir,omitempty"`
	Dst    string `json:"dst,omitempty"`
	// Stream: the put's stream is stdin's tar, extracted into Dst as it
	// is (Dst must be a directory).
	Stream    bool          `json:"stream,omitempty"`
	Overwrite bool          `json:"overwrite,omitempty"`
	Owners    copier.Owners `json:"owners"`
	// Layers and LayerDir: a stopped container's root to mount.
	Layers   *overlay.Layers `json:"layers,omitempty"`
	LayerDir string          `json:"layer_dir,omitempty"`
}

// copyWorker is a started worker.
type copyWorker struct {
	warn   func(string)
	conn   *userns.Conn
	child  *userns.Child
	pid    int
	in     *os.File // its stdin (put)
	out    *os.File // its stdout (get)
	uids   []specs.LinuxIDMapping
	gids   []specs.LinuxIDMapping
	layers *overlay.Layers
	tmp    string
	unlock func()
	closed bool
}

// startCopyWorker starts the worker for c, running or stopped.
func (m Manage) startCopyWorker(c Listed) (*copyWorker, error) {
	switch {
	case c.State == state.Creating || c.State == Stopping:
		return nil, fmt.Errorf("container %s is %s: copy once it runs or has exited", short(c.ID), c.State)
	case c.Running():
		return m.startRunningWorker(c)
	}
	return m.startStoppedWorker(c)
}

// startRunningWorker starts the worker in the user namespace of the
// running container c (through nsenter and the spawn helper: setns into
// a user namespace needs a single-threaded process), with the init's
// root as its fd 4. It stays in the host's pid namespace, out of the
// container's sight: no process in the container can name it to
// ptrace it or open its /proc files.
func (m Manage) startRunningWorker(c Listed) (*copyWorker, error) {
	rr, err := lifecycle.OpenRunningRoot(m.G, c.ID)
	if err != nil {
		return nil, err
	}
	defer rr.Close()
	w := &copyWorker{uids: rr.UIDs, gids: rr.GIDs}
	files := []*os.File{nil, rr.Root}
	cfg := userns.Config{Args: []string{CopyRole, "running"}}
	if rr.UserNS != nil {
		files = append(files, rr.UserNS)
		cfg.Args = append(cfg.Args, "userns")
		cfg.Join = []userns.Join{{Flag: "user", Path: "/proc/self/fd/5"}}
		cfg.JoinAsRoot = !userns.RootIn(rr.Pid, os.Getuid())
	}
	if err := w.start(cfg, files, m.Stderr); err != nil {
		return nil, err
	}
	return w, nil
}

// startStoppedWorker starts the worker in a new user namespace with the
// container's id maps and a new mount namespace, where it mounts the
// container's layers as the container's init would. The container's
// start lock is held until the copy ends: `sandy start` waits, so the
// layer is never mounted twice.
func (m Manage) startStoppedWorker(c Listed) (*copyWorker, error) {
	unlock, err := lockStart(c.dir)
	if err != nil {
		return nil, err
	}
	fail := func(err error) (*copyWorker, error) { unlock(); return nil, err }
	if !m.ended(c) {
		return fail(fmt.Errorf("container %s was started meanwhile: copy again", short(c.ID)))
	}
	mc, err := readMonitorConfig(c.dir)
	if err != nil {
		return fail(fmt.Errorf("container %s cannot be reached while stopped (%w): it was run by a sandy that did not record its layers; sandy commit %s IMAGE keeps its files in an image", short(c.ID), err, short(c.ID)))
	}
	layers := mc.Layers
	layers.Volatile = false
	if err := layers.Check(); err != nil {
		return fail(err)
	}
	w := &copyWorker{layers: &layers, unlock: unlock}
	cfg := userns.Config{Args: []string{CopyRole, "stopped"}, Cloneflags: unix.CLONE_NEWNS}
	if os.Geteuid() != 0 {
		plan, err := stoppedMaps(mc.Bundle)
		if err != nil {
			return fail(err)
		}
		w.uids, w.gids = plan.UIDs, plan.GIDs
		cfg.Cloneflags |= unix.CLONE_NEWUSER
		cfg.Maps = plan
	}
	// An empty directory for the worker's tmpfs (overlay's merged
	// directory goes there, in the worker's mount namespace only).
	if w.tmp, err = os.MkdirTemp("", "sandy-cp-"); err != nil {
		return fail(fmt.Errorf("making a directory for the container's root: %w", err))
	}
	if err := w.start(cfg, []*os.File{nil}, m.Stderr); err != nil {
		w.release()
		return nil, err
	}
	return w, nil
}

// stoppedMaps are the id maps the container ran with: config.json's
// (keep-id), else the caller's automatic ones, as the runtime decides
// them (lifecycle's resolveIDMaps).
func stoppedMaps(bundle string) (*idmap.Plan, error) {
	b, err := os.ReadFile(filepath.Join(bundle, "config.json"))
	if err != nil {
		return nil, fmt.Errorf("reading the container's config: %w", err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return nil, fmt.Errorf("reading the container's config: %w", err)
	}
	req := idmap.CallerRequest()
	if s.Linux != nil {
		req.UIDMappings, req.GIDMappings = s.Linux.UIDMappings, s.Linux.GIDMappings
	}
	return idmap.Resolve(req)
}

// start starts the worker with files as its fds from 3 on (files[0] is
// filled with the sync socket) and waits for its hello.
func (w *copyWorker) start(cfg userns.Config, files []*os.File, stderr io.Writer) error {
	link, err := newCopyLink()
	if err != nil {
		return err
	}
	defer link.exe.Close()
	files[0] = link.child
	inR, inW, err := os.Pipe()
	if err != nil {
		link.close()
		return err
	}
	outR, outW, err := os.Pipe()
	if err != nil {
		link.close()
		inR.Close()
		inW.Close()
		return err
	}
	cfg.Exe, cfg.Env, cfg.ExtraFiles = link.exe, os.Environ(), files
	if cfg.Maps != nil {
		cfg.Env = append(cfg.Env, copyMapsEnv+"=1")
	}
	cfg.Stdin, cfg.Stdout, cfg.Stderr, cfg.CgroupFD, cfg.Pdeathsig = inR, outW, stderr, -1, syscall.SIGKILL
	ch, err := userns.Start(cfg)
	link.child.Close()
	inR.Close()
	outW.Close()
	if err != nil {
		link.parent.Close()
		inW.Close()
		outR.Close()
		return fmt.Errorf("starting the copy worker: %w", err)
	}
	w.conn, w.child, w.in, w.out = link.parent, ch, inW, outR
	if cfg.Maps != nil {
		if err := w.conn.Send("maps", nil); err != nil {
			return w.failStart(err)
		}
	}
	m, err := w.conn.Expect(msgCopyHello)
	if err != nil {
		return w.failStart(err)
	}
	if err := m.Decode(&w.pid); err != nil {
		return w.failStart(err)
	}
	return nil
}

func (w *copyWorker) failStart(err error) error {
	_ = w.stop(true)
	return fmt.Errorf("starting the copy worker: %w", err)
}

type copyLink struct {
	exe    *os.File
	parent *userns.Conn
	child  *os.File
}

// newCopyLink opens the sandy binary to run the worker from (sealed
// when the caller could write it: userns.SelfExe, CVE-2019-5736) and the
// sync socket.
func newCopyLink() (*copyLink, error) {
	exe, err := userns.SelfExe()
	if err != nil {
		return nil, err
	}
	parent, child, err := userns.NewPair()
	if err != nil {
		exe.Close()
		return nil, err
	}
	return &copyLink{exe: exe, parent: parent, child: child}, nil
}

func (l *copyLink) close() {
	l.exe.Close()
	l.parent.Close()
	l.child.Close()
}

// stop ends the worker (killed when the copy failed) and reaps it.
func (w *copyWorker) stop(kill bool) error {
	if w.closed {
		return nil
	}
	w.closed = true
	w.in.Close()
	w.out.Close()
	w.conn.Close()
	if kill && w.pid > 0 {
		_ = unix.Kill(w.pid, unix.SIGKILL)
	}
	_, err := w.child.Wait(w.pid)
	if kill {
		return nil // the copy's own error says what went wrong
	}
	if err != nil {
		return fmt.Errorf("copy worker: %w", err)
	}
	return nil
}

// close stops the worker, then releases what a stopped container's copy
// held: its directory for the mount, its start lock.
func (w *copyWorker) close(kill bool) error {
	err := w.stop(kill)
	w.release()
	return err
}

func (w *copyWorker) release() {
	if w.tmp != "" {
		os.Remove(w.tmp)
	}
	if w.unlock != nil {
		w.unlock()
	}
}

// request sends the request.
func (w *copyWorker) request(r copyRequest) error {
	r.Layers = w.layers
	r.LayerDir = w.tmp
	return w.conn.Send(msgCopyRequest, r)
}

// copyDone is the worker's last word: what the container's side could
// not keep.
type copyDone struct {
	XattrsLost int `json:"xattrsLost,omitempty"`
}

// done waits for the worker's end of the copy.
func (w *copyWorker) done() error {
	m, err := w.conn.Expect(msgCopyDone)
	if err != nil {
		return err
	}
	var d copyDone
	if len(m.Data) > 0 {
		if err := m.Decode(&d); err != nil {
			return err
		}
	}
	w.warnXattrs(d.XattrsLost, "the container's filesystem refused them")
	return nil
}

// warnXattrs says how many extended attributes a copy lost, and why.
func (w *copyWorker) warnXattrs(n int, why string) {
	if n > 0 {
		w.warn(fmt.Sprintf("cp: %d extended attributes not copied: %s", n, why))
	}
}

// get copies the container's src to the host's dst (or "-": stdout).
func (w *copyWorker) get(srcPath string, dst copier.Location, o CopyOptions) error {
	src := copier.ParseSource(srcPath)
	if err := w.request(copyRequest{Get: true, Source: src}); err != nil {
		return err
	}
	w.in.Close()
	m, err := w.conn.Expect(msgCopySource)
	if err != nil {
		return err
	}
	var info copier.Info
	if err := m.Decode(&info); err != nil {
		return err
	}
	if dst.Stream() {
		if _, err := io.Copy(o.Stdout, w.out); err != nil {
			return fmt.Errorf("writing the tar stream: %w", err)
		}
		return w.done()
	}
	dstPath, err := cpHostPath(dst.Path)
	if err != nil {
		return err
	}
	host, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer host.Close()
	d, err := copier.StatDest(host, dstPath)
	if err != nil {
		return err
	}
	t, err := copier.Plan(src, info.IsDir, dstPath, d, o.Overwrite)
	if err != nil {
		return err
	}
	// The extraction's root is the destination directory itself: the
	// container's symlinks in the stream cannot lead out of it.
	dir, err := os.OpenFile(t.Dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", t.Dir, err)
	}
	defer dir.Close()
	var skipped, lost, setID int
	x := copier.ExtractOptions{Rename: t, Overwrite: o.Overwrite, Owners: copier.OwnNone, SkipDevices: true, Skipped: &skipped,
		UserXattrsOnly: true, XattrsLost: &lost, DropSetID: os.Geteuid() == 0, SetIDDropped: &setID}
	if err := copier.Extract(dir, "/", w.out, x); err != nil {
		return err
	}
	if skipped > 0 {
		w.warn(fmt.Sprintf("cp: %d device nodes not copied: only root can make them on the host (a tar stream, sandy cp CTR:PATH -, keeps them)", skipped))
	}
	if setID > 0 {
		w.warn(fmt.Sprintf("cp: set-user-id and set-group-id bits cleared on %d files: copied out by root, they would be root's set-id programs (a tar stream, sandy cp CTR:PATH -, keeps them)", setID))
	}
	w.warnXattrs(lost, "a container's file capabilities are not set on the host, and the host's filesystem may refuse user attributes (a tar stream, sandy cp CTR:PATH -, keeps them)")
	return w.done()
}

// put copies the host's src (or "-": stdin's tar) to the container's dst.
func (w *copyWorker) put(srcLoc copier.Location, dst string, o CopyOptions) error {
	owners := copier.OwnRoot
	if o.Archive {
		owners = copier.OwnStream
	}
	req := copyRequest{Dst: dst, Overwrite: o.Overwrite, Owners: owners}
	var opened *copier.Opened
	if srcLoc.Stream() {
		req.Stream = true
	} else {
		p, err := cpHostPath(srcLoc.Path)
		if err != nil {
			return err
		}
		req.Source = copier.ParseSource(p)
		host, err := os.OpenFile("/", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return err
		}
		opened, err = copier.OpenSource(host, req.Source)
		host.Close()
		if err != nil {
			return err
		}
		defer opened.Close()
		req.SrcDir = opened.IsDir()
	}
	w.out.Close()
	if err := w.request(req); err != nil {
		return err
	}
	if _, err := w.conn.Expect(msgCopyPlan); err != nil {
		return err
	}
	var werr error
	if opened == nil {
		_, werr = io.Copy(w.in, o.Stdin)
	} else {
		var a copier.ArchiveOptions
		if o.Archive {
			a.MapIDs = func(uid, gid int) (int, int) { return toContainer(w.uids, uid), toContainer(w.gids, gid) }
		}
		werr = opened.WriteTar(w.in, a)
	}
	w.in.Close()
	// The worker's error explains a broken pipe better than the pipe.
	if err := w.done(); err != nil {
		return err
	}
	if werr != nil {
		return fmt.Errorf("writing the tar stream: %w", werr)
	}
	return nil
}

// toContainer is the container's id for the host's id under maps (the
// container's, as the host sees them); an id the container does not map
// is the overflow id 65534, as the kernel shows it inside. Without maps
// (root's container, no user namespace) ids are the host's.
func toContainer(maps []specs.LinuxIDMapping, id int) int {
	if len(maps) == 0 {
		return id
	}
	for _, m := range maps {
		if uint32(id) >= m.HostID && uint32(id)-m.HostID < m.Size {
			return int(m.ContainerID + uint32(id) - m.HostID)
		}
	}
	return 65534
}

// CopyRole is the copy worker's hidden argv[1].
const CopyRole = "_cp"

const (
	copyCapsMarker = "_SANDY_CP_CAPS"
	copyMapsEnv    = "_SANDY_CP_MAPS"
)

// CopyWorkerMain is the copy worker: `sandy _cp running|stopped`, fd 3
// the sync socket, fd 4 (running) the container's root.
func CopyWorkerMain(args []string) int {
	// The worker is out of the container's reach because it stays in
	// the host's pid namespace: no process in the container can name it
	// (ptrace, /proc/PID/…, pidfd_open all need its pid). Dumpability
	// does not keep the container's root out: the worker was exec'd in
	// the container's user namespace (setns, then execve: Go cannot
	// setns into a user namespace), so that root holds CAP_SYS_PTRACE
	// over it (ptrace(2), "Ptrace access mode checking"). Not dumpable
	// all the same, so that a crash leaves no core file of the container's
	// data. It runs the sealed binary (userns.SelfExe) and holds no host
	// fd but its stdio and sync socket; its working directory is the
	// container's root.
	_ = unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0)
	keep := 4 // stdio and the sync socket; the root for a running container
	if len(args) > 0 && args[0] == "running" {
		keep = 5
	}
	if err := closeInherited(keep); err != nil {
		fmt.Fprintf(os.Stderr, "sandy %s: %v\n", CopyRole, err)
		return 1
	}
	// A reader that went away is an error to report, not a SIGPIPE.
	signal.Ignore(syscall.SIGPIPE)
	conn := userns.NewConn(3)
	if err := copyWorkerRun(conn, args); err != nil {
		_ = conn.Send(userns.MsgError, &userns.ChildError{Message: err.Error()})
		return 1
	}
	return 0
}

// closeInherited closes every fd from first on that this process
// inherited rather than opened: the sandy binary's fd that its exec came
// through, the namespace file nsenter used, and whatever the caller's own
// parent left open without close-on-exec. The Go runtime's own fds (the
// cgroup files it reads GOMAXPROCS from) are close-on-exec, as every fd
// Go opens, and stay.
func closeInherited(first int) error {
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		return fmt.Errorf("listing the inherited fds: %w", err)
	}
	for _, e := range ents {
		fd, err := strconv.Atoi(e.Name())
		if err != nil || fd < first {
			continue
		}
		flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err == nil && flags&unix.FD_CLOEXEC == 0 {
			unix.Close(fd)
		}
	}
	return nil
}

func copyWorkerRun(conn *userns.Conn, args []string) error {
	if len(args) < 1 || (args[0] != "running" && args[0] != "stopped") {
		return errors.New("usage: sandy _cp running [userns] | stopped")
	}
	stopped := args[0] == "stopped"
	// A stopped container's worker has a user namespace of its own
	// (unless sandy runs as root): it waits for its maps, then gains
	// its capabilities there, as the removal helper does.
	if stopped && os.Getenv(copyMapsEnv) == "1" && os.Getenv(copyCapsMarker) == "" {
		if _, err := conn.Expect("maps"); err != nil {
			return err
		}
		if err := userns.GainCaps(copyCapsMarker); err != nil {
			return err
		}
	}
	conn.CloseOnExec()
	if err := conn.Send(msgCopyHello, os.Getpid()); err != nil {
		return err
	}
	m, err := conn.Expect(msgCopyRequest)
	if err != nil {
		return err
	}
	var r copyRequest
	if err := m.Decode(&r); err != nil {
		return err
	}
	var root *os.File
	if stopped {
		var unmount func()
		if root, unmount, err = mountStopped(r); err != nil {
			return err
		}
		defer unmount()
	} else {
		root = os.NewFile(4, "root")
	}
	defer root.Close()
	// The working directory was the caller's, on the host: the root's
	// instead, so the worker holds no host directory.
	if err := unix.Fchdir(int(root.Fd())); err != nil {
		return fmt.Errorf("entering the container's root: %w", err)
	}
	if r.Get {
		return workerGet(conn, root, r)
	}
	return workerPut(conn, root, r)
}

func workerGet(conn *userns.Conn, root *os.File, r copyRequest) error {
	src, err := copier.OpenSource(root, r.Source)
	if err != nil {
		return err
	}
	defer src.Close()
	if err := conn.Send(msgCopySource, copier.Info{Exists: true, IsDir: src.IsDir()}); err != nil {
		return err
	}
	if err := src.WriteTar(os.Stdout, copier.ArchiveOptions{}); err != nil {
		return err
	}
	os.Stdout.Close()
	return conn.Send(msgCopyDone, nil)
}

func workerPut(conn *userns.Conn, root *os.File, r copyRequest) error {
	d, err := copier.StatDest(root, r.Dst)
	if err != nil {
		return err
	}
	var t copier.Transfer
	var done copyDone
	o := copier.ExtractOptions{Overwrite: r.Overwrite, Owners: r.Owners, XattrsLost: &done.XattrsLost}
	if r.Stream {
		if !d.IsDir {
			return fmt.Errorf("%s: the destination of a tar stream must be an existing directory", r.Dst)
		}
		t = copier.Transfer{Dir: path.Clean(r.Dst)}
	} else {
		if t, err = copier.Plan(r.Source, r.SrcDir, r.Dst, d, r.Overwrite); err != nil {
			return err
		}
		o.Rename = t
	}
	if err := conn.Send(msgCopyPlan, t); err != nil {
		return err
	}
	if err := copier.Extract(root, t.Dir, os.Stdin, o); err != nil {
		return err
	}
	return conn.Send(msgCopyDone, done)
}

// mountStopped mounts a stopped container's layers: a tmpfs on the
// empty directory r.LayerDir first (this process's mount namespace
// only), which holds overlay's merged directory, so nothing of the mount
// is left on the host.
func mountStopped(r copyRequest) (*os.File, func(), error) {
	if r.Layers == nil || r.LayerDir == "" {
		return nil, nil, errors.New("no layers to mount")
	}
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return nil, nil, fmt.Errorf("making the mounts private: %w", err)
	}
	if err := unix.Mount("tmpfs", r.LayerDir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, "mode=0700"); err != nil {
		return nil, nil, fmt.Errorf("mounting a tmpfs on %s: %w", r.LayerDir, err)
	}
	mounted, err := overlay.Mount(overlay.Options{LayerDir: r.LayerDir, Layers: r.Layers})
	if err != nil {
		return nil, nil, fmt.Errorf("mounting the container's layers: %w", err)
	}
	root, err := os.OpenFile(mounted.Path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, nil, err
	}
	return root, func() {
		root.Close()
		_ = unix.Unmount(mounted.Path, 0)
	}, nil
}
