//go:build linux && (amd64 || arm64) && !libseccomp

package seccomp

import (
	"os"
	"os/exec"
	"regexp"
	"strconv"
	"testing"
)

// TestNoTablesAtInit: every sandy process (the container init too) links
// this package, so its init must not build the syscall tables (~2,000
// map inserts, 0.4-0.7 ms): they are built on first use. The runtime's
// inittrace counts the bytes the package's init allocates, which does not
// depend on the machine's speed. (Not with -tags libseccomp: cgo adds
// its own allocations to the package's init.)
func TestNoTablesAtInit(t *testing.T) {
	cmd := exec.Command(os.Args[0])
	cmd.Env = append(os.Environ(), initOnlyEnv+"=1", "GODEBUG=inittrace=1")
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	m := regexp.MustCompile(`init github\.com/sandy-rt/sandy/seccomp @[^,]*, [^,]*, (\d+) bytes`).FindSubmatch(out)
	if m == nil {
		t.Fatalf("no inittrace line for the package in:\n%s", out)
	}
	if n, _ := strconv.Atoi(string(m[1])); n > 8<<10 {
		t.Errorf("the package's init allocates %d bytes: a table is built at init again (want it built on first use)", n)
	}
}
