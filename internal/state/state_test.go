package state

import (
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestValidateID(t *testing.T) {
	for _, tt := range []struct {
		id string
		ok bool
	}{
		{"abc", true}, {"a.b-c_d+e", true}, {"0", true},
		{"", false}, {".", false}, {"..", false}, {"a/b", false}, {"-x", false}, {".hidden", false},
		{string(make([]byte, 200)), false},
	} {
		if err := ValidateID(tt.id); (err == nil) != tt.ok {
			t.Errorf("ValidateID(%q) = %v, want ok=%v", tt.id, err, tt.ok)
		}
	}
}

func TestOpenRootRefusesSymlinkAndMakesPrivate(t *testing.T) {
	dir := t.TempDir()
	target := filepath.Join(dir, "target")
	_ = os.Mkdir(target, 0o755)
	link := filepath.Join(dir, "link")
	_ = os.Symlink(target, link)
	if _, err := OpenRoot(link); err == nil {
		t.Fatal("a symlinked state root was accepted")
	}
	r, err := OpenRoot(target)
	if err != nil {
		t.Fatal(err)
	}
	fi, _ := os.Stat(r.Dir)
	if os.Geteuid() != 0 && fi.Mode().Perm() != 0o700 {
		t.Fatalf("state root mode %v, want 0700", fi.Mode().Perm())
	}
}

func TestCreateLoadRemove(t *testing.T) {
	r, err := OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	// The owner is this process: alive, so the container is being
	// created (pid 42 was, on a machine where that pid ran).
	c := &Container{ID: "c1", Bundle: "/b", Owner: os.Getpid()}
	lock, err := r.Create(c)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Create(&Container{ID: "c1"}); !errors.Is(err, ErrExist) {
		t.Fatalf("second create: %v, want ErrExist", err)
	}
	lock.Unlock()
	lock.Unlock() // idempotent
	got, err := r.Load("c1")
	if err != nil || got.Bundle != "/b" || got.Owner != os.Getpid() {
		t.Fatalf("Load: %+v, %v", got, err)
	}
	if st := r.Status(got); st != Creating {
		t.Fatalf("status without pid: %s", st)
	}
	got.Pid = os.Getpid()
	got.PidStart, _, _ = ProcStart(os.Getpid())
	if err := r.Save(got); err != nil {
		t.Fatal(err)
	}
	if st := r.Status(got); st != Running {
		t.Fatalf("status of a live pid without fifo: %s", st)
	}
	got.PidStart++ // a reused pid
	if st := r.Status(got); st != Stopped {
		t.Fatalf("status with another start time: %s", st)
	}
	ids, _ := r.IDs()
	if len(ids) != 1 || ids[0] != "c1" {
		t.Fatalf("IDs: %v", ids)
	}
	if err := r.Remove("c1"); err != nil {
		t.Fatal(err)
	}
	if _, err := r.Load("c1"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Load after remove: %v", err)
	}
	if _, err := r.Lock("c1"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Lock after remove: %v", err)
	}
}

// TestCollectTemp: a temporary state directory is removed once its creator
// (named in it) is dead, never while the creator runs or holds its lock.
func TestCollectTemp(t *testing.T) {
	r, err := OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	mine := filepath.Join(r.Dir, tempPrefix+selfTag()+"-1")
	dead := filepath.Join(r.Dir, tempPrefix+"2147483646.1-2") // no such pid
	stale := filepath.Join(r.Dir, tempPrefix+"1.1-3")         // pid 1, another start time
	odd := filepath.Join(r.Dir, tempPrefix+"garbage")
	lockedDead := filepath.Join(r.Dir, tempPrefix+"2147483646.1-4")
	for _, d := range []string{mine, dead, stale, odd, lockedDead} {
		if err := os.Mkdir(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	l, err := lockDir(lockedDead)
	if err != nil {
		t.Fatal(err)
	}
	defer l.Unlock()
	r.CollectTemp()
	for d, want := range map[string]bool{mine: true, dead: false, stale: false, odd: false, lockedDead: true} {
		_, err := os.Stat(d)
		if got := err == nil; got != want {
			t.Errorf("%s: exists %v, want %v", filepath.Base(d), got, want)
		}
	}
}

// FuzzValidateID: the hand-written check accepts exactly what the regexp
// it replaced accepts.
func FuzzValidateID(f *testing.F) {
	re := regexp.MustCompile(`^[A-Za-z0-9][A-Za-z0-9_+.-]{0,127}$`)
	for _, s := range []string{"abc", "a.b-c_d+e", "", ".", "-x", "a/b", "é", strings.Repeat("a", 128), strings.Repeat("a", 129)} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, id string) {
		if got, want := ValidateID(id) == nil, re.MatchString(id); got != want {
			t.Fatalf("ValidateID(%q) ok=%v, regexp says %v", id, got, want)
		}
	})
}

// TestRetire: a retired state directory frees its id at once (a new
// container of that id can be created, the old one is neither listed nor
// loaded), keeps its lock, and is found by Retired with its state.
func TestRetire(t *testing.T) {
	r, err := OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lock, err := r.Create(&Container{ID: "c1", Bundle: "/old", LayerDir: filepath.Join(r.Dir, "c1", "layer")})
	if err != nil {
		t.Fatal(err)
	}
	dir, err := r.Retire("c1")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := r.Load("c1"); !errors.Is(err, ErrNotExist) {
		t.Fatalf("Load of a retired id: %v, want ErrNotExist", err)
	}
	if ids, _ := r.IDs(); len(ids) != 0 {
		t.Fatalf("IDs lists a retired directory: %v", ids)
	}
	newLock, err := r.Create(&Container{ID: "c1", Bundle: "/new"})
	if err != nil {
		t.Fatalf("creating the id again at once: %v", err)
	}
	newLock.Unlock()
	if got := r.Retired(); len(got) != 1 || got[0] != dir {
		t.Fatalf("Retired: %v, want [%s]", got, dir)
	}
	if _, ok := TryLock(dir); ok {
		t.Fatal("TryLock took the lock of a retired directory its retirer still holds")
	}
	// Detached, the lock stays held as long as a copy of the file is open.
	f := lock.Detach()
	lock.Unlock() // a no-op now
	if _, ok := TryLock(dir); ok {
		t.Fatal("Unlock of a detached lock released it")
	}
	f.Close()
	l, ok := TryLock(dir)
	if !ok {
		t.Fatal("TryLock failed once the lock's last holder closed it")
	}
	defer l.Unlock()
	c, err := LoadDir(dir)
	if err != nil || c.Bundle != "/old" {
		t.Fatalf("LoadDir: %+v, %v", c, err)
	}
	if got, want := RetiredPath(dir, c), r.Path("c1"); got != want {
		t.Fatalf("RetiredPath: %s, want %s", got, want)
	}
	if c2, _ := r.Load("c1"); c2 == nil || c2.Bundle != "/new" {
		t.Fatalf("the new container's state: %+v", c2)
	}
}

// TestSaveLoadSpec: exec gets back the saved process and seccomp profile
// (and a non-nil linux without one).
func TestSaveLoadSpec(t *testing.T) {
	r, err := OpenRoot(t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	lock, err := r.Create(&Container{ID: "c1"})
	if err != nil {
		t.Fatal(err)
	}
	defer lock.Unlock()
	umask := uint32(0o22)
	s := &specs.Spec{
		Process: &specs.Process{Args: []string{"sh"}, Cwd: "/w", User: specs.User{UID: 7, Umask: &umask}, Env: []string{"A=1"}},
		Mounts:  []specs.Mount{{Destination: "/m"}},
		Linux:   &specs.Linux{Seccomp: &specs.LinuxSeccomp{DefaultAction: specs.ActErrno}, MaskedPaths: []string{"/x"}},
	}
	for _, c := range []struct {
		name    string
		seccomp *specs.LinuxSeccomp
	}{{"with seccomp", s.Linux.Seccomp}, {"without", nil}} {
		s.Linux.Seccomp = c.seccomp
		if err := r.SaveSpec("c1", s); err != nil {
			t.Fatal(err)
		}
		got, err := r.LoadSpec("c1")
		if err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got.Process, s.Process) || got.Linux == nil || !reflect.DeepEqual(got.Linux.Seccomp, c.seccomp) {
			t.Errorf("%s: got process %+v, linux %+v", c.name, got.Process, got.Linux)
		}
	}
}

// TestHolds: Holds agrees with Load on whether the root holds an id (a
// directory without state.json, a create that died before saving, counts)
// and fails on an invalid id, as Lock and Load do.
func TestHolds(t *testing.T) {
	r, err := OpenRoot(filepath.Join(t.TempDir(), "root"))
	if err != nil {
		t.Fatal(err)
	}
	lock, err := r.Create(&Container{ID: "saved", Pid: 1})
	if err != nil {
		t.Fatal(err)
	}
	lock.Unlock()
	if err := os.Mkdir(r.Path("creating"), 0o700); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		id   string
		want bool
	}{{"saved", true}, {"creating", true}, {"absent", false}} {
		got, err := r.Holds(tt.id)
		if err != nil || got != tt.want {
			t.Errorf("Holds(%q) = %v, %v; want %v", tt.id, got, err, tt.want)
		}
		_, lerr := r.Load(tt.id)
		if absent := errors.Is(lerr, ErrNotExist); absent == tt.want {
			t.Errorf("Load(%q) = %v, but Holds says %v", tt.id, lerr, got)
		}
	}
	if _, err := r.Holds("../x"); err == nil {
		t.Error("Holds accepted an invalid id")
	}
}

// TestStatusOfDeadOwner: a container with no init recorded is creating
// while its owner (the `sandy run` making it) lives, and stopped once the
// owner is dead; one without an owner (create) stays creating.
func TestStatusOfDeadOwner(t *testing.T) {
	r := &Root{Dir: t.TempDir()}
	start, _, err := ProcStart(os.Getpid())
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name string
		c    Container
		want string
	}{
		{"owner alive", Container{ID: "a", Owner: os.Getpid(), OwnerStart: start}, Creating},
		{"owner dead (its pid reused)", Container{ID: "b", Owner: os.Getpid(), OwnerStart: start + 1}, Stopped},
		{"no owner", Container{ID: "c"}, Creating},
	} {
		if got := r.Status(&tc.c); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
}
