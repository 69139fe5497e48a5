//go:build linux

package cgroupv2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/godbus/dbus/v5"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Leaves made inside a delegated scope. A cgroup with controllers enabled
// for its children may hold no processes itself (cgroup-v2.rst, "no
// internal processes"), so the init leaves the scope's root for ContainerLeaf
// before the controllers are switched on; SupervisorDir is for host-side
// helpers the caller wants accounted with the container (e.g. slirp4netns).
const (
	ContainerLeaf = "container"
	SupervisorDir = "supervisor"
)

// userBusAddress is the user's session bus: $DBUS_SESSION_BUS_ADDRESS, else
// $XDG_RUNTIME_DIR/bus, else /run/user/$UID/bus. Never the system bus and
// never dbus-launch (godbus's SessionBus would autolaunch one).
func userBusAddress() (addr, socket string) {
	if a := os.Getenv("DBUS_SESSION_BUS_ADDRESS"); a != "" {
		for _, part := range strings.Split(a, ";") {
			for _, kv := range strings.Split(strings.TrimPrefix(part, "unix:"), ",") {
				if p, ok := strings.CutPrefix(kv, "path="); ok {
					return a, p
				}
			}
		}
		return a, ""
	}
	dir := os.Getenv("XDG_RUNTIME_DIR")
	if dir == "" {
		dir = "/run/user/" + strconv.Itoa(os.Getuid())
	}
	p := filepath.Join(dir, "bus")
	return "unix:path=" + p, p
}

// SystemManagerSocket is PID 1's private D-Bus socket, where the system's
// systemd answers root directly, without a bus daemon (runc's systemd
// driver and go-systemd's NewSystemdConnection dial it for root too).
const SystemManagerSocket = "/run/systemd/private"

// managerAddress is the systemd manager sandy asks for scopes, and the
// socket to stat first: as root (euid 0) the system's, on its private
// socket, because a root container belongs in the system's slices
// (containerd's "kubepods-...-pod<uid>.slice:cri-containerd:<id>" names a
// slice kubelet made there), and root has no user session as a rule;
// otherwise the user's own, on the session bus (userBusAddress), never
// the system bus.
func managerAddress(euid int) (addr, socket string) {
	if euid == 0 {
		return "unix:path=" + SystemManagerSocket, SystemManagerSocket
	}
	return userBusAddress()
}

// isSystemManager reports whether addr is the system manager's private
// socket: a direct connection to systemd, with no bus daemon between.
func isSystemManager(addr string) bool { return addr == "unix:path="+SystemManagerSocket }

// bus is one private connection to a systemd manager: the user's through
// the session bus, or the system's, directly (direct).
type bus struct {
	conn *dbus.Conn
	sig  chan *dbus.Signal
	obj  dbus.BusObject
	// direct: a peer-to-peer connection to systemd (SystemManagerSocket).
	// There is no bus daemon to say Hello to or to ask for signals
	// (AddMatch): systemd sends its signals to every direct connection.
	direct bool
	// answered: a reply has come on this connection, so systemd has left
	// its authentication phase for good (awaitReply).
	answered atomic.Bool
}

// dialUserBus connects to the manager at addr (managerAddress) and
// authenticates with EXTERNAL as the real uid,
// which is why it must run on the host side: inside the user namespace
// the uid the bus daemon sees through SO_PEERCRED would not match. No
// dbus.WithContext: godbus closes the connection when that context ends,
// and the connection outlives the call that made it.
//
// For a unix:path= address sandy makes the socket itself, with a deadline
// for connecting, authenticating and Hello, so a wedged bus daemon costs
// busTimeout, not a hang.
func dialUserBus(addr string) (*bus, error) { return dialBus(addr, isSystemManager(addr), busTimeout) }

