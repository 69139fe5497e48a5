//go:build linux

package slirp

import (
	"net"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestStopReset: a monitor that is tearing down already (its container
// was killed by `delete --force` just before) resets Stop's connection,
// closing it with "stop" unread. Stop then waits for the teardown's end,
// the state files' removal, and returns nil (TestNetworkDetached failed
// once on it: "read: connection reset by peer"); a teardown that does not
// end is an error naming the state directory.
func TestStopReset(t *testing.T) {
	for _, ends := range []bool{true, false} {
		dir := t.TempDir()
		json := filepath.Join(dir, "slirp.json")
		if err := os.WriteFile(json, []byte("{}"), 0o600); err != nil {
			t.Fatal(err)
		}
		l, err := net.Listen("unix", filepath.Join(dir, "monitor.sock"))
		if err != nil {
			t.Fatal(err)
		}
		removed := make(chan time.Time, 1)
		go func() {
			c, err := l.Accept()
			if err != nil {
				return
			}
			time.Sleep(50 * time.Millisecond) // "stop\n" arrives, unread
			c.Close()                         // the reset
			l.Close()
			if ends {
				time.Sleep(100 * time.Millisecond)
				removed <- time.Now()
				os.Remove(json)
			}
		}()
		if !ends {
			old := stopWait
			stopWait = 300 * time.Millisecond
			t.Cleanup(func() { stopWait = old })
		}
		err = Stop(dir)
		returned := time.Now()
		if !ends {
			if err == nil || !strings.Contains(err.Error(), dir) {
				t.Errorf("a teardown that does not end: %v, want an error naming %s", err, dir)
			}
			continue
		}
		if err != nil {
			t.Fatalf("Stop after a reset: %v", err)
		}
		if r := <-removed; returned.Before(r) {
			t.Errorf("Stop returned %v before the teardown ended", r.Sub(returned))
		}
	}
}
