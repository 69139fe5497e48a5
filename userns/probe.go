//go:build linux

package userns

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
)

// Probe really creates a throwaway user and mount namespace with the
// caller's own id mapped to 0 (uid_map and gid_map written by the parent,
// setgroups denied: the single mapping, which needs no helper) and runs
// exe with args in it as root there, with full capabilities in it. It
// returns the child's stdout. `sandy doctor` uses it to try what the
// container init does: a start error is the user namespace itself failing
// (the error carries the cause and the fix); a child that exits non-zero
// returns a *ChildFailed with its stderr.
func Probe(exe string, args ...string) ([]byte, error) {
	cmd := exec.Command(exe, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("creating a user namespace: %w\nhint: %s", err, ProbeHint(err))
	}
	if err := cmd.Wait(); err != nil {
		return out.Bytes(), &ChildFailed{Err: err, Stderr: strings.TrimSpace(errb.String())}
	}
	return out.Bytes(), nil
}

// ChildFailed is a probe child that ran in its namespaces and failed.
type ChildFailed struct {
	Err    error
	Stderr string
}

func (e *ChildFailed) Error() string { return fmt.Sprintf("%v: %s", e.Err, e.Stderr) }

// ProbeHint names the usual cause of a user namespace that cannot be
// created, and its fix.
func ProbeHint(err error) string {
	switch {
	case errors.Is(err, syscall.ENOSPC):
		return "user.max_user_namespaces is 0 or exhausted: as root, sysctl -w user.max_user_namespaces=15000"
	case errors.Is(err, syscall.EPERM), errors.Is(err, syscall.EACCES):
		return "unprivileged user namespaces are blocked: as root, sysctl -w kernel.unprivileged_userns_clone=1 (Debian) or kernel.apparmor_restrict_unprivileged_userns=0 (Ubuntu 24.04, or an AppArmor profile for sandy); inside a container (CI runner), its seccomp profile must allow unshare/clone with CLONE_NEWUSER (docker run --security-opt seccomp=unconfined)"
	case errors.Is(err, syscall.EINVAL):
		return "this kernel has no user namespaces (CONFIG_USER_NS)"
	}
	return "see docs/troubleshooting.md"
}

// SealedCopy reports whether the running binary is writable by the caller,
// so that every container start copies it into a sealed memfd (SelfExe).
func SealedCopy() (bool, error) {
	f, err := os.Open("/proc/self/exe")
	if err != nil {
		return false, fmt.Errorf("opening /proc/self/exe: %w", err)
	}
	defer f.Close()
	return writableByMe(f), nil
}
