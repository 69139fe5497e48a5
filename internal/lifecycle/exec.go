package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io"
	"math"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/cgroupv2"
	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/fds"
	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/internal/spec"
	"github.com/sandy-rt/sandy/internal/specjson"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/userns"
)

// ExecOptions are the options of exec (runc exec's).
type ExecOptions struct {
	ID            string
	ProcessFile   string   // --process: a runtime-spec process JSON
	Args          []string // the command, when there is no --process
	Detach        bool
	Tty           *bool // --tty, when given
	ConsoleSocket string
	PidFile       string
	Env           []string
	Cwd           string
	User          string // UID[:GID]
	AdditionalGID []int64
	Caps          []string
	// PrivilegedCaps is podman exec --privileged's: added to the
	// bounding set, and to the effective and permitted sets when the
	// process runs as uid 0 (a non-root user gets them only through a
	// set-id or file-capability program, as with podman).
	PrivilegedCaps []string
	NoNewPrivs     *bool // --no-new-privs, when given
	PreserveFDs    int
	IgnorePaused   bool
	Stdin          io.Reader
	Stdout         io.Writer
	Stderr         io.Writer
}

// execution is one exec in progress: the named steps share it.
type execution struct {
	g     *Global
	o     *ExecOptions
	undo  cleanups
	root  *state.Root
	c     *state.Container
	spec  *specs.Spec
	proc  *specs.Process
	uids  []specs.LinuxIDMapping // the container's uid map, as buildProcess read it (readIDMaps)
	files []*os.File             // passed to the exec init: preserved fds, sync, mount ns, then the joined namespaces
	joins []userns.Join
	conn  *userns.Conn
	child *userns.Child
	pid   int
	pty   *os.File // pty master, when exec relays it
	// exeCopy is the sealed sandy binary for the exec init (the
	// fallback only).
	exeCopy *exeCopy
	// The fork (forkexec.go): nsJoins are the namespaces to join, the
	// mount namespace last; plan is nil when the fallback runs, for
	// the reason fallback says.
	nsJoins  []userns.NSJoin
	forkIn   initproc.ForkInput
	plan     *userns.ForkPlan
	fallback string
	forked   *userns.Forked
}

// ExecFailed is the status of exec when sandy fails, rather than the
// process: the container does not exist or is stopped, the process is
// invalid, its program is not found (runc exec, unlike runc run, has no
// 127), the pid file cannot be written, and so on. runc exec exits 255
// then, and engines and runc's own tests read it so.
const ExecFailed = 255

// Exec runs a new process in a running (or created) container, as runc
// exec does: in all the container's namespaces and its cgroup, with its
// seccomp profile, as a child of this process. It returns the process's
// exit status (128+N for a signal), 0 once it runs under --detach, or
// ExecFailed with the error that stopped it before it ran.
func Exec(ctx context.Context, g *Global, o *ExecOptions) (int, error) {
	ex := &execution{g: g, o: o}
	defer func() {
		if ex.exeCopy != nil {
			ex.exeCopy.close()
		}
	}()
	defer ex.undo.run()
	var sigs chan os.Signal
	if !o.Detach {
		sigs = relaySignals(g)
	}
	if err := ex.runSteps(ctx, []struct {
		name string
		fn   func(context.Context) error
	}{
		{"loading the container", ex.loadContainer},
		{"building the process", ex.buildProcess},
		{"opening the container's namespaces", ex.openNamespaces},
		{"planning the process", ex.planFork},
	}); err != nil {
		return ExecFailed, err
	}
	release, wait := ex.release, func() (*os.ProcessState, error) { return ex.child.Wait(ex.pid) }
	var waitStatus func() (unix.WaitStatus, error)
	start := ex.startByFork
	if ex.plan == nil {
		g.Debugf("exec: path: nsenter and the exec init (%s)", ex.fallback)
		start = ex.startByInit
	} else {
		g.Debugf("exec: path: forked by sandy exec (no exec init)")
		release, waitStatus = ex.releaseFork, ex.waitFork
	}
	if err := start(ctx); err != nil {
		return ExecFailed, err
	}
	if o.Detach {
		if err := release(); err != nil {
			return ExecFailed, err
		}
		ex.undo.release()
		return 0, nil
	}
	ex.undo.release()
	f := &foreground{
		pty: ex.pty, stdin: o.Stdin, stdout: o.Stdout, sigs: sigs,
		release:    release,
		signal:     func(sig unix.Signal) error { return unix.Kill(ex.pid, sig) },
		wait:       wait,
		waitStatus: waitStatus,
	}
	code, err := f.run(g)
	if err != nil {
		return ExecFailed, err
	}
	return code, nil
}

