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

// TestSelfExeProtected: whoever runs the test, the handle SelfExe returns
// cannot be used to change the binary (CVE-2019-5736): a sealed memfd copy
// of a binary the caller can write (one it owns: as root, every binary),
// else the file itself opened read-only. The caller's own copy always takes
// the first branch; the system's /bin/sh takes the second for a non-root
// caller, and the test asserts whichever applies rather than skip.
func TestSelfExeProtected(t *testing.T) {
	own := t.TempDir() + "/sandy"
	data, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(own, data, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct{ name, path string }{{"self", "/proc/self/exe"}, {"own copy", own}, {"system binary", "/bin/sh"}} {
		t.Run(tc.name, func(t *testing.T) {
			f, err := protectedExe(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			src, err := os.Open(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			if !strings.HasPrefix(f.Name(), "memfd:") {
				if tc.path == own || writableByMe(src) {
					t.Fatalf("%s, which this user can write, returned as %s, not a sealed copy", tc.path, f.Name())
				}
				if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err != nil || fl&unix.O_ACCMODE != unix.O_RDONLY {
					t.Fatalf("handle on %s opened with flags %#x, %v; want read-only", tc.path, fl, err)
				}
				t.Logf("%s: not writable by uid %d, used as it is", tc.path, os.Geteuid())
				return
			}
			seals, err := unix.FcntlInt(f.Fd(), unix.F_GET_SEALS, 0)
			const want = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
			if err != nil || seals&want != want {
				t.Fatalf("seals %#x, %v; want %#x", seals, err, want)
			}
			if _, err := f.Write([]byte("x")); err == nil {
				t.Fatal("wrote into the sealed copy")
			}
			if err := unix.Ftruncate(int(f.Fd()), 0); err == nil {
				t.Fatal("truncated the sealed copy")
			}
			var a, b unix.Stat_t
			if unix.Fstat(int(f.Fd()), &a) != nil || unix.Fstat(int(src.Fd()), &b) != nil || a.Size != b.Size {
				t.Fatalf("copy has %d bytes, %s %d", a.Size, tc.path, b.Size)
			}
			t.Logf("%s: sealed copy %s", tc.path, f.Name())
		})
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
