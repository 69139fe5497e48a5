package seccomp

import (
	"fmt"
	"log/slog"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Return values of a seccomp filter (linux/seccomp.h SECCOMP_RET_*).
const (
	retKillProcess uint32 = 0x80000000
	retKillThread  uint32 = 0x00000000
	retTrap        uint32 = 0x00030000
	retErrno       uint32 = 0x00050000
	retUserNotif   uint32 = 0x7fc00000
	retTrace       uint32 = 0x7ff00000
	retLog         uint32 = 0x7ffc0000
	retAllow       uint32 = 0x7fff0000
	retDataMask    uint32 = 0x0000ffff
)

// Kernel flags for seccomp(2) SECCOMP_SET_MODE_FILTER (linux/seccomp.h).
const (
	flagLog              = unix.SECCOMP_FILTER_FLAG_LOG
	flagSpecAllow        = unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW
	flagNewListener      = unix.SECCOMP_FILTER_FLAG_NEW_LISTENER
	flagWaitKillableRecv = unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV
)

// badArchAction is what a syscall made under an architecture the filter
// does not list gets: the whole process is killed.
const badArchAction = retKillProcess

// Filter is a compiled seccomp profile: a classic BPF program and the
// flags to load it with.
type Filter struct {
	prog    []unix.SockFilter
	flags   uintptr
	notify  bool
	archs   []*archDef
	defAct  uint32
	enosys  bool
	unknown []string
}

// options are the knobs tests turn; Compile uses defaultOptions.
type options struct {
	native *archDef
	// enosys adds the stub that answers ENOSYS for syscalls numbered
	// above every syscall the profile names (see enosysStub).
	enosys bool
	// logger receives one debug line per skipped unknown syscall name.
	logger *slog.Logger
}

// Compile checks the profile and compiles it to a filter for the native
// architecture plus those the profile lists. It never touches the kernel:
// the host side calls it to reject a bad profile before starting anything.
func Compile(cfg *specs.LinuxSeccomp) (*Filter, error) {
	return compile(cfg, options{native: nativeArch(), enosys: true, logger: slog.Default()})
}

func compile(cfg *specs.LinuxSeccomp, o options) (*Filter, error) {
	if cfg == nil {
		return nil, fmt.Errorf("compiling seccomp profile: %w", ErrNoProfile)
	}
	if o.native == nil {
		return nil, fmt.Errorf("compiling seccomp profile: %w", ErrNativeArch)
	}
	f := &Filter{enosys: o.enosys}
	def, err := action(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return nil, fmt.Errorf("seccomp default action: %w", err)
	}
	if def == retUserNotif {
		return nil, fmt.Errorf("seccomp default action: %w", ErrNotifyDefault)
	}
	f.defAct = def

	f.archs = []*archDef{o.native}
	for _, name := range cfg.Architectures {
		a, ok := archByName[name]
		if !ok {
			return nil, fmt.Errorf("seccomp architecture %q: %w", name, ErrArch)
		}
		if !containsArch(f.archs, a) {
			f.archs = append(f.archs, a)
		}
	}
	if err := f.setFlags(cfg.Flags); err != nil {
		return nil, err
	}

	dbs := make([]*archDB, len(f.archs))
	for i, a := range f.archs {
		dbs[i] = &archDB{arch: a}
	}
	for i := range cfg.Syscalls {
		if err := f.addSyscallRule(dbs, &cfg.Syscalls[i], i, o); err != nil {
			return nil, err
		}
	}
	if f.flags&flagWaitKillableRecv != 0 && !f.notify {
		return nil, fmt.Errorf("seccomp flag %s: %w", specs.LinuxSeccompFlagWaitKillableRecv, ErrWaitKillableNoNotify)
	}
	if f.notify {
		f.flags |= flagNewListener
	}
	for _, db := range dbs {
		for _, s := range db.syscalls {
			if err := checkTree(s.chains); err != nil {
				return nil, fmt.Errorf("seccomp rules for syscall %d on %s: %w", s.nr, db.arch.name, err)
			}
		}
	}
	var stub map[*archDef]uint32
	if o.enosys {
		stub = enosysLimits(cfg, f.archs, def)
	}
	prog, err := generate(dbs, def, stub)
	if err != nil {
		return nil, err
	}
	f.prog = prog
	return f, nil
}

func containsArch(as []*archDef, a *archDef) bool {
	for _, x := range as {
		if x == a {
			return true
		}
	}
	return false
}

func (f *Filter) setFlags(flags []specs.LinuxSeccompFlag) error {
	for _, fl := range flags {
		switch fl {
		case "SECCOMP_FILTER_FLAG_TSYNC":
			// Accepted, not passed: execve(2) leaves only the thread that
			// loaded the filter, so the container runs under the same
			// filters either way; TSYNC would only expose the Go runtime's
			// other threads to the profile for their last microseconds
			// (a KILL_THREAD on futex there hangs the init). See doc.go.
		case specs.LinuxSeccompFlagLog:
			f.flags |= flagLog
		case specs.LinuxSeccompFlagSpecAllow:
			f.flags |= flagSpecAllow
		case specs.LinuxSeccompFlagWaitKillableRecv:
			f.flags |= flagWaitKillableRecv
		default:
			return fmt.Errorf("seccomp flag %q: %w", fl, ErrFlag)
		}
	}
	return nil
}

// action maps an OCI action to a SECCOMP_RET_* value. ERRNO and TRACE
// carry errnoRet, EPERM when unset (as runc does).
func action(a specs.LinuxSeccompAction, errnoRet *uint) (uint32, error) {
	data := uint32(unix.EPERM)
	if errnoRet != nil {
		if *errnoRet > uint(retDataMask) {
			return 0, fmt.Errorf("errnoRet %d: %w", *errnoRet, ErrErrnoRange)
		}
		data = uint32(*errnoRet)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return retKillThread, nil
	case specs.ActKillProcess:
		return retKillProcess, nil
	case specs.ActTrap:
		return retTrap, nil
	case specs.ActErrno:
		return retErrno | data, nil
	case specs.ActTrace:
		return retTrace | data, nil
	case specs.ActAllow:
		return retAllow, nil
	case specs.ActLog:
		return retLog, nil
	case specs.ActNotify:
		return retUserNotif, nil
	}
	return 0, fmt.Errorf("action %q: %w", a, ErrAction)
}

var opByName = map[specs.LinuxSeccompOperator]cmpOp{
	specs.OpNotEqual:     opNE,
	specs.OpLessThan:     opLT,
	specs.OpLessEqual:    opLE,
	specs.OpEqualTo:      opEQ,
	specs.OpGreaterEqual: opGE,
	specs.OpGreaterThan:  opGT,
	specs.OpMaskedEqual:  opMaskedEQ,
}

// conditionSets applies runc's reading of args[]: conditions on different
// arguments all have to hold (one rule); when one argument is named twice,
// every condition becomes a rule of its own, so any of them matches.
func conditionSets(args []specs.LinuxSeccompArg) ([][6]argCmp, error) {
	type cond struct {
		index uint
		cmp   argCmp
	}
	var conds []cond
	var seen [6]int
	repeated := false
	for _, a := range args {
		if a.Index >= 6 {
			return nil, fmt.Errorf("argument index %d: %w", a.Index, ErrArgIndex)
		}
		op, ok := opByName[a.Op]
		if !ok {
			return nil, fmt.Errorf("operator %q: %w", a.Op, ErrOperator)
		}
		c := argCmp{valid: true, op: op, mask: ^uint64(0), datum: a.Value}
		if op == opMaskedEQ {
			c.mask, c.datum = a.Value, a.ValueTwo
		}
		seen[a.Index]++
		repeated = repeated || seen[a.Index] > 1
		conds = append(conds, cond{a.Index, c})
	}
	if len(conds) == 0 {
		return [][6]argCmp{{}}, nil
	}
	if !repeated {
		var set [6]argCmp
		for _, c := range conds {
			set[c.index] = c.cmp
		}
		return [][6]argCmp{set}, nil
	}
	sets := make([][6]argCmp, len(conds))
	for i, c := range conds {
		sets[i][c.index] = c.cmp
	}
	return sets, nil
}

func (f *Filter) addSyscallRule(dbs []*archDB, sc *specs.LinuxSyscall, idx int, o options) error {
	act, err := action(sc.Action, sc.ErrnoRet)
	if err != nil {
		return fmt.Errorf("seccomp rule %d %v: %w", idx, sc.Names, err)
	}
	if len(sc.Names) == 0 {
		return fmt.Errorf("seccomp rule %d: %w", idx, ErrNoNames)
	}
	if act == retUserNotif {
		for _, n := range sc.Names {
			// The init reports the listener fd to its parent with write(2)
			// after loading the filter (runc's rule, same reason).
			if n == "write" {
				return fmt.Errorf("seccomp rule %d: %w", idx, ErrNotifyWrite)
			}
		}
	}
	sets, err := conditionSets(sc.Args)
	if err != nil {
		return fmt.Errorf("seccomp rule %d %v: %w", idx, sc.Names, err)
	}
	if act == f.defAct {
		// Same as the default: libseccomp refuses such a rule and runc
		// skips it; it cannot change the outcome.
		return nil
	}
	anyKnown := false
	for _, name := range sc.Names {
		known := false
		for _, db := range dbs {
			known = known || db.arch.known(name)
		}
		if !known {
			if o.logger != nil {
				o.logger.Debug("seccomp: unknown syscall skipped", "syscall", name)
			}
			f.unknown = append(f.unknown, name)
			continue
		}
		anyKnown = true
		if act == retUserNotif {
			f.notify = true
		}
		var buf [2]rule // translate's rules: one, two for a multiplexed syscall
		for _, set := range sets {
			for _, db := range dbs {
				rules := db.arch.translate(buf[:0], name, rule{action: act, args: set})
				for i := range rules {
					if err := db.add(&rules[i]); err != nil {
						return fmt.Errorf("seccomp rule %d for %s on %s: %w", idx, name, db.arch.name, err)
					}
				}
			}
		}
	}
	if !anyKnown {
		return fmt.Errorf("seccomp rule %d %v: %w", idx, sc.Names, ErrUnknownSyscalls)
	}
	return nil
}

// enosysLimits returns, per arch, the highest syscall number the profile
// names. Syscalls above it are newer than the profile, so the filter
// answers them with ENOSYS instead of the default action: a new glibc then
// falls back to the older syscall instead of failing with EPERM (runc's
// "-ENOSYS stub"). Only when the default action refuses: an allowing
// default (ALLOW, LOG, TRACE) lets new syscalls through anyway.
func enosysLimits(cfg *specs.LinuxSeccomp, archs []*archDef, def uint32) map[*archDef]uint32 {
	switch def & 0xffff0000 {
	case retAllow, retLog, retTrace:
		return nil
	}
	if def == retErrno|uint32(unix.ENOSYS) {
		return nil
	}
	lim := map[*archDef]uint32{}
	for _, a := range archs {
		found := false
		for _, sc := range cfg.Syscalls {
			for _, n := range sc.Names {
				if nr, ok := a.table()[n]; ok && (!found || nr > lim[a]) {
					lim[a], found = nr, true
				}
			}
		}
		if !found {
			delete(lim, a)
		}
	}
	return lim
}

// Instructions returns the BPF program.
func (f *Filter) Instructions() []unix.SockFilter { return f.prog }

// NeedsListener reports whether a rule has SCMP_ACT_NOTIFY, so that Load
// returns a listener fd to pass to the profile's listenerPath.
func (f *Filter) NeedsListener() bool { return f.notify }

// Flags returns the seccomp(2) flags Load passes.
func (f *Filter) Flags() uintptr { return f.flags }

// UnknownSyscalls lists the syscall names the profile has that no covered
// architecture knows; their rules were skipped.
func (f *Filter) UnknownSyscalls() []string { return f.unknown }
