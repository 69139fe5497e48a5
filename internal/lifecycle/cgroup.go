package lifecycle

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/cgroupv2"
	"github.com/sandy-rt/sandy/internal/spec"
	"github.com/sandy-rt/sandy/internal/state"
)

// CgroupOptions are the cgroup flags.
type CgroupOptions struct {
	Manager         string // auto, systemd, cgroupfs, none (--cgroup-manager; --systemd-cgroup = systemd)
	AllowUnenforced bool   // --allow-unenforced
}

// prepareCgroup picks the cgroup manager (systemd user scope → delegated
// cgroupfs → none, said once: by `run` in one warning line, by `create`,
// the engines' verb, under --debug, as the network fallback) and, for cgroupfs, makes the container cgroup
// so the init is cloned straight into it. A limit that cannot be enforced
// is an error here, before anything runs, unless --allow-unenforced.
func (cr *creation) prepareCgroup(ctx context.Context) error {
	s := cr.bundle.Spec
	m, err := cgroupv2.New(cgroupv2.Options{
		ID:              cr.o.ID,
		CgroupsPath:     s.Linux.CgroupsPath,
		Manager:         cr.o.Cgroup.Manager,
		Resources:       s.Linux.Resources,
		AllowUnenforced: cr.o.Cgroup.AllowUnenforced,
		WarnNone:        cr.o.owned || cr.o.detachRun,
		Warn:            cr.g.Warn,
		Debug:           func(msg string) { cr.g.Debugf("cgroup: %s", msg) },
	})
	if err != nil {
		return err
	}
	if m.Kind() != cgroupv2.KindNone {
		// A cgroup is made under the id: only once the id is ours.
		if err := cr.awaitState(); err != nil {
			_ = m.Close()
			return err
		}
	}
	cr.cg = m
	cr.undo.add(func() {
		_ = m.Destroy(context.Background())
		_ = m.Close()
	})
	if err := m.Prepare(ctx); err != nil {
		return err
	}
	return cr.saveCgroup()
}

// saveCgroup records the cgroup in the state, so that whoever finds the
// container (delete, the next run after a kill -9) removes it. Without
// one (manager none) there is nothing to remove: the record waits for
// saveState, and the two state writes it would cost (1.3 ms on this
// project's machine) are saved.
func (cr *creation) saveCgroup() error {
	data, err := cr.cg.State()
	if err != nil {
		return err
	}
	cr.c.Cgroup = data
	if cr.cg.Kind() == cgroupv2.KindNone {
		return nil
	}
	return cr.root.Save(cr.c)
}

// joinCgroup puts the init into the container cgroup (unless it was cloned
// into it) before it runs any container code, or waits for applyEarly to
// have done so.
func (cr *creation) joinCgroup(ctx context.Context) error {
	if cr.cg == nil {
		return nil
	}
	var err error
	if e := cr.early; e != nil {
		err = e.wait()
		if err == nil && e.pid != cr.c.Pid {
			err = fmt.Errorf("the init reported pid %d, but was started as %d", cr.c.Pid, e.pid)
		}
	} else {
		err = cr.cg.Apply(ctx, cr.c.Pid)
	}
	if err != nil {
		return fmt.Errorf("putting the init (pid %d) into its cgroup: %w", cr.c.Pid, err)
	}
	if err := cr.startSentinel(ctx); err != nil {
		return err
	}
	return cr.saveCgroup()
}

// earlyApply is a cgroup Apply running beside the next steps of create.
type earlyApply struct {
	pid  int
	done chan struct{}
	err  error
}

// wait returns the Apply's error once it has ended (again on every call).
func (e *earlyApply) wait() error {
	<-e.done
	return e.err
}

