package seccomp

import (
	"os"
	"slices"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// TestLoadProfileFor reads podman's own default profile file, the format
// `--security-opt seccomp=FILE` takes: the rules for capabilities follow
// the bounding set, the architectures the native one, and the default
// errno is kept.
func TestLoadProfileFor(t *testing.T) {
	body, err := os.ReadFile("testdata/podman-seccomp.json")
	if err != nil {
		t.Fatal(err)
	}
	allows := func(p *specs.LinuxSeccomp, name string) bool {
		for _, sc := range p.Syscalls {
			if sc.Action == specs.ActAllow && len(sc.Args) == 0 && slices.Contains(sc.Names, name) {
				return true
			}
		}
		return false
	}
	plain, err := LoadProfileFor(body, []string{"CAP_CHOWN"})
	if err != nil {
		t.Fatal(err)
	}
	admin, err := LoadProfileFor(body, []string{"CAP_CHOWN", "CAP_SYS_ADMIN"})
	if err != nil {
		t.Fatal(err)
	}
	if plain.DefaultAction != specs.ActErrno || plain.DefaultErrnoRet == nil || *plain.DefaultErrnoRet != 38 {
		t.Errorf("default action: %s %v, want SCMP_ACT_ERRNO with ENOSYS (38)", plain.DefaultAction, plain.DefaultErrnoRet)
	}
	if !allows(plain, "read") || allows(plain, "sethostname") {
		t.Errorf("without CAP_SYS_ADMIN: read allowed %v (want true), sethostname allowed %v (want false)", allows(plain, "read"), allows(plain, "sethostname"))
	}
	if !allows(admin, "sethostname") {
		t.Error("with CAP_SYS_ADMIN, sethostname must be allowed")
	}
	if _, err := Compile(plain); err != nil {
		t.Errorf("the loaded profile must compile: %v", err)
	}
	if len(plain.Architectures) == 0 || !slices.Contains(plain.Architectures, nativeArch().name) {
		t.Errorf("architectures %v: want the native one first, from the archMap", plain.Architectures)
	}

	if p, err := LoadProfileFor([]byte("{}"), nil); err != nil || p != nil {
		t.Errorf("an empty profile: got %v, %v; want no filter", p, err)
	}
	for _, bad := range []string{`{"defaultAction": `, `{"defaultAction":"SCMP_ACT_ALLOW","syscalls":[{"name":"a","names":["b"]}]}`} {
		if _, err := LoadProfileFor([]byte(bad), nil); err == nil || !strings.Contains(err.Error(), "seccomp profile") {
			t.Errorf("%s: got %v, want an error about the profile", bad, err)
		}
	}
}
