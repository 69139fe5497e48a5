//go:build linux

package initproc

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

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
	must(os.Chmod(filepath.Join(src, "fifo"), 0o640))
	old := time.Date(2001, 2, 3, 4, 5, 6, 0, time.UTC)
	for _, n := range []string{"d/file", "d/e", "d", "fifo"} {
		must(os.Chtimes(filepath.Join(src, n), old, old))
	}
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
	check("fifo", os.ModeNamedPipe|0o640)
	check("escape", os.ModeSymlink|0o777)
	for _, n := range []string{"d/file", "d/e", "d", "fifo"} {
		if fi, err := os.Lstat(filepath.Join(dst, n)); err != nil || !fi.ModTime().Equal(old) {
			t.Errorf("%s: modified %v, want %v (%v)", n, fi.ModTime(), old, err)
		}
	}
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

// TestCopyDirSwappedForSymlink: a volume's first use copies the image's
// directory into a volume another container may already have mounted (it
// started at the same time, and its first use was claimed by this one).
// That container renames a directory the copy just made away and puts a
// symlink to a host file in its place while the copy fills it: the mode
// the copy then gives that directory must not land on the host file,
// which the init (before pivot_root) would reach by the symlink's path.
func TestCopyDirSwappedForSymlink(t *testing.T) {
	src, dst := t.TempDir(), t.TempDir()
	victim := filepath.Join(t.TempDir(), "secret")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.WriteFile(victim, []byte("key"), 0o600))
	must(os.Mkdir(filepath.Join(src, "big"), 0o707))
	for i := range 2000 {
		must(os.WriteFile(filepath.Join(src, "big", fmt.Sprint("f", i)), nil, 0o644))
	}
	sf, err := os.Open(src)
	must(err)
	defer sf.Close()
	df, err := os.Open(dst)
	must(err)
	defer df.Close()

	// The other container: as soon as the copy has begun to fill big.
	swapped := make(chan error, 1)
	go func() {
		deadline := time.Now().Add(10 * time.Second)
		for time.Now().Before(deadline) {
			ents, _ := os.ReadDir(filepath.Join(dst, "big"))
			if len(ents) == 0 {
				continue
			}
			if err := os.Rename(filepath.Join(dst, "big"), filepath.Join(dst, "moved")); err != nil {
				swapped <- err
				return
			}
			swapped <- os.Symlink(victim, filepath.Join(dst, "big"))
			return
		}
		swapped <- errors.New("the copy never began to fill big")
	}()
	err = copyDir(int(sf.Fd()), int(df.Fd()), "/x")
	if serr := <-swapped; serr != nil {
		t.Fatalf("swapping big for a symlink: %v", serr)
	}
	t.Logf("copyDir: %v", err)
	fi, err := os.Stat(victim)
	must(err)
	if fi.Mode().Perm() != 0o600 {
		t.Errorf("the host file the symlink names got mode %v (want 0600 untouched): the copy's chmod followed the symlink", fi.Mode().Perm())
	}
	if l, err := os.Lstat(filepath.Join(dst, "big")); err != nil || l.Mode()&os.ModeSymlink == 0 {
		t.Errorf("the swapped-in symlink: %v, %v", l, err)
	}
}
