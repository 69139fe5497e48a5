//go:build linux

package cgroupv2

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/godbus/dbus/v5"
)

// ScopeProbe is the no-op scope ProbeScope started on the user bus.
type ScopeProbe struct {
	Bus         string   // the user bus address
	Unit        string   // sandy-doctor-PID.scope (PID: sandy doctor's)
	Cgroup      string   // its cgroupfs dir
	Controllers []string // its cgroup.controllers: what the user manager delegates
}

// Delegated are the controllers a container's default limits use: the
// ones Debian 12 and Fedora delegate to user@.service.
var Delegated = []string{"cpu", "memory", "pids"}

// ProbeScope walks New's ladder for `sandy doctor`, trying each rung as
// New and Apply do: it dials the user bus, starts a transient scope with
// Delegate=yes holding a process spawn starts (one that waits, which the
// scope's stop ends with SIGTERM; done reaps it), reads the controllers
// delegated to it and stops it; without a bus it checks the own cgroup as
// New does. spawn is called only when the bus answers. The reasons are
// New's, word for word, so a none here is run's line.
func ProbeScope(ctx context.Context, spawn func() (pid int, done func(), err error)) Choice {
	h := hierarchy()
	if h != "unified" {
		return notUnified(h)
	}
	o := &Options{ID: "doctor-" + strconv.Itoa(os.Getpid())}
	var why []string
	m, err := newSystemd(o, &plan{})
	if err == nil {
		defer m.Close()
		pid, done, err := spawn()
		if err != nil {
			return Choice{Manager: KindSystemd, Reason: busAnswers(m.addr), Err: fmt.Errorf("starting a process for the scope: %w", err)}
		}
		defer done()
		sp, err := m.tryScope(ctx, pid)
		if err != nil {
			return Choice{Manager: KindSystemd, Reason: busAnswers(m.addr), Err: err, Scope: sp}
		}
		return Choice{Manager: KindSystemd, Reason: fmt.Sprintf("transient scope %s started on %s with controllers %q delegated", sp.Unit, sp.Bus, strings.Join(sp.Controllers, " ")), Scope: sp}
	}
	why = append(why, err.Error())
	if f, err := newCgroupfs(o, &plan{}); err == nil {
		return Choice{Manager: KindCgroupfs, Reason: "own cgroup " + f.base + " is delegated and writable"}
	} else {
		why = append(why, err.Error())
	}
	return Choice{Manager: KindNone, Reason: strings.Join(why, ", and "), Fix: lingerFix}
}

// tryScope starts m's scope with pid, reads its controllers and stops it.
func (m *sdManager) tryScope(ctx context.Context, pid int) (ScopeProbe, error) {
	sp := ScopeProbe{Bus: m.addr, Unit: m.unit}
	if err := m.startScope(ctx, pid); err != nil {
		return sp, err
	}
	defer func() {
		m.bus.watchJobs(m.unit)
		var job dbus.ObjectPath
		if err := m.bus.call(ctx, "StopUnit", &job, m.unit, "replace"); err == nil {
			_ = m.bus.waitJob(ctx, job, nil)
		}
		_ = m.bus.call(ctx, "ResetFailedUnit", nil, m.unit)
	}()
	cg, err := ownCgroup(strconv.Itoa(pid))
	if err != nil {
		return sp, fmt.Errorf("finding the scope of pid %d: %w", pid, err)
	}
	sp.Cgroup = cg
	if sp.Controllers, err = controllers(cg, "cgroup.controllers"); err != nil {
		return sp, fmt.Errorf("reading controllers of %s: %w", cg, err)
	}
	return sp, nil
}

// DelegateFix is the fix for controllers the user manager does not
// delegate: a user@.service drop-in, as root.
func DelegateFix(lost []string) string { return delegateFix(lost) }

// DelegateCommands are DelegateFix's commands, for a root script.
func DelegateCommands(lost []string) []string {
	set := append([]string(nil), Delegated...)
	for _, c := range lost {
		if !contains(set, c) {
			set = append(set, c)
		}
	}
	return []string{
		"mkdir -p /etc/systemd/system/user@.service.d",
		`printf '[Service]\nDelegate=` + strings.Join(set, " ") + `\n' > /etc/systemd/system/user@.service.d/delegate.conf`,
		"systemctl daemon-reload",
	}
}

// NotDelegated is the reason New's error gives for controllers the user
// manager does not delegate (have: what dir has).
func NotDelegated(lost, have []string, uid int, dir string) string {
	return fmt.Sprintf("the %s controller is not delegated to uid %d (%s has %q)", strings.Join(lost, ", "), uid, dir, strings.Join(have, " "))
}

// Missing are the controllers of want that have lacks.
func Missing(want, have []string) []string { return missing(want, have) }

// busAnswers names the systemd manager that answered at addr: root's is
// the system's (its private socket), a user's the session bus.
func busAnswers(addr string) string {
	if strings.Contains(addr, SystemManagerSocket) {
		return "the system's systemd answers at " + addr
	}
	return "the user session bus answers at " + addr
}
