package state

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/fds"
	"github.com/sandy-rt/sandy/internal/specjson"
)

// Sentinel errors callers match with errors.Is.
var (
	ErrNotExist = errors.New("container does not exist")
	ErrExist    = errors.New("container already exists")
	// ErrNotRunning is a signal to a container whose process has exited
	// (kill without --all). The words are runc's (libcontainer's
	// ErrNotRunning): containerd's shim matches them to take the kill as
	// done ("process already finished"), as it matches "does not exist".
	ErrNotRunning = errors.New("container not running")
)

// Status values of the runtime spec, plus "creating" before the init is ready.
const (
	Creating = "creating"
	Created  = "created"
	Running  = "running"
	Stopped  = "stopped"
	Paused   = "paused"
)

// Container is what sandy records about one container.
type Container struct {
	ID          string            `json:"id"`
	Bundle      string            `json:"bundle"`
	Rootfs      string            `json:"rootfs"`
	Pid         int               `json:"pid,omitempty"`
	PidStart    uint64            `json:"pidStart,omitempty"` // /proc/PID/stat starttime, against pid reuse
	Created     time.Time         `json:"created"`
	Annotations map[string]string `json:"annotations,omitempty"`
	// Owner is the `sandy run` process that deletes the container when it
	// ends; 0 for create/run --detach. A dead owner marks a leftover that
	// the next sandy command collects.
	Owner      int    `json:"owner,omitempty"`
	OwnerStart uint64 `json:"ownerStart,omitempty"`

	UIDMappings []specs.LinuxIDMapping `json:"uidMappings,omitempty"`
	GIDMappings []specs.LinuxIDMapping `json:"gidMappings,omitempty"`
	MapHelpers  bool                   `json:"mapHelpers,omitempty"`
	LayerDir    string                 `json:"layerDir,omitempty"`
	KeepLayer   string                 `json:"keepLayer,omitempty"` // --keep-layer: where upper/ goes on delete
	// LayerTemp is a directory sandy made outside the state root to hold
	// LayerDir, for a container root that cannot reach the state root.
	LayerTemp  string          `json:"layerTemp,omitempty"`
	RootfsMode string          `json:"rootfsMode,omitempty"`
	Cgroup     json.RawMessage `json:"cgroup,omitempty"`
	Network    json.RawMessage `json:"network,omitempty"`
	Hooks      *specs.Hooks    `json:"hooks,omitempty"`
	Paused     bool            `json:"paused,omitempty"`
	// NoSeccomp: created with --no-seccomp; exec'd processes are not
	// filtered either.
	NoSeccomp bool `json:"noSeccomp,omitempty"`
	// NoProcess: config.json has no process; start refuses.
	NoProcess bool `json:"noProcess,omitempty"`
}

// ValidateID rejects ids that are not safe as a single path component:
// 1 to 128 of letters, digits, _ + . -, starting with a letter or digit.
// (A loop, not a regexp: compiling one costs every sandy process, the
// re-exec'd init included, 0.3 ms at start-up.)
func ValidateID(id string) error {
	ok := len(id) >= 1 && len(id) <= 128
	for i := 0; ok && i < len(id); i++ {
		c := id[i]
		alnum := 'a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9'
		ok = alnum || i > 0 && (c == '_' || c == '+' || c == '.' || c == '-')
	}
	if !ok {
		return fmt.Errorf("invalid container id %q (letters, digits, _ + . - only; must start with a letter or digit)", id)
	}
	return nil
}

// Root is an opened state root directory.
type Root struct{ Dir string }

