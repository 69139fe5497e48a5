//go:build linux

package volumes

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"
)

func newStore(t *testing.T) *Store {
	t.Helper()
	s, err := Open(filepath.Join(t.TempDir(), "volumes"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestValidName(t *testing.T) {
	for _, tc := range []struct {
		name string
		ok   bool
	}{
		{"data", true}, {"a", true}, {"A0_b.c-d", true}, {"0", true},
		{"", false}, {".", false}, {"..", false}, {".lock", false}, {"-x", false}, {"_x", false},
		{"a/b", false}, {"../x", false}, {"a b", false}, {"a:b", false}, {"é", false},
		{strings.Repeat("a", 200), true}, {strings.Repeat("a", 256), false},
	} {
		err := ValidName(tc.name)
		if (err == nil) != tc.ok {
			t.Errorf("ValidName(%q) = %v, want ok=%v", tc.name, err, tc.ok)
		}
		if err != nil && !errors.Is(err, ErrInvalidName) {
			t.Errorf("ValidName(%q) = %v, want ErrInvalidName", tc.name, err)
		}
	}
}

func TestCreateRecord(t *testing.T) {
	s := newStore(t)
	at := time.Date(2026, 1, 2, 3, 4, 5, 6, time.UTC)
	s.Now = func() time.Time { return at }
	v, err := s.Create("data", CreateOptions{Labels: map[string]string{"a": "b", "c": ""}})
	if err != nil {
		t.Fatal(err)
	}
	want := filepath.Join(s.Root(), "data", "_data")
	if v.Mountpoint != want || v.Source() != want {
		t.Errorf("Mountpoint %q, Source %q, want %q", v.Mountpoint, v.Source(), want)
	}
	fi, err := os.Lstat(want)
	if err != nil || !fi.IsDir() || fi.Mode().Perm() != 0o755 {
		t.Fatalf("_data: %v, %v", fi, err)
	}
	if fi, _ := os.Lstat(filepath.Dir(want)); fi.Mode().Perm() != 0o700 {
		t.Errorf("volume directory mode %v, want 0700", fi.Mode().Perm())
	}
	data, err := os.ReadFile(filepath.Join(s.Root(), "data", recordName))
	if err != nil {
		t.Fatal(err)
	}
	var rec map[string]any
	if err := json.Unmarshal(data, &rec); err != nil {
		t.Fatal(err)
	}
	if rec["name"] != "data" || rec["driver"] != "local" || rec["created_at"] != "2026-01-02T03:04:05.000000006Z" || rec["needs_copy_up"] != true {
		t.Errorf("record: %s", data)
	}
	// Nothing but the volume and the lock: no staging or temporary file.
	ents, _ := os.ReadDir(s.Root())
	var names []string
	for _, e := range ents {
		names = append(names, e.Name())
	}
	if strings.Join(names, " ") != ".lock data" {
		t.Errorf("root holds %v", names)
	}
	ents, _ = os.ReadDir(filepath.Dir(want))
	if len(ents) != 2 {
		t.Errorf("volume directory holds %d entries, want _data and %s", len(ents), recordName)
	}
	got, err := s.Get("data")
	if err != nil {
		t.Fatal(err)
	}
	if got.Labels["a"] != "b" || !got.CreatedAt.Equal(at) || got.Anonymous || got.Mountpoint != want {
		t.Errorf("Get: %+v", got)
	}
}

func TestCreateExisting(t *testing.T) {
	s := newStore(t)
	if _, err := s.Create("x", CreateOptions{Labels: map[string]string{"first": ""}}); err != nil {
		t.Fatal(err)
	}
	_, err := s.Create("x", CreateOptions{})
	if !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), "volume with name x already exists") {
		t.Errorf("second create: %v, want ErrExists naming x", err)
	}
	v, err := s.Create("x", CreateOptions{Ignore: true, Labels: map[string]string{"second": ""}})
	if err != nil {
		t.Fatalf("--ignore: %v", err)
	}
	if _, ok := v.Labels["first"]; !ok {
		t.Errorf("--ignore returned %+v, want the existing volume", v)
	}
}

// Two `volume create x` at once: exactly one wins, every other one gets
// ErrExists naming x, and x is whole.
func TestCreateConcurrent(t *testing.T) {
	s := newStore(t)
	const n = 16
	var wg sync.WaitGroup
	errs := make([]error, n)
	start := make(chan struct{})
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			// Its own Store value, as another process would have.
			s2 := &Store{root: s.Root()}
			<-start
			_, errs[i] = s2.Create("x", CreateOptions{Labels: map[string]string{"by": fmt.Sprint(i)}})
		}()
	}
	close(start)
	wg.Wait()
	won := 0
	for _, err := range errs {
		switch {
		case err == nil:
			won++
		case !errors.Is(err, ErrExists) || !strings.Contains(err.Error(), " x "):
			t.Errorf("loser: %v, want ErrExists naming x", err)
		}
	}
	if won != 1 {
		t.Fatalf("%d creations won, want 1", won)
	}
	vols, err := s.List(nil)
	if err != nil || len(vols) != 1 || vols[0].Name != "x" {
		t.Fatalf("List: %v, %v", vols, err)
	}
}

