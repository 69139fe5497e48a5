package nofile_test

import (
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/sandy-rt/sandy/internal/nofile"
)

// TestOriginal (an external test package: the package's own test files
// would give it the imports that initialize syscall first): the limit read is the one the process started with, not
// the one the syscall package raised it to: a child given a soft limit
// below its hard one reports that soft limit.
func TestOriginal(t *testing.T) {
	if os.Getenv("NOFILE_CHILD") == "1" {
		os.Stdout.WriteString(strconv.FormatUint(nofile.Soft, 10) + " " + strconv.FormatBool(nofile.OK))
		return
	}
	var lim syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &lim); err != nil {
		t.Fatal(err)
	}
	if lim.Max < 100 {
		t.Skipf("hard RLIMIT_NOFILE %d: too low to test", lim.Max)
	}
	cmd := exec.Command("/bin/sh", "-c", `ulimit -S -n 77 && exec "$0" -test.run=TestOriginal`, os.Args[0])
	cmd.Env = append(os.Environ(), "NOFILE_CHILD=1")
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("child: %v", err)
	}
	want := "77 true"
	if !strings.HasPrefix(string(out), want) {
		t.Fatalf("the child read %q, want %q (its raised limit is %d)", out, want, lim.Cur)
	}
}
