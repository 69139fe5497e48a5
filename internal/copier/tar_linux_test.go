//go:build linux

package copier

import (
	"archive/tar"
	"bytes"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// tarOf is testutil.TarStream as a reader.
func tarOf(t *testing.T, hdrs ...tar.Header) *bytes.Buffer {
	return bytes.NewBuffer(testutil.TarStream(t, hdrs...))
}

func openDir(t *testing.T, p string) *os.File {
	t.Helper()
	f, err := os.OpenFile(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { f.Close() })
	return f
}

// sandbox is a root directory inside a directory that stands for the
// host: nothing may appear in host but root.
func sandbox(t *testing.T) (host, root string) {
	host = t.TempDir()
	root = filepath.Join(host, "root")
	if err := os.MkdirAll(filepath.Join(root, "dst"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(host, "shadow"), []byte("HOST SECRET"), 0o600); err != nil {
		t.Fatal(err)
	}
	return host, root
}

func checkHost(t *testing.T, host string) {
	t.Helper()
	ents, err := os.ReadDir(host)
	if err != nil {
		t.Fatal(err)
	}
	for _, e := range ents {
		if e.Name() != "root" && e.Name() != "shadow" {
			t.Errorf("%s appeared outside the root", e.Name())
		}
	}
	if b, _ := os.ReadFile(filepath.Join(host, "shadow")); string(b) != "HOST SECRET" {
		t.Errorf("the host file changed: %q", b)
	}
}

// TestExtractRefuses: what a malicious stream may not do, and that it
// leaves nothing outside the root.
func TestExtractRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		hdrs []tar.Header
		want string
	}{
		{"dotdot", []tar.Header{{Name: "../escape", Typeflag: tar.TypeReg, Linkname: "x"}}, "names with .."},
		{"deep dotdot", []tar.Header{{Name: "a/../../../escape", Typeflag: tar.TypeReg, Linkname: "x"}}, "names with .."},
		{"absolute", []tar.Header{{Name: "/escape", Typeflag: tar.TypeReg, Linkname: "x"}}, "absolute"},
		{"hard link out", []tar.Header{{Name: "l", Typeflag: tar.TypeLink, Linkname: "../../shadow"}}, "names with .."},
		{"hard link absolute", []tar.Header{{Name: "l", Typeflag: tar.TypeLink, Linkname: "/etc/shadow"}}, "absolute"},
		{"hard link not in the stream", []tar.Header{{Name: "l", Typeflag: tar.TypeLink, Linkname: "dst"}}, "not a file earlier in the stream"},
		{"hard link through own symlink", []tar.Header{
			{Name: "s", Typeflag: tar.TypeSymlink, Linkname: "/"},
			{Name: "l", Typeflag: tar.TypeLink, Linkname: "s"},
		}, "not a file earlier in the stream"},
		{"device", []tar.Header{{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}}, "device node"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			host, root := sandbox(t)
			err := Extract(openDir(t, root), "/dst", tarOf(t, tc.hdrs...), ExtractOptions{})
			if err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Errorf("Extract: %v, want an error with %q", err, tc.want)
			}
			checkHost(t, host)
		})
	}
}

// TestExtractContained: symlinks the stream makes, or that the root
// holds, are resolved inside the root; a symlink at a file's name is
// replaced, never written through.
func TestExtractContained(t *testing.T) {
	host, root := sandbox(t)
	// The root's own links, as a hostile image has them.
	for name, target := range map[string]string{"evil": "/", "up": "../../../../..", "hostfile": filepath.Join(host, "shadow")} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	s := tarOf(t,
		tar.Header{Name: "a", Typeflag: tar.TypeSymlink, Linkname: "/"},
		tar.Header{Name: "a/in-root", Typeflag: tar.TypeReg, Linkname: "1"},
		tar.Header{Name: "b", Typeflag: tar.TypeSymlink, Linkname: "../../../../../../.."},
		tar.Header{Name: "b/in-root2", Typeflag: tar.TypeReg, Linkname: "2"},
		tar.Header{Name: "f", Typeflag: tar.TypeReg, Linkname: "3"},
		tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: "f"},
	)
	rootDir := openDir(t, root)
	if err := Extract(rootDir, "/dst", s, ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]string{"in-root": "1", "in-root2": "2", "dst/f": "3", "dst/hard": "3"} {
		if b, err := os.ReadFile(filepath.Join(root, p)); err != nil || string(b) != want {
			t.Errorf("%s: %q, %v; want %q", p, b, err, want)
		}
	}
	// Destinations through the root's links land in it.
	for _, dir := range []string{"/evil", "/up", "/evil/dst"} {
		if err := Extract(rootDir, dir, tarOf(t, tar.Header{Name: "x" + strings.ReplaceAll(dir, "/", "_"), Typeflag: tar.TypeReg, Linkname: "y"}), ExtractOptions{}); err != nil {
			t.Fatalf("into %s: %v", dir, err)
		}
	}
	// A file named as the root's link to a host file replaces the link.
	if err := Extract(rootDir, "/", tarOf(t, tar.Header{Name: "hostfile", Typeflag: tar.TypeReg, Linkname: "replaced"}), ExtractOptions{}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Lstat(filepath.Join(root, "hostfile")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("hostfile: %v, %v; want the symlink replaced by a file", fi, err)
	}
	checkHost(t, host)
}

