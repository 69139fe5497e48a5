package cgroupv2

import (
	"errors"
	"strings"
)

// ErrNoCgroup is returned by the verbs that need a cgroup (ps, pause,
// update, stats) when the container runs under the "none" manager.
var ErrNoCgroup = errors.New("the container has no cgroup of its own (cgroup manager none)")

// UnenforcedError says that config.json asks for limits this host cannot
// enforce, why, and what would fix it. New, Prepare, Apply and Update return
// it unless Options.AllowUnenforced is set, in which case each limit becomes
// one Options.Warn line instead.
type UnenforcedError struct {
	Limits []string // "memory limit (linux.resources.memory.limit=67108864)", one per lost limit
	// Controllers are the cgroup v2 controllers that are missing (not
	// enabled or not delegated), when that is the reason.
	Controllers []string
	Reason      string // why, e.g. "this host has cgroup v1 controllers (hybrid hierarchy)"
	Fix         string // what it would take
}

func (e *UnenforcedError) Error() string {
	var b strings.Builder
	b.WriteString("cannot enforce ")
	b.WriteString(strings.Join(e.Limits, ", "))
	b.WriteString(": ")
	b.WriteString(e.Reason)
	b.WriteString("\nhint: ")
	if e.Fix != "" {
		b.WriteString(e.Fix)
		b.WriteString("; or pass --allow-unenforced to run without ")
	} else {
		b.WriteString("pass --allow-unenforced to run without ")
	}
	if len(e.Limits) == 1 {
		b.WriteString("it")
	} else {
		b.WriteString("them")
	}
	// An engine (containerd, CRI-O) passes no such flag: its way in is
	// the environment of the runtime it starts.
	b.WriteString(" (an engine: SANDY_ALLOW_UNENFORCED=1 in sandy's environment; docs/cgroups.md)")
	return b.String()
}

// lose reports limits that will not be enforced: an *UnenforcedError, or with
// AllowUnenforced one warning line per limit and nil.
func (o *Options) lose(lost []limit, controllers []string, reason, fix string) error {
	if len(lost) == 0 {
		return nil
	}
	if o.AllowUnenforced {
		for _, l := range lost {
			o.warn(FallbackUnenforced.Line(l, reason))
		}
		return nil
	}
	e := &UnenforcedError{Controllers: controllers, Reason: reason, Fix: fix}
	for _, l := range lost {
		e.Limits = append(e.Limits, l.String())
	}
	return e
}

// ignore warns once per setting that cgroup v2 cannot express and that runc
// and crun ignore as well.
func (o *Options) ignore(p *plan) {
	for _, l := range p.Ignored {
		o.warn(l.What + " ignored: " + l.Field)
	}
}