// runSteps runs steps in order, each timed under --debug; an error
// names its step.
func (ex *execution) runSteps(ctx context.Context, steps []struct {
	name string
	fn   func(context.Context) error
}) error {
	for _, s := range steps {
		t0 := time.Now()
		err := s.fn(ctx)
		ex.g.Debugf("exec: %s: %v", s.name, time.Since(t0).Round(10*time.Microsecond))
		if err != nil {
			var ce *userns.ChildError
			if errors.As(err, &ce) {
				return err // already says where
			}
			return fmt.Errorf("exec: %s: %w", s.name, err)
		}
	}
	return nil
}

// startByFork starts the process with a fork of this process
// (execfork.go).
func (ex *execution) startByFork(ctx context.Context) error {
	return ex.runSteps(ctx, []struct {
		name string
		fn   func(context.Context) error
	}{
		{"forking the process", ex.fork},
		{"setting process.rlimits", ex.forkRlimits},
		{"joining the container's cgroup", ex.joinCgroup},
		{"writing the pid file", ex.writePidFile},
	})
}

// startByInit starts the process through nsenter and the exec init, a
// start of sandy from its sealed copy: the fallback (execfork.go).
func (ex *execution) startByInit(ctx context.Context) error {
	ex.exeCopy = copySelfExe()
	return ex.runSteps(ctx, []struct {
		name string
		fn   func(context.Context) error
	}{
		{"starting the exec init", ex.startInit},
		{"joining the container's cgroup", ex.joinCgroup},
		{"configuring the process", ex.configure},
		{"writing the pid file", ex.writePidFile},
	})
}

// loadContainer reads the container's state and the config it was created
// with; it must be created or running (paused only with --ignore-paused).
func (ex *execution) loadContainer(context.Context) error {
	root, c, lock, err := open(ex.g, ex.o.ID)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	switch st := root.Status(c); st {
	case state.Created, state.Running:
	case state.Paused:
		if !ex.o.IgnorePaused {
			return fmt.Errorf("container %s is paused: resume it first (or --ignore-paused)", ex.o.ID)
		}
	default:
		return fmt.Errorf("container %s is %s: cannot exec in it", ex.o.ID, st)
	}
	s, err := root.LoadSpec(ex.o.ID)
	if err != nil {
		return err
	}
	ex.root, ex.c, ex.spec = root, c, s
	return nil
}

// buildProcess makes the process to run: --process as given, or the
// container's process with the command line's changes (runc's rules);
// then checks it with config.json's rules (spec.ValidateProcess) and its
// ids against the container's user namespace, before anything starts.
func (ex *execution) buildProcess(context.Context) error {
	o := ex.o
	uids, gids, err := readIDMaps(ex.c.Pid)
	if err != nil {
		return err
	}
	var p *specs.Process
	if o.ProcessFile != "" {
		p, err = readProcessFile(o.ProcessFile)
	} else {
		p, err = ex.processFromFlags(uids, gids)
	}
	if err != nil {
		return err
	}
	if o.Tty != nil {
		p.Terminal = *o.Tty
	}
	if o.NoNewPrivs != nil {
		p.NoNewPrivileges = *o.NoNewPrivs
	}
	if o.Cwd != "" {
		p.Cwd = o.Cwd
	}
	if p.Cwd == "" {
		p.Cwd = "/"
	}
	ex.uids = uids
	if err := checkProcess(p, uids, gids); err != nil {
		if o.ProcessFile != "" {
			return fmt.Errorf("--process %s: %w", o.ProcessFile, err)
		}
		return err
	}
	p.Env = dedupEnv(p.Env)
	switch {
	case p.Terminal && o.Detach && o.ConsoleSocket == "":
		return errors.New("--tty with --detach needs --console-socket")
	case !p.Terminal && o.ConsoleSocket != "":
		return errors.New("--console-socket given, but no terminal (--tty)")
	}
	if p.ApparmorProfile != "" || p.SelinuxLabel != "" {
		ex.g.Warn("process.apparmorProfile, process.selinuxLabel and linux.mountLabel are not applied: sandy has no AppArmor or SELinux support")
	}
	ex.proc = p
	return nil
}

// checkProcess checks p with config.json's rules and its ids against the
// container's maps.
func checkProcess(p *specs.Process, uids, gids []specs.LinuxIDMapping) error {
	if err := spec.ValidateProcess(p); err != nil {
		return err
	}
	return spec.CheckUserMapped(p.User, uids, gids)
}

