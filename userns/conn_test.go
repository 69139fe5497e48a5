package userns

import (
	"errors"
	"fmt"
	"os"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func pair(t *testing.T) (*Conn, *Conn) {
	t.Helper()
	p, c, err := NewPair()
	if err != nil {
		t.Fatal(err)
	}
	child := &Conn{f: c} // keeps c (and its fd) alive
	t.Cleanup(func() { p.Close(); child.Close() })
	return p, child
}

func TestConnMessagesAndFDs(t *testing.T) {
	p, c := pair(t)
	f, err := os.Open("/dev/null")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	big := strings.Repeat("x", 1<<20) // larger than a socket buffer
	go func() {
		_ = p.Send("one", map[string]string{"k": "v"})
		_ = p.Send("fd", nil, int(f.Fd()))
		_ = p.Send("big", big)
	}()
	m, err := c.Expect("one")
	if err != nil {
		t.Fatal(err)
	}
	var v map[string]string
	if err := m.Decode(&v); err != nil || v["k"] != "v" {
		t.Fatalf("decode: %v %v", v, err)
	}
	m, err = c.Expect("fd")
	if err != nil || len(m.FDs) != 1 {
		t.Fatalf("fd message: %+v %v", m, err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(m.FDs[0], &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		t.Fatalf("received fd is not /dev/null: %v", err)
	}
	unix.Close(m.FDs[0])
	m, err = c.Expect("big")
	var s string
	if err != nil || m.Decode(&s) != nil || s != big {
		t.Fatalf("big message: %v", err)
	}
}

func TestConnErrorAndClose(t *testing.T) {
	p, c := pair(t)
	go func() {
		_ = p.Send(MsgError, &ChildError{Step: "mounting", Message: "boom", Hint: "fix it", ExitCode: 127})
		_ = p.Send("unexpected", nil)
		p.Close()
	}()
	_, err := c.Expect("ready")
	var ce *ChildError
	if !errors.As(err, &ce) || ce.ExitCode != 127 || err.Error() != "mounting: boom\nhint: fix it" {
		t.Fatalf("error message: %v", err)
	}
	if _, err := c.Expect("ready"); err == nil || !strings.Contains(err.Error(), `got "unexpected"`) {
		t.Fatalf("wrong type: %v", err)
	}
	if _, err := c.Recv(); !errors.Is(err, ErrClosed) {
		t.Fatalf("after close: %v", err)
	}
}

func TestSelfExeSealedWhenWritable(t *testing.T) {
	f, err := SelfExe()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if !strings.HasPrefix(f.Name(), "memfd:") {
		t.Skipf("the test binary is not writable by this user (%s): no copy needed", f.Name())
	}
	seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
	if err != nil || seals&unix.F_SEAL_WRITE == 0 || seals&unix.F_SEAL_SEAL == 0 {
		t.Fatalf("seals %#x, %v", seals, err)
	}
	if _, err := f.Write([]byte("x")); err == nil {
		t.Fatal("wrote into the sealed copy")
	}
}

// TestExitStatus: the one mapping from a failure to an exit status.
func TestExitStatus(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want int
	}{
		{"plain error", errors.New("x"), 1},
		{"child error without a status", &ChildError{Step: "s", Message: "m"}, 1},
		{"not found", &ChildError{Message: "m", ExitCode: 127}, 127},
		{"not executable, wrapped", fmt.Errorf("starting: %w", &ChildError{ExitCode: 126}), 126},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := ExitStatus(tt.err); got != tt.want {
				t.Fatalf("ExitStatus(%v) = %d, want %d", tt.err, got, tt.want)
			}
		})
	}
}