// OpenRoot returns the state root: dir if given, else $XDG_RUNTIME_DIR/sandy,
// else /tmp/sandy-UID. It is created with mode 0700; an existing directory
// must belong to the caller and not be reachable by others.
func OpenRoot(dir string) (*Root, error) {
	if dir == "" {
		dir = DefaultRoot()
	}
	abs, err := filepath.Abs(dir)
	if err != nil {
		return nil, err
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		return nil, fmt.Errorf("creating state root %s: %w", abs, err)
	}
	var st unix.Stat_t
	if err := unix.Lstat(abs, &st); err != nil {
		return nil, fmt.Errorf("state root %s: %w", abs, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("state root %s is not a directory (a symlink?); remove it or pass --root", abs)
	}
	if int(st.Uid) != os.Geteuid() {
		return nil, fmt.Errorf("state root %s belongs to uid %d, not to you (uid %d); pass --root DIR", abs, st.Uid, os.Geteuid())
	}
	if st.Mode&0o077 != 0 && os.Geteuid() != 0 {
		if err := os.Chmod(abs, 0o700); err != nil {
			return nil, fmt.Errorf("state root %s: making it private: %w", abs, err)
		}
	}
	return &Root{Dir: abs}, nil
}

// DefaultRoot is the state root used without --root.
func DefaultRoot() string {
	if x := os.Getenv("XDG_RUNTIME_DIR"); x != "" {
		if fi, err := os.Stat(x); err == nil && fi.IsDir() && unix.Access(x, unix.W_OK) == nil {
			return filepath.Join(x, "sandy")
		}
	}
	if os.Geteuid() == 0 {
		return "/run/sandy"
	}
	return filepath.Join(os.TempDir(), "sandy-"+strconv.Itoa(os.Geteuid()))
}

// Path returns the state directory of id (it may not exist).
func (r *Root) Path(id string) string { return filepath.Join(r.Dir, id) }

// Lock is an exclusive lock on one container's state directory.
type Lock struct{ f *os.File }

// Unlock releases the lock.
func (l *Lock) Unlock() {
	if l != nil && l.f != nil {
		_ = unix.Flock(int(l.f.Fd()), unix.LOCK_UN)
		_ = l.f.Close()
		l.f = nil
	}
}

func lockDir(dir string) (*Lock, error) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking %s: %w", dir, err)
	}
	return &Lock{f: f}, nil
}

// Create makes the state directory of a new container, with c already
// saved in it, and locks it. The directory appears atomically (built under
// a temporary name, then renamed with RENAME_NOREPLACE), so a sandy killed
// at any moment leaves either nothing or a state that names its owner.
func (r *Root) Create(c *Container) (*Lock, error) {
	if err := ValidateID(c.ID); err != nil {
		return nil, err
	}
	// The temporary name carries the creator's pid and start time, so
	// that CollectTemp can tell a create in progress from a dead one.
	tmp, err := os.MkdirTemp(r.Dir, tempPrefix+selfTag()+"-")
	if err != nil {
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	if err := os.Chmod(tmp, 0o700); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	if err := writeState(tmp, c); err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	lock, err := lockDir(tmp)
	if err != nil {
		os.RemoveAll(tmp)
		return nil, err
	}
	if err := unix.Renameat2(unix.AT_FDCWD, tmp, unix.AT_FDCWD, r.Path(c.ID), unix.RENAME_NOREPLACE); err != nil {
		lock.Unlock()
		os.RemoveAll(tmp)
		if errors.Is(err, unix.EEXIST) {
			return nil, fmt.Errorf("container %q: %w", c.ID, ErrExist)
		}
		return nil, fmt.Errorf("creating state dir: %w", err)
	}
	return lock, nil
}

const tempPrefix = ".new-"

// selfTag is "PID.STARTTIME" of this process.
func selfTag() string {
	start, _, _ := ProcStart(os.Getpid())
	return strconv.Itoa(os.Getpid()) + "." + strconv.FormatUint(start, 10)
}

// tempOwnerAlive reports whether the create that made the temporary
// directory name (".new-PID.START-RANDOM") still runs.
func tempOwnerAlive(name string) bool {
	tag, _, ok := strings.Cut(strings.TrimPrefix(name, tempPrefix), "-")
	if !ok {
		return false
	}
	pidS, startS, ok := strings.Cut(tag, ".")
	if !ok {
		return false
	}
	pid, err1 := strconv.Atoi(pidS)
	start, err2 := strconv.ParseUint(startS, 10, 64)
	if err1 != nil || err2 != nil || pid <= 0 {
		return false
	}
	return Alive(pid, start)
}

// locked reports whether another process holds the lock on dir.
func locked(dir string) bool {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return false
	}
	defer f.Close()
	return errors.Is(unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB), unix.EWOULDBLOCK)
}