// readProcessFile reads --process FILE: a runtime-spec process object
// (containerd's shim execs so). With specjson, as the saved config's
// process was decoded (state.Root.LoadSpec): one codec's caches of the
// process's types.
func readProcessFile(path string) (*specs.Process, error) {
	data, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("--process: %w", err)
	}
	p := &specs.Process{}
	if err := specjson.Unmarshal(data, p); err != nil {
		return nil, fmt.Errorf("--process %s: %w", path, err)
	}
	return p, nil
}

// processFromFlags is the container's process with the command line's
// changes. The ids of --user and --additional-gids must be mapped in the
// container's user namespace (uids, gids): the errors name the flag.
func (ex *execution) processFromFlags(uids, gids []specs.LinuxIDMapping) (*specs.Process, error) {
	o := ex.o
	if len(o.Args) == 0 {
		return nil, errors.New("no command: give one after the container id, or --process FILE")
	}
	base := *ex.spec.Process
	p := &base
	p.Args = o.Args
	p.Env = append(append([]string(nil), p.Env...), o.Env...)
	p.Terminal = false
	if p.Capabilities != nil {
		caps := *p.Capabilities
		p.Capabilities = &caps
	}
	for _, c := range o.Caps {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		c = strings.ToUpper(c)
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		pc := p.Capabilities
		pc.Bounding = append(append([]string(nil), pc.Bounding...), c)
		pc.Effective = append(append([]string(nil), pc.Effective...), c)
		pc.Permitted = append(append([]string(nil), pc.Permitted...), c)
		pc.Inheritable = append(append([]string(nil), pc.Inheritable...), c)
		pc.Ambient = append(append([]string(nil), pc.Ambient...), c)
	}
	if o.User != "" {
		uid, gid, hasGID, err := parseUser(o.User)
		if err != nil {
			return nil, err
		}
		if err := spec.CheckMapped("--user uid", uid, "uid", uids); err != nil {
			return nil, err
		}
		p.User.UID = uid
		if hasGID {
			if err := spec.CheckMapped("--user gid", gid, "gid", gids); err != nil {
				return nil, err
			}
			p.User.GID = gid
		}
	}
	if len(o.PrivilegedCaps) > 0 {
		if p.Capabilities == nil {
			p.Capabilities = &specs.LinuxCapabilities{}
		}
		pc := p.Capabilities
		pc.Bounding = unionCaps(pc.Bounding, o.PrivilegedCaps)
		if p.User.UID == 0 {
			pc.Effective = unionCaps(pc.Effective, o.PrivilegedCaps)
			pc.Permitted = unionCaps(pc.Permitted, o.PrivilegedCaps)
		}
	}
	p.User.AdditionalGids = append([]uint32(nil), p.User.AdditionalGids...)
	for _, g := range o.AdditionalGID {
		if g < 0 || g > math.MaxUint32 {
			return nil, fmt.Errorf("--additional-gids %d: out of range (a gid is 0 to 4294967294)", g)
		}
		if err := spec.CheckMapped("--additional-gids", uint32(g), "gid", gids); err != nil {
			return nil, err
		}
		p.User.AdditionalGids = append(p.User.AdditionalGids, uint32(g))
	}
	return p, nil
}

// unionCaps is a set of capabilities with add's appended, each once; a
// new slice (the spec's is the container's).
func unionCaps(set, add []string) []string {
	out := append([]string(nil), set...)
	for _, c := range add {
		if !slices.Contains(out, c) {
			out = append(out, c)
		}
	}
	return out
}

// readIDMaps reads the uid and gid maps of pid's user namespace from
// /proc/PID/{uid,gid}_map (user_namespaces(7)): the first column is the
// ids of that namespace, which is what a process there can take. For a
// container without a user namespace of its own they are sandy's.
// The caller checks afterwards that pid is still the container's init.
func readIDMaps(pid int) (uids, gids []specs.LinuxIDMapping, err error) {
	read := func(name string) ([]specs.LinuxIDMapping, error) {
		path := fmt.Sprintf("/proc/%d/%s", pid, name)
		data, err := fds.ReadFile(path)
		if err != nil {
			return nil, fmt.Errorf("reading the container's id map: %w", err)
		}
		return idmap.ParseProcMap(path, string(data))
	}
	if uids, err = read("uid_map"); err != nil {
		return nil, nil, err
	}
	if gids, err = read("gid_map"); err != nil {
		return nil, nil, err
	}
	return uids, gids, nil
}

