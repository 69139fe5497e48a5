package userns

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
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

// TestConnRawPayload: a json.RawMessage payload (the init's config,
// encoded by the caller with its own codec) arrives as the same JSON,
// not re-encoded; bytes that are not JSON are refused by Send, never
// sent.
func TestConnRawPayload(t *testing.T) {
	p, c := pair(t)
	if err := p.Send("bad", json.RawMessage(`{"a":`)); err == nil {
		t.Fatal("Send of a raw payload that is not JSON succeeded")
	}
	go func() { _ = p.Send("raw", json.RawMessage(`{"spec": {"hostname": "h"}, "id": "c1"}`)) }()
	m, err := c.Expect("raw")
	if err != nil {
		t.Fatal(err)
	}
	if want := `{"spec":{"hostname":"h"},"id":"c1"}`; string(m.Data) != want {
		t.Fatalf("payload %s, want %s", m.Data, want)
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

// TestSelfExeProtected: whoever runs the test, the handle protectedExe
// returns cannot be used to change the binary (CVE-2019-5736): for a
// binary the caller can write (one it owns: as root, every binary), root
// in the initial user namespace gets it through a read-only overlayfs
// mount, anyone else through one made in a user namespace, or a sealed
// memfd copy where the overlay fails; a binary the caller cannot write is
// the file itself opened read-only. The caller's own copy always takes
// one of the first two; the system's /bin/sh takes the third for a
// non-root caller, and the test asserts whichever applies rather than
// skip. (TestUserNSOverlay insists on the rootless overlay.)
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
			f, _, how, err := protectedExe(tc.path, hostAdmin(), overlayFor(hostAdmin()))
			if err != nil {
				t.Fatal(err)
			}
			defer f.Close()
			t.Logf("%s: %s", tc.path, how)
			src, err := os.Open(tc.path)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			writable := tc.path == own || writableByMe(src)
			switch {
			case strings.HasPrefix(f.Name(), "memfd:"):
				assertSealed(t, f, src)
			case writable:
				assertReadOnlyOverlay(t, f, src)
			default:
				if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err != nil || fl&unix.O_ACCMODE != unix.O_RDONLY {
					t.Fatalf("handle on %s opened with flags %#x, %v; want read-only", tc.path, fl, err)
				}
			}
		})
	}
}

func assertSealed(t *testing.T, f, src *os.File) {
	t.Helper()
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
		t.Fatalf("copy has %d bytes, %s %d", a.Size, src.Name(), b.Size)
	}
}

// assertReadOnlyOverlay: f is an O_PATH handle on src's bytes on a
// read-only overlayfs that no mount namespace lists, and it does not open
// for writing, not even by root (EROFS), nor does a truncate reach it.
func assertReadOnlyOverlay(t *testing.T, f, src *os.File) {
	t.Helper()
	if fl, err := unix.FcntlInt(f.Fd(), unix.F_GETFL, 0); err != nil || fl&unix.O_PATH == 0 {
		t.Fatalf("overlay handle flags %#x, %v; want O_PATH", fl, err)
	}
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &fs); err != nil || fs.Type != unix.OVERLAYFS_SUPER_MAGIC || fs.Flags&unix.ST_RDONLY == 0 {
		t.Fatalf("statfs: type %#x flags %#x, %v; want a read-only overlayfs", fs.Type, fs.Flags, err)
	}
	proc := fmt.Sprintf("/proc/self/fd/%d", f.Fd())
	if fd, err := unix.Open(proc, unix.O_WRONLY, 0); !errors.Is(err, unix.EROFS) {
		if err == nil {
			unix.Close(fd)
		}
		t.Fatalf("open %s for writing: %v, want EROFS", proc, err)
	}
	if err := unix.Truncate(proc, 0); !errors.Is(err, unix.EROFS) {
		t.Fatalf("truncate %s: %v, want EROFS", proc, err)
	}
	got, err := os.ReadFile(proc)
	if err != nil {
		t.Fatal(err)
	}
	want, err := io.ReadAll(src)
	if err != nil {
		t.Fatal(err)
	}
	if !bytes.Equal(got, want) {
		t.Fatalf("the overlay's file has %d bytes, not the binary's %d (or other bytes)", len(got), len(want))
	}
	mi, err := os.ReadFile("/proc/self/mountinfo")
	if err != nil {
		t.Fatal(err)
	}
	dir := filepath.Dir(src.Name())
	for _, l := range strings.Split(string(mi), "\n") {
		if strings.Contains(l, " overlay ") && (strings.Contains(l, "sandy-exe-") || strings.Contains(l, dir)) {
			t.Fatalf("/proc/self/mountinfo lists the binary's overlay: %s", l)
		}
		// userNSOverlay's tmpfs on the directory stays in its child's
		// mount namespace.
		if f := strings.Fields(l); len(f) > 4 && f[4] == dir {
			t.Fatalf("/proc/self/mountinfo lists a mount on the binary's directory: %s", l)
		}
	}
}

// TestChooseProtection: the first choice depends only on whether the
// caller can write the binary and holds CAP_SYS_ADMIN in the initial user
// namespace.
func TestChooseProtection(t *testing.T) {
	for _, c := range []struct {
		writable, admin bool
		want            exeProtection
	}{
		{false, false, exeAsIs},
		{false, true, exeAsIs},
		{true, true, exeOverlay},
		{true, false, exeUserNSOverlay},
	} {
		if got := chooseProtection(c.writable, c.admin); got != c.want {
			t.Errorf("chooseProtection(writable %v, admin %v) = %s, want %s", c.writable, c.admin, got, c.want)
		}
	}
}

// TestOverlayFailureFallsBack: when the overlay cannot be made (rootless
// in a user namespace, no fsopen, an LSM), the binary is copied into a
// sealed memfd, and the description names the path and why; a binary
// that is not the running one (a deleted or replaced file) is refused by
// readOnlyOverlay itself.
func TestOverlayFailureFallsBack(t *testing.T) {
	own := t.TempDir() + "/sandy"
	if err := os.WriteFile(own, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, admin := range []bool{true, false} {
		called := false
		f, way, how, err := protectedExe(own, admin, func(string) (*os.File, error) {
			called = true
			return nil, unix.EPERM
		})
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		src, err := os.Open(own)
		if err != nil {
			t.Fatal(err)
		}
		defer src.Close()
		if !called || !strings.HasPrefix(f.Name(), "memfd:") || way != exeMemfd {
			t.Fatalf("admin %v: overlay called %v, handle %s: want the overlay tried, then a sealed copy", admin, called, f.Name())
		}
		assertSealed(t, f, src)
		if !strings.Contains(how, "sealed memfd copy of "+own) || !strings.Contains(how, "operation not permitted") {
			t.Fatalf("admin %v: description %q: want the sealed copy of %s and the overlay's error", admin, how, own)
		}
	}
	src, err := os.Open(own)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	// A binary replaced after it was started: its magic link leads to
	// another file (here: none), which must not be taken for it.
	if err := os.WriteFile(own+".new", []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.Rename(own+".new", own); err != nil {
		t.Fatal(err)
	}
	replaced := fmt.Sprintf("/proc/self/fd/%d", src.Fd())
	for name, overlay := range map[string]func(string) (*os.File, error){"readOnlyOverlay": readOnlyOverlay, "userNSOverlay": userNSOverlay} {
		if _, err := overlay(replaced); err == nil || !strings.Contains(err.Error(), "not the running binary") {
			t.Fatalf("%s of a replaced binary: %v, want it refused", name, err)
		}
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