// dialBus is dialUserBus; direct says that addr is systemd itself, not a
// bus daemon, and timeout bounds connecting and authenticating.
func dialBus(addr string, direct bool, timeout time.Duration) (*bus, error) {
	var conn *dbus.Conn
	var sock net.Conn
	var err error
	if p, ok := strings.CutPrefix(addr, "unix:path="); ok && !strings.ContainsAny(p, ",;") {
		if sock, err = net.DialTimeout("unix", p, timeout); err == nil {
			_ = sock.SetDeadline(time.Now().Add(timeout))
			conn, err = dbus.NewConn(sock)
		}
	} else {
		conn, err = dbus.Dial(addr)
	}
	if err != nil {
		return nil, fmt.Errorf("connecting to the user bus %s: %w", addr, err)
	}
	if err := conn.Auth([]dbus.Auth{dbus.AuthExternal(strconv.Itoa(os.Getuid()))}); err != nil {
		conn.Close()
		return nil, fmt.Errorf("authenticating to the user bus %s: %w", addr, err)
	}
	if !direct {
		if err := conn.Hello(); err != nil {
			conn.Close()
			return nil, fmt.Errorf("saying hello to the user bus %s: %w", addr, err)
		}
	}
	if sock != nil {
		_ = sock.SetDeadline(time.Time{})
	}
	b := &bus{conn: conn, sig: make(chan *dbus.Signal, 64), obj: conn.Object("org.freedesktop.systemd1", "/org/freedesktop/systemd1"), direct: direct}
	conn.Signal(b.sig)
	return b, nil
}

func (b *bus) Close() error { return b.conn.Close() }

const (
	managerIface = "org.freedesktop.systemd1.Manager"
	busTimeout   = 10 * time.Second
	callTimeout  = 30 * time.Second
	// nudgeEvery is how long a call on a direct connection waits for its
	// reply before it pings systemd (awaitReply); systemd answers in
	// 1-30 ms in the TCG VM.
	nudgeEvery = 50 * time.Millisecond
)

// watchJobs asks the bus daemon for systemd's JobRemoved signals about
// unit; systemd sends them to the client that queued the job.
//
// The AddMatch call is sent without waiting for its reply: the bus daemon
// handles one connection's messages in order, so the rule is in place
// before the StartTransientUnit sent next reaches systemd, and a round trip
// is saved.
func (b *bus) watchJobs(unit string) {
	if b.direct {
		return
	}
	rule := "type='signal',path='/org/freedesktop/systemd1',interface='" + managerIface +
		"',member='JobRemoved',arg2='" + unit + "'"
	b.conn.BusObject().Go("org.freedesktop.DBus.AddMatch", dbus.FlagNoReplyExpected, nil, rule)
}

// waitJob waits for JobRemoved(id, job, unit, result) of job, or, when
// done is not nil, until done() says the job's effect is visible.
func (b *bus) waitJob(ctx context.Context, job dbus.ObjectPath, done func() bool) error {
	t := time.NewTimer(30 * time.Second)
	defer t.Stop()
	var poll <-chan time.Time
	if done != nil {
		tick := time.NewTicker(time.Millisecond)
		defer tick.Stop()
		poll = tick.C
	}
	for {
		select {
		case <-poll:
			if done() {
				return nil
			}
		case s := <-b.sig:
			if s.Name != managerIface+".JobRemoved" || len(s.Body) < 4 {
				continue
			}
			if p, _ := s.Body[1].(dbus.ObjectPath); p != job {
				continue
			}
			unit, _ := s.Body[2].(string)
			if res, _ := s.Body[3].(string); res != "done" {
				return fmt.Errorf("systemd job for %s finished with result %q (journalctl --user -u %s)", unit, res, unit)
			}
			return nil
		case <-t.C:
			return fmt.Errorf("waiting 30s for systemd job %s: timed out", job)
		case <-ctx.Done():
			return ctx.Err()
		}
	}
}

