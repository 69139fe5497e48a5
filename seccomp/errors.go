package seccomp

import "errors"

// Sentinel errors; match them with errors.Is.
var (
	ErrNoProfile            = errors.New("no seccomp profile")
	ErrNativeArch           = errors.New("sandy's seccomp compiler does not support this machine's architecture")
	ErrArch                 = errors.New("architecture not supported (supported: SCMP_ARCH_X86_64, SCMP_ARCH_X86, SCMP_ARCH_X32, SCMP_ARCH_AARCH64, SCMP_ARCH_ARM)")
	ErrFlag                 = errors.New("unsupported seccomp flag (supported: SECCOMP_FILTER_FLAG_TSYNC, _LOG, _SPEC_ALLOW, _WAIT_KILLABLE_RECV)")
	ErrAction               = errors.New("unknown action")
	ErrOperator             = errors.New("unknown operator")
	ErrArgIndex             = errors.New("syscalls have arguments 0 to 5")
	ErrErrnoRange           = errors.New("errno return value does not fit in 16 bits")
	ErrNoNames              = errors.New("rule names no syscall")
	ErrNotifyDefault        = errors.New("SCMP_ACT_NOTIFY cannot be the default action")
	ErrNotifyWrite          = errors.New("SCMP_ACT_NOTIFY cannot be used for write(2): the init needs it to hand over the listener fd")
	ErrWaitKillableNoNotify = errors.New("needs a rule with SCMP_ACT_NOTIFY (the kernel allows it only with a listener)")
	ErrUnknownSyscalls      = errors.New("no syscall of the rule exists on any architecture of the filter")
	ErrTooLarge             = errors.New("filter exceeds the kernel's 4096 instructions (BPF_MAXINSNS)")
	// ErrRuleConflict is libseccomp's EEXIST: two rules give the same
	// argument comparison different actions in a way libseccomp refuses to
	// merge (runc then fails to start the container too).
	ErrRuleConflict = errors.New("rules for the same syscall conflict (libseccomp: EEXIST)")
	// ErrMergeLoop: the rules of one syscall overlap in a way that sends
	// libseccomp 2.5's rule merger into an endless loop; sandy stops.
	ErrMergeLoop = errors.New("merging the rules of one syscall does not terminate (libseccomp 2.5 loops forever on this profile)")
)
