//go:build integration

package main_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestCgroupLimitsNeverSilentlyLost: a limit that cannot be enforced stops
// the container with the reason and the fix; --allow-unenforced runs it
// with one warning line per lost limit. (The enforcing managers are tested
// in the systemd VM: hack/vm.)
func TestCgroupLimitsNeverSilentlyLost(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	limit := int64(64 << 20)
	pids := int64(20)
	e := newEnv(t).sh("echo ran")
	e.spec.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}, Pids: &specs.LinuxPids{Limit: &pids}}
	e.write()
	before := treeHash(t, e.bundle)
	r := e.run("", "run", "--cgroup-manager=none", e.bundle)
	if r.code == 0 || strings.Contains(r.stdout, "ran") {
		t.Fatalf("ran with unenforceable limits: %q %q", r.stdout, r.stderr)
	}
	for _, want := range []string{"memory limit", "pids limit", "--allow-unenforced"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("error lacks %q: %s", want, r.stderr)
		}
	}
	assertNothingLeft(t, e)
	if treeHash(t, e.bundle) != before {
		t.Fatal("bundle changed")
	}
	r = e.run("", "run", "--cgroup-manager=none", "--allow-unenforced", e.bundle)
	if r.code != 0 || !strings.Contains(r.stdout, "ran") {
		t.Fatalf("--allow-unenforced: %d %q %q", r.code, r.stdout, r.stderr)
	}
	if n := strings.Count(r.stderr, "warning:"); n != 2 {
		t.Fatalf("want one warning per lost limit (2), got %d:\n%s", n, r.stderr)
	}
	// With --log (an engine's: under its shim, stderr is the
	// container's), the warnings go to the log only, in runc's words.
	logFile := filepath.Join(t.TempDir(), "log.json")
	r = e.run("", "--log", logFile, "--log-format", "json", "run", "--cgroup-manager=none", "--allow-unenforced", e.bundle)
	if r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Fatalf("--log: %d, stderr %q; want no warning on stderr", r.code, r.stderr)
	}
	if b, err := os.ReadFile(logFile); err != nil || strings.Count(string(b), `"level":"warning"`) != 2 {
		t.Errorf("--log: %q %v; want the 2 warnings", b, err)
	}
}

// TestCgroupNoneSaid: when --cgroup-manager=auto ends on none (this host:
// hybrid cgroups, no systemd) and config.json asks for no limit, `run`
// says so in exactly one line, with doctor's cgroup row's words (detail
// and fix); an explicit --cgroup-manager=none (or SANDY_CGROUP_MANAGER)
// says nothing, and neither does `create`, the engines' verb. Where a manager works (the VM) there is
// no such line.
func TestCgroupNoneSaid(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	_, rep := runDoctor(t, doctorCmd(t, "--json"))
	row := check(t, rep, "cgroup")
	e := newEnv(t).sh("echo ran")
	const prefix = "sandy: warning: cgroup manager none: "
	r := e.run("", "run", "--network=none", e.bundle)
	if r.code != 0 || !strings.Contains(r.stdout, "ran") {
		t.Fatalf("run: %d %q %q", r.code, r.stdout, r.stderr)
	}
	n := strings.Count(r.stderr, prefix)
	if rep.Ladder.Cgroup != "none" {
		if n != 0 {
			t.Fatalf("cgroup manager %s here, but run says none:\n%s", rep.Ladder.Cgroup, r.stderr)
		}
		return
	}
	if n != 1 {
		t.Fatalf("want exactly one %q line, got %d:\n%s", prefix, n, r.stderr)
	}
	line := r.stderr[strings.Index(r.stderr, prefix):]
	line = line[:strings.IndexByte(line, '\n')]
	for _, want := range []string{"sandy: warning: " + row.Detail + ": ", "no memory, pids or cpu limits", "ps, pause, update and events do not work", "; fix: ", "(docs/troubleshooting.md#cgroup-manager-none)"} {
		if !strings.Contains(line, want) {
			t.Errorf("line lacks %q:\n%s", want, line)
		}
	}
	if !strings.Contains(row.Fix, line[strings.Index(line, "; fix: ")+len("; fix: "):strings.LastIndex(line, " (docs/")]) {
		t.Errorf("line's fix is not doctor's (%q):\n%s", row.Fix, line)
	}
	t.Logf("run says:\n%s", line)

	if r := e.run("", "run", "--network=none", "--cgroup-manager=none", e.bundle); r.code != 0 || strings.Contains(r.stderr, "cgroup manager none") {
		t.Errorf("--cgroup-manager=none (asked for, no fallback): %d, stderr:\n%s", r.code, r.stderr)
	}
	id := "cgnone-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	r = e.run("", "create", "--bundle", e.bundle, id)
	defer e.run("", "delete", "--force", id)
	if r.code != 0 || strings.Contains(r.stderr, "cgroup manager none") {
		t.Errorf("create (an engine's verb): %d, stderr:\n%s", r.code, r.stderr)
	}
	if r := e.run("", "--debug", "create", "--bundle", e.bundle, id+"d"); r.code != 0 || !strings.Contains(r.stderr, "cgroup manager: none") {
		t.Errorf("create --debug: %d, want the debug line, stderr:\n%s", r.code, r.stderr)
	}
	e.run("", "delete", "--force", id+"d")
	t.Setenv("SANDY_CGROUP_MANAGER", "none") // the same choice, asked for
	if r := e.run("", "run", "--network=none", e.bundle); r.code != 0 || strings.Contains(r.stderr, "cgroup manager none") {
		t.Errorf("SANDY_CGROUP_MANAGER=none: %d, stderr:\n%s", r.code, r.stderr)
	}
}
