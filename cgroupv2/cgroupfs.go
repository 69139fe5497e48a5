//go:build linux

package cgroupv2

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// SupervisorLeaf is the leaf the cgroupfs manager moves the processes of
// the delegated cgroup into (sandy itself, the shell that started it), so
// that cgroup may enable controllers for its children: cgroup v2 allows
// controllers in cgroup.subtree_control only on a cgroup with no processes
// of its own ("no internal processes", cgroup-v2.rst). A later sandy that
// starts inside it uses its parent again.
const SupervisorLeaf = "sandy-supervisor"

// fsManager manages a cgroup under an already delegated, writable cgroup v2
// subtree: a Delegate=yes service or scope, a CI job's container.
type fsManager struct {
	leaf
	base string // the delegated cgroup the container cgroup is made in
	opts *Options
	plan *plan
	fd   int
}

// cgroupfsBase picks the delegated cgroup and the container cgroup path.
func cgroupfsBase(o *Options) (base, path string, err error) {
	own, err := ownCgroup("self")
	if err != nil {
		return "", "", err
	}
	if filepath.Base(own) == SupervisorLeaf {
		own = filepath.Dir(own)
	}
	switch cp := o.CgroupsPath; {
	case cp == "" || strings.Count(cp, ":") == 2:
		name := "sandy-" + o.ID
		if cp != "" {
			_, prefix, n := splitSystemdPath(cp)
			name = prefix + "-" + n
		}
		return own, filepath.Join(own, name), nil
	case filepath.IsAbs(cp):
		path = filepath.Join(Root, filepath.Clean(cp))
		return filepath.Dir(path), path, nil
	default:
		path = filepath.Join(own, filepath.Clean(cp))
		if !strings.HasPrefix(path, own+"/") {
			return "", "", fmt.Errorf("cgroupsPath %q leaves the delegated cgroup %s", cp, own)
		}
		return filepath.Dir(path), path, nil
	}
}

func newCgroupfs(o *Options, p *plan) (*fsManager, error) {
	base, path, err := cgroupfsBase(o)
	if err != nil {
		return nil, err
	}
	if !writable(base) {
		return nil, &notDelegatedError{dir: base}
	}
	return &fsManager{leaf: leaf{path: path}, base: base, opts: o, plan: p, fd: -1}, nil
}

type notDelegatedError struct{ dir string }

func (e *notDelegatedError) Error() string {
	return fmt.Sprintf("the cgroup %s is not delegated to uid %d (its cgroup.procs and cgroup.subtree_control are not writable)", e.dir, os.Getuid())
}

func (m *fsManager) Kind() string { return KindCgroupfs }

// Prepare makes the container cgroup and writes the limits before the init
// exists, so it can be cloned straight into it (CLONE_INTO_CGROUP) and
// never runs outside its limits.
func (m *fsManager) Prepare(ctx context.Context) error {
	if err := m.enable(); err != nil {
		return err
	}
	if err := os.Mkdir(m.path, 0o755); err != nil {
		if !errors.Is(err, fs.ErrExist) {
			return fmt.Errorf("creating cgroup %s: %w", m.path, err)
		}
		// Left behind by a sandy killed with SIGKILL: reuse it when empty.
		if ev, err := m.Events(); err != nil || ev.Populated {
			return fmt.Errorf("creating cgroup %s: it exists and has processes (a container with this id still running? sandy delete --force %s)", m.path, m.opts.ID)
		}
	}
	if err := m.writePlan(m.opts, m.plan); err != nil {
		return err
	}
	fd, err := openDir(m.path)
	if err != nil {
		return err
	}
	m.fd = fd
	return nil
}

// enable turns on the controllers the limits need in the base's
// cgroup.subtree_control, first moving the base's own processes into the
// supervisor leaf when it has any.
func (m *fsManager) enable() error {
	want := m.plan.Controllers()
	have, err := controllers(m.base, "cgroup.controllers")
	if err != nil {
		return fmt.Errorf("reading controllers of %s: %w", m.base, err)
	}
	if lost := missing(want, have); len(lost) > 0 {
		var lim []limit
		for _, l := range m.plan.Limits {
			if contains(lost, l.Controller) {
				lim = append(lim, l)
			}
		}
		if err := m.opts.lose(lim, lost, fmt.Sprintf("the %s controller is not available in %s (cgroup.controllers: %q)", strings.Join(lost, ", "), m.base, strings.Join(have, " ")), delegateFix(lost)); err != nil {
			return err
		}
		want = missing(want, lost)
	}
	on, err := controllers(m.base, "cgroup.subtree_control")
	if err != nil {
		return fmt.Errorf("reading controllers of %s: %w", m.base, err)
	}
	// Enable every available controller, not only the limited ones, so stats
	// (memory.current, cpu.stat) exist in the container cgroup.
	todo := missing(have, on)
	if len(todo) == 0 {
		return nil
	}
	err = enableControllers(m.base, todo)
	if errors.Is(err, unix.EBUSY) {
		if err = m.evacuate(); err == nil {
			err = enableControllers(m.base, todo)
		}
	}
	if err != nil {
		if len(want) == 0 {
			m.opts.debug("cgroupfs: cannot enable %s in %s: %v", strings.Join(todo, " "), m.base, err)
			return nil
		}
		return fmt.Errorf("enabling controllers: %w", err)
	}
	return nil
}

