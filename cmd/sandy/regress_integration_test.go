//go:build integration

package main_test

import (
	"fmt"
	"os"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestSeccompDeniesCloseRange: a profile that forbids close_range (as the
// runtime-tools suite's does) still runs, and still leaks no fd.
func TestSeccompDeniesCloseRange(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh(`ls /proc/self/fd | wc -l`)
	e.spec.Linux.Seccomp = &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Syscalls: []specs.LinuxSyscall{{Names: []string{"close_range"}, Action: specs.ActErrno}}}
	e.write()
	r := e.runBundle(0)
	// ls's own fds: 0, 1, 2 and the directory it reads.
	if strings.TrimSpace(r.stdout) != "4" {
		t.Fatalf("fds in the container: %q", r.stdout)
	}
}

// TestRlimitsReachTheProcessNotTheInit: a low RLIMIT_AS (which a Go
// runtime cannot start under) applies to the container process.
func TestRlimitsReachTheProcessNotTheInit(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh(`ulimit -v; ulimit -n`)
	e.spec.Process.Rlimits = []specs.POSIXRlimit{
		{Type: "RLIMIT_AS", Hard: 1 << 30, Soft: 1 << 30},
		{Type: "RLIMIT_NOFILE", Hard: 512, Soft: 256},
	}
	e.write()
	r := e.runBundle(0)
	if got := strings.Fields(r.stdout); len(got) != 2 || got[0] != fmt.Sprint((1<<30)/1024) || got[1] != "256" {
		t.Fatalf("limits in the container: %q", r.stdout)
	}
}

// TestRlimitsAsRuntimeToolsSetsThem: runtime-tools' process_rlimits
// values reach the process, with sandy started from a soft RLIMIT_NOFILE
// below its hard one (a login shell's 1024), which Go's runtime records
// and syscall.Exec restores unless the init calls Setrlimit itself. With
// the host setting RLIMIT_AS and RLIMIT_DATA before the init's last steps,
// the Go init crashed under runtime-tools' harness ("fatal error: runtime:
// cannot allocate memory"; its process_rlimits binary shows it): the init
// now sets those two last (spec.SetByInit).
func TestRlimitsAsRuntimeToolsSetsThem(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	// sandy starts with a soft limit below its hard one, as a login
	// shell's 1024 is: Go's runtime then records it to restore on exec.
	// (syscall.Setrlimit also stops this test binary's own restore.)
	var own syscall.Rlimit
	if err := syscall.Getrlimit(syscall.RLIMIT_NOFILE, &own); err != nil {
		t.Fatal(err)
	}
	if own.Max < 8192 {
		t.Fatalf("hard RLIMIT_NOFILE %d: the test needs room above 4000", own.Max)
	}
	low := syscall.Rlimit{Cur: 1024, Max: own.Max}
	if err := syscall.Setrlimit(syscall.RLIMIT_NOFILE, &low); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = syscall.Setrlimit(syscall.RLIMIT_NOFILE, &own) })
	const gib = 1 << 30
	e := newEnv(t).sh(`ulimit -v; ulimit -d; ulimit -n; ulimit -Hn`)
	e.spec.Process.Rlimits = []specs.POSIXRlimit{
		{Type: "RLIMIT_AS", Hard: 2 * gib, Soft: 1 * gib},
		{Type: "RLIMIT_DATA", Hard: 6 * gib, Soft: 5 * gib},
		{Type: "RLIMIT_NOFILE", Hard: 4000, Soft: 3000},
	}
	e.write()
	r := e.runBundle(0)
	want := []string{fmt.Sprint(gib / 1024), fmt.Sprint(5 * gib / 1024), "3000", "4000"}
	if got := strings.Fields(r.stdout); strings.Join(got, " ") != strings.Join(want, " ") {
		t.Fatalf("limits in the container: %q, want %q", r.stdout, want)
	}
}

// TestJoinWrongNamespaceType: a path to a namespace of another type is an
// error, promptly, not a hang.
func TestJoinWrongNamespaceType(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t)
	for i, n := range e.spec.Linux.Namespaces {
		if n.Type == specs.NetworkNamespace {
			e.spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/uts", os.Getpid())
		}
	}
	e.write()
	t0 := time.Now()
	r := e.run("", "run", e.bundle)
	if r.code == 0 || time.Since(t0) > 20*time.Second {
		t.Fatalf("joining a uts namespace as network: exit %d after %v: %s", r.code, time.Since(t0), r.stderr)
	}
	assertNothingLeft(t, e)
}
