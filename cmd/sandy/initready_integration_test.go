//go:build integration

package main_test

import (
	"strings"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestInitSignalAtOnce: `run -d --init` returns only once sandy-init (pid
// 1) handles signals, so a stop signal sent the moment it returns reaches
// the command. Before, run -d returned at the init's release, before
// sandy-init's Go runtime had started: a SIGTERM then either came before
// any handler (pid 1 with the default action: dropped, stop waited for
// its timeout and SIGKILLed, 137) or after the Go runtime's own and
// before signal.Notify's (the runtime exits 2 on it: "Exited (2)").
// The command traps TERM and exits 42; a TERM that comes before its trap
// kills it (143). Either is the command's status; 2 and 137 are not.
func TestInitSignalAtOnce(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e, _ := detachedEnv(t)
	const script = `trap "exit 42" TERM; while :; do sleep 0.1; done`
	// The exec fifo, which pid 1 held until its handlers existed, is
	// closed: pid 1 keeps stdio only, and the command never had it.
	id := e.runD("--init", "localhost/bb:d", "sh", "-c", "ls /proc/self/fd > /tmp/fds; "+script)
	if out := e.ok("exec", id, "sh", "-c", "ls /proc/1/fd | tr '\\n' ' '; echo; until [ -s /tmp/fds ]; do sleep 0.05; done; tr '\\n' ' ' < /tmp/fds"); out != "0 1 2 \n0 1 2 3 " {
		t.Errorf("fds of pid 1, then of the command (3: ls's directory): %q", out)
	}
	e.ok("container", "rm", "-f", id)
	const rounds = 12
	for i := 0; i < rounds; i++ {
		id := e.runD("--init", "localhost/bb:d", "sh", "-c", script)
		verb := []string{"stop", "-t", "20", id}
		if i%2 == 1 {
			verb = []string{"container", "kill", "-s", "TERM", id}
		}
		// No sleep: the signal goes out as soon as run -d has returned.
		t0 := time.Now()
		e.ok(verb...)
		out := strings.TrimSpace(e.ok("wait", id))
		if out != "42" && out != "143" {
			t.Errorf("round %d: %s right after run -d --init: exit status %s after %v, want 42 (the trap) or 143 (TERM before the trap); 2 is the init's Go runtime dying of the signal, 137 a lost signal and SIGKILL", i, strings.Join(verb[:len(verb)-1], " "), out, time.Since(t0).Round(time.Millisecond))
		}
		e.ok("container", "rm", "-f", id)
	}
}
