//go:build linux

package initproc

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestCopyDir: tmpcopyup's copy keeps types, modes, link targets and
// content, and copies a symlink as a symlink (never what it points at).
func TestCopyDir(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	outside := t.TempDir()
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(src, "d/e"), 0o750))
	must(os.WriteFile(filepath.Join(src, "d/file"), []byte("data"), 0o640))
	must(os.Chmod(filepath.Join(src, "d/file"), os.ModeSetuid|0o750))
	must(os.Symlink(outside, filepath.Join(src, "escape")))
	must(unix.Mkfifo(filepath.Join(src, "fifo"), 0o600))
	sf, err := os.Open(src)
	must(err)
	defer sf.Close()
	df, err := os.Open(dst)
	must(err)
	defer df.Close()
	must(copyDir(int(sf.Fd()), int(df.Fd()), "/x"))

	check := func(name string, mode os.FileMode) {
		t.Helper()
		fi, err := os.Lstat(filepath.Join(dst, name))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode() != mode {
			t.Errorf("%s: mode %v, want %v", name, fi.Mode(), mode)
		}
	}
	check("d", os.ModeDir|0o750)
	check("d/e", os.ModeDir|0o750)
	check("d/file", os.ModeSetuid|0o750)
	check("fifo", os.ModeNamedPipe|0o600)
	check("escape", os.ModeSymlink|0o777)
	if b, _ := os.ReadFile(filepath.Join(dst, "d/file")); string(b) != "data" {
		t.Errorf("content %q", b)
	}
	if l, _ := os.Readlink(filepath.Join(dst, "escape")); l != outside {
		t.Errorf("link %q, want %q", l, outside)
	}
	if ents, _ := os.ReadDir(outside); len(ents) != 0 {
		t.Errorf("the copy followed the symlink: %v", ents)
	}
}
