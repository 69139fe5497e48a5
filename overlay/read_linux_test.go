//go:build linux

package overlay

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// tree is one layer directory as spec lines, made in order:
//
//	"etc/"                    a directory
//	"etc/passwd=TEXT"         a regular file
//	"etc/passwd->TARGET"      a symbolic link
//	"etc/passwd!whiteout"     the character device 0/0
//	"etc/passwd!fifo"         a FIFO
//	"etc/passwd!null"         the character device 1/3
//	"etc@NAME=VALUE"          an xattr on an existing entry
type tree []string

func (tr tree) make(t *testing.T, dir string) {
	t.Helper()
	if err := os.MkdirAll(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, line := range tr {
		var err error
		switch {
		case strings.HasSuffix(line, "/"):
			err = os.Mkdir(filepath.Join(dir, line), 0o755)
		case strings.Contains(line, "->"):
			name, target, _ := strings.Cut(line, "->")
			err = os.Symlink(target, filepath.Join(dir, name))
		case strings.Contains(line, "@"):
			name, kv, _ := strings.Cut(line, "@")
			k, v, _ := strings.Cut(kv, "=")
			err = unix.Lsetxattr(filepath.Join(dir, name), k, []byte(v), 0)
		case strings.Contains(line, "!"):
			name, kind, _ := strings.Cut(line, "!")
			p := filepath.Join(dir, name)
			switch kind {
			case "whiteout":
				err = unix.Mknod(p, unix.S_IFCHR|0o600, 0)
			case "fifo":
				err = unix.Mkfifo(p, 0o644)
			case "null":
				err = unix.Mknod(p, unix.S_IFCHR|0o666, int(unix.Mkdev(1, 3)))
			default:
				t.Fatalf("spec %q: unknown kind", line)
			}
		default:
			name, text, _ := strings.Cut(line, "=")
			err = os.WriteFile(filepath.Join(dir, name), []byte(text), 0o644)
		}
		if err != nil {
			t.Fatalf("spec %q: %v", line, err)
		}
	}
}

// Results of ReadFile in the table below.
const (
	missing    = "\x00missing"
	needsMount = "\x00needs a mount"
)

// TestLayersReadFile reads etc/passwd of synthetic layer trees (top
// first; the first is the container's own layer) as an overlay mount
// shows them, and checks every answer it gives against a real mount of
// the same directories: the kernel's overlay, read-only, with all of
// them as lower layers (userxattr unless trusted).
func TestLayersReadFile(t *testing.T) {
	if os.Geteuid() != 0 {
		testutil.Skip(t, "needs root: whiteouts are mknod'ed, trusted xattrs set and the layers mounted to compare")
	}
	const low = "root:x:0:0::/root:/bin/sh\napp:x:1000:1000::/home/app:/bin/sh\n"
	base := tree{"etc/", "etc/passwd=" + low}
	cases := []struct {
		name    string
		layers  []tree
		trusted bool
		aufs    bool // the store's mount program keeps AUFS whiteouts (not mounted here)
		want    string
		why     string // in the NeedsMountError
	}{
		{name: "in the top layer", layers: []tree{{}, {"etc/", "etc/passwd=top\n"}, base}, want: "top\n"},
		{name: "in a lower layer", layers: []tree{{}, {"etc/", "etc/group=g\n"}, base}, want: low},
		{name: "below a layer without the directory", layers: []tree{{}, {"usr/"}, {"etc/"}, base}, want: low},
		{name: "in the container's own layer", layers: []tree{{"etc/", "etc/passwd=mine\n"}, base}, want: "mine\n"},
		{name: "nowhere", layers: []tree{{}, {"etc/"}, {"usr/"}}, want: missing},
		{name: "no etc", layers: []tree{{}, {"usr/"}}, want: missing},
		{name: "whiteout above", layers: []tree{{}, {"etc/", "etc/passwd!whiteout"}, base}, want: missing},
		{name: "whiteout of the directory above", layers: []tree{{}, {"etc!whiteout"}, base}, want: missing},
		{name: "re-created below a whiteout", layers: []tree{{}, {"etc/", "etc/passwd=again\n"}, {"etc/", "etc/passwd!whiteout"}, base}, want: "again\n"},
		{name: "opaque directory above", layers: []tree{{}, {"etc/", "etc@user.overlay.opaque=y", "etc/group=g\n"}, base}, want: missing},
		{name: "in an opaque directory", layers: []tree{{}, {"etc/", "etc@user.overlay.opaque=y", "etc/passwd=opaque\n"}, base}, want: "opaque\n"},
		{name: "opaque below the directory that has it", layers: []tree{{}, {"etc/", "etc/group=g\n"}, {"etc/", "etc@user.overlay.opaque=y"}, base}, want: missing},
		{name: "trusted opaque", layers: []tree{{}, {"etc/", "etc@trusted.overlay.opaque=y"}, base}, trusted: true, want: missing},
		{name: "a non-directory below a directory ends the merge", layers: []tree{{}, {"etc/"}, {"etc=file\n"}, base}, want: missing},
		{name: "a symlink below a directory ends the merge", layers: []tree{{}, {"etc/"}, {"etc->usr"}, {"usr/", "usr/passwd=u\n"}, base}, want: missing},
		{name: "kernel overlay: a .wh. file is a file", layers: []tree{{}, {"etc/", "etc/.wh.passwd="}, base}, want: low},

		{name: "symlinked etc", layers: []tree{{}, {"etc->usr"}, {"usr/", "usr/passwd=u\n"}, base}, want: needsMount, why: "symbolic link"},
		{name: "symlinked passwd", layers: []tree{{}, {"etc/", "etc/passwd->/host/secret"}, base}, want: needsMount, why: "symbolic link"},
		{name: "fifo", layers: []tree{{}, {"etc/", "etc/passwd!fifo"}, base}, want: needsMount, why: "not a regular file"},
		{name: "device", layers: []tree{{}, {"etc/", "etc/passwd!null"}, base}, want: needsMount, why: "not a regular file"},
		{name: "a directory for the file", layers: []tree{{}, {"etc/", "etc/passwd/"}, base}, want: needsMount, why: "not a regular file"},
		{name: "a file for the directory", layers: []tree{{}, {"etc=x\n"}, base}, want: needsMount, why: "not a directory"},
		{name: "too large", layers: []tree{{}, {"etc/", "etc/passwd=" + strings.Repeat("x", 101)}, base}, want: needsMount, why: "larger than 100"},
		{name: "a redirect", layers: []tree{{}, {"etc/", "etc@user.overlay.redirect=/usr"}, base}, want: needsMount, why: "user.overlay.redirect"},
		{name: "an xattr whiteout", layers: []tree{{}, {"etc/", "etc/passwd=", "etc/passwd@user.overlay.whiteout=y"}, base}, want: needsMount, why: "user.overlay.whiteout"},
		{name: "an opaque mark in the other namespace", layers: []tree{{}, {"etc/", "etc@user.overlay.opaque=y"}, base}, trusted: true, want: needsMount, why: "user.overlay.opaque"},

		{name: "aufs whiteout", layers: []tree{{}, {"etc/", "etc/.wh.passwd="}, base}, aufs: true, want: missing},
		{name: "aufs whiteout of the directory", layers: []tree{{}, {".wh.etc="}, base}, aufs: true, want: missing},
		{name: "aufs opaque directory", layers: []tree{{}, {"etc/", "etc/.wh..wh..opq="}, base}, aufs: true, want: missing},
		{name: "aufs: found above its opaque mark", layers: []tree{{}, {"etc/", "etc/.wh..wh..opq=", "etc/passwd=top\n"}, base}, aufs: true, want: "top\n"},
		{name: "aufs: a whiteout and its entry in one layer", layers: []tree{{}, {"etc/", "etc/.wh.passwd=", "etc/passwd=both\n"}, base}, aufs: true, want: needsMount, why: "one layer"},
		{name: "aufs: an opaque xattr", layers: []tree{{}, {"etc/", "etc@user.overlay.opaque=y"}, base}, aufs: true, want: needsMount, why: "user.overlay.opaque"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			root := t.TempDir()
			l := Layers{Driver: DriverOverlay, Trusted: tc.trusted, Work: filepath.Join(root, "work")}
			for i, tr := range tc.layers {
				d := filepath.Join(root, "l"+string(rune('0'+i)), "diff")
				tr.make(t, d)
				if i == 0 {
					l.Upper = d
				} else {
					l.Lowers = append(l.Lowers, d)
				}
			}
			if tc.aufs {
				l.Program = "/usr/bin/fuse-overlayfs"
			}
			got, err := readWithin(t, &l)
			switch {
			case tc.want == needsMount:
				var nm *NeedsMountError
				if !errors.As(err, &nm) || !errors.Is(err, ErrNeedsMount) || !strings.Contains(nm.Why, tc.why) {
					t.Fatalf("got %q, %v; want a NeedsMountError saying %q", got, err, tc.why)
				}
				return
			case tc.want == missing:
				if !errors.Is(err, fs.ErrNotExist) {
					t.Fatalf("got %q, %v; want not found", got, err)
				}
			case err != nil || got != tc.want:
				t.Fatalf("got %q, %v; want %q", got, err, tc.want)
			}
			if !tc.aufs {
				if mounted := readMounted(t, root, &l); mounted != tc.want {
					t.Errorf("the overlay mount shows %q, ReadFile %q", mounted, tc.want)
				}
			}
		})
	}
}

