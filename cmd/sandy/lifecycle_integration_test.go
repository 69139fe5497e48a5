//go:build integration

package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestCreateStartDelete walks the runc lifecycle: create leaves the init
// waiting (status created, pid file written), start runs the process,
// state reports running then stopped, and the spec's state errors hold.
func TestCreateStartDelete(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sh", "-c", "echo started > /dev/null; sleep 1; exit 7")
	id := "life-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	pidFile := filepath.Join(testutil.TempDir(t), "pid")
	if r := e.run("", "create", "--bundle", e.bundle, "--pid-file", pidFile, id); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	st := ociState(t, e, id)
	if st.Status != "created" || st.Pid == 0 || st.Bundle != e.bundle || st.ID != id {
		t.Fatalf("after create: %+v", st)
	}
	if data, _ := os.ReadFile(pidFile); strings.TrimSpace(string(data)) != strconv.Itoa(st.Pid) {
		t.Fatalf("pid file %q, state pid %d", data, st.Pid)
	}
	if r := e.run("", "create", "--bundle", e.bundle, id); r.code == 0 || !strings.Contains(r.stderr, "already exists") {
		t.Fatalf("second create with the same id: %d %s", r.code, r.stderr)
	}
	if r := e.run("", "delete", id); r.code == 0 {
		t.Fatal("delete of a created container without --force succeeded")
	}
	if r := e.run("", "start", id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	if st := ociState(t, e, id); st.Status != "running" {
		t.Fatalf("after start: %+v", st)
	}
	if r := e.run("", "start", id); r.code == 0 {
		t.Fatal("start of a running container succeeded")
	}
	waitFor(t, 20*time.Second, "the process to exit", func() bool { return ociState(t, e, id).Status == "stopped" })
	if r := e.run("", "kill", id, "TERM"); r.code == 0 {
		t.Fatal("kill of a stopped container succeeded")
	}
	if r := e.run("", "list", "--format", "json"); !strings.Contains(r.stdout, `"stopped"`) {
		t.Fatalf("list: %s", r.stdout)
	}
	if r := e.run("", "delete", id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
	if r := e.run("", "state", id); r.code == 0 || !strings.Contains(r.stderr, "does not exist") {
		t.Fatalf("state after delete: %d %s", r.code, r.stderr)
	}
	assertNothingLeft(t, e)
}

func ociState(t *testing.T, e *env, id string) specs.State {
	t.Helper()
	r := e.run("", "state", id)
	var st specs.State
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil {
		t.Fatalf("state %s: %v: %s %s", id, err, r.stdout, r.stderr)
	}
	return st
}

// TestSingleMappingFallback: without newuidmap the container still runs,
// with the own uid mapped to root, and exactly one warning line says what
// is missing and the fix.
func TestSingleMappingFallback(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh("cat /proc/self/uid_map; id -u")
	// A PATH without the uidmap helpers.
	bin := testutil.TempDir(t)
	for _, tool := range []string{"busybox"} {
		_ = os.Symlink("/bin/"+tool, filepath.Join(bin, tool))
	}
	t.Setenv("PATH", bin)
	r := e.run("", "run", "--network=none", e.bundle)
	if r.code != 0 {
		t.Fatalf("run: %d %s", r.code, r.stderr)
	}
	fields := strings.Fields(r.stdout)
	if len(fields) != 4 || fields[0] != "0" || fields[1] != strconv.Itoa(os.Getuid()) || fields[2] != "1" || fields[3] != "0" {
		t.Fatalf("uid map/id: %q", r.stdout)
	}
	warnings := strings.Count(otherWarnings(r.stderr), "warning:")
	if warnings != 1 || !strings.Contains(r.stderr, "uidmap") {
		t.Fatalf("want one warning naming uidmap, got:\n%s", r.stderr)
	}
}

// TestNoProcess: process is OPTIONAL in the runtime spec: create sets the
// container up, start fails (and the container is then stopped), run
// refuses at once.
func TestNoProcess(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t)
	e.spec.Process = nil
	e.write()
	id := "noproc-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if r := e.run("", "create", "--bundle", e.bundle, id); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	if st := ociState(t, e, id); st.Status != "created" {
		t.Fatalf("after create: %+v", st)
	}
	if r := e.run("", "start", id); r.code == 0 || !strings.Contains(r.stderr, "no process") {
		t.Fatalf("start: %d %s", r.code, r.stderr)
	}
	if st := ociState(t, e, id); st.Status != "stopped" {
		t.Fatalf("after the failed start: %+v", st)
	}
	if r := e.run("", "delete", id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
	if r := e.run("", "run", e.bundle); r.code == 0 || !strings.Contains(r.stderr, "no process") {
		t.Fatalf("run: %d %s", r.code, r.stderr)
	}
	assertNothingLeft(t, e)
}

// TestRunKeep: run --keep leaves the stopped container for state and
// delete, and later commands do not collect it as a dead run's leftover.
func TestRunKeep(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh("exit 3")
	id := "keep-" + strconv.FormatInt(time.Now().UnixNano(), 36)
	if r := e.run("", "run", "--keep", "--bundle", e.bundle, id); r.code != 3 {
		t.Fatalf("run --keep: %d %s", r.code, r.stderr)
	}
	for range 2 {
		if r := e.run("", "list", "-q"); strings.TrimSpace(r.stdout) != id {
			t.Fatalf("list: %q %s", r.stdout, r.stderr)
		}
	}
	if st := ociState(t, e, id); st.Status != "stopped" {
		t.Fatalf("state: %+v", st)
	}
	if r := e.run("", "delete", id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
	assertNothingLeft(t, e)
}

// TestHelpExitsZero: every command's --help is usage, exit 0.
func TestHelpExitsZero(t *testing.T) {
	sandy := testutil.SandyBinary(t)
	for _, c := range []string{"run", "create", "start", "state", "exec", "kill", "delete", "list", "ps", "pause", "resume", "update", "events", "spec", "features"} {
		out, err := exec.Command(sandy, c, "--help").CombinedOutput()
		if err != nil || !strings.Contains(string(out), "Usage: sandy "+c) {
			t.Errorf("sandy %s --help: %v\n%s", c, err, out)
		}
	}
}

// TestKillStoppedAndSignalZero: as runc (its kill.bats), `kill -a ID 0`
// and `kill --all ID KILL` of a stopped container exit 0 (containerd's CRI
// sends them while it stops a pod); `kill ID 0` of a running one exits 0
// and sends nothing; `kill ID 0` of a stopped one fails and says so.
func TestKillStoppedAndSignalZero(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sleep", "100")
	id := uniqueID("kill")
	startDetached(t, e, id)
	if r := e.run("", "kill", id, "0"); r.code != 0 {
		t.Fatalf("kill %s 0 (running): exit %d: %s", id, r.code, r.stderr)
	}
	if st := ociState(t, e, id).Status; st != "running" {
		t.Fatalf("after signal 0: %s", st)
	}
	if r := e.run("", "kill", id, "KILL"); r.code != 0 {
		t.Fatalf("kill KILL: %s", r.stderr)
	}
	waitFor(t, 10*time.Second, "stopped", func() bool { return ociState(t, e, id).Status == "stopped" })
	for _, args := range [][]string{{"kill", "-a", id, "0"}, {"kill", "--all", id, "KILL"}, {"kill", "--all", id}} {
		if r := e.run("", args...); r.code != 0 {
			t.Errorf("%v (stopped): exit %d, want 0 (as runc): %s", args, r.code, r.stderr)
		}
	}
	r := e.run("", "kill", id, "0")
	if r.code != 1 || !strings.Contains(r.stderr, "is stopped") || !strings.Contains(r.stderr, "sandy delete") {
		t.Fatalf("kill %s 0 (stopped): exit %d %q; want 1 and what to do", id, r.code, r.stderr)
	}
	if r := e.run("", "delete", id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
}
