//go:build linux && amd64 && !race

package userns

import (
	"bufio"
	"bytes"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestForkChildCode checks the rule the forked children live by (see
// forkexec.go): from their entry points, the machine code reaches no
// function with a stack check (morestack: the children run on stacks the
// runtime does not know, with the caller's g) and nothing of the runtime
// (no allocation, no write barrier, no panic: a failed bounds check is a
// call to runtime.panicIndex). go:nosplit alone does not prove it: an
// added call to a function that is not nosplit, or an index the compiler
// cannot prove in range, compiles. It disassembles sandy, built for the
// purpose, with `go tool objdump`.
func TestForkChildCode(t *testing.T) {
	goTool, err := exec.LookPath("go")
	if err != nil {
		testutil.Skip(t, "no go tool in PATH to disassemble sandy with: %v", err)
	}
	// The shipped program, built as hack/install.sh builds it but with its
	// symbols (go test strips the test binary's).
	bin := filepath.Join(t.TempDir(), "sandy")
	build := exec.Command(goTool, "build", "-trimpath", "-o", bin, "./cmd/sandy")
	build.Dir = ".."
	build.Env = append(os.Environ(), "CGO_ENABLED=0")
	if out, err := build.CombinedOutput(); err != nil {
		t.Fatalf("building sandy: %v: %s", err, out)
	}
	cmd := exec.Command(goTool, "tool", "objdump", "-s", `^(github\.com/sandy-rt/sandy/(userns|internal/mountflags)\.|syscall\.RawSyscall|internal/runtime/syscall)`, bin)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("go tool objdump: %v: %s", err, stderr.Bytes())
	}
	funcs := map[string][]string{} // name → its instructions
	var cur string
	s := bufio.NewScanner(bytes.NewReader(out))
	s.Buffer(make([]byte, 1<<20), 1<<20)
	for s.Scan() {
		l := s.Text()
		if strings.HasPrefix(l, "TEXT ") {
			cur = strings.Fields(l)[1]
			funcs[cur] = nil
			continue
		}
		if cur != "" {
			funcs[cur] = append(funcs[cur], l)
		}
	}
	const pkg = "github.com/sandy-rt/sandy/userns."
	roots := []string{pkg + "vmEntry(SB)", pkg + "vmEntry.abi0(SB)", pkg + "child1(SB)", pkg + "child2(SB)", pkg + "resetSignals(SB)", pkg + "exeChild(SB)"}
	call := regexp.MustCompile(`CALL (\S+\(SB\))`)
	seen := map[string]bool{}
	todo := append([]string(nil), roots...)
	var bad []string
	for len(todo) > 0 {
		f := todo[len(todo)-1]
		todo = todo[:len(todo)-1]
		if seen[f] {
			continue
		}
		seen[f] = true
		body, ok := funcs[f]
		if !ok {
			bad = append(bad, f+": reached from a forked child, outside the code allowed there")
			continue
		}
		for _, l := range body {
			if strings.Contains(l, "morestack") {
				bad = append(bad, f+": has a stack check (morestack)")
			}
			m := call.FindStringSubmatch(l)
			if m == nil {
				if strings.Contains(l, "CALL ") && !strings.Contains(l, "CALL AX") {
					bad = append(bad, f+": an indirect call: "+strings.TrimSpace(l))
				}
				continue
			}
			todo = append(todo, m[1])
		}
	}
	for _, r := range roots {
		if _, ok := funcs[r]; !ok {
			t.Errorf("%s is not in the binary: the entry points of the forked children changed; update this test", r)
		}
	}
	sort.Strings(bad)
	for _, b := range bad {
		t.Error(b)
	}
	if len(seen) < len(roots)+2 {
		t.Errorf("only %d functions reached from the children's entry points: the walk is broken", len(seen))
	}
	t.Logf("%d functions reached from the forked children's entry points", len(seen))
}