// CollectTemp removes the temporary directories of creates that died
// before their rename (kill -9): their creator, named in the directory's
// name, is gone. A create in progress is never touched.
func (r *Root) CollectTemp() {
	ents, err := os.ReadDir(r.Dir)
	if err != nil {
		return
	}
	for _, e := range ents {
		if !strings.HasPrefix(e.Name(), tempPrefix) || tempOwnerAlive(e.Name()) {
			continue
		}
		dir := filepath.Join(r.Dir, e.Name())
		if locked(dir) {
			continue // its creator runs where we cannot see its pid
		}
		_ = os.RemoveAll(dir)
	}
}

// retiredPrefix starts the name of a retired state directory (Retire): a
// name no container id can have, so `list`, `state` and a new container of
// the same id never see it.
const retiredPrefix = ".gone-"

// Retire renames the state directory of id, whose lock the caller holds,
// to a hidden name and returns its new path: the id is free at once for a
// new container, and what is left of the old one is removed from the new
// path (by a reaper, or by CollectRetired). The lock moves with the
// directory (flock(2) locks the inode, not the name).
func (r *Root) Retire(id string) (string, error) {
	if err := ValidateID(id); err != nil {
		return "", err
	}
	// Unique, not secret (RENAME_NOREPLACE): math/rand/v2, as
	// lifecycle.NewID says why.
	b := binary.LittleEndian.AppendUint64(nil, rand.Uint64())
	dir := filepath.Join(r.Dir, retiredPrefix+id+"-"+hex.EncodeToString(b[:6]))
	if err := unix.Renameat2(unix.AT_FDCWD, r.Path(id), unix.AT_FDCWD, dir, unix.RENAME_NOREPLACE); err != nil {
		return "", fmt.Errorf("retiring the state of %s: %w", id, err)
	}
	return dir, nil
}

// Retired lists the retired state directories in the root (full paths).
func (r *Root) Retired() []string {
	ents, err := os.ReadDir(r.Dir)
	if err != nil {
		return nil
	}
	var out []string
	for _, e := range ents {
		if e.IsDir() && strings.HasPrefix(e.Name(), retiredPrefix) {
			out = append(out, filepath.Join(r.Dir, e.Name()))
		}
	}
	return out
}

// RetiredPath is the path the container's state had before Retire moved
// it to dir: paths recorded in its state (the layer, the network's files)
// start with it.
func RetiredPath(dir string, c *Container) string {
	return filepath.Join(filepath.Dir(dir), c.ID)
}

// TryLock locks dir (a retired state directory) if no other process holds
// its lock; ok is false when one does, or when dir is gone.
func TryLock(dir string) (l *Lock, ok bool) {
	f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, false
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX|unix.LOCK_NB); err != nil {
		f.Close()
		return nil, false
	}
	return &Lock{f: f}, true
}

// Detach gives up this handle on the lock without unlocking it and returns
// the locked file, for a child process to inherit: the lock is held as
// long as any copy of the file is open, and ends with the last one,
// however its holder ends (kill -9 included). Unlock on a detached Lock
// does nothing; the caller closes the file once the child has it.
func (l *Lock) Detach() *os.File {
	f := l.f
	l.f = nil
	return f
}

// LockFile wraps an inherited locked file (Detach's, in the child).
func LockFile(f *os.File) *Lock { return &Lock{f: f} }

// LoadDir reads the state saved in dir, a retired state directory.
func LoadDir(dir string) (*Container, error) {
	data, err := os.ReadFile(filepath.Join(dir, stateFile))
	if err != nil {
		return nil, err
	}
	var c Container
	if err := specjson.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("state in %s: %w", dir, err)
	}
	return &c, nil
}

