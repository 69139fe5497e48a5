//go:build linux

package initproc

import (
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func idOf(t *testing.T, path string) fileID {
	t.Helper()
	var st unix.Stat_t
	if err := unix.Stat(path, &st); err != nil {
		t.Fatal(err)
	}
	return fileID{st.Dev, st.Ino}
}

// TestSelfInit: only sandy's own pid 1, exec'd from a copy bindSelf made
// and named sandy-init (what makes main run pid1.Main), gets the exec
// fifo; a program at the same path or under the same name does not.
func TestSelfInit(t *testing.T) {
	dir := t.TempDir()
	copyPath, other := filepath.Join(dir, "sandy-init"), filepath.Join(dir, "other", "sandy-init")
	for _, p := range []string{copyPath, other} {
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte("x"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	copies := []fileID{idOf(t, copyPath)}
	tests := []struct {
		name   string
		argv0  string
		path   string
		copies []fileID
		want   bool
	}{
		{"the copy", "/run/sandy-init", copyPath, copies, true},
		{"the copy under another name", "/run/tini", copyPath, copies, false},
		{"another file named sandy-init", "/run/sandy-init", other, copies, false},
		{"no copy made", "/run/sandy-init", copyPath, nil, false},
		{"missing", "/run/sandy-init", filepath.Join(dir, "gone"), copies, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p := &process{p: &specs.Process{Args: []string{tt.argv0, "--", "sh"}}, path: tt.path}
			if got := p.selfInit(tt.copies); got != tt.want {
				t.Errorf("selfInit = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestHandOn: the init writes FifoHandedOn, keeps the fifo's fd open
// across execve (no close-on-exec) and names it first in pid 1's
// arguments.
func TestHandOn(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	p := &process{p: &specs.Process{Args: []string{"/run/sandy-init", "--", "sh", "-c", "x"}}}
	args, err := p.handOn(w)
	if err != nil {
		t.Fatal(err)
	}
	fd := int(w.Fd())
	want := []string{"/run/sandy-init", "--ready-fd=" + strconv.Itoa(fd), "--", "sh", "-c", "x"}
	if !reflect.DeepEqual(args, want) {
		t.Errorf("args %q, want %q", args, want)
	}
	if flags, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0); err != nil || flags&unix.FD_CLOEXEC != 0 {
		t.Errorf("fd flags %#x, %v: want no FD_CLOEXEC", flags, err)
	}
	w.Close()
	var b [2]byte
	if n, _ := r.Read(b[:]); n != 1 || b[0] != FifoHandedOn {
		t.Errorf("the fifo got %v", b[:n])
	}
}
