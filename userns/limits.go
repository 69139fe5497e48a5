package userns

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// Limits are what can forbid an unprivileged user namespace besides the
// kernel build: three sysctls and a seccomp filter on this process.
type Limits struct {
	// MaxUserNamespaces is user.max_user_namespaces as this user namespace
	// sees it (0 forbids new ones: clone fails with ENOSPC); -1 unknown.
	MaxUserNamespaces int
	// UnprivilegedClone is kernel.unprivileged_userns_clone, a Debian and
	// older Ubuntu kernel patch (0: only CAP_SYS_ADMIN may, clone fails
	// with EPERM); -1 when the kernel has no such sysctl.
	UnprivilegedClone int
	// AppArmorRestrict is kernel.apparmor_restrict_unprivileged_userns
	// (Ubuntu 23.10+; 1: a program without an AppArmor profile that allows
	// "userns" gets a user namespace with no capabilities in it, or none
	// at all); -1 when absent.
	AppArmorRestrict int
	// Seccomp: a seccomp filter is on this process (/proc/self/status
	// "Seccomp: 2"). sandy loads none on itself, so it was inherited: from
	// the container this runs in, a CI runner's or a toolbox's.
	Seccomp bool
}

// ReadLimits reads Limits from procSys (normally /proc/sys) and status
// (normally /proc/self/status). What cannot be read is unknown (-1, false).
func ReadLimits(procSys, status string) Limits {
	l := Limits{
		MaxUserNamespaces: readSysctl(procSys, "user/max_user_namespaces"),
		UnprivilegedClone: readSysctl(procSys, "kernel/unprivileged_userns_clone"),
		AppArmorRestrict:  readSysctl(procSys, "kernel/apparmor_restrict_unprivileged_userns"),
	}
	if b, err := os.ReadFile(status); err == nil {
		for _, line := range strings.Split(string(b), "\n") {
			if v, ok := strings.CutPrefix(line, "Seccomp:"); ok {
				l.Seccomp = strings.TrimSpace(v) == "2"
			}
		}
	}
	return l
}

func readSysctl(procSys, name string) int {
	b, err := os.ReadFile(filepath.Join(procSys, name))
	if err != nil {
		return -1
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return -1
	}
	return n
}

// hostLimits are the real host's Limits, read when a clone fails.
func hostLimits() Limits { return ReadLimits("/proc/sys", "/proc/self/status") }

// Cause names what stopped a user namespace.
type Cause string

const (
	CauseNone      Cause = ""                          // nothing known to be in the way
	CauseMaxZero   Cause = "max_user_namespaces"       // user.max_user_namespaces is 0 or reached
	CauseDebian    Cause = "unprivileged_userns_clone" // kernel.unprivileged_userns_clone=0
	CauseAppArmor  Cause = "apparmor"                  // kernel.apparmor_restrict_unprivileged_userns=1
	CauseSeccomp   Cause = "seccomp"                   // a seccomp filter of the container this runs in
	CauseKernel    Cause = "kernel"                    // the kernel refused the flags (CONFIG_USER_NS off?)
	CauseIntoGroup Cause = "clone_into_cgroup"         // the CLONE_INTO_CGROUP target is not usable
)

// Diagnosis is why a user namespace could not be had and the fix: Hint in
// the user's words (one line), Sysctls the settings root writes (name=value)
// when a sysctl is the fix.
type Diagnosis struct {
	Cause   Cause
	Hint    string
	Sysctls []string
}

// SeccompFix is the fix for CauseSeccomp: the outer container's runtime
// must let clone(CLONE_NEWUSER) through.
const SeccompFix = "run that container with a seccomp profile that allows clone and unshare with CLONE_NEWUSER: docker/podman run --security-opt seccomp=unconfined; a GitHub Actions job container: options: --security-opt seccomp=unconfined; Kubernetes: securityContext.seccompProfile.type: Unconfined"