// TestExtractOverwrite: a directory and a non-directory replace each
// other only with Overwrite.
func TestExtractOverwrite(t *testing.T) {
	_, root := sandbox(t)
	if err := os.WriteFile(filepath.Join(root, "dst", "file"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(root, "dst", "dir", "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	r := openDir(t, root)
	dirOverFile := func() *bytes.Buffer { return tarOf(t, tar.Header{Name: "file", Typeflag: tar.TypeDir, Mode: 0o755}) }
	fileOverDir := func() *bytes.Buffer { return tarOf(t, tar.Header{Name: "dir", Typeflag: tar.TypeReg, Linkname: "f"}) }
	if err := Extract(r, "/dst", dirOverFile(), ExtractOptions{}); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Errorf("a directory over a file: %v", err)
	}
	if err := Extract(r, "/dst", fileOverDir(), ExtractOptions{}); err == nil || !strings.Contains(err.Error(), "--overwrite") {
		t.Errorf("a file over a directory: %v", err)
	}
	if err := Extract(r, "/dst", dirOverFile(), ExtractOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if err := Extract(r, "/dst", fileOverDir(), ExtractOptions{Overwrite: true}); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(filepath.Join(root, "dst", "file")); err != nil || !fi.IsDir() {
		t.Errorf("file: %v %v, want a directory", fi, err)
	}
	if fi, err := os.Stat(filepath.Join(root, "dst", "dir")); err != nil || !fi.Mode().IsRegular() {
		t.Errorf("dir: %v %v, want a file", fi, err)
	}
}

// TestRoundTrip: a tree written by WriteTar and extracted elsewhere, with
// a rename of its top entry, keeps contents, modes, times and symlinks;
// a symlink source is copied as the symlink, SRC/. as its contents.
func TestRoundTrip(t *testing.T) {
	src := t.TempDir()
	tree := filepath.Join(src, "tree")
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(os.MkdirAll(filepath.Join(tree, "sub"), 0o750))
	must(os.WriteFile(filepath.Join(tree, "sub", "x"), []byte("data"), 0o640))
	must(os.Symlink("/etc/passwd", filepath.Join(tree, "link")))
	must(os.Symlink("tree", filepath.Join(src, "tolink")))
	old := time.Date(2001, 2, 3, 4, 5, 6, 7000, time.UTC)
	must(os.Chtimes(filepath.Join(tree, "sub", "x"), old, old))
	must(os.Chtimes(filepath.Join(tree, "sub"), old, old))
	rootF := openDir(t, src)
	copyTo := func(s Source, dst string, tr Transfer) string {
		t.Helper()
		o, err := OpenSource(rootF, s)
		must(err)
		defer o.Close()
		var b bytes.Buffer
		must(o.WriteTar(&b, ArchiveOptions{}))
		must(Extract(openDir(t, dst), "/", &b, ExtractOptions{Rename: tr}))
		return dst
	}
	out := copyTo(ParseSource("/tree"), t.TempDir(), Transfer{From: "tree", To: "copy"})
	if b, err := os.ReadFile(filepath.Join(out, "copy", "sub", "x")); err != nil || string(b) != "data" {
		t.Errorf("copy/sub/x: %q %v", b, err)
	}
	fi, err := os.Stat(filepath.Join(out, "copy", "sub", "x"))
	must(err)
	if fi.Mode().Perm() != 0o640 || !fi.ModTime().Equal(old) {
		t.Errorf("copy/sub/x: mode %v, time %v; want 0640, %v", fi.Mode(), fi.ModTime(), old)
	}
	di, err := os.Stat(filepath.Join(out, "copy", "sub"))
	must(err)
	if di.Mode().Perm() != 0o750 || !di.ModTime().Equal(old) {
		t.Errorf("copy/sub: mode %v, time %v", di.Mode(), di.ModTime())
	}
	if l, err := os.Readlink(filepath.Join(out, "copy", "link")); err != nil || l != "/etc/passwd" {
		t.Errorf("copy/link: %q %v", l, err)
	}
	out = copyTo(ParseSource("/tolink"), t.TempDir(), Transfer{From: "tolink", To: "tolink"})
	if l, err := os.Readlink(filepath.Join(out, "tolink")); err != nil || l != "tree" {
		t.Errorf("a symlink source: %q %v, want the symlink", l, err)
	}
	out = copyTo(ParseSource("/tolink/."), t.TempDir(), Transfer{From: ".", To: "."})
	if _, err := os.Stat(filepath.Join(out, "sub", "x")); err != nil {
		t.Errorf("SRC/. through a symlink: %v", err)
	}
}

// archive is WriteTar of p in the directory src.
func archive(t *testing.T, src, p string) *bytes.Buffer {
	t.Helper()
	o, err := OpenSource(openDir(t, src), ParseSource(p))
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	var b bytes.Buffer
	if err := o.WriteTar(&b, ArchiveOptions{}); err != nil {
		t.Fatal(err)
	}
	return &b
}

// TestRoundTripHardLinks: names of one file stay one file (one inode,
// its data written once in the stream), in the tree and in a subtree;
// a link to a file outside the copied tree is copied as a file.
func TestRoundTripHardLinks(t *testing.T) {
	src := t.TempDir()
	tree := filepath.Join(src, "tree")
	for _, err := range []error{
		os.MkdirAll(filepath.Join(tree, "sub"), 0o755),
		os.WriteFile(filepath.Join(tree, "a"), []byte("shared"), 0o644),
		os.Link(filepath.Join(tree, "a"), filepath.Join(tree, "sub", "b")),
		os.Link(filepath.Join(tree, "a"), filepath.Join(tree, "c")),
		os.WriteFile(filepath.Join(src, "outside"), []byte("out"), 0o644),
		os.Link(filepath.Join(src, "outside"), filepath.Join(tree, "d")),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	b := archive(t, src, "/tree")
	if n := strings.Count(b.String(), "shared"); n != 1 {
		t.Errorf("the shared file's data is %d times in the stream, want once", n)
	}
	out := t.TempDir()
	if err := Extract(openDir(t, out), "/", b, ExtractOptions{Rename: Transfer{From: "tree", To: "copy"}}); err != nil {
		t.Fatal(err)
	}
	ino := func(p string) (uint64, uint64) {
		t.Helper()
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(out, "copy", p), &st); err != nil {
			t.Fatal(err)
		}
		return st.Ino, uint64(st.Nlink) // uint32 on arm64
	}
	a, n := ino("a")
	if bi, _ := ino("sub/b"); bi != a || n != 3 {
		t.Errorf("a and sub/b: inodes %d and %d, %d links; want one inode with 3 links", a, bi, n)
	}
	if ci, _ := ino("c"); ci != a {
		t.Errorf("c is not the same file as a")
	}
	if d, dn := ino("d"); d == a || dn != 1 {
		t.Errorf("d (linked from outside the tree): inode %d, %d links; want its own file", d, dn)
	}
	if got, _ := os.ReadFile(filepath.Join(out, "copy", "sub", "b")); string(got) != "shared" {
		t.Errorf("sub/b: %q", got)
	}
}

// TestRoundTripXattrs: user attributes and file capabilities travel with
// files and directories; overlayfs's own attributes and the others do
// not; an attribute the destination refuses is counted, not fatal.
func TestRoundTripXattrs(t *testing.T) {
	src := t.TempDir()
	tree := filepath.Join(src, "tree")
	f := filepath.Join(tree, "f")
	if err := os.MkdirAll(tree, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(f, []byte("x"), 0o755); err != nil {
		t.Fatal(err)
	}
	// A v2 capability set: cap_net_raw permitted and effective.
	capV2 := []byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	set := map[string][]byte{"user.note": []byte("kept"), "user.overlay.opaque": []byte("y")}
	if os.Geteuid() == 0 {
		set["security.capability"] = capV2
	}
	for k, v := range set {
		if err := unix.Setxattr(f, k, v, 0); err != nil {
			testutil.Skip(t, "the test directory's filesystem refuses the extended attribute %s: %v (tmpfs before Linux 6.6 has no user attributes; set TMPDIR to an ext4 or xfs directory)", k, err)
		}
	}
	if err := unix.Setxattr(tree, "user.dir", []byte("d"), 0); err != nil {
		t.Fatal(err)
	}
	b := archive(t, src, "/tree")
	out := t.TempDir()
	var lost int
	if err := Extract(openDir(t, out), "/", b, ExtractOptions{Rename: Transfer{From: "tree", To: "copy"}, Owners: OwnRoot, XattrsLost: &lost}); err != nil {
		t.Fatal(err)
	}
	get := func(p, name string) string {
		buf := make([]byte, 256)
		n, err := unix.Getxattr(filepath.Join(out, "copy", p), name, buf)
		if err != nil {
			return err.Error()
		}
		return string(buf[:n])
	}
	if v := get("f", "user.note"); v != "kept" {
		t.Errorf("f's user.note: %q", v)
	}
	if v := get(".", "user.dir"); v != "d" {
		t.Errorf("the directory's user.dir: %q", v)
	}
	if v := get("f", "user.overlay.opaque"); v != unix.ENODATA.Error() {
		t.Errorf("f's user.overlay.opaque travelled: %q", v)
	}
	if c, ok := set["security.capability"]; ok {
		if v := get("f", "security.capability"); v != string(c) {
			t.Errorf("f's file capability after the chown: %x, want %x", v, c)
		}
	}
	if lost != 0 {
		t.Errorf("%d attributes lost, want 0", lost)
	}
	// A destination that refuses them: a pipe takes no user attribute.
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	h := &tar.Header{PAXRecords: map[string]string{paxXattr + "user.note": "x", "comment": "not an attribute"}}
	if err := writeXattrs(int(w.Fd()), h, false, &lost); err != nil || lost != 1 {
		t.Errorf("a refused attribute: %v, %d lost; want nil, 1", err, lost)
	}
	// A copy out to the host sets no file capability, even as root.
	fd, err := unix.Open(filepath.Join(out, "copy", "f"), unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(fd)
	_ = unix.Fremovexattr(fd, "security.capability")
	lost = 0
	h = &tar.Header{PAXRecords: map[string]string{paxXattr + "security.capability": string(capV2), paxXattr + "user.other": "o"}}
	if err := writeXattrs(fd, h, true, &lost); err != nil || lost != 1 {
		t.Errorf("user attributes only: %v, %d lost; want nil, 1", err, lost)
	}
	if v := get("f", "security.capability"); v != unix.ENODATA.Error() || get("f", "user.other") != "o" {
		t.Errorf("user attributes only: the capability is %q, user.other %q", v, get("f", "user.other"))
	}
}

// TestExtractDropSetID: a copy out by root clears the set-id bits of
// files (counted), not of directories, and keeps the other mode bits.
func TestExtractDropSetID(t *testing.T) {
	_, root := sandbox(t)
	var n int
	s := tarOf(t, tar.Header{Name: "d/", Typeflag: tar.TypeDir, Mode: 0o2775},
		tar.Header{Name: "d/suid", Typeflag: tar.TypeReg, Mode: 0o4755, Linkname: "x"},
		tar.Header{Name: "d/sgid", Typeflag: tar.TypeReg, Mode: 0o2711, Linkname: "x"},
		tar.Header{Name: "d/plain", Typeflag: tar.TypeReg, Mode: 0o1755, Linkname: "x"})
	if err := Extract(openDir(t, root), "/dst", s, ExtractOptions{DropSetID: true, SetIDDropped: &n}); err != nil {
		t.Fatal(err)
	}
	for p, want := range map[string]uint32{"d": 0o2775, "d/suid": 0o755, "d/sgid": 0o711, "d/plain": 0o1755} {
		var st unix.Stat_t
		if err := unix.Lstat(filepath.Join(root, "dst", p), &st); err != nil {
			t.Fatal(err)
		}
		if st.Mode&0o7777 != want {
			t.Errorf("%s: mode %o, want %o", p, st.Mode&0o7777, want)
		}
	}
	if n != 2 {
		t.Errorf("%d set-id files counted, want 2", n)
	}
}

// TestExtractSkipsDevices: a copy out to the host skips device nodes and
// counts them.
func TestExtractSkipsDevices(t *testing.T) {
	_, root := sandbox(t)
	var n int
	s := tarOf(t, tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3},
		tar.Header{Name: "f", Typeflag: tar.TypeReg, Linkname: "x"})
	if err := Extract(openDir(t, root), "/dst", s, ExtractOptions{SkipDevices: true, Skipped: &n}); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(root, "dst", "null")); !os.IsNotExist(err) || n != 1 {
		t.Errorf("the device: %v, %d skipped; want none made, 1 skipped", err, n)
	}
}
