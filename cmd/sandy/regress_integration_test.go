//go:build integration

package main_test

import (
	"fmt"
	"os"
	"strings"
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
