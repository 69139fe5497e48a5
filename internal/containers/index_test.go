package containers

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/lifecycle"
)

// fakeStore is a store's container directory with containers in it:
// ID/userdata, with sandy's record or (rec nil) none.
type fakeStore struct {
	t   *testing.T
	dir string
	m   Manage
}

func newFakeStore(t *testing.T, flags ...string) *fakeStore {
	t.Helper()
	base := t.TempDir()
	t.Setenv("CONTAINERS_STORAGE_CONF", "")
	t.Setenv("XDG_DATA_HOME", filepath.Join(base, "data"))
	s := &fakeStore{t: t, dir: filepath.Join(base, "graph", "overlay-containers"),
		m: Manage{G: &lifecycle.Global{Root: filepath.Join(base, "state")}, Global: flags}}
	if err := os.MkdirAll(s.dir, 0o700); err != nil {
		t.Fatal(err)
	}
	// The store's own files beside the containers' directories.
	for _, f := range []string{"containers.json", "containers.lock"} {
		if err := os.WriteFile(filepath.Join(s.dir, f), nil, 0o600); err != nil {
			t.Fatal(err)
		}
	}
	return s
}

func (s *fakeStore) add(id string, rec *Record) string {
	s.t.Helper()
	dir := filepath.Join(s.dir, id, "userdata")
	if err := os.MkdirAll(dir, 0o700); err != nil {
		s.t.Fatal(err)
	}
	if rec != nil {
		if err := writeRecord(dir, *rec); err != nil {
			s.t.Fatal(err)
		}
	}
	return dir
}

func id64(prefix string) string { return prefix + strings.Repeat("0", 64-len(prefix)) }

func TestIndexLookup(t *testing.T) {
	s := newFakeStore(t)
	web, db, anon := id64("abc1"), id64("abc2"), id64("def")
	s.add(web, &Record{Name: "web", ImageID: "img", Image: "localhost/bb", Created: time.Unix(1, 0)})
	s.add(db, &Record{Name: "db", ImageID: "img", Image: "localhost/bb"})
	s.add(anon, &Record{ImageID: "img", Image: "localhost/bb"})

	// Unknown store directory: the list decides.
	if _, err := s.m.lookup("web", false); !errors.Is(err, errAskStore) {
		t.Fatalf("before the store is remembered: %v, want errAskStore", err)
	}
	s.m.rememberStore(filepath.Join(s.dir, web, "userdata"))

	for _, tc := range []struct {
		name, ref string
		external  bool
		want      string // id, or "" for errAskStore
	}{
		{"name", "web", false, web},
		{"name with external", "db", true, db},
		{"whole id", anon, false, anon},
		{"unique prefix", "def", false, anon},
		{"ambiguous prefix", "abc", false, ""},
		{"longer prefix", "abc2", true, db},
		{"prefix too short", "de", false, ""},
		{"unknown name", "nosuch", false, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c, err := s.m.lookup(tc.ref, tc.external)
			if tc.want == "" {
				if !errors.Is(err, errAskStore) {
					t.Fatalf("lookup(%q) = %s, %v; want errAskStore", tc.ref, c.ID, err)
				}
				return
			}
			if err != nil || c.ID != tc.want {
				t.Fatalf("lookup(%q) = %q, %v; want %q", tc.ref, c.ID, err, tc.want)
			}
			if c.State != "exited" || c.dir != filepath.Join(s.dir, tc.want, "userdata") || c.Image != "localhost/bb" || c.ImageID != "img" {
				t.Errorf("lookup(%q) = %+v", tc.ref, c)
			}
		})
	}
	if c, _ := s.m.lookup("web", false); len(c.Names) != 1 || c.Names[0] != "web" || !c.Created.Equal(time.Unix(1, 0)) {
		t.Errorf("lookup(web): names %v, created %v", c.Names, c.Created)
	}
}