// Lock locks the state directory of an existing container.
func (r *Root) Lock(id string) (*Lock, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	l, err := lockDir(r.Path(id))
	if errors.Is(err, fs.ErrNotExist) {
		return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
	}
	return l, err
}

// Holds reports whether r holds state for id: whether its state
// directory exists (a container being created counts). It takes no lock
// and reads nothing, for a caller that only asks whose the id is (Load
// tells no more: it fails with ErrNotExist exactly when the directory is
// missing). Any error but the directory's absence is returned.
func (r *Root) Holds(id string) (bool, error) {
	if err := ValidateID(id); err != nil {
		return false, err
	}
	var st unix.Stat_t
	err := unix.Lstat(r.Path(id), &st)
	if errors.Is(err, unix.ENOENT) {
		return false, nil
	}
	if err != nil {
		return false, fmt.Errorf("container %q: %w", id, err)
	}
	return true, nil
}

const stateFile = "state.json"

// The state file and the saved config are encoded and decoded with
// specjson, whose caches create's process holds already for the spec's
// types (config.json's decode), which the state shares (its hooks and id
// maps): create's collection of leftovers loads every state in the root,
// 0.17 ms against 0.33 with encoding/json (`creating the state`, medians
// of 81 runs), and SaveSpec with encoding/json would cost 0.4 ms of first
// use. In exec's process, where they are the first JSON, the two codecs
// cost the same (0.98-1.06 over four runs of 100 pairs, in noise).

// Save writes c atomically (a temp file renamed over state.json).
func (r *Root) Save(c *Container) error { return writeState(r.Path(c.ID), c) }

func writeState(dir string, c *Container) error {
	data, err := specjson.MarshalIndent(c, "", "  ")
	if err != nil {
		return err
	}
	return writeFileAtomic(dir, stateFile, data)
}

// writeFileAtomic writes dir/name through a temp file and a rename, so a
// reader sees the old or the new content, never a part.
func writeFileAtomic(dir, name string, data []byte) error {
	tmp, err := os.CreateTemp(dir, ".tmp-*")
	if err != nil {
		return fmt.Errorf("saving %s: %w", name, err)
	}
	defer os.Remove(tmp.Name())
	if _, err := tmp.Write(data); err != nil {
		tmp.Close()
		return fmt.Errorf("saving %s: %w", name, err)
	}
	if err := tmp.Close(); err != nil {
		return fmt.Errorf("saving %s: %w", name, err)
	}
	if err := os.Rename(tmp.Name(), filepath.Join(dir, name)); err != nil {
		return fmt.Errorf("saving %s: %w", name, err)
	}
	return nil
}

const specFile = "config.json"

// SaveSpec keeps the config the container was created with (as sandy
// adjusted it), for exec: the bundle may change or go away meanwhile.
func (r *Root) SaveSpec(id string, s *specs.Spec) error {
	data, err := specjson.Marshal(s)
	if err != nil {
		return err
	}
	return writeFileAtomic(r.Path(id), specFile, data)
}

// LoadSpec reads what exec needs of what SaveSpec saved: process and
// linux.seccomp, in a spec that has nothing else. Decoding only those
// types is most of exec's gain: a process's first decode of a whole
// runtime-spec config builds the field lists of every type it meets (on
// this project's 2-core machine 0.7 ms with encoding/json when quiet, 2.3
// at load), of these two 0.11 ms.
func (r *Root) LoadSpec(id string) (*specs.Spec, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(r.Path(id), specFile))
	if err != nil {
		return nil, fmt.Errorf("container %q: reading its saved config: %w", id, err)
	}
	var s struct {
		Process *specs.Process `json:"process"`
		Linux   *struct {
			Seccomp *specs.LinuxSeccomp `json:"seccomp"`
		} `json:"linux"`
	}
	if err := specjson.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("container %q: its saved config: %w", id, err)
	}
	spec := &specs.Spec{Process: s.Process, Linux: &specs.Linux{}}
	if s.Linux != nil {
		spec.Linux.Seccomp = s.Linux.Seccomp
	}
	return spec, nil
}

