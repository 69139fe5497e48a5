//go:build linux

package cgroupv2

import (
	"errors"
	"fmt"
	"os"
	"strings"
)

// New picks the container's cgroup manager and checks that the limits
// config.json asks for can hold:
//
//  1. systemd: the user's session bus answers and the hierarchy is unified;
//  2. cgroupfs: the caller's own cgroup is a delegated, writable v2 subtree;
//  3. none: no cgroup of its own. Any requested limit is then an
//     *UnenforcedError naming why and the fix, or with AllowUnenforced one
//     Warn line per limit; with no limit asked for, one Warn line
//     (FallbackNone) when WarnNone, else one Debug line. A forced none
//     (--cgroup-manager=none) is no fallback and says nothing.
//
// A forced Manager that cannot work here is an error. The choice and its
// reason go to Debug once.
func New(opts Options) (Manager, error) {
	o := &opts
	if o.ID == "" {
		return nil, errors.New("cgroup: empty container id")
	}
	p, err := planFor(o.Resources)
	if err != nil {
		return nil, fmt.Errorf("converting linux.resources: %w", err)
	}
	o.ignore(p)

	h := hierarchy()
	var why []string // why each better manager was not taken
	switch o.Manager {
	case "", KindAuto:
	case KindNone:
		return newNone(o, p, Choice{Manager: KindNone, Reason: "the cgroup manager is none (--cgroup-manager=none)", Fix: "drop --cgroup-manager=none"}, false)
	case KindSystemd, KindCgroupfs:
		if h != "unified" {
			return nil, fmt.Errorf("cgroup manager %s: %s\nhint: %s", o.Manager, hierarchyReason(h), unifiedFix)
		}
	default:
		return nil, fmt.Errorf("unknown cgroup manager %q (want auto, systemd, cgroupfs or none)", o.Manager)
	}
	if h != "unified" {
		return newNone(o, p, notUnified(h), true)
	}

	// A cgroupfs path in linux.cgroupsPath names a place in the hierarchy,
	// which a systemd scope cannot honour (runc reads it per --systemd-cgroup).
	fsPath := o.CgroupsPath != "" && strings.Count(o.CgroupsPath, ":") != 2
	if fsPath && o.Manager == KindSystemd {
		return nil, fmt.Errorf("cgroup manager systemd: linux.cgroupsPath %q is not in the slice:prefix:name form", o.CgroupsPath)
	}
	if fsPath {
		why = append(why, "linux.cgroupsPath "+o.CgroupsPath+" is a cgroupfs path")
	}
	if o.Manager != KindCgroupfs && !fsPath {
		m, err := newSystemd(o, p)
		if err == nil {
			o.debug("cgroup manager: systemd (transient scope %s in %s on %s)", m.unit, m.slice, m.addr)
			if err := o.lose(p.Unsupported, nil, "cgroup v2 cannot enforce it", ""); err != nil {
				m.Close()
				return nil, err
			}
			return m, nil
		}
		if o.Manager == KindSystemd {
			fix := lingerFix
			if os.Geteuid() == 0 {
				fix = rootSystemdFix
			}
			return nil, fmt.Errorf("cgroup manager systemd: %w\nhint: %s", err, fix)
		}
		why = append(why, err.Error())
	}
	m, err := newCgroupfs(o, p)
	if err == nil {
		o.debug("cgroup manager: cgroupfs (container cgroup %s; %s)", m.path, strings.Join(why, "; "))
		if err := o.lose(p.Unsupported, nil, "cgroup v2 cannot enforce it", ""); err != nil {
			return nil, err
		}
		return m, nil
	}
	if o.Manager == KindCgroupfs {
		return nil, fmt.Errorf("cgroup manager cgroupfs: %w\nhint: run sandy inside a delegated cgroup, e.g. systemd-run --user --scope -p Delegate=yes sandy COMMAND", err)
	}
	why = append(why, err.Error())
	return newNone(o, p, Choice{Manager: KindNone, Reason: strings.Join(why, ", and "), Fix: lingerFix}, true)
}

const (
	unifiedFix = "boot with systemd.unified_cgroup_hierarchy=1 on the kernel command line (cgroup v2 only)"
	// rootSystemdFix is the forced systemd manager's fix as root, which
	// asks the system's systemd (managerAddress).
	rootSystemdFix = "as root, the systemd cgroup manager needs systemd as the init (its private socket " + SystemManagerSocket + "); elsewhere use --cgroup-manager=cgroupfs (containerd: SystemdCgroup = false in the runtime's options)"
	lingerFix      = "run sandy in a systemd user session (loginctl enable-linger $USER; DBUS_SESSION_BUS_ADDRESS or XDG_RUNTIME_DIR set), whose user@.service delegates controllers (Delegate=yes, the default on Debian 12 and Fedora), or inside a delegated cgroup (systemd-run --user --scope -p Delegate=yes)"
)