// parseUser parses --user UID[:GID] (numbers, as runc takes them).
func parseUser(s string) (uid, gid uint32, hasGID bool, err error) {
	us, gs, hasGID := strings.Cut(s, ":")
	u, err := strconv.ParseUint(us, 10, 32)
	if err != nil {
		return 0, 0, false, fmt.Errorf("--user %q: want UID[:GID] (numbers)", s)
	}
	var g uint64
	if hasGID {
		if g, err = strconv.ParseUint(gs, 10, 32); err != nil {
			return 0, 0, false, fmt.Errorf("--user %q: want UID[:GID] (numbers)", s)
		}
	}
	return uint32(u), uint32(g), hasGID, nil
}

// dedupEnv keeps the last of each NAME=, in the order of first appearance
// (so --env overrides the config's value).
func dedupEnv(env []string) []string {
	last := map[string]int{}
	for i, e := range env {
		k, _, _ := strings.Cut(e, "=")
		last[k] = i
	}
	out := make([]string, 0, len(last))
	seen := map[string]bool{}
	for _, e := range env {
		k, _, _ := strings.Cut(e, "=")
		if seen[k] {
			continue
		}
		seen[k] = true
		out = append(out, env[last[k]])
	}
	return out
}

// execNamespaces are the namespaces the exec init joins, in nsenter's
// names; the user namespace first, and the mount namespace apart (the
// exec init enters it itself: see initproc/exec.go).
var execNamespaces = []struct {
	proc, flag string
	clone      int
}{
	{"user", "user", unix.CLONE_NEWUSER}, {"ipc", "ipc", unix.CLONE_NEWIPC}, {"uts", "uts", unix.CLONE_NEWUTS},
	{"net", "net", unix.CLONE_NEWNET}, {"cgroup", "cgroup", unix.CLONE_NEWCGROUP}, {"pid", "pid", unix.CLONE_NEWPID},
}

// openNamespaces opens the container init's namespace files now, so that
// the pid cannot be reused under us between here and the joins: the
// files are checked against the init's start time once open, and nsenter
// joins them through /proc/self/fd. Namespaces the container shares with
// sandy are left out (setns(2) refuses to re-enter one's own user
// namespace).
func (ex *execution) openNamespaces(context.Context) error {
	for i := 0; i < ex.o.PreserveFDs; i++ {
		ex.files = append(ex.files, os.NewFile(uintptr(3+i), "preserved-"+strconv.Itoa(3+i)))
	}
	openNS := func(name string) (*os.File, bool, error) {
		f, err := fds.Open(fmt.Sprintf("/proc/%d/ns/%s", ex.c.Pid, name), unix.O_RDONLY)
		if err != nil {
			return nil, false, err
		}
		var mine, theirs unix.Stat_t
		if err := unix.Stat("/proc/self/ns/"+name, &mine); err != nil {
			f.Close()
			return nil, false, err
		}
		if err := unix.Fstat(int(f.Fd()), &theirs); err != nil {
			f.Close()
			return nil, false, err
		}
		return f, mine.Ino == theirs.Ino && mine.Dev == theirs.Dev, nil
	}
	mnt, same, err := openNS("mnt")
	if err != nil {
		return err
	}
	ex.undo.add(func() { mnt.Close() })
	if same {
		return errors.New("the container shares sandy's mount namespace")
	}
	// ExtraFiles order: preserved, the sync socket (added by startInit at
	// index PreserveFDs), the mount namespace, then the joined ones.
	ex.files = append(ex.files, nil, mnt)
	for _, ns := range execNamespaces {
		f, same, err := openNS(ns.proc)
		if err != nil {
			return err
		}
		if same {
			f.Close()
			continue
		}
		ex.undo.add(func() { f.Close() })
		ex.nsJoins = append(ex.nsJoins, userns.NSJoin{File: f, Flag: ns.clone, Name: ns.proc})
		ex.joins = append(ex.joins, userns.Join{Flag: ns.flag, Path: fmt.Sprintf("/proc/self/fd/%d", 3+len(ex.files))})
		ex.files = append(ex.files, f)
	}
	ex.nsJoins = append(ex.nsJoins, userns.NSJoin{File: mnt, Flag: unix.CLONE_NEWNS, Name: "mount"})
	if !state.Alive(ex.c.Pid, ex.c.PidStart) {
		return fmt.Errorf("container %s stopped", ex.c.ID)
	}
	return nil
}