// Load reads the state of id.
func (r *Root) Load(id string) (*Container, error) {
	if err := ValidateID(id); err != nil {
		return nil, err
	}
	data, err := os.ReadFile(filepath.Join(r.Path(id), stateFile))
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) {
			if _, serr := os.Stat(r.Path(id)); serr == nil {
				// Directory without state: a create that died before saving.
				return &Container{ID: id}, nil
			}
			return nil, fmt.Errorf("container %q: %w", id, ErrNotExist)
		}
		return nil, err
	}
	var c Container
	if err := specjson.Unmarshal(data, &c); err != nil {
		return nil, fmt.Errorf("state of %q: %w", id, err)
	}
	return &c, nil
}

// Remove deletes the state directory of id.
func (r *Root) Remove(id string) error {
	if err := ValidateID(id); err != nil {
		return err
	}
	return os.RemoveAll(r.Path(id))
}

// IDs lists the container ids in the root, sorted.
func (r *Root) IDs() ([]string, error) {
	ents, err := os.ReadDir(r.Dir)
	if err != nil {
		return nil, err
	}
	var ids []string
	for _, e := range ents {
		if e.IsDir() && ValidateID(e.Name()) == nil {
			ids = append(ids, e.Name())
		}
	}
	sort.Strings(ids)
	return ids, nil
}

// FifoPath is the exec fifo the init waits on until `start`.
func (r *Root) FifoPath(id string) string { return filepath.Join(r.Path(id), "exec.fifo") }

// Status reports the runtime-spec status of c. A container with no init
// recorded is creating while the `sandy run` that makes it lives, and
// stopped once that run is dead (killed before its init ran, or before
// it saved the pid: an owned init dies with its owner): nothing will
// come out of it, and delete --force may remove it at once.
func (r *Root) Status(c *Container) string {
	if c.Pid == 0 {
		if c.Owner != 0 && !Alive(c.Owner, c.OwnerStart) {
			return Stopped
		}
		return Creating
	}
	if !Alive(c.Pid, c.PidStart) {
		return Stopped
	}
	if c.Paused {
		return Paused
	}
	if _, err := os.Lstat(r.FifoPath(c.ID)); err == nil {
		return Created
	}
	return Running
}

// Alive reports whether pid runs and is the process that started at start
// (0: don't check), i.e. not a reused pid. A zombie counts as dead.
func Alive(pid int, start uint64) bool {
	st, state, err := ProcStart(pid)
	if err != nil || state == "Z" || state == "X" {
		return false
	}
	return start == 0 || st == start
}

// NSIno is the inode of a namespace file (/proc/PID/ns/KIND), 0 when it
// cannot be read: two processes share the namespace when theirs match.
func NSIno(path string) uint64 {
	var st unix.Stat_t
	if unix.Stat(path, &st) != nil {
		return 0
	}
	return st.Ino
}

// ProcStart returns field 22 (starttime) and field 3 (state) of /proc/PID/stat.
func ProcStart(pid int) (uint64, string, error) {
	data, err := fds.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return 0, "", err
	}
	s := string(data)
	i := strings.LastIndexByte(s, ')')
	if i < 0 {
		return 0, "", fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	f := strings.Fields(s[i+1:])
	if len(f) < 20 {
		return 0, "", fmt.Errorf("parsing /proc/%d/stat", pid)
	}
	v, err := strconv.ParseUint(f[19], 10, 64)
	return v, f[0], err
}

// OCIState is the runtime-spec state of c.
func (r *Root) OCIState(c *Container) specs.State {
	st := specs.State{
		Version:     specs.Version,
		ID:          c.ID,
		Status:      specs.ContainerState(r.Status(c)),
		Bundle:      c.Bundle,
		Annotations: c.Annotations,
	}
	if st.Status != Stopped {
		st.Pid = c.Pid
	}
	return st
}