func TestResolve(t *testing.T) {
	s := newStore(t)
	v, err := s.Resolve("cache")
	if err != nil {
		t.Fatal(err)
	}
	again, err := s.Resolve("cache")
	if err != nil || !again.CreatedAt.Equal(v.CreatedAt) {
		t.Fatalf("second Resolve: %+v, %v", again, err)
	}
	anon, err := s.Resolve("")
	if err != nil {
		t.Fatal(err)
	}
	if !regexp.MustCompile(`^[0-9a-f]{64}$`).MatchString(anon.Name) || !anon.Anonymous {
		t.Errorf("anonymous volume %+v", anon)
	}
	if _, err := s.Resolve("../etc"); !errors.Is(err, ErrInvalidName) {
		t.Errorf("Resolve(../etc): %v, want ErrInvalidName", err)
	}
}

func TestRemove(t *testing.T) {
	s := newStore(t)
	v, _ := s.Create("x", CreateOptions{})
	if err := os.MkdirAll(filepath.Join(v.Mountpoint, "a", "b"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(v.Mountpoint, "a", "b", "f"), []byte("x"), 0o444); err != nil {
		t.Fatal(err)
	}
	// A symlink the container left pointing out: removal must not follow it.
	outside := filepath.Join(t.TempDir(), "keep")
	if err := os.WriteFile(outside, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Dir(outside), filepath.Join(v.Mountpoint, "out")); err != nil {
		t.Fatal(err)
	}
	if err := s.Remove("x", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Lstat(filepath.Join(s.Root(), "x")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("volume directory left: %v", err)
	}
	if _, err := os.Stat(outside); err != nil {
		t.Errorf("a file the volume's symlink pointed at is gone: %v", err)
	}
	if err := s.Remove("x", false); !errors.Is(err, ErrNotFound) {
		t.Errorf("second Remove: %v, want ErrNotFound", err)
	}
	ents, _ := os.ReadDir(s.Root())
	if len(ents) != 1 {
		t.Errorf("root holds %d entries after removal, want only the lock", len(ents))
	}
}

func TestRemoveBindKeepsDevice(t *testing.T) {
	s := newStore(t)
	dev := t.TempDir()
	if err := os.WriteFile(filepath.Join(dev, "precious"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	v, err := s.Create("b", CreateOptions{Options: map[string]string{"type": "none", "o": "bind", "device": dev}})
	if err != nil {
		t.Fatal(err)
	}
	if v.Source() != dev {
		t.Errorf("Source %q, want the device %q", v.Source(), dev)
	}
	if err := s.Remove("b", false); err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(dev, "precious")); err != nil {
		t.Errorf("removing a bind volume touched its device: %v", err)
	}
}

func TestRemoveInUse(t *testing.T) {
	s := newStore(t)
	s.InUse = func(name string) ([]string, error) {
		if name == "used" {
			return []string{"c1", "c2"}, nil
		}
		return nil, nil
	}
	for _, n := range []string{"used", "free"} {
		if _, err := s.Create(n, CreateOptions{}); err != nil {
			t.Fatal(err)
		}
	}
	err := s.Remove("used", false)
	if !errors.Is(err, ErrInUse) || !strings.Contains(err.Error(), "c1, c2") {
		t.Errorf("Remove(used): %v, want ErrInUse naming c1, c2", err)
	}
	if err := s.Remove("used", true); !errors.Is(err, ErrInUse) {
		t.Errorf("Remove(used, force) without RemoveContainers: %v, want ErrInUse", err)
	}
	var removed []string
	s.RemoveContainers = func(ids []string) error { removed = ids; return nil }
	if err := s.Remove("used", true); err != nil || strings.Join(removed, ",") != "c1,c2" {
		t.Errorf("Remove(used, force): %v, removed %v", err, removed)
	}
	if _, err := s.Get("free"); err != nil {
		t.Errorf("free: %v", err)
	}
}

func TestPrune(t *testing.T) {
	s := newStore(t)
	s.InUse = func(name string) ([]string, error) {
		if name == "used" {
			return []string{"c1"}, nil
		}
		return nil, nil
	}
	for _, n := range []string{"used", "a", "b"} {
		if _, err := s.Create(n, CreateOptions{Labels: map[string]string{"n": n}}); err != nil {
			t.Fatal(err)
		}
	}
	// What a creation killed half-way leaves.
	if err := os.MkdirAll(filepath.Join(s.Root(), createPfx+"dead", "_data"), 0o755); err != nil {
		t.Fatal(err)
	}
	f, _ := ParseFilters([]string{"label!=n=b"}, time.Now())
	names, err := s.Prune(f)
	if err != nil || strings.Join(names, ",") != "a" {
		t.Fatalf("Prune(label!=n=b): %v, %v; want [a]", names, err)
	}
	names, err = s.Prune(nil)
	if err != nil || strings.Join(names, ",") != "b" {
		t.Fatalf("Prune: %v, %v; want [b]", names, err)
	}
	ents, _ := os.ReadDir(s.Root())
	var left []string
	for _, e := range ents {
		left = append(left, e.Name())
	}
	if strings.Join(left, " ") != ".lock used" {
		t.Errorf("root holds %v after prune, want .lock used", left)
	}
}

// Names never leave the root, and a symlink planted where a volume or its
// record should be is never followed.
func TestPathSafety(t *testing.T) {
	s := newStore(t)
	elsewhere := t.TempDir()
	// A complete, valid-looking volume outside the root.
	if err := os.MkdirAll(filepath.Join(elsewhere, "evil", "_data"), 0o755); err != nil {
		t.Fatal(err)
	}
	rec := `{"name":"evil","driver":"local","created_at":"2026-01-01T00:00:00Z"}`
	if err := os.WriteFile(filepath.Join(elsewhere, "evil", recordName), []byte(rec), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(elsewhere, "evil"), filepath.Join(s.Root(), "evil")); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("evil"); err == nil || errors.Is(err, ErrNotFound) {
		t.Errorf("Get through a symlinked volume directory: %v, want a refusal", err)
	}
	if err := s.Remove("evil", true); err == nil {
		t.Error("Remove through a symlinked volume directory succeeded")
	}
	if _, err := os.Stat(filepath.Join(elsewhere, "evil", recordName)); err != nil {
		t.Errorf("the symlink's target was touched: %v", err)
	}
	// A record that is a symlink to a record elsewhere.
	v, _ := s.Create("rec", CreateOptions{})
	recPath := filepath.Join(filepath.Dir(v.Mountpoint), recordName)
	if err := os.Remove(recPath); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink(filepath.Join(elsewhere, "evil", recordName), recPath); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Get("rec"); err == nil {
		t.Error("Get read a record through a symlink")
	}
	// _data replaced by a symlink: Get refuses, so nothing mounts it.
	v2, _ := s.Create("data", CreateOptions{})
	if err := os.Remove(v2.Mountpoint); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("/etc", v2.Mountpoint); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Resolve("data"); err == nil {
		t.Error("Resolve returned a volume whose _data is a symlink")
	}
	for _, name := range []string{"..", "../x", "a/../..", "/etc", ".lock", ""} {
		if _, err := s.Get(name); !errors.Is(err, ErrNotFound) {
			t.Errorf("Get(%q): %v, want ErrNotFound", name, err)
		}
		if err := s.Remove(name, true); !errors.Is(err, ErrNotFound) {
			t.Errorf("Remove(%q): %v, want ErrNotFound", name, err)
		}
	}
	if _, err := os.Stat(s.Root()); err != nil {
		t.Errorf("root: %v", err)
	}
	if _, err := os.Stat(elsewhere); err != nil {
		t.Errorf("elsewhere: %v", err)
	}
}

func TestListSkipsStoreEntries(t *testing.T) {
	s := newStore(t)
	if _, err := s.Create("v", CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	for _, d := range []string{createPfx + "abc", removePfx + "old"} {
		if err := os.MkdirAll(filepath.Join(s.Root(), d), 0o700); err != nil {
			t.Fatal(err)
		}
	}
	vols, err := s.List(nil)
	if err != nil || len(vols) != 1 || vols[0].Name != "v" {
		t.Errorf("List: %v, %v", vols, err)
	}
}

func TestDefaultRoot(t *testing.T) {
	for _, tc := range []struct {
		euid int
		env  map[string]string
		want string
	}{
		{0, map[string]string{"HOME": "/root"}, "/var/lib/sandy/volumes"},
		{1000, map[string]string{"XDG_DATA_HOME": "/x/data", "HOME": "/home/u"}, "/x/data/sandy/volumes"},
		{1000, map[string]string{"XDG_DATA_HOME": "rel", "HOME": "/home/u"}, "/home/u/.local/share/sandy/volumes"},
		{1000, map[string]string{"HOME": "/home/u"}, "/home/u/.local/share/sandy/volumes"},
		{1000, nil, ""},
	} {
		got, err := defaultRoot(tc.euid, func(k string) string { return tc.env[k] })
		if got != tc.want || (err == nil) != (tc.want != "") {
			t.Errorf("defaultRoot(%d, %v) = %q, %v; want %q", tc.euid, tc.env, got, err, tc.want)
		}
	}
}

// TestFirstUse: a fresh volume's first use is claimed once, whatever the
// number of containers starting at the same time; nocopy volumes are
// chowned but not filled, and bind volumes (the user's own directory)
// neither.
func TestFirstUse(t *testing.T) {
	s := newStore(t)
	if _, err := s.Create("fresh", CreateOptions{}); err != nil {
		t.Fatal(err)
	}
	const n = 8
	type claim struct{ copyUp, chown bool }
	claims := make([]claim, n)
	errs := make([]error, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s2 := &Store{root: s.Root()}
			claims[i].copyUp, claims[i].chown, errs[i] = s2.FirstUse("fresh")
		}()
	}
	wg.Wait()
	won := 0
	for i, c := range claims {
		if errs[i] != nil {
			t.Fatal(errs[i])
		}
		switch c {
		case claim{true, true}:
			won++
		case claim{}:
		default:
			t.Errorf("claim %+v: want all or nothing", c)
		}
	}
	if won != 1 {
		t.Errorf("%d containers claimed the first use, want 1", won)
	}
	v, err := s.Get("fresh")
	if err != nil || v.NeedsCopyUp || v.NeedsChown {
		t.Errorf("after the first use: %+v, %v", v, err)
	}

	if _, err := s.Create("nocopy", CreateOptions{Options: map[string]string{"o": "nocopy"}}); err != nil {
		t.Fatal(err)
	}
	if cu, ch, err := s.FirstUse("nocopy"); err != nil || cu || !ch {
		t.Errorf("nocopy: copy-up %v, chown %v, %v; want chown only", cu, ch, err)
	}
	dev := t.TempDir()
	if _, err := s.Create("bind", CreateOptions{Options: map[string]string{"type": "none", "o": "bind", "device": dev}}); err != nil {
		t.Fatal(err)
	}
	if cu, ch, err := s.FirstUse("bind"); err != nil || cu || ch {
		t.Errorf("bind volume: copy-up %v, chown %v, %v; want neither", cu, ch, err)
	}
	if _, _, err := s.FirstUse("missing"); !errors.Is(err, ErrNotFound) {
		t.Errorf("missing volume: %v", err)
	}
}
