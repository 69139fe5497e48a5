package lifecycle

import (
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/internal/spec"
	"github.com/sandy-rt/sandy/userns"
)

// process.rlimits, set on the init by the host (prlimit(2)) when it asks.

// setRlimits answers an init's (or exec init's) "rlimits": it sets the
// process's rlimits on pid with prlimit(2) and says so. The init asks
// before it switches to process.user (see initproc's process.setup): then
// it still has the ids it started with (the caller's, or root of its user
// namespace, which the caller owns), and prlimit needs no capability over
// it. Set on the init, they hold for the process it execs; the init's Go
// runtime starts without them (a low RLIMIT_AS kills a Go runtime at
// start).
func setRlimits(conn *userns.Conn, pid int, rlimits []specs.POSIXRlimit) error {
	if err := applyRlimits(pid, rlimits); err != nil {
		return fmt.Errorf("setting rlimits: %w", err)
	}
	return conn.Send(initproc.MsgRlimitsDone, nil)
}

func applyRlimits(pid int, rlimits []specs.POSIXRlimit) error {
	rls, err := prlimits(rlimits)
	if err != nil {
		return err
	}
	for i, rl := range rls {
		if spec.HostSkips(rlimits[i].Type) {
			continue // the init sets it last (spec.SetByInit)
		}
		if err := unix.Prlimit(pid, rl.resource, &rl.lim, nil); err != nil {
			var own unix.Rlimit
			_ = unix.Getrlimit(rl.resource, &own) // sandy's: the init's before the call
			return rlimitError(rlimits[i], err, own.Max, os.Geteuid() == 0)
		}
	}
	return nil
}

// prlimit is one prlimit(2) call's resource and limits.
type prlimit struct {
	resource int
	lim      unix.Rlimit
}

// prlimits turns process.rlimits into prlimit(2) arguments, refusing a
// type the kernel does not have (resource 0 would be RLIMIT_CPU) and a
// soft limit above the hard one (the kernel's EINVAL, said with the type).
func prlimits(rlimits []specs.POSIXRlimit) ([]prlimit, error) {
	out := make([]prlimit, 0, len(rlimits))
	for _, rl := range rlimits {
		n, ok := spec.RlimitNumber(rl.Type)
		if !ok {
			return nil, fmt.Errorf("process.rlimits: unknown type %q", rl.Type)
		}
		if rl.Soft > rl.Hard {
			return nil, fmt.Errorf("process.rlimits: %s soft limit %d is above the hard limit %d", rl.Type, rl.Soft, rl.Hard)
		}
		out = append(out, prlimit{resource: n, lim: unix.Rlimit{Cur: rl.Soft, Max: rl.Hard}})
	}
	return out, nil
}

// rlimitError says what a failed prlimit(2) of rl means, with the fix for
// EPERM. ownHard is sandy's own hard limit of that type, which the init
// inherited; root says whether sandy runs as root. Raising a hard limit
// above it needs CAP_SYS_RESOURCE in the initial user namespace: a
// rootless caller never has it, and root may lack it too (a bounding set
// without it, as in a container).
func rlimitError(rl specs.POSIXRlimit, err error, ownHard uint64, root bool) error {
	if !errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%s: %w", rl.Type, err)
	}
	var hint string
	switch {
	case rl.Hard <= ownHard:
		hint = "prlimit(2) on the init was denied although the limit is not raised: see docs/troubleshooting.md#rlimits"
	case root:
		hint = fmt.Sprintf("raising the hard limit above sandy's %d needs CAP_SYS_RESOURCE, which this root lacks (see CapBnd in /proc/self/status): lower it, or run sandy with that capability", ownHard)
	default:
		hint = fmt.Sprintf("a rootless container cannot raise a hard limit above the caller's %d: lower it, or raise the caller's (`ulimit -H`)", ownHard)
	}
	return fmt.Errorf("%s %d/%d: %w (%s)", rl.Type, rl.Soft, rl.Hard, err, hint)
}