// call calls a systemd manager method; a manager that does not answer in
// callTimeout is an error, never a hang.
func (b *bus) call(ctx context.Context, method string, out any, args ...any) error {
	ctx, cancel := context.WithTimeout(ctx, callTimeout)
	defer cancel()
	c := b.invoke(ctx, managerIface+"."+method, args...)
	if errors.Is(c.Err, context.DeadlineExceeded) {
		look := "systemctl --user status; journalctl --user"
		if b.direct {
			look = "systemctl status; journalctl -b"
		}
		return fmt.Errorf("systemd did not answer %s in %v (%s)", method, callTimeout, look)
	}
	if c.Err != nil {
		return c.Err
	}
	if out != nil {
		return c.Store(out)
	}
	return nil
}

// invoke sends a method call to systemd's manager object and waits for
// its reply (awaitReply), or for ctx to end (then the call's Err is ctx's).
func (b *bus) invoke(ctx context.Context, method string, args ...any) *dbus.Call {
	c := b.obj.GoWithContext(ctx, method, 0, make(chan *dbus.Call, 1), args...)
	return b.awaitReply(c)
}

// awaitReply waits for c's reply. On a direct connection, until the first
// reply has come, it also sends systemd a Peer.Ping that wants no reply
// every nudgeEvery: systemd's sd-bus (252, Debian 12's) reads whatever
// has arrived when the client's "BEGIN" of the authentication arrives,
// and when the first method call came in the same read, it leaves it in
// its buffer unprocessed, with nothing left on the socket to wake it,
// until more bytes arrive (then it answers both). godbus sends BEGIN and
// the first call back to back, so whenever systemd is slow to read (busy,
// as when a scope's cgroup has just emptied at sandy delete), the call
// went unanswered until callTimeout: 4 of 10 deletes in the VM, and the
// scope-path hangs of the VM's suites. Reproduced outside sandy too: a
// Peer.Ping written with BEGIN got no answer in 3 s, 4 times of 4;
// written apart, an answer in 0-2 ms; a second message brought both
// answers. Any later byte wakes it, so a ping does; once a reply has
// come, the connection is past that and nothing more is sent. A bus
// daemon (the user's session bus) reads BEGIN correctly.
func (b *bus) awaitReply(c *dbus.Call) *dbus.Call {
	if !b.direct || b.answered.Load() {
		return <-c.Done
	}
	t := time.NewTicker(nudgeEvery)
	defer t.Stop()
	for {
		select {
		case r := <-c.Done:
			if r.Err == nil || dbusErrorName(r.Err) != "" {
				b.answered.Store(true)
			}
			return r
		case <-t.C:
			b.obj.Go("org.freedesktop.DBus.Peer.Ping", dbus.FlagNoReplyExpected, nil)
		}
	}
}

func dbusErrorName(err error) string {
	var e dbus.Error
	if errors.As(err, &e) {
		return e.Name
	}
	return ""
}

// splitSystemdPath splits runc's "slice:prefix:name" cgroupsPath.
func splitSystemdPath(cp string) (slice, prefix, name string) {
	parts := strings.SplitN(cp, ":", 3)
	return parts[0], parts[1], parts[2]
}

// sdManager is a transient scope on the user's systemd with Delegate=yes.
type sdManager struct {
	leaf         // scope/container, known after Apply
	unit  string // sandy-<id>.scope
	slice string
	scope string // scope cgroup dir, known after Apply
	addr  string
	bus   *bus     // nil until connect
	dial  *dialing // the connection being made on the side, if any
	opts  *Options
	plan  *plan
	fd    int
}

// dialing is a connection to the manager being made on a goroutine.
type dialing struct {
	done chan struct{}
	b    *bus
	err  error
}

func startDial(addr string, timeout time.Duration) *dialing {
	d := &dialing{done: make(chan struct{})}
	go func() {
		d.b, d.err = dialBus(addr, isSystemManager(addr), timeout)
		close(d.done)
	}()
	return d
}