// startInit starts the exec init in the container's namespaces; it says
// hello with its pid once it runs there.
func (ex *execution) startInit(context.Context) error {
	link, err := newChildLink(true, ex.exeCopy)
	if err != nil {
		return err
	}
	ex.g.Debugf("exec: the init runs %s", link.how)
	defer link.started()
	ex.conn = link.parent
	ex.undo.add(func() { link.parent.Close() })
	syncFD := 3 + ex.o.PreserveFDs
	ex.files[ex.o.PreserveFDs] = link.child
	c, err := userns.Start(userns.Config{
		Exe:  link.exe,
		Args: []string{initproc.ExecRole, "--sync-fd", strconv.Itoa(syncFD), "--mnt-fd", strconv.Itoa(syncFD + 1), "--preserve-fds", strconv.Itoa(ex.o.PreserveFDs)},
		// The process's environment comes in its config, never from here.
		Env:        childEnv,
		Stdin:      ex.o.Stdin,
		Stdout:     ex.o.Stdout,
		Stderr:     ex.o.Stderr,
		ExtraFiles: ex.files,
		CgroupFD:   -1,
		Join:       ex.joins,
		// Root with mappings of other host ids is not root in there.
		JoinAsRoot: !userns.RootInMap(ex.uids, os.Getuid()),
	})
	link.started()
	if err != nil {
		return err
	}
	ex.child = c
	m, err := ex.conn.Expect(initproc.MsgHello)
	if errors.Is(err, userns.ErrClosed) {
		ps, werr := c.Wait(0)
		if werr == nil && ps != nil {
			werr = errors.New(ps.String())
		}
		return fmt.Errorf("the exec init exited before it started (%v)", werr)
	}
	if err != nil {
		return err
	}
	ex.pid = m.PID
	if err := c.Adopt(); err != nil {
		g := ex.g
		g.Debugf("exec: the nsenter chain: %v", err)
	}
	ex.undo.add(func() {
		_ = unix.Kill(ex.pid, unix.SIGKILL)
		_, _ = c.Wait(ex.pid)
	})
	return nil
}

// joinCgroup puts the exec init into the container's cgroup before it
// runs any of the container's code.
func (ex *execution) joinCgroup(ctx context.Context) error {
	if len(ex.c.Cgroup) == 0 {
		return nil
	}
	m, err := cgroupv2.Load(ex.c.Cgroup)
	if err != nil {
		return err
	}
	defer m.Close()
	if m.Kind() == cgroupv2.KindNone {
		return nil
	}
	return m.Join(ctx, ex.pid)
}

// configure sends the process and waits until the exec init is ready,
// handling the pty and a seccomp listener on the way.
func (ex *execution) configure(context.Context) error {
	sc := ex.spec.Linux.Seccomp
	if ex.c.NoSeccomp {
		sc = nil
	}
	if err := initproc.SendConfig(ex.conn, &initproc.ExecConfig{Process: ex.proc, Seccomp: sc}); err != nil {
		return err
	}
	exited := func() error { return errors.New("the exec init exited during set-up") }
	return awaitReady(ex.conn, exited, map[string]func(*userns.Msg) error{
		initproc.MsgPty: func(m *userns.Msg) error {
			fd, err := oneFD(m)
			if err != nil {
				return err
			}
			master := os.NewFile(uintptr(fd), "pty-master")
			if ex.o.ConsoleSocket != "" {
				defer master.Close()
				return sendConsole(ex.o.ConsoleSocket, master)
			}
			ex.pty = master
			ex.undo.add(func() { master.Close() })
			return nil
		},
		initproc.MsgSeccomp: func(m *userns.Msg) error {
			fd, err := oneFD(m)
			if err != nil {
				return err
			}
			return handOnListener(ex.conn, sc, ex.c, specs.ContainerState(ex.root.Status(ex.c)), fd)
		},
		// Before the exec init switches to the process's user, as for
		// the init (see create.go).
		initproc.MsgRlimits: func(*userns.Msg) error { return setRlimits(ex.conn, ex.pid, ex.proc.Rlimits) },
	})
}

func (ex *execution) writePidFile(context.Context) error {
	if ex.o.PidFile == "" {
		return nil
	}
	return WritePidFile(ex.o.PidFile, ex.pid)
}

// release tells the exec init to exec the process and waits until it has:
// the sync socket closes on execve, or brings the error that stopped it.
func (ex *execution) release() error {
	if err := ex.conn.Send(initproc.MsgStart, nil); err != nil {
		return err
	}
	m, err := ex.conn.Recv()
	if errors.Is(err, userns.ErrClosed) {
		return nil
	}
	if err != nil {
		return err
	}
	if m.Type == userns.MsgError {
		var ce userns.ChildError
		if err := m.Decode(&ce); err != nil {
			return err
		}
		return &ce
	}
	return fmt.Errorf("sync protocol: unexpected %q message after start", m.Type)
}
