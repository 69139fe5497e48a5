package copier

import (
	"errors"
	"path"
	"strings"
	"testing"
)

func TestParseArgs(t *testing.T) {
	for _, tc := range []struct {
		name, src, dst string
		s, d           Location
		err            error
	}{
		{"into", "file", "ctr:/tmp", Location{Path: "file"}, Location{Container: "ctr", Path: "/tmp"}, nil},
		{"out", "ctr:/etc/hosts", ".", Location{Container: "ctr", Path: "/etc/hosts"}, Location{Path: "."}, nil},
		{"stdin", "-", "abc123:/dir", Location{Path: "-"}, Location{Container: "abc123", Path: "/dir"}, nil},
		{"stdout", "c:/x", "-", Location{Container: "c", Path: "/x"}, Location{Path: "-"}, nil},
		{"dot colon is a host path", "./a:b", "c:/", Location{Path: "./a:b"}, Location{Container: "c", Path: "/"}, nil},
		{"slash colon is a host path", "/a:b", "c:/", Location{Path: "/a:b"}, Location{Container: "c", Path: "/"}, nil},
		{"relative container path", "c:etc", "out", Location{Container: "c", Path: "etc"}, Location{Path: "out"}, nil},
		{"two hosts", "a", "b", Location{Path: "a"}, Location{Path: "b"}, ErrNoContainer},
		{"two containers", "a:/x", "b:/y", Location{Container: "a", Path: "/x"}, Location{Container: "b", Path: "/y"}, ErrTwoContainers},
		{"two streams", "-", "-", Location{Path: "-"}, Location{Path: "-"}, ErrNoContainer},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, d, err := ParseArgs(tc.src, tc.dst)
			if !errors.Is(err, tc.err) || s != tc.s || d != tc.d {
				t.Errorf("ParseArgs(%q, %q) = %+v, %+v, %v; want %+v, %+v, %v", tc.src, tc.dst, s, d, err, tc.s, tc.d, tc.err)
			}
		})
	}
	for _, bad := range [][2]string{{"c:", "x"}, {"x", ""}} {
		if _, _, err := ParseArgs(bad[0], bad[1]); err == nil {
			t.Errorf("ParseArgs(%q, %q): no error", bad[0], bad[1])
		}
	}
}

func TestParseSource(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want Source
		tar  string
	}{
		{"/etc/hosts", Source{Path: "/etc/hosts"}, "hosts"},
		{"/etc/", Source{Path: "/etc", Follow: true}, "etc"},
		{"/etc/.", Source{Path: "/etc", Contents: true, Follow: true}, "."},
		{"/", Source{Path: "/", Contents: true, Follow: true}, "."},
		{"/a//b/../c", Source{Path: "/a/c"}, "c"},
	} {
		got := ParseSource(tc.in)
		if got != tc.want || got.TarName() != tc.tar {
			t.Errorf("ParseSource(%q) = %+v (tar name %q), want %+v (%q)", tc.in, got, got.TarName(), tc.want, tc.tar)
		}
	}
}

// TestPlan is docker cp's table (docs.docker.com/reference/cli/docker/container/cp).
func TestPlan(t *testing.T) {
	file := ParseSource("/src/f")
	dir := ParseSource("/src/d")
	contents := ParseSource("/src/d/.")
	none := Info{}
	isDir := Info{Exists: true, IsDir: true}
	isFile := Info{Exists: true}
	for _, tc := range []struct {
		name      string
		src       Source
		srcDir    bool
		dst       string
		d         Info
		overwrite bool
		want      Transfer
		err       bool
	}{
		{"file to new name", file, false, "/x/new", none, false, Transfer{"/x", "f", "new"}, false},
		{"file to missing dir/", file, false, "/x/new/", none, false, Transfer{}, true},
		{"file onto file", file, false, "/x/old", isFile, false, Transfer{"/x", "f", "old"}, false},
		{"file into dir", file, false, "/x", isDir, false, Transfer{"/x", "f", "f"}, false},
		{"file into dir/", file, false, "/x/", isDir, false, Transfer{"/x", "f", "f"}, false},
		{"file onto file/", file, false, "/x/old/", isFile, false, Transfer{}, true},
		{"dir to new name", dir, true, "/x/new", none, false, Transfer{"/x", "d", "new"}, false},
		{"dir to new name/", dir, true, "/x/new/", none, false, Transfer{"/x", "d", "new"}, false},
		{"dir onto file", dir, true, "/x/old", isFile, false, Transfer{}, true},
		{"dir onto file, overwrite", dir, true, "/x/old", isFile, true, Transfer{"/x", "d", "old"}, false},
		{"dir into dir", dir, true, "/x", isDir, false, Transfer{"/x", "d", "d"}, false},
		{"contents into dir", contents, true, "/x", isDir, false, Transfer{"/x", ".", "."}, false},
		{"contents to new name", contents, true, "/x/new", none, false, Transfer{"/x", ".", "new"}, false},
		{"into the root", file, false, "/", isDir, false, Transfer{"/", "f", "f"}, false},
		{"file/ is not a dir", ParseSource("/src/f/"), false, "/x", isDir, false, Transfer{}, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := Plan(tc.src, tc.srcDir, tc.dst, tc.d, tc.overwrite)
			if (err != nil) != tc.err || got != tc.want {
				t.Errorf("Plan = %+v, %v; want %+v, error %v", got, err, tc.want, tc.err)
			}
		})
	}
}

// FuzzCleanName: a name CleanName accepts is relative, clean and never
// climbs: joined to a directory it stays under it.
func FuzzCleanName(f *testing.F) {
	for _, s := range []string{"a", "./a/b", "../x", "/abs", "a/../../b", "a//b/", ".", "..", "a/..", "...", "a\x00b"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, name string) {
		got, err := CleanName(name)
		if err != nil {
			return
		}
		if got == ".." || strings.HasPrefix(got, "../") || strings.HasPrefix(got, "/") {
			t.Fatalf("CleanName(%q) = %q: leaves the directory", name, got)
		}
		if j := path.Join("/dst", got); j != "/dst" && !strings.HasPrefix(j, "/dst/") {
			t.Fatalf("CleanName(%q) = %q: joined, %q", name, got, j)
		}
	})
}

// FuzzParseArgs: exactly one side names a container when there is no
// error, and the other is a host path or "-".
func FuzzParseArgs(f *testing.F) {
	f.Add("a", "c:/x")
	f.Add("c:/x", "-")
	f.Add("./a:b", "c:")
	f.Fuzz(func(t *testing.T, src, dst string) {
		s, d, err := ParseArgs(src, dst)
		if err != nil {
			return
		}
		if (s.Container == "") == (d.Container == "") {
			t.Fatalf("ParseArgs(%q, %q) = %+v, %+v: not exactly one container", src, dst, s, d)
		}
		for _, l := range []Location{s, d} {
			if l.Container != "" && (l.Path == "" || strings.HasPrefix(l.Container, ".") || strings.HasPrefix(l.Container, "/")) {
				t.Fatalf("ParseArgs(%q, %q): %+v", src, dst, l)
			}
		}
	})
}