// newSystemd makes the manager. The systemd manager asked for by name
// (--cgroup-manager=systemd, --systemd-cgroup: containerd's SystemdCgroup
// = true) connects on the side: the D-Bus connection (connect, EXTERNAL's
// round trips: 33 ms of each create in the TCG VM) then runs beside
// create's next steps and the init's start, up to the first call, which
// for root (no bus needed by Prepare) is Apply's, itself on a goroutine
// from the init's clone (lifecycle's applyEarly). A bus socket that is
// missing is still an error here, at once; one that does not answer is
// one at the first call, within busTimeout, never a hang. Chosen by the
// auto ladder, the connection is made here, so that a bus that does not
// answer falls back to cgroupfs as before.
func newSystemd(o *Options, p *plan) (*sdManager, error) {
	addr, sock := managerAddress(os.Geteuid())
	return newSystemdAt(o, p, addr, sock, o.Manager == KindSystemd, busTimeout)
}

// newSystemdAs is newSystemd for a caller of effective uid euid
// (managerAddress), connecting at once.
func newSystemdAs(o *Options, p *plan, euid int) (*sdManager, error) {
	addr, sock := managerAddress(euid)
	return newSystemdAt(o, p, addr, sock, false, busTimeout)
}

// newSystemdAt is newSystemd for the manager at addr, whose socket sock
// (when not empty) must exist; lazy connects on the side.
func newSystemdAt(o *Options, p *plan, addr, sock string, lazy bool, timeout time.Duration) (*sdManager, error) {
	if sock != "" {
		if _, err := os.Stat(sock); err != nil {
			if isSystemManager(addr) {
				return nil, fmt.Errorf("no systemd manager at %s (is systemd the init?): %w", sock, err)
			}
			return nil, fmt.Errorf("no user session bus at %s: %w", sock, err)
		}
	}
	unit, slice := scopeName(o, isSystemManager(addr))
	m := &sdManager{unit: unit, slice: slice, addr: addr, opts: o, plan: p, fd: -1}
	if lazy {
		m.dial = startDial(addr, timeout)
		return m, nil
	}
	b, err := dialBus(addr, isSystemManager(addr), timeout)
	if err != nil {
		return nil, err
	}
	m.bus = b
	return m, nil
}

// connect returns the manager's connection: the one made already, the
// one being made on the side (newSystemd), waited for, or a new one (a
// manager loaded from a container's state).
func (m *sdManager) connect(ctx context.Context) (*bus, error) {
	if m.bus != nil {
		return m.bus, nil
	}
	if d := m.dial; d != nil {
		select {
		case <-d.done:
		case <-ctx.Done():
			return nil, ctx.Err() // Close collects it
		}
		m.dial = nil
		if d.err != nil {
			return nil, d.err
		}
		m.bus = d.b
		return m.bus, nil
	}
	b, err := dialUserBus(m.addr)
	if err != nil {
		return nil, err
	}
	m.bus = b
	return b, nil
}

// scopeName is the scope's unit name and slice: sandy-<id>.scope in
// user.slice (the system manager's: system.slice, as runc), or from
// runc's "slice:prefix:name" cgroupsPath, whose empty parts keep the
// defaults.
func scopeName(o *Options, system bool) (unit, slice string) {
	slice, prefix, name := "user.slice", "sandy", o.ID
	if system {
		slice = "system.slice"
	}
	if cp := o.CgroupsPath; strings.Count(cp, ":") == 2 {
		s, pfx, n := splitSystemdPath(cp)
		if s != "" {
			slice = s
		}
		if pfx != "" {
			prefix = pfx
		}
		if n != "" {
			name = n
		}
	}
	return prefix + "-" + name + ".scope", slice
}

func (m *sdManager) Kind() string { return KindSystemd }

