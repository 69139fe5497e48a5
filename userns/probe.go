//go:build linux

package userns

import (
	"bytes"
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
	return ProbeFlags(0, exe, args...)
}

// ProbeFlags is Probe with more namespaces: extra clone flags besides
// CLONE_NEWUSER and CLONE_NEWNS (CLONE_NEWNET for a throwaway network
// namespace to make a tap device in).
func ProbeFlags(extra uintptr, exe string, args ...string) ([]byte, error) {
	flags := syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS | extra
	cmd := exec.Command(exe, args...)
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:                 flags,
		UidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings:                []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
		GidMappingsEnableSetgroups: false,
		Pdeathsig:                  syscall.SIGKILL,
	}
	if err := cmd.Start(); err != nil {
		err = fmt.Errorf("creating a user namespace: %w", err)
		if hint := cloneHint(err, flags); hint != "" {
			err = fmt.Errorf("%w\nhint: %s", err, hint)
		}
		return nil, err
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

// SelfExeProtection says how SelfExe protects the running binary on this
// machine, by doing it (and closing the handle): the way, one of "as-is"
// (the caller cannot write it), "overlay" (root's read-only overlayfs
// view), "userns-overlay" (the same, made in a user namespace) and
// "memfd" (a sealed copy at every container start: the overlay failed),
// and the sentence --debug prints for it, with the overlay's error.
func SelfExeProtection() (way, how string, err error) {
	admin := hostAdmin()
	f, w, how, err := protectedExe("/proc/self/exe", admin, overlayFor(admin))
	if err != nil {
		return "", "", err
	}
	f.Close()
	return string(w), how, nil
}