// readWithin calls ReadFile (limit 100), failing if it takes more than a
// few seconds (a FIFO opened for reading would block it).
func readWithin(t *testing.T, l *Layers) (string, error) {
	t.Helper()
	type result struct {
		s   string
		err error
	}
	ch := make(chan result, 1)
	go func() {
		s, err := l.ReadFile("/etc/passwd", 100)
		ch <- result{s, err}
	}()
	select {
	case r := <-ch:
		return r.s, r.err
	case <-time.After(10 * time.Second):
		t.Fatal("ReadFile blocked")
		return "", nil
	}
}

// readMounted mounts l's directories, all as lower layers, read-only,
// and reads etc/passwd there (missing when it does not exist).
func readMounted(t *testing.T, root string, l *Layers) string {
	t.Helper()
	mnt := filepath.Join(root, "merged")
	if err := os.Mkdir(mnt, 0o755); err != nil {
		t.Fatal(err)
	}
	opts := "lowerdir=" + strings.Join(append([]string{l.Upper}, l.Lowers...), ":")
	if !l.Trusted {
		opts += ",userxattr"
	}
	if err := unix.Mount("overlay", mnt, "overlay", unix.MS_RDONLY, opts); err != nil {
		t.Fatalf("mounting overlay %s: %v", opts, err)
	}
	defer func() {
		if err := unix.Unmount(mnt, unix.MNT_DETACH); err != nil {
			t.Errorf("unmounting %s: %v", mnt, err)
		}
	}()
	b, err := os.ReadFile(filepath.Join(mnt, "etc/passwd"))
	if errors.Is(err, fs.ErrNotExist) {
		return missing
	}
	if err != nil {
		t.Fatalf("reading the mount: %v", err)
	}
	return string(b)
}