// Prepare checks, before anything starts, that the user's manager has the
// controllers the limits need (Debian delegates cpu memory pids, not
// cpuset or io). The manager's cgroup is where logind puts it,
// user.slice/user-UID.slice/user@UID.service; only when that is missing
// does it cost a D-Bus round trip to ask.
//
// The system manager (root) enables any controller of the hierarchy down
// to a unit that needs it: the root cgroup's cgroup.controllers.
func (m *sdManager) Prepare(ctx context.Context) error {
	want := m.plan.Controllers()
	if len(want) == 0 {
		return nil
	}
	if isSystemManager(m.addr) {
		have, err := controllers(Root, "cgroup.controllers")
		if err != nil {
			return fmt.Errorf("reading the controllers of the cgroup root: %w", err)
		}
		return m.loseMissing(want, have, Root)
	}
	uid := strconv.Itoa(os.Getuid())
	dir := filepath.Join(Root, "user.slice", "user-"+uid+".slice", "user@"+uid+".service")
	if _, err := os.Stat(dir); err != nil {
		b, err := m.connect(ctx)
		if err != nil {
			return fmt.Errorf("reading the user manager's cgroup: %w", err)
		}
		var v dbus.Variant
		cctx, cancel := context.WithTimeout(ctx, callTimeout)
		err = b.invoke(cctx, "org.freedesktop.DBus.Properties.Get", managerIface, "ControlGroup").Store(&v)
		cancel()
		if err != nil {
			return fmt.Errorf("reading the user manager's cgroup: %w", err)
		}
		cg, _ := v.Value().(string)
		dir = filepath.Join(Root, cg)
	}
	have, err := controllers(dir, "cgroup.subtree_control")
	if err != nil {
		return fmt.Errorf("reading controllers of the user manager: %w", err)
	}
	return m.loseMissing(want, have, dir)
}

func (m *sdManager) loseMissing(want, have []string, dir string) error {
	lost := missing(want, have)
	if len(lost) == 0 {
		return nil
	}
	var lim []limit
	for _, l := range m.plan.Limits {
		if contains(lost, l.Controller) {
			lim = append(lim, l)
		}
	}
	m.plan = withoutControllers(m.plan, lost)
	return m.opts.lose(lim, lost, NotDelegated(lost, have, os.Getuid(), dir), delegateFix(lost))
}

// withoutControllers drops files and properties of the lost controllers,
// used only once the loss was allowed.
func withoutControllers(p *plan, lost []string) *plan {
	q := &plan{Unsupported: p.Unsupported, Ignored: p.Ignored}
	for _, l := range p.Limits {
		if !contains(lost, l.Controller) {
			q.Limits = append(q.Limits, l)
		}
	}
	for i, f := range p.Files {
		if !contains(lost, p.fileFor[i].Controller) {
			q.Files = append(q.Files, f)
			q.fileFor = append(q.fileFor, p.fileFor[i])
		}
	}
	for _, pr := range p.Props {
		switch {
		case contains(lost, "cpuset") && strings.HasPrefix(pr.Name, "Allowed"),
			contains(lost, "io") && strings.HasPrefix(pr.Name, "IO"):
			continue
		}
		q.Props = append(q.Props, pr)
	}
	return q
}

// CgroupFD is never ok for a scope: there is none before Apply, and
// afterwards CLONE_INTO_CGROUP needs write access to the cgroup.procs of the
// common ancestor of sandy's cgroup and the scope, which from a login
// session is root's user-UID.slice (clone3(2) EACCES). Use Join.
func (m *sdManager) CgroupFD() (int, bool) { return -1, false }

// Join asks the user manager to move pid into the scope's container leaf.
func (m *sdManager) Join(ctx context.Context, pid int) error {
	return m.attach(ctx, ContainerLeaf, pid)
}

// Supervise asks the user manager to move pid into the supervisor leaf.
func (m *sdManager) Supervise(ctx context.Context, pid int) error {
	return m.attach(ctx, SupervisorDir, pid)
}

func (m *sdManager) attach(ctx context.Context, sub string, pid int) error {
	b, err := m.connect(ctx)
	if err != nil {
		return fmt.Errorf("moving pid %d into scope %s: %w", pid, m.unit, err)
	}
	if err := b.call(ctx, "AttachProcessesToUnit", nil, m.unit, "/"+sub, []uint32{uint32(pid)}); err != nil {
		return fmt.Errorf("moving pid %d into %s of scope %s: %w", pid, sub, m.unit, err)
	}
	return nil
}

