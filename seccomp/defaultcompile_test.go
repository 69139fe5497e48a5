package seccomp

import "testing"

// TestDefaultProfileForCompiles: sandy's default profile compiles for
// every bounding set, which lets the host skip its check-only compile of
// it (lifecycle's checkConfig): none, all the capabilities its rules
// depend on, and each of them alone.
func TestDefaultProfileForCompiles(t *testing.T) {
	conditional := []string{"CAP_BPF", "CAP_DAC_READ_SEARCH", "CAP_PERFMON", "CAP_SYSLOG", "CAP_SYS_ADMIN", "CAP_SYS_BOOT",
		"CAP_SYS_CHROOT", "CAP_SYS_MODULE", "CAP_SYS_NICE", "CAP_SYS_PACCT", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO",
		"CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG"}
	sets := map[string][]string{"none": nil, "all": conditional}
	for _, c := range conditional {
		sets[c] = []string{c}
	}
	for name, caps := range sets {
		p, err := DefaultProfileFor(caps)
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		f, err := Compile(p)
		if err != nil {
			t.Errorf("%s: the default profile does not compile: %v", name, err)
			continue
		}
		if f.NeedsListener() {
			t.Errorf("%s: the default profile needs a notify listener", name)
		}
	}
}
