//go:build linux

package initproc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/inroot"
	"github.com/sandy-rt/sandy/internal/spec"
	"github.com/sandy-rt/sandy/seccomp"
	"github.com/sandy-rt/sandy/userns"
)

// The exec init's set-up as a plan for userns.ForkExec: `sandy exec`
// forks the process itself, with no exec init (see userns/forkexec.go and
// lifecycle/exec.go). Everything the exec init decides inside the
// container is decided here, in the host, before the fork, by the same
// rules (capSetsOf, raisableAmbient, execCandidates, homeIn), and a
// failure of the forked child is said with the exec init's words
// (ForkFailure): the steps and messages of process.setup.

// ForkInput is what the host knows of the process and the container.
type ForkInput struct {
	Process *specs.Process
	Filter  *seccomp.Filter // nil: not filtered
	// Root is the container's root directory (/proc/PID/root of its
	// init): its /etc/passwd, resolved in that root, gives HOME.
	Root *os.File
	// SetgroupsDenied: /proc/PID/setgroups of the init says "deny".
	SetgroupsDenied bool
}

// NewForkPlan plans the process of in; the caller adds the namespaces to
// join and the files. The errors are the exec init's, for what it would
// refuse before running anything.
func NewForkPlan(in ForkInput) (*userns.ForkPlan, error) {
	p := in.Process
	u := p.User
	if err := refuseUnchanged(u); err != nil {
		return nil, stepError(stepUser, err)
	}
	if len(u.AdditionalGids) > 0 && in.SetgroupsDenied {
		return nil, stepError(stepUser, errSetgroupsDenied)
	}
	sets, err := capSetsOf(p.Capabilities)
	if err != nil {
		return nil, stepError(stepBounding, err)
	}
	last, err := capability.LastCap()
	if err != nil {
		return nil, stepError(stepBounding, err)
	}
	mask := func(l []capability.Cap) uint64 {
		var m uint64
		for _, c := range l {
			m |= 1 << uint(c)
		}
		return m
	}
	env := p.Env
	if !hasEnv(env, "HOME") {
		env = append(append([]string(nil), env...), "HOME="+homeInRoot(in.Root, u.UID))
	}
	umask := 0o022
	if u.Umask != nil {
		umask = int(*u.Umask)
	}
	plan := &userns.ForkPlan{
		KeepBounding: mask(sets[capability.BOUNDING]),
		LastCap:      int(last),
		Cwd:          p.Cwd,
		SetGroups:    !in.SetgroupsDenied,
		Groups:       u.AdditionalGids,
		UID:          u.UID,
		GID:          u.GID,
		Effective:    mask(sets[capability.EFFECTIVE]),
		Permitted:    mask(sets[capability.PERMITTED]),
		Inheritable:  mask(sets[capability.INHERITABLE]),
		Ambient:      mask(raisableAmbient(sets)),
		Umask:        umask,
		Rlimits:      initRlimits(p.Rlimits),
		NoNewPrivs:   p.NoNewPrivileges,
		Paths:        execCandidates(p.Args[0], env),
		Args:         p.Args,
		Env:          env,
	}
	if in.Filter != nil {
		plan.Seccomp, plan.SeccompFlags = in.Filter.Instructions(), in.Filter.Flags()
	}
	return plan, nil
}

// initRlimits are the rlimits the init sets itself (spec.SetByInit), in
// the order of rlimits.
func initRlimits(rlimits []specs.POSIXRlimit) []userns.Rlimit {
	var out []userns.Rlimit
	for _, rl := range byInit(rlimits) {
		n, _ := spec.RlimitNumber(rl.Type) // checked by spec.ValidateProcess
		out = append(out, userns.Rlimit{Resource: n, Soft: rl.Soft, Hard: rl.Hard})
	}
	return out
}

func byInit(rlimits []specs.POSIXRlimit) []specs.POSIXRlimit {
	var out []specs.POSIXRlimit
	for _, rl := range rlimits {
		if spec.SetByInit(rl.Type) {
			out = append(out, rl)
		}
	}
	return out
}