// scopeProps are the properties of the transient scope.
func (m *sdManager) scopeProps(pid int) []property {
	props := []property{
		prop("Description", "sandy container "+m.opts.ID),
		prop("Slice", m.slice),
		prop("PIDs", []uint32{uint32(pid)}),
		prop("Delegate", true),
		prop("DefaultDependencies", false),
		prop("CollectMode", "inactive-or-failed"),
		prop("MemoryAccounting", true),
		prop("CPUAccounting", true),
		prop("TasksAccounting", true),
		// A scope only stops by signal; sandy kills through cgroup.kill
		// first, so this only bounds a stop of a wedged scope.
		prop("TimeoutStopUSec", uint64(10*time.Second/time.Microsecond)),
	}
	hasTasks := false
	for _, p := range m.plan.Props {
		hasTasks = hasTasks || p.Name == "TasksMax"
	}
	if !hasTasks {
		// Without it the user manager's DefaultTasksMax (15% of the kernel's
		// pid limit) would cap a container that asked for no pids limit.
		props = append(props, prop("TasksMax", uint64(1<<64-1)))
	}
	return append(props, m.plan.Props...)
}

// Apply starts the scope with pid in it, waits for the job, then moves pid
// into scope/container, enables the delegated controllers and writes the
// limits systemd has no property for (and all limits again in the leaf,
// where the container's own stats and OOM events are read).
func (m *sdManager) Apply(ctx context.Context, pid int) error {
	if err := m.startScope(ctx, pid); err != nil {
		return err
	}
	scope, err := ownCgroup(strconv.Itoa(pid))
	if err != nil {
		return fmt.Errorf("finding the scope of pid %d: %w", pid, err)
	}
	if !strings.HasSuffix(scope, "/"+m.unit) {
		return fmt.Errorf("pid %d is in %s, not in the new scope %s", pid, scope, m.unit)
	}
	m.scope = scope
	m.leaf = leaf{path: filepath.Join(scope, ContainerLeaf)}
	for _, d := range []string{m.path, filepath.Join(scope, SupervisorDir)} {
		if err := os.Mkdir(d, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("creating cgroup %s in the delegated scope: %w", d, err)
		}
	}
	if err := movePid(m.path, pid); err != nil {
		return fmt.Errorf("moving pid %d into its cgroup: %w", pid, err)
	}
	have, err := controllers(scope, "cgroup.controllers")
	if err != nil {
		return fmt.Errorf("reading controllers of %s: %w", scope, err)
	}
	if err := m.loseMissing(m.plan.Controllers(), have, scope); err != nil {
		return err
	}
	if err := enableControllers(scope, have); err != nil {
		return fmt.Errorf("enabling controllers: %w", err)
	}
	return m.writePlan(m.opts, m.plan)
}

// startScope calls StartTransientUnit and waits for its job. "Unit exists"
// is a scope left by an earlier container with this id (failed, or not yet
// collected): reset-failed and try once more.
func (m *sdManager) startScope(ctx context.Context, pid int) error {
	b, err := m.connect(ctx)
	if err != nil {
		return fmt.Errorf("starting scope %s: %w", m.unit, err)
	}
	b.watchJobs(m.unit)
	props := m.scopeProps(pid)
	for try := 0; ; try++ {
		var job dbus.ObjectPath
		err := b.call(ctx, "StartTransientUnit", &job, m.unit, "fail", props, []struct {
			Name  string
			Props []property
		}{})
		if err == nil {
			// systemd makes the cgroup, applies the properties, chowns the
			// delegated files and only then moves the pid (scope_start →
			// unit_attach_pids_to_cgroup), so the pid showing up in the
			// scope means the scope is ready; that is seen a bus hop
			// before JobRemoved arrives. A failed job still ends the wait.
			err = b.waitJob(ctx, job, func() bool {
				cg, err := ownCgroup(strconv.Itoa(pid))
				return err == nil && strings.HasSuffix(cg, "/"+m.unit)
			})
			if err == nil {
				return nil
			}
		}
		switch name := dbusErrorName(err); {
		case name == "org.freedesktop.systemd1.UnitExists" && try == 0:
			_ = b.call(ctx, "ResetFailedUnit", nil, m.unit)
			continue
		case name == "org.freedesktop.systemd1.UnitExists":
			return fmt.Errorf("starting scope %s: it exists already (a container with this id still running? sandy delete --force %s): %w", m.unit, m.opts.ID, err)
		case unix.Kill(pid, 0) != nil:
			return fmt.Errorf("starting scope %s: process %d is gone: %w", m.unit, pid, err)
		}
		return fmt.Errorf("starting scope %s: %w", m.unit, err)
	}
}