// evacuate moves every process of the base into the supervisor leaf.
func (m *fsManager) evacuate() error {
	sup := filepath.Join(m.base, SupervisorLeaf)
	if err := os.Mkdir(sup, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
		return fmt.Errorf("creating cgroup %s: %w", sup, err)
	}
	m.opts.debug("cgroupfs: moving the processes of %s into %s (no internal processes rule)", m.base, sup)
	for i := 0; i < 5; i++ { // processes may fork while we move them
		pids, err := readFile(m.base, "cgroup.procs")
		if err != nil {
			return fmt.Errorf("reading %s/cgroup.procs: %w", m.base, err)
		}
		if pids == "" {
			return nil
		}
		for _, pid := range strings.Fields(pids) {
			if err := writeFile(sup, "cgroup.procs", pid); err != nil && !errors.Is(err, unix.ESRCH) {
				return fmt.Errorf("moving process %s to %s: %w", pid, sup, err)
			}
		}
	}
	return nil
}

// CgroupFD is ok after Prepare, and in a Load'ed manager (for sandy exec).
func (m *fsManager) CgroupFD() (int, bool) {
	m.fd = lazyFD(m.fd, m.path)
	return m.fd, m.fd >= 0
}

// Apply moves pid into the container cgroup unless it was cloned there.
func (m *fsManager) Apply(ctx context.Context, pid int) error {
	if inCgroup(pid, m.path) {
		return nil
	}
	if err := movePid(m.path, pid); err != nil {
		return fmt.Errorf("moving pid %d into its cgroup: %w", pid, err)
	}
	return nil
}

// Join moves pid (sandy exec) into the container cgroup; sandy sits in the
// same delegated subtree, so it may.
func (m *fsManager) Join(ctx context.Context, pid int) error { return m.Apply(ctx, pid) }

// Supervise is a no-op: nobody removes a cgroupfs container cgroup behind
// sandy's back, so nothing needs to keep it.
func (m *fsManager) Supervise(context.Context, int) error { return nil }

func (m *fsManager) State() ([]byte, error) {
	return json.Marshal(state{Kind: KindCgroupfs, Path: m.path})
}

func (m *fsManager) Destroy(ctx context.Context) error {
	if err := m.remove(ctx); err != nil {
		return fmt.Errorf("destroying cgroup: %w", err)
	}
	return nil
}

func (m *fsManager) Close() error {
	if m.fd >= 0 {
		err := unix.Close(m.fd)
		m.fd = -1
		return err
	}
	return nil
}

func (m *fsManager) Update(ctx context.Context, r *specs.LinuxResources) error {
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
	return m.writePlan(m.opts, p)
}

// checkUpdate refuses a memory limit below current usage when the config
// asks so (linux.resources.memory.checkBeforeUpdate).
func checkUpdate(l leaf, r *specs.LinuxResources) error {
	if r == nil || r.Memory == nil || r.Memory.CheckBeforeUpdate == nil || !*r.Memory.CheckBeforeUpdate || r.Memory.Limit == nil || *r.Memory.Limit <= 0 {
		return nil
	}
	if cur := l.readUint("memory.current"); cur > uint64(*r.Memory.Limit) {
		return fmt.Errorf("memory limit %d is below the current usage %d (linux.resources.memory.checkBeforeUpdate)", *r.Memory.Limit, cur)
	}
	return nil
}

// delegateFix is the drop-in that makes systemd delegate controllers to
// users' managers (Debian and Fedora delegate only cpu memory pids).
func delegateFix(ctrls []string) string {
	set := []string{"cpu", "memory", "pids"}
	for _, c := range ctrls {
		if !contains(set, c) {
			set = append(set, c)
		}
	}
	return fmt.Sprintf("delegate %s to users as root: mkdir -p /etc/systemd/system/user@.service.d && printf '[Service]\\nDelegate=%s\\n' > /etc/systemd/system/user@.service.d/delegate.conf && systemctl daemon-reload, then log in again",
		strings.Join(ctrls, " "), strings.Join(set, " "))
}
