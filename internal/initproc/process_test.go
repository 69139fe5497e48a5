//go:build linux

package initproc

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// TestRefuseUnchanged: the init's last check before setresuid(2): -1 in
// any id of process.user is refused, every real id passes.
func TestRefuseUnchanged(t *testing.T) {
	tests := []struct {
		name    string
		user    specs.User
		wantErr string
	}{
		{name: "root", user: specs.User{}},
		{name: "last real ids", user: specs.User{UID: 4294967294, GID: 4294967294, AdditionalGids: []uint32{4294967294}}},
		{name: "uid -1", user: specs.User{UID: 4294967295}, wantErr: "process.user.uid: 4294967295 is -1"},
		{name: "gid -1", user: specs.User{UID: 1, GID: 4294967295}, wantErr: "process.user.gid: 4294967295 is -1"},
		{name: "additional gid -1", user: specs.User{AdditionalGids: []uint32{5, 4294967295}}, wantErr: "process.user.additionalGids: 4294967295 is -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := refuseUnchanged(tt.user)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("error %v, want it to contain %q", err, tt.wantErr)
			}
		})
	}
}

// TestVerifyCwd: a working directory outside the root (getcwd(2) then
// says "(unreachable)", as after CVE-2024-21626's chdir through a leaked
// fd) is refused; the root itself passes. Run in a child, in a user
// namespace of its own, which chroots without changing directory.
func TestVerifyCwd(t *testing.T) {
	if os.Getenv("SANDY_TEST_VERIFYCWD") == "1" {
		if err := unix.Chroot(os.Getenv("SANDY_TEST_ROOT")); err != nil {
			fmt.Println("chroot:", err)
			return
		}
		fmt.Println("outside:", verifyCwd("/outside"))
		in, err := cwdUnderRoot()
		fmt.Println("outside walk:", in, err)
		if err := unix.Chdir("/"); err != nil {
			fmt.Println("chdir:", err)
			return
		}
		fmt.Println("inside:", verifyCwd("/"))
		in, err = cwdUnderRoot()
		fmt.Println("inside walk:", in, err)
		return
	}
	cmd := exec.Command(os.Args[0], "-test.run=^TestVerifyCwd$")
	cmd.Env = append(os.Environ(), "SANDY_TEST_VERIFYCWD=1", "SANDY_TEST_ROOT="+t.TempDir())
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getuid(), Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: os.Getgid(), Size: 1}},
	}
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("child: %v\n%s", err, out)
	}
	got := string(out)
	if !strings.Contains(got, "outside: /outside: the directory entered is outside the container's root") {
		t.Errorf("a cwd outside the root was not refused:\n%s", got)
	}
	if !strings.Contains(got, "inside: <nil>") {
		t.Errorf("the root was refused:\n%s", got)
	}
	// The fallback for a getcwd that seccomp denies.
	if !strings.Contains(got, "outside walk: false <nil>") || !strings.Contains(got, "inside walk: true <nil>") {
		t.Errorf("cwdUnderRoot:\n%s", got)
	}
}
