package inroot

import (
	"errors"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"testing"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	"golang.org/x/sys/unix"
)

// openTree makes, under a fresh directory, the host file "secret" beside
// the root "root", which holds directories, a file, and symlinks that
// point out of the root, at the root's own paths, at a file, and at
// nothing.
func openTree(t *testing.T) (base, root string) {
	t.Helper()
	base = t.TempDir()
	root = filepath.Join(base, "root")
	for _, d := range []string{"etc", "dev", "usr/lib", "run"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.WriteFile(filepath.Join(base, "secret"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(base, "outside"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(root, "etc/file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	for name, target := range map[string]string{
		"lib":        "usr/lib",             // relative, inside
		"abs":        "/usr",                // absolute: the root's /usr
		"out":        "../outside",          // relative, out of the root
		"outabs":     filepath.Dir(root),    // absolute host path
		"etc/shm":    "/run/shm",            // dangling, inside
		"etc/loop":   "loop",                // itself
		"etc/tofile": "file",                // a file
		"dev/fd":     "/proc/self/fd",       // a magic link's parent
		"run/up":     "../../../../outside", // many "..": the root stops them
	} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	return base, root
}

// entries lists everything under dir, as paths relative to it.
func entries(t *testing.T, dir string) []string {
	t.Helper()
	var out []string
	err := filepath.Walk(dir, func(p string, _ os.FileInfo, err error) error {
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(dir, p)
		out = append(out, rel)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	sort.Strings(out)
	return out
}

// outcome says what a lookup did: where its handle is (relative to the
// base, from /proc/self/fd) or which errno it failed with.
func outcome(t *testing.T, base string, f *os.File, err error) string {
	t.Helper()
	if err != nil {
		for _, e := range []unix.Errno{unix.ENOENT, unix.ENOTDIR, unix.ELOOP, unix.EXDEV, unix.EEXIST} {
			if errors.Is(err, e) {
				return "error " + e.Error()
			}
		}
		return "error: " + err.Error()
	}
	defer f.Close()
	real, rerr := os.Readlink("/proc/self/fd/" + strconv.Itoa(int(f.Fd())))
	if rerr != nil {
		t.Fatal(rerr)
	}
	return "at " + strings.TrimPrefix(real, base)
}

var lookups = []string{
	"/", "", ".", "/etc", "etc/", "/etc/file", "/lib", "/lib/x", "/abs/lib", "/out", "/out/x",
	"/outabs", "/outabs/secret", "/../secret", "/etc/../../secret", "/etc/shm", "/etc/shm/a/b",
	"/etc/loop", "/etc/tofile", "/etc/tofile/x", "/etc/file/x", "/dev/fd", "/dev/fd/0", "/run/up",
	"/run/up/x", "/new/a/b", "/new/../b", "/usr/lib/new", "//usr//lib//new2//", "/abs/new/./c",
}

// TestOpenAsPathrs: Open resolves every lookup to the same place as
// pathrs-lite's OpenatInRoot, or fails with the same errno.
func TestOpenAsPathrs(t *testing.T) {
	base, root := openTree(t)
	rf, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	for _, p := range lookups {
		f, err := Open(rf, p)
		got := outcome(t, base, f, err)
		g, err := pathrs.OpenatInRoot(rf, p)
		want := outcome(t, base, g, err)
		if got != want {
			t.Errorf("Open(%q): %s, pathrs: %s", p, got, want)
		}
		if strings.HasPrefix(got, "at ") && !strings.HasPrefix(got, "at /root") {
			t.Errorf("Open(%q) left the root: %s", p, got)
		}
	}
}

// TestMkdirAllAsPathrs: MkdirAll makes the same directories as
// pathrs-lite's MkdirAllHandle, in two copies of the same tree, and its
// handle is in the same place (or it fails with the same errno).
func TestMkdirAllAsPathrs(t *testing.T) {
	for _, p := range lookups {
		baseA, rootA := openTree(t)
		baseB, rootB := openTree(t)
		ra, err := os.OpenFile(rootA, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		rb, err := os.OpenFile(rootB, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			t.Fatal(err)
		}
		f, err := MkdirAll(ra, p, 0o755)
		got := outcome(t, baseA, f, err)
		g, err := pathrs.MkdirAllHandle(rb, p, 0o755)
		want := outcome(t, baseB, g, err)
		if got != want {
			t.Errorf("MkdirAll(%q): %s, pathrs: %s", p, got, want)
		}
		if a, b := strings.Join(entries(t, baseA), " "), strings.Join(entries(t, baseB), " "); a != b {
			t.Errorf("MkdirAll(%q) made\n%s\npathrs made\n%s", p, a, b)
		}
		if _, err := os.Stat(filepath.Join(baseA, "outside/x")); err == nil {
			t.Errorf("MkdirAll(%q) made a directory outside the root", p)
		}
		ra.Close()
		rb.Close()
	}
}

// TestMkdirAllHandle: the handle is a directory opened for reading (as
// pathrs-lite's), so fchdir and getdents work on it, and the mode is
// refused when it has more than permission bits.
func TestMkdirAllHandle(t *testing.T) {
	_, root := openTree(t)
	rf, err := os.OpenFile(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer rf.Close()
	for _, p := range []string{"/etc", "/a/b/c"} {
		f, err := MkdirAll(rf, p, 0o700)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := f.Readdirnames(-1); err != nil {
			t.Errorf("%s: reading the handle: %v", p, err)
		}
		f.Close()
	}
	if fi, err := os.Stat(filepath.Join(root, "a/b")); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("a/b: %v %v, want mode 0700", fi, err)
	}
	if _, err := MkdirAll(rf, "/x", os.ModeSetgid|0o755); err == nil {
		t.Error("a set-gid mode was taken")
	}
}