// Diagnose explains err, a failure to create a user namespace (clone
// with flags, or the first step of its child, as a *ChildFailed) with l.
// It returns a zero Diagnosis when it cannot tell, and for errors of
// clone without CLONE_NEWUSER other than the cgroup ones (EBUSY and
// EOPNOTSUPP: CLONE_INTO_CGROUP's target, whatever the other flags).
//
// The order matters: ENOSPC is only the limit; EPERM is, in turn, the
// Debian sysctl, AppArmor (on kernels that refuse outright instead of
// confining the child), then a seccomp filter — which is what is left
// when no sysctl forbids it and a filter is on this process (a seccomp
// filter may also answer ENOSYS, as Docker's does for unknown calls).
func (l Limits) Diagnose(err error, flags uintptr, exe string) Diagnosis {
	newUser := flags&unix.CLONE_NEWUSER != 0
	var cf *ChildFailed
	switch {
	case err == nil:
		return Diagnosis{}
	case errors.Is(err, unix.EBUSY) || errors.Is(err, unix.EOPNOTSUPP):
		return Diagnosis{Cause: CauseIntoGroup, Hint: "the cgroup given for CLONE_INTO_CGROUP is not usable (not a leaf, or a domain-invalid cgroup)"}
	case errors.Is(err, unix.ENOSPC) || newUser && l.MaxUserNamespaces == 0:
		return Diagnosis{Cause: CauseMaxZero, Sysctls: []string{"user.max_user_namespaces=15000"},
			Hint: fmt.Sprintf("user namespace limit reached (user.max_user_namespaces=%d): raise it as root: sysctl -w user.max_user_namespaces=15000", max(l.MaxUserNamespaces, 0))}
	case !newUser:
		return Diagnosis{}
	case l.UnprivilegedClone == 0 && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES)):
		return Diagnosis{Cause: CauseDebian, Sysctls: []string{"kernel.unprivileged_userns_clone=1"},
			Hint: "unprivileged user namespaces are disabled (kernel.unprivileged_userns_clone=0): as root: sysctl -w kernel.unprivileged_userns_clone=1"}
	case l.AppArmorRestrict == 1 && (errors.Is(err, unix.EPERM) || errors.Is(err, unix.EACCES) || errors.As(err, &cf)):
		return Diagnosis{Cause: CauseAppArmor, Hint: AppArmorHint(exe)}
	case errors.Is(err, unix.EPERM) || errors.Is(err, unix.ENOSYS):
		if l.Seccomp {
			return Diagnosis{Cause: CauseSeccomp,
				Hint: "a seccomp filter of the container you run in (CI runner) blocks clone with CLONE_NEWUSER: " + SeccompFix}
		}
		return Diagnosis{Cause: CauseSeccomp,
			Hint: "unprivileged user namespaces are refused, and no sysctl here forbids them: inside a container (a CI runner), its seccomp filter blocks clone with CLONE_NEWUSER: " + SeccompFix}
	case errors.Is(err, unix.EINVAL):
		return Diagnosis{Cause: CauseKernel, Hint: "the kernel refused the namespace flags (CONFIG_USER_NS off?)"}
	}
	return Diagnosis{}
}

// AppArmorHint is the one-line fix for CauseAppArmor.
func AppArmorHint(exe string) string {
	return fmt.Sprintf("AppArmor lets only programs whose profile allows \"userns\" use user namespaces (kernel.apparmor_restrict_unprivileged_userns=1): as root, install a profile for %s (`sandy doctor --fix-script` prints it), or sysctl -w kernel.apparmor_restrict_unprivileged_userns=0", exe)
}

// AppArmorProfile is the profile that lets exe (its real path: AppArmor
// attaches profiles by the path the kernel resolved) create user
// namespaces and otherwise leaves it unconfined, in the form of Ubuntu
// 24.04's own /etc/apparmor.d files for such programs. AppArmorProfileFile
// is where it goes.
func AppArmorProfile(exe string) string {
	if strings.ContainsAny(exe, " \t\"") {
		exe = strconv.Quote(exe)
	}
	return fmt.Sprintf(`abi <abi/4.0>,
include <tunables/global>

profile sandy %s flags=(unconfined) {
  userns,

  include if exists <local/sandy>
}
`, exe)
}

// AppArmorProfileFile is the file AppArmorProfile goes in.
const AppArmorProfileFile = "/etc/apparmor.d/sandy"

// RealExe is the running binary's path with symlinks resolved, the path
// AppArmor matches ("" when unknown).
func RealExe() string {
	p, err := os.Executable()
	if err != nil {
		return ""
	}
	if r, err := filepath.EvalSymlinks(p); err == nil {
		return r
	}
	return p
}
