//go:build integration

package main_test

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// topRows runs `sandy top` and splits its table into fields.
func (e *imgEnv) topRows(args ...string) (header []string, rows [][]string) {
	e.t.Helper()
	out := e.ok(append([]string{"top"}, args...)...)
	lines := strings.Split(strings.TrimSpace(out), "\n")
	header = strings.Fields(lines[0])
	for _, l := range lines[1:] {
		rows = append(rows, strings.Fields(l))
	}
	return header, rows
}

// TestTop is podman's top over a detached container: every process of
// its pid namespace (the init, its children, an exec'd one), in the
// container's pids and user names, the host's for the h* descriptors;
// names come from the container's /etc/passwd resolved inside its root.
func TestTop(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e, _ := detachedEnv(t)
	e.runD("--name", "topper", "localhost/bb:d", "sh", "-c", "sleep 1000 & sleep 1001; exit 0")
	t.Cleanup(func() { _ = e.cmd("rm", "-f", "topper").Run() })
	// podman's exec -d hands the caller's stdio to nobody: e.ok reads
	// the output pipes to their end, which a detached process holding
	// them would never give (it hung here before).
	e.ok("container", "exec", "-d", "-u", "1234", "topper", "sleep", "1002")

	// The exec'd process shows once it runs.
	var header []string
	var rows [][]string
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		header, rows = e.topRows("topper")
		if len(rows) >= 4 || time.Now().After(deadline) {
			break
		}
	}
	if got := strings.Join(header, " "); got != "USER PID PPID %CPU ELAPSED TTY TIME COMMAND" {
		t.Errorf("header %q", got)
	}
	byCmd := map[string][]string{}
	for _, r := range rows {
		byCmd[strings.Join(r[7:], " ")] = r
	}
	init, ok := byCmd["sh -c sleep 1000 & sleep 1001; exit 0"]
	if !ok || init[0] != "root" || init[1] != "1" || init[2] != "0" || init[5] != "?" {
		t.Errorf("the init's row %v (rows %v)", init, rows)
	}
	if r, ok := byCmd["sleep 1000"]; !ok || r[0] != "root" || r[2] != "1" {
		t.Errorf("the init's child's row %v (rows %v)", r, rows)
	}
	if r, ok := byCmd["sleep 1002"]; !ok || r[0] != "1234" || r[2] != "0" {
		t.Errorf("the exec'd process's row %v: want user 1234 (no name) and ppid 0 (its parent is outside) (rows %v)", r, rows)
	}
	if len(rows) != 4 {
		t.Errorf("%d rows, want the 4 processes of the container: %v", len(rows), rows)
	}

	// The host's view: hpid is a host pid running that command, huser
	// the subordinate id of the container's root.
	header, rows = e.topRows("topper", "pid,hpid", "user", "huser", "args")
	if got := strings.Join(header, " "); got != "PID HPID USER HUSER COMMAND" {
		t.Errorf("header %q", got)
	}
	for _, r := range rows {
		if r[0] != "1" {
			continue
		}
		hpid, _ := strconv.Atoi(r[1])
		cmd, err := os.ReadFile("/proc/" + r[1] + "/cmdline")
		if err != nil || hpid <= 1 || !strings.HasPrefix(string(cmd), "sh\x00-c\x00") {
			t.Errorf("hpid %s is not the init on the host (%q, %v)", r[1], cmd, err)
		}
		if r[2] != "root" || r[3] == "root" || r[3] == "0" || r[3] == strconv.Itoa(os.Getuid()) {
			t.Errorf("user %s, huser %s: want root inside and the subordinate id on the host", r[2], r[3])
		}
	}

	if msg := e.fails(125, "top", "topper", "-eo", "pid"); !strings.Contains(msg, "unknown descriptor") || !strings.Contains(msg, "huser") {
		t.Errorf("unknown descriptor: %s", msg)
	}
	if msg := e.fails(125, "top", "no-such-container"); !strings.Contains(msg, "no-such-container") {
		t.Errorf("unknown container: %s", msg)
	}
	e.ok("stop", "-t", "0", "topper")
	if msg := e.fails(125, "top", "topper"); !strings.Contains(msg, "needs a running container") {
		t.Errorf("top of a stopped container: %s", msg)
	}
}

// TestTopNamesInRoot: the container's /etc/passwd is a symlink that
// would name a host file if it were followed from the host; top reads
// it inside the container's root, so the host file's names never show.
func TestTopNamesInRoot(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e, _ := detachedEnv(t)
	host := filepath.Join(e.dir, "host-passwd")
	e.write(host, "hostsecret:x:0:0::/:/bin/sh\n")
	if err := os.Chmod(e.dir, 0o755); err != nil {
		t.Fatal(err)
	}
	// An absolute link, followed through /proc/PID/root from the host,
	// resolves against the host's root (a relative one cannot climb out
	// of the container's mount namespace, but is tried too).
	rel := strings.Repeat("../", 20) + strings.TrimPrefix(host, "/")
	e.runD("--name", "liar", "localhost/bb:d", "sh", "-c", "ln -sf "+host+" /etc/passwd; ln -sf "+rel+" /etc/group; touch /ready; sleep 1000")
	t.Cleanup(func() { _ = e.cmd("rm", "-f", "liar").Run() })
	for deadline := time.Now().Add(5 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if e.cmd("container", "exec", "liar", "test", "-e", "/ready").Run() == nil {
			break
		}
	}
	out := e.ok("top", "liar", "user", "group", "args")
	if strings.Contains(out, "hostsecret") {
		t.Fatalf("top showed a name from a host file through the container's symlink:\n%s", out)
	}
	if !strings.Contains(out, "\n0 ") {
		t.Errorf("want uid 0 shown by number (no passwd inside the root):\n%s", out)
	}
}