func (m *sdManager) State() ([]byte, error) {
	return json.Marshal(state{Kind: KindSystemd, Path: m.path, Unit: m.unit, Scope: m.scope, Bus: m.addr})
}

// Destroy kills the container through cgroup.kill (the leaves are the
// user's own), removes the leaves, and stops the scope. An empty scope is
// collected by systemd anyway, so a bus that is gone is not an error when
// the cgroup is already gone.
func (m *sdManager) Destroy(ctx context.Context) error {
	if m.scope != "" {
		if err := (leaf{path: filepath.Join(m.scope, SupervisorDir)}).remove(ctx); err != nil {
			return fmt.Errorf("destroying cgroup: %w", err)
		}
	}
	if err := m.leaf.remove(ctx); err != nil {
		return fmt.Errorf("destroying cgroup: %w", err)
	}
	b, err := m.connect(ctx)
	if err != nil {
		if _, serr := os.Stat(m.scope); m.scope != "" && errors.Is(serr, fs.ErrNotExist) {
			return nil
		}
		return fmt.Errorf("stopping scope %s: %w", m.unit, err)
	}
	b.watchJobs(m.unit)
	var job dbus.ObjectPath
	err = b.call(ctx, "StopUnit", &job, m.unit, "replace")
	if err == nil {
		err = b.waitJob(ctx, job, nil)
	}
	if err != nil && dbusErrorName(err) != "org.freedesktop.systemd1.NoSuchUnit" {
		// A failed scope stays listed until reset; clear it for the next run.
		_ = b.call(ctx, "ResetFailedUnit", nil, m.unit)
		return fmt.Errorf("stopping scope %s: %w", m.unit, err)
	}
	return nil
}

func (m *sdManager) Close() error {
	var err error
	if m.fd >= 0 {
		err = unix.Close(m.fd)
		m.fd = -1
	}
	if d := m.dial; d != nil {
		// Never used: wait for it (busTimeout at most) and close it.
		<-d.done
		m.dial = nil
		if d.b != nil {
			_ = d.b.Close()
		}
	}
	if m.bus != nil {
		if cerr := m.bus.Close(); err == nil {
			err = cerr
		}
		m.bus = nil
	}
	return err
}

// Update sets the new limits as runtime unit properties (so systemctl
// --user show agrees) and in the container leaf.
func (m *sdManager) Update(ctx context.Context, r *specs.LinuxResources) error {
	p, err := planFor(r)
	if err != nil {
		return err
	}
	if err := checkUpdate(m.leaf, r); err != nil {
		return err
	}
	m.opts.ignore(p)
	if err := m.opts.lose(p.Unsupported, nil, "cgroup v2 cannot enforce it", ""); err != nil {
		return err
	}
	if m.scope != "" {
		have, _ := controllers(m.scope, "cgroup.controllers")
		m.plan = p
		if err := m.loseMissing(p.Controllers(), have, m.scope); err != nil {
			return err
		}
		p = m.plan
	}
	if len(p.Props) > 0 {
		b, err := m.connect(ctx)
		if err != nil {
			return fmt.Errorf("updating scope %s: %w", m.unit, err)
		}
		if err := b.call(ctx, "SetUnitProperties", nil, m.unit, true, p.Props); err != nil {
			return fmt.Errorf("updating scope %s: %w", m.unit, err)
		}
	}
	return m.writePlan(m.opts, p)
}