// TestIndexUnknownNames: a container whose names the index cannot see
// (podman's, without a record; sandy's written before Record.Name) may be
// named by ref, which outranks any prefix: the list decides. A name no
// record carries is the list's too (podman's container).
func TestIndexUnknownNames(t *testing.T) {
	s := newFakeStore(t)
	mine, theirs := id64("aaa1"), id64("bbb1")
	s.m.rememberStore(s.add(mine, &Record{Name: "mine", ImageID: "img"}))
	s.add(theirs, nil) // podman's
	if c, err := s.m.lookup("aaa", false); err != nil || c.ID != mine {
		t.Errorf("prefix among sandy's: %q, %v", c.ID, err)
	}
	if _, err := s.m.lookup("aaa", true); !errors.Is(err, errAskStore) {
		t.Errorf("prefix with podman's containers in the list: %v, want errAskStore", err)
	}
	if _, err := s.m.lookup(theirs, true); !errors.Is(err, errAskStore) {
		t.Errorf("podman's container by id: %v, want errAskStore", err)
	}
	if _, err := s.m.lookup("mine", true); err != nil {
		t.Errorf("a name of sandy's with podman's containers in the list: %v", err)
	}

	old := id64("ccc1")
	s.add(old, &Record{Image: "localhost/bb"}) // before Record.Name
	if _, err := s.m.lookup("aaa", false); !errors.Is(err, errAskStore) {
		t.Errorf("prefix beside an old record: %v, want errAskStore", err)
	}
	if _, err := s.m.lookup(old, false); !errors.Is(err, errAskStore) {
		t.Errorf("an old record by id: %v, want errAskStore", err)
	}
	// The list completes it; then the index answers.
	if err := completeRecord(filepath.Join(s.dir, old, "userdata"), []string{"veteran"}, "img"); err != nil {
		t.Fatal(err)
	}
	if c, err := s.m.lookup("veteran", false); err != nil || c.ID != old {
		t.Errorf("completed old record by name: %q, %v", c.ID, err)
	}
	// completeRecord never overwrites: a rename's name stays.
	if err := completeRecord(filepath.Join(s.dir, old, "userdata"), []string{"stale"}, "other"); err != nil {
		t.Fatal(err)
	}
	if r, _, _ := readRecord(filepath.Join(s.dir, old, "userdata")); r.Name != "veteran" || r.ImageID != "img" {
		t.Errorf("completeRecord overwrote: %+v", r)
	}
}

// TestIndexStale: what the index answers is the record found now: a
// removed container, a renamed one and a reused name each give the
// container the name is on now, never the one it was on.
func TestIndexStale(t *testing.T) {
	s := newFakeStore(t)
	a, b := id64("aa"), id64("bb")
	dirA := s.add(a, &Record{Name: "x", ImageID: "img"})
	s.m.rememberStore(dirA)
	if c, err := s.m.lookup("x", false); err != nil || c.ID != a {
		t.Fatalf("x: %q, %v", c.ID, err)
	}
	// rename x → y: the record changes under its lock.
	if err := updateRecord(dirA, func(r *Record) { r.Name = "y" }); err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.lookup("x", false); !errors.Is(err, errAskStore) {
		t.Errorf("the old name after a rename: %v, want errAskStore", err)
	}
	// A new container takes x.
	s.add(b, &Record{Name: "x", ImageID: "img"})
	if c, err := s.m.lookup("x", false); err != nil || c.ID != b {
		t.Errorf("x after reuse: %q, %v; want %s", c.ID, err, b)
	}
	// rm of b: its directory goes with the record.
	if err := os.RemoveAll(filepath.Join(s.dir, b)); err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.lookup("x", false); !errors.Is(err, errAskStore) {
		t.Errorf("x after rm: %v, want errAskStore", err)
	}
	// Two records with one name (a rename's window): the list decides.
	s.add(b, &Record{Name: "y", ImageID: "img"})
	if _, err := s.m.lookup("y", false); !errors.Is(err, errAskStore) {
		t.Errorf("two records named y: %v, want errAskStore", err)
	}
}

// TestIndexStoreKey: the remembered directory belongs to the store the
// flags and storage.conf select; another store's flags, or an edited
// storage.conf, do not find it (the list decides, and remembers anew).
func TestIndexStoreKey(t *testing.T) {
	s := newFakeStore(t)
	conf := filepath.Join(t.TempDir(), "storage.conf")
	if err := os.WriteFile(conf, []byte("[storage]\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	t.Setenv("CONTAINERS_STORAGE_CONF", conf)
	id := id64("abc")
	s.m.rememberStore(s.add(id, &Record{Name: "web", ImageID: "img"}))
	if _, err := s.m.lookup("web", false); err != nil {
		t.Fatal(err)
	}
	debug := s.m
	debug.Global = []string{"--debug"}
	if _, err := debug.lookup("web", false); err != nil {
		t.Errorf("--debug selects the same store: %v", err)
	}
	other := s.m
	other.Global = []string{"--storage-root=/elsewhere"}
	if _, err := other.lookup("web", false); !errors.Is(err, errAskStore) {
		t.Errorf("another store's flags: %v, want errAskStore", err)
	}
	if err := os.WriteFile(conf, []byte("[storage]\ngraphroot = \"/elsewhere\"\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	if _, err := s.m.lookup("web", false); !errors.Is(err, errAskStore) {
		t.Errorf("after storage.conf changed: %v, want errAskStore", err)
	}
}