// TestLayersReadFileRefuses: what ReadFile leaves to a mount before it
// looks at a layer.
func TestLayersReadFileRefuses(t *testing.T) {
	root := t.TempDir()
	diff := filepath.Join(root, "diff")
	tree{"etc/", "etc/passwd=x\n"}.make(t, diff)
	link := filepath.Join(root, "linked")
	if err := os.Symlink(diff, link); err != nil {
		t.Fatal(err)
	}
	ok := Layers{Driver: DriverOverlay, Upper: filepath.Join(root, "upper"), Lowers: []string{diff}}
	if err := os.Mkdir(ok.Upper, 0o755); err != nil {
		t.Fatal(err)
	}
	if got, err := ok.ReadFile("etc/passwd", 100); err != nil || got != "x\n" {
		t.Fatalf("the plain case: %q, %v", got, err)
	}
	for _, tc := range []struct {
		name string
		edit func(l *Layers)
		path string
		why  string
	}{
		{"vfs", func(l *Layers) { l.Driver, l.Lowers = DriverVFS, nil }, "etc/passwd", "vfs"},
		{"id mapping options", func(l *Layers) { l.IDMapOptions = "squash_to_uid=1" }, "etc/passwd", "shifts"},
		{"a layer that is a link", func(l *Layers) { l.Lowers = []string{link} }, "etc/passwd", "opening the layer directory"},
		{"a missing layer", func(l *Layers) { l.Lowers = []string{filepath.Join(root, "gone")} }, "etc/passwd", "opening the layer directory"},
		{"dot-dot", func(*Layers) {}, "etc/../etc/passwd", ".."},
		{"the root", func(*Layers) {}, "/", "root"},
	} {
		l := ok
		tc.edit(&l)
		_, err := l.ReadFile(tc.path, 100)
		var nm *NeedsMountError
		if !errors.As(err, &nm) || !strings.Contains(nm.Why, tc.why) {
			t.Errorf("%s: %v, want a NeedsMountError saying %q", tc.name, err, tc.why)
		}
	}
}

// A volatile overlay's mark in its work directory, left by an overlay
// gone, is removed before the layers are mounted again; none, nothing.
func TestClearVolatile(t *testing.T) {
	work := t.TempDir()
	mark := filepath.Join(work, "work", "incompat", "volatile")
	if err := clearVolatile(work); err != nil {
		t.Fatalf("no mark: %v", err)
	}
	if err := os.MkdirAll(filepath.Join(mark, "inside"), 0o700); err != nil {
		t.Fatal(err)
	}
	if err := clearVolatile(work); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(mark); !os.IsNotExist(err) {
		t.Errorf("the mark is still there: %v", err)
	}
	if _, err := os.Lstat(filepath.Join(work, "work", "incompat")); err != nil {
		t.Errorf("more than the mark was removed: %v", err)
	}
}