// homeInRoot is homeOf for a container seen from the host: its
// /etc/passwd resolved inside root (openat2(2) RESOLVE_IN_ROOT, or
// securejoin's emulation where the kernel lacks it), never a path joined
// onto /proc/PID/root, so that a symlink in the container cannot lead to
// a host file; only a regular file is read (O_NONBLOCK: a fifo there
// cannot block sandy). "/" when there is no passwd file to read.
func homeInRoot(root *os.File, uid uint32) string {
	fd, err := unix.Openat2(int(root.Fd()), "etc/passwd", &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_CLOEXEC | unix.O_NONBLOCK | unix.O_NOCTTY,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS,
	})
	var f *os.File
	switch {
	case errors.Is(err, unix.ENOSYS):
		h, err := inroot.Open(root, "/etc/passwd")
		if err != nil {
			return "/"
		}
		defer h.Close()
		if f, err = pathrs.Reopen(h, unix.O_RDONLY|unix.O_CLOEXEC|unix.O_NONBLOCK); err != nil {
			return "/"
		}
	case err != nil:
		return "/"
	default:
		f = os.NewFile(uintptr(fd), "/etc/passwd")
	}
	defer f.Close()
	if fi, err := f.Stat(); err != nil || !fi.Mode().IsRegular() {
		return "/"
	}
	return homeIn(f, uid)
}

// ForkFailure is the error of a forked process that failed at fe, in the
// exec init's words; uidMap and gidMap are the container's id maps (for
// the unmapped-id hint).
func ForkFailure(in ForkInput, plan *userns.ForkPlan, fe *userns.ForkError, uidMap, gidMap string) error {
	p := in.Process
	errno := fe.Errno
	v := int(fe.Value)
	switch fe.Step {
	case userns.StepDumpable:
		return stepError("prctl(PR_SET_DUMPABLE)", errno)
	case userns.StepJoin:
		name := "a"
		if v >= 0 && v < len(plan.Joins) {
			name = "the " + plan.Joins[v].Name
		}
		err := fmt.Errorf("setns into %s namespace: %w", name, errno)
		if errors.Is(errno, unix.EPERM) {
			err = fmt.Errorf("%w: exec needs your uid mapped to root in the container (linux.uidMappings)", err)
		}
		return stepError("entering the container", err)
	case userns.StepBecomeRoot:
		return stepError("entering the container", fmt.Errorf("becoming root of the container's user namespace: %w (is id 0 mapped?)", errno))
	case userns.StepClone:
		return stepError("entering the container", fmt.Errorf("clone: %w", errno))
	case userns.StepFDs, userns.StepCloseFDs:
		return stepError("passing the fds", errno)
	case userns.StepBounding:
		return stepError(stepBounding, fmt.Errorf("prctl(PR_CAPBSET_DROP, %d): %w", v, errno))
	case userns.StepSeccomp:
		return stepError(stepSeccomp, seccomp.LoadError(errno, plan.SeccompFlags, plan.NoNewPrivs))
	case userns.StepChdir:
		return stepError(stepCwd, fmt.Errorf("%s: %w", p.Cwd, errno))
	case userns.StepChdirAsUser:
		return stepError(stepCwdAsUser, fmt.Errorf("%s: %w", p.Cwd, errno))
	case userns.StepCwdOutside:
		return stepError(stepCwd, cwdOutsideError(p.Cwd, v == 1))
	case userns.StepCwdOutsideAsUser:
		return stepError(stepCwdAsUser, cwdOutsideError(p.Cwd, v == 1))
	case userns.StepCwdWalk:
		return stepError(stepCwd, cwdWalkError(p.Cwd, unix.Errno(v), errno))
	case userns.StepCwdWalkAsUser:
		return stepError(stepCwdAsUser, cwdWalkError(p.Cwd, unix.Errno(v), errno))
	case userns.StepSetgroups:
		return stepError(stepUser, setgroupsError(plan.Groups, errno))
	case userns.StepKeepCaps:
		return stepError(stepUser, errno)
	case userns.StepSetresgid:
		return stepError(stepUser, setresidError("gid", plan.GID, errno, gidMap))
	case userns.StepSetresuid:
		return stepError(stepUser, setresidError("uid", plan.UID, errno, uidMap))
	case userns.StepCapset:
		return stepError(stepCaps, fmt.Errorf("capset: %w", errno))
	case userns.StepAmbient:
		return stepError(stepCaps, fmt.Errorf("ambient capabilities (each must also be permitted and inheritable): %w", errno))
	case userns.StepRlimit:
		if rls := byInit(p.Rlimits); v >= 0 && v < len(rls) {
			return stepError(stepLateRlimit, lateRlimitError(rls[v], errno))
		}
		return stepError(stepLateRlimit, errno)
	case userns.StepNoNewPrivs:
		return stepError(stepNoNewPrivs, errno)
	case userns.StepExec:
		name := p.Args[0]
		switch {
		case v >= 0 && v < len(plan.Paths):
			return execError(plan.Paths[v], errno)
		case errno == unix.EACCES:
			return stepError(stepFind, execError(name, fs.ErrPermission))
		case strings.Contains(name, "/"):
			return stepError(stepFind, execError(name, fs.ErrNotExist))
		default:
			return stepError(stepFind, notFoundError(name))
		}
	}
	return fe
}