// applyEarly starts the cgroup's Apply for the init on a goroutine, while
// the init's Go runtime starts and sandy scans the rootfs, makes the layer
// directory and waits for the hello; joinCgroup waits for it. Only for a
// systemd scope, whose Apply is D-Bus round trips with systemd
// (StartTransientUnit and the wait for its job: 60-250 ms of each
// container's start in the systemd + cgroup v2 VM, docs/kubernetes.md),
// and only when the init's pid is known before its hello: a child of
// sandy's own, not one the nsenter chain starts (Spawned). Moving the init
// early changes nothing for it: it runs no container code before
// configureInit, which follows joinCgroup, and its cgroup namespace, when
// it makes one, it makes then (cgroupNSLater). The undo stack waits for
// it before the cgroup's Destroy (pushed earlier, run later).
func (cr *creation) applyEarly(ctx context.Context) {
	if cr.cg == nil || cr.cg.Kind() != cgroupv2.KindSystemd || cr.child.Spawned() || cr.early != nil {
		// cr.early: applied to a raw child whose program failed; the Go
		// init that runs instead joins that cgroup (rejoinCgroup).
		return
	}
	cr.startApply(ctx, cr.child.Cmd.Process.Pid)
}

// startApply starts the cgroup's Apply for pid on a goroutine
// (applyEarly, rawMaps); joinCgroup waits for it.
func (cr *creation) startApply(ctx context.Context, pid int) {
	e := &earlyApply{pid: pid, done: make(chan struct{})}
	go func() {
		e.err = cr.cg.Apply(ctx, e.pid)
		close(e.done)
	}()
	cr.early = e
	cr.undo.add(func() { _ = e.wait() })
}

// SentinelRole is the hidden argv[1] of the sentinel: it waits for EOF on
// stdin and exits.
const SentinelRole = "_sentinel"

// startSentinel keeps a systemd scope alive until `sandy run` has read its
// OOM counters: systemd removes a scope, and its cgroup with the counters,
// as soon as its last process exits, which for a container is its init. The
// sentinel sits in the scope's supervisor/ leaf and ends when sandy closes
// its stdin (or dies: Pdeathsig); Destroy kills it anyway.
func (cr *creation) startSentinel(ctx context.Context) error {
	if !cr.o.owned || cr.cg.Kind() != cgroupv2.KindSystemd || cr.sentinel != nil {
		return nil // none, or started already (rawMaps)
	}
	r, w, err := os.Pipe()
	if err != nil {
		return err
	}
	defer r.Close()
	cmd := exec.Command("/proc/self/exe", SentinelRole)
	cmd.Stdin = r
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL, Setsid: true}
	if err := cmd.Start(); err != nil {
		w.Close()
		return fmt.Errorf("starting the cgroup sentinel: %w", err)
	}
	cr.undo.add(func() { w.Close(); _ = cmd.Wait() })
	cr.sentinel = w
	go func() { _ = cmd.Wait() }()
	if err := cr.cg.Supervise(ctx, cmd.Process.Pid); err != nil {
		return fmt.Errorf("keeping the scope: %w", err)
	}
	return nil
}

// SentinelMain is the sentinel: it returns when its stdin closes.
func SentinelMain() int {
	_, _ = io.Copy(io.Discard, os.Stdin)
	return 0
}

// cgroupNSLater reports whether the init must create its cgroup namespace
// itself, after joinCgroup: a namespace is rooted where its creator is at
// creation (cgroup_namespaces(7)), and without CLONE_INTO_CGROUP the init
// is still in sandy's cgroup when it is cloned.
func (cr *creation) cgroupNSLater() bool {
	ns, ok := spec.Namespace(cr.bundle.Spec, specs.CgroupNamespace)
	if !ok || ns.Path != "" || cr.cg == nil || cr.cg.Kind() == cgroupv2.KindNone {
		return false
	}
	_, cloned := cr.cg.CgroupFD()
	return !cloned
}

// cgroupOwned reports whether the container's cgroup namespace is rooted
// at a cgroup sandy made for it (a new namespace, a systemd or cgroupfs
// manager): only then may a cgroup mount be writable (initproc).
func (cr *creation) cgroupOwned() bool {
	ns, ok := spec.Namespace(cr.bundle.Spec, specs.CgroupNamespace)
	return ok && ns.Path == "" && cr.cg != nil && cr.cg.Kind() != cgroupv2.KindNone
}

// destroyCgroup removes a container's cgroup from any process.
func destroyCgroup(ctx context.Context, c *state.Container) error {
	if len(c.Cgroup) == 0 {
		return nil
	}
	m, err := cgroupv2.Load(c.Cgroup)
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Destroy(ctx)
}
