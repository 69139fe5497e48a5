package userns

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

// fakeProc writes a /proc/sys tree with the given sysctls ("" = absent)
// and a status file with the given Seccomp mode.
func fakeProc(t *testing.T, max, debian, apparmor, seccomp string) (procSys, status string) {
	t.Helper()
	d := t.TempDir()
	procSys = filepath.Join(d, "sys")
	for name, v := range map[string]string{"user/max_user_namespaces": max, "kernel/unprivileged_userns_clone": debian,
		"kernel/apparmor_restrict_unprivileged_userns": apparmor} {
		if v == "" {
			continue
		}
		p := filepath.Join(procSys, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(v+"\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	status = filepath.Join(d, "status")
	if err := os.WriteFile(status, []byte("Name:\tsandy\nNoNewPrivs:\t0\nSeccomp:\t"+seccomp+"\nSeccomp_filters:\t1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	return procSys, status
}

func TestReadLimits(t *testing.T) {
	ps, st := fakeProc(t, "15000", "", "1", "2")
	want := Limits{MaxUserNamespaces: 15000, UnprivilegedClone: -1, AppArmorRestrict: 1, Seccomp: true}
	if got := ReadLimits(ps, st); got != want {
		t.Errorf("ReadLimits = %+v, want %+v", got, want)
	}
	ps, st = fakeProc(t, "0", "0", "", "0")
	want = Limits{MaxUserNamespaces: 0, UnprivilegedClone: 0, AppArmorRestrict: -1}
	if got := ReadLimits(ps, st); got != want {
		t.Errorf("ReadLimits = %+v, want %+v", got, want)
	}
}

// TestDiagnose: each way a user namespace is refused gets its own cause
// and fix; an EPERM that no sysctl explains is the seccomp filter of the
// container sandy runs in.
func TestDiagnose(t *testing.T) {
	open := Limits{MaxUserNamespaces: 15000, UnprivilegedClone: -1, AppArmorRestrict: -1}
	with := func(f func(*Limits)) Limits { l := open; f(&l); return l }
	eperm := fmt.Errorf("creating a user namespace: fork/exec /proc/self/exe: %w", unix.EPERM)
	tests := []struct {
		name    string
		l       Limits
		err     error
		flags   uintptr
		cause   Cause
		hint    []string
		sysctls []string
	}{
		{"nothing", open, nil, unix.CLONE_NEWUSER, CauseNone, nil, nil},
		{"limit zero", with(func(l *Limits) { l.MaxUserNamespaces = 0 }), fmt.Errorf("x: %w", unix.ENOSPC), unix.CLONE_NEWUSER,
			CauseMaxZero, []string{"user.max_user_namespaces=0", "sysctl -w user.max_user_namespaces=15000"}, []string{"user.max_user_namespaces=15000"}},
		{"limit reached", open, fmt.Errorf("x: %w", unix.ENOSPC), unix.CLONE_NEWUSER, CauseMaxZero, []string{"limit reached"}, []string{"user.max_user_namespaces=15000"}},
		{"debian sysctl", with(func(l *Limits) { l.UnprivilegedClone = 0 }), eperm, unix.CLONE_NEWUSER,
			CauseDebian, []string{"kernel.unprivileged_userns_clone=0", "sysctl -w kernel.unprivileged_userns_clone=1"}, []string{"kernel.unprivileged_userns_clone=1"}},
		{"apparmor", with(func(l *Limits) { l.AppArmorRestrict = 1 }), eperm, unix.CLONE_NEWUSER,
			CauseAppArmor, []string{"AppArmor", "profile for /opt/sandy", "--fix-script", "kernel.apparmor_restrict_unprivileged_userns=0"}, nil},
		{"apparmor, the child without capabilities", with(func(l *Limits) { l.AppArmorRestrict = 1 }), &ChildFailed{Err: fmt.Errorf("exit status 1"), Stderr: "mount: permission denied"}, unix.CLONE_NEWUSER,
			CauseAppArmor, []string{"AppArmor"}, nil},
		{"seccomp filter of a CI runner", with(func(l *Limits) { l.Seccomp = true }), eperm, unix.CLONE_NEWUSER,
			CauseSeccomp, []string{"a seccomp filter of the container you run in (CI runner)", "--security-opt seccomp=unconfined", "seccompProfile.type: Unconfined"}, nil},
		{"seccomp ENOSYS", with(func(l *Limits) { l.Seccomp = true; l.AppArmorRestrict = 0; l.UnprivilegedClone = 1 }), fmt.Errorf("x: %w", unix.ENOSYS), unix.CLONE_NEWUSER,
			CauseSeccomp, []string{"(CI runner)"}, nil},
		{"EPERM, nothing explains it", open, eperm, unix.CLONE_NEWUSER, CauseSeccomp, []string{"no sysctl here forbids them", "--security-opt seccomp=unconfined"}, nil},
		{"no CONFIG_USER_NS", open, fmt.Errorf("x: %w", unix.EINVAL), unix.CLONE_NEWUSER, CauseKernel, []string{"CONFIG_USER_NS"}, nil},
		{"clone into cgroup", open, fmt.Errorf("x: %w", unix.EBUSY), unix.CLONE_NEWNS, CauseIntoGroup, []string{"CLONE_INTO_CGROUP"}, nil},
		{"clone into cgroup with a user namespace", open, fmt.Errorf("x: %w", unix.EOPNOTSUPP), unix.CLONE_NEWUSER | unix.CLONE_NEWNS, CauseIntoGroup, []string{"CLONE_INTO_CGROUP"}, nil},
		{"EPERM without a user namespace", open, eperm, unix.CLONE_NEWNS, CauseNone, nil, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d := tt.l.Diagnose(tt.err, tt.flags, "/opt/sandy")
			if d.Cause != tt.cause || fmt.Sprint(d.Sysctls) != fmt.Sprint(tt.sysctls) {
				t.Errorf("Diagnose = %+v, want cause %q, sysctls %q", d, tt.cause, tt.sysctls)
			}
			for _, s := range tt.hint {
				if !strings.Contains(d.Hint, s) {
					t.Errorf("hint %q lacks %q", d.Hint, s)
				}
			}
			if strings.Contains(d.Hint, "\n") {
				t.Errorf("hint is more than one line: %q", d.Hint)
			}
		})
	}
}

// TestAppArmorProfile: Ubuntu 24.04's form, with the binary's path quoted
// only when it must be.
func TestAppArmorProfile(t *testing.T) {
	p := AppArmorProfile("/usr/local/bin/sandy")
	for _, want := range []string{"abi <abi/4.0>,\n", "include <tunables/global>\n", "profile sandy /usr/local/bin/sandy flags=(unconfined) {\n  userns,\n"} {
		if !strings.Contains(p, want) {
			t.Errorf("profile lacks %q:\n%s", want, p)
		}
	}
	if p := AppArmorProfile("/home/a b/sandy"); !strings.Contains(p, `profile sandy "/home/a b/sandy" flags`) {
		t.Errorf("path with a space not quoted:\n%s", p)
	}
}
