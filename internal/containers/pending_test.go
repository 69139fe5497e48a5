package containers

import (
	"bufio"
	"context"
	"errors"
	"io"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// TestSinkWriter: the container's output waits for the log and the
// attach socket (a pending monitor's init starts before they exist), and
// goes where they are once they are open, opened once.
func TestSinkWriter(t *testing.T) {
	ready := make(chan struct{})
	var got strings.Builder
	opened := 0
	w := &sinkWriter{ready: ready, open: func() io.Writer { opened++; return &got }}
	done := make(chan struct{})
	go func() {
		defer close(done)
		_, _ = w.Write([]byte("early "))
		_, _ = w.Write([]byte("late"))
	}()
	select {
	case <-done:
		t.Fatal("a write before the sinks are ready returned")
	case <-time.After(50 * time.Millisecond):
	}
	close(ready)
	<-done
	if got.String() != "early late" || opened != 1 {
		t.Errorf("wrote %q, opened %d times; want %q, once", got.String(), opened, "early late")
	}
}

// TestAwaitDirRefuses: a pending monitor's wait for its directory fails,
// so that lifecycle undoes the init and the state, when the CLI ends the
// orders without one (its error, or killed), names no absolute
// directory, names another container's, or the monitor is interrupted.
func TestAwaitDirRefuses(t *testing.T) {
	other := t.TempDir()
	if err := writeMonitorConfig(monitorConfig{ID: "other", Dir: other}); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, orders, want string
		interrupt          bool
	}{
		{"no directory: the CLI failed or died", "", errNoDir.Error(), false},
		{"a relative directory", `{"dir":"rel"}` + "\n", "names no directory", false},
		{"another container's", `{"dir":"` + other + `"}` + "\n", "is container other's, not mine's", false},
		{"no monitor orders there", `{"dir":"` + filepath.Join(other, "nosuch") + `"}` + "\n", "reading the monitor's orders", false},
		{"interrupted while waiting", "", "interrupted", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r, w, err := os.Pipe()
			if err != nil {
				t.Fatal(err)
			}
			defer r.Close()
			m := newMonitor(nil)
			m.cfg.ID = "mine"
			m.orders = bufio.NewReader(r)
			ctx, cancel := context.WithCancelCause(context.Background())
			defer cancel(nil)
			if tc.interrupt {
				cancel(errors.New("interrupted"))
				defer w.Close() // the orders never end
			} else {
				_, _ = w.WriteString(tc.orders)
				w.Close()
			}
			rb, err := m.awaitDir(ctx)
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("awaitDir = %+v, %v; want an error with %q", rb, err, tc.want)
			}
			select {
			case <-m.sinksReady:
				t.Error("the sinks are ready without a directory")
			default:
			}
		})
	}
}

// TestRunPendingRefuses: a pending monitor starts nothing on a first
// order that is not its container's, has no start spec, or never comes.
func TestRunPendingRefuses(t *testing.T) {
	for _, tc := range []struct{ name, orders, want string }{
		{"no order", "", "reading the start order"},
		{"not JSON", "{\n", "reading the start order"},
		{"no start spec", `{"config":{"id":"mine"}}` + "\n", "has no start spec"},
		{"another container's", `{"config":{"id":"other"},"spec":{}}` + "\n", "is container other's, not mine's"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := newMonitor(nil)
			m.orders = bufio.NewReader(strings.NewReader(tc.orders))
			err := m.runPending("mine")
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("runPending = %v, want an error with %q", err, tc.want)
			}
			if m.g != nil {
				t.Error("a runtime was set up")
			}
		})
	}
}