// notUnified is why the manager is none on a host without a unified
// hierarchy, and the fix (New's warning and Probe's detail).
func notUnified(h string) Choice {
	return Choice{Manager: KindNone, Reason: hierarchyReason(h) + busReason() + "; sandy manages cgroup v2 only", Fix: unifiedFix + "; " + lingerFix}
}

// Choice is the manager New picks with --cgroup-manager=auto, why, and
// how to get a better one.
type Choice struct {
	Manager string // KindSystemd, KindCgroupfs or KindNone
	Reason  string // why (for none: why no better one)
	Fix     string // "" when nothing better is possible
	// Scope is what ProbeScope found under systemd: the no-op scope it
	// started and the controllers delegated to it. Zero from Probe.
	Scope ScopeProbe
	// Err: systemd answers on the user bus but refused the scope, so a
	// container under auto fails at its cgroup step (ProbeScope only).
	Err error
}

// Warning is the line `sandy run` prints when auto ends on none
// (FallbackNone).
func (c Choice) Warning() string { return FallbackNone.Line(c.Reason, c.Fix) }

// Probe says which manager New would pick here from files alone: the
// hierarchy, whether the user bus socket exists, whether the own cgroup
// is writable. ProbeScope tries the bus for real.
func Probe() Choice {
	h := hierarchy()
	if h != "unified" {
		return notUnified(h)
	}
	f := Features()
	if sock := f["user_bus"]; sock != "" {
		return Choice{Manager: KindSystemd, Reason: "the user session bus is at " + sock}
	}
	if f["delegated"] == "true" {
		return Choice{Manager: KindCgroupfs, Reason: "own cgroup " + f["cgroup"] + " is delegated and writable"}
	}
	return Choice{Manager: KindNone, Reason: "no user session bus and own cgroup " + f["cgroup"] + " is not writable", Fix: lingerFix}
}

func hierarchyReason(h string) string {
	switch h {
	case "hybrid":
		return "this host has cgroup v1 controllers (hybrid hierarchy: " + Root + "/unified is cgroup v2 without them)"
	case "legacy":
		return "this host has cgroup v1 only (" + Root + " is not cgroup2)"
	}
	return "cgroup v2 is mounted at " + Root
}

// busReason says ", and no user session bus (...)" when there is none.
func busReason() string {
	_, sock := userBusAddress()
	if sock == "" {
		return ""
	}
	if _, err := os.Stat(sock); err != nil {
		return ", and no user session bus (" + sock + " does not exist)"
	}
	return ""
}

// newNone is the last rung: ch says why. A lost limit is an error or, with
// AllowUnenforced, one line per limit, which say the loss already;
// otherwise a fallback (auto) is said in ch.Warning's one line when
// WarnNone, and a forced none only under --debug.
func newNone(o *Options, p *plan, ch Choice, fallback bool) (Manager, error) {
	lost := append(append([]limit(nil), p.Limits...), p.Unsupported...)
	if err := o.lose(lost, nil, ch.Reason, ch.Fix); err != nil {
		return nil, err
	}
	switch {
	case len(lost) > 0:
	case fallback && o.WarnNone:
		o.warn(ch.Warning())
	default:
		o.debug("cgroup manager: none (the container shares sandy's cgroup; no limits were asked for): %s", ch.Reason)
	}
	return noneManager{}, nil
}

// Features says what this host offers: the hierarchy, whether the user bus
// answers, and the controllers of the caller's own cgroup. `sandy features`
// prints each as an io.github.sandy-rt.cgroup.* annotation; `sandy doctor`
// reports the resulting choice through Probe.
func Features() map[string]string {
	f := map[string]string{"hierarchy": hierarchy()}
	_, sock := userBusAddress()
	if sock != "" {
		if _, err := os.Stat(sock); err == nil {
			f["user_bus"] = sock
		}
	}
	if own, err := ownCgroup("self"); err == nil && f["hierarchy"] == "unified" {
		f["cgroup"] = own
		if c, err := controllers(own, "cgroup.controllers"); err == nil {
			f["controllers"] = strings.Join(c, " ")
		}
		if writable(own) {
			f["delegated"] = "true"
		}
	}
	return f
}
