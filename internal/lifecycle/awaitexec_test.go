package lifecycle

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/initproc"
)

// TestAwaitExec: what start makes of the bytes on the exec fifo and of
// when its write end closes. A real fifo, opened as releaseInit opens it
// (the read deadline needs the fd in the runtime's poller).
func TestAwaitExec(t *testing.T) {
	const ready = 200 * time.Millisecond
	tests := []struct {
		name    string
		write   []byte
		hold    bool // the write end stays open (a pid 1 that never gets ready)
		wantErr string
	}{
		{name: "exec", write: []byte{initproc.FifoReleased}},
		{name: "init died first", write: nil, wantErr: "exited before it could start"},
		{name: "init failed after start", write: []byte{initproc.FifoReleased, initproc.FifoFailed}, wantErr: "failed after start"},
		{name: "sandy-init ready", write: []byte{initproc.FifoReleased, initproc.FifoHandedOn}},
		{name: "sandy-init exec failed", write: []byte{initproc.FifoReleased, initproc.FifoHandedOn, initproc.FifoFailed}, wantErr: "failed after start"},
		{name: "sandy-init never ready", write: []byte{initproc.FifoReleased, initproc.FifoHandedOn}, hold: true, wantErr: "did not install its signal handlers within 200ms"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "exec.fifo")
			if err := unix.Mkfifo(p, 0o600); err != nil {
				t.Fatal(err)
			}
			rc := make(chan *os.File, 1)
			go func() {
				f, err := os.OpenFile(p, os.O_RDONLY|unix.O_CLOEXEC, 0)
				if err != nil {
					t.Error(err)
				}
				rc <- f
			}()
			w, err := os.OpenFile(p, os.O_WRONLY|unix.O_CLOEXEC, 0)
			if err != nil {
				t.Fatal(err)
			}
			defer w.Close()
			r := <-rc
			defer r.Close()
			if _, err := w.Write(tt.write); err != nil {
				t.Fatal(err)
			}
			if !tt.hold {
				w.Close()
			}
			t0 := time.Now()
			err = awaitExec(r, "c1", ready)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("awaitExec: %v, want %q", err, tt.wantErr)
			}
			if tt.hold && time.Since(t0) > 10*ready {
				t.Errorf("the wait took %v, bounded by %v", time.Since(t0), ready)
			}
		})
	}
}
