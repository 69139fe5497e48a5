//go:build linux

package volumes

import (
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math/rand/v2"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/overlay"
)

const (
	recordName = "volume.json" // the record, beside _data in <root>/<name>
	dataName   = "_data"       // the directory containers mount
	lockName   = ".lock"       // flock(2)ed by every change to the store
	createPfx  = ".create-"    // a volume being made, renamed to its name when whole
	removePfx  = ".remove-"    // a volume being removed, renamed away from its name first
	maxRecord  = 1 << 20
)

// MatchesNameRule reports whether name follows podman's volume name rule
// (libpod/define.NameRegex, [a-zA-Z0-9][a-zA-Z0-9_.-]*); the first
// character excludes ".", so no name is "..", hidden, or one of the
// store's own entries. No regexp: this package is linked into sandy,
// whose start-up (the container's init too) does no package-level work.
func MatchesNameRule(name string) bool {
	for i, c := range name {
		alnum := c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9'
		if !alnum && (i == 0 || (c != '_' && c != '.' && c != '-')) {
			return false
		}
	}
	return name != ""
}

// ValidName checks a volume name against podman's rule.
func ValidName(name string) error {
	if !MatchesNameRule(name) {
		return fmt.Errorf("volume name %q: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*: %w", name, ErrInvalidName)
	}
	if len(name) > 255-len(removePfx) {
		return fmt.Errorf("volume name %q: longer than %d bytes: %w", name[:16]+"...", 255-len(removePfx), ErrInvalidName)
	}
	return nil
}

// Volume is one volume's record, as stored in <root>/<name>/volume.json.
type Volume struct {
	Name      string            `json:"name"`
	Driver    string            `json:"driver"`
	Labels    map[string]string `json:"labels"`
	Options   map[string]string `json:"options"`
	CreatedAt time.Time         `json:"created_at"`
	// Anonymous is set for the volumes of -v /dst (Resolve("")).
	Anonymous bool `json:"anonymous,omitempty"`
	// NeedsCopyUp and NeedsChown are podman's: on first use the image's
	// content at the mount point is copied in (not with --opt nocopy), and
	// the volume takes the owner and mode of that directory, or the
	// container user's when the image has none there (not for a bind
	// volume: its directory is the user's own). FirstUse claims them.
	NeedsCopyUp bool `json:"needs_copy_up,omitempty"`
	NeedsChown  bool `json:"needs_chown,omitempty"`

	// Mountpoint is <root>/<name>/_data (not stored).
	Mountpoint string `json:"-"`
	source     string
}

// Source is the host directory a container binds for this volume: the
// device of a bind volume (--opt type=none,o=bind,device=DIR), else
// Mountpoint.
func (v *Volume) Source() string {
	if v.source != "" {
		return v.source
	}
	return v.Mountpoint
}

// Store holds the volumes under one directory, <root>/<name>/{volume.json,
// _data}. Its zero hooks mean: no container uses any volume.
type Store struct {
	root string
	// InUse names the containers using the volume; nil: none does.
	InUse func(name string) ([]string, error)
	// RemoveContainers removes containers (rm --force of a volume in use);
	// nil: a volume in use is never removed.
	RemoveContainers func(ids []string) error
	// RemoveForeign removes a directory holding entries owned by the
	// user's subordinate ids (files a non-root container user wrote), from
	// inside a user namespace with the container's maps; nil: such a
	// directory is left, and the error says so.
	RemoveForeign func(dir string) error
	// Now is the clock (tests set it); nil: time.Now.
	Now func() time.Time
}

// DefaultRoot is sandy's own volume directory (not podman's
// <graphroot>/volumes, which podman tracks in its database):
// /var/lib/sandy/volumes for root, else
// ${XDG_DATA_HOME:-$HOME/.local/share}/sandy/volumes.
func DefaultRoot() (string, error) { return defaultRoot(os.Geteuid(), os.Getenv) }

func defaultRoot(euid int, getenv func(string) string) (string, error) {
	if euid == 0 {
		return "/var/lib/sandy/volumes", nil
	}
	if d := getenv("XDG_DATA_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "sandy", "volumes"), nil
	}
	if h := getenv("HOME"); filepath.IsAbs(h) {
		return filepath.Join(h, ".local", "share", "sandy", "volumes"), nil
	}
	return "", errors.New("no directory for volumes: set HOME or XDG_DATA_HOME to an absolute path")
}

// Open returns the store rooted at root, creating the directory (0700).
func Open(root string) (*Store, error) {
	if !filepath.IsAbs(root) {
		return nil, fmt.Errorf("volume root %q: not an absolute path", root)
	}
	if err := os.MkdirAll(root, 0o700); err != nil {
		return nil, fmt.Errorf("creating volume root: %w", err)
	}
	return &Store{root: filepath.Clean(root)}, nil
}

// Root is the store's directory.
func (s *Store) Root() string { return s.root }

func (s *Store) now() time.Time {
	if s.Now != nil {
		return s.Now()
	}
	return time.Now()
}

// openRoot opens the store's directory; every volume is reached from this
// fd by a single validated name component, never by a joined path.
func (s *Store) openRoot() (int, error) {
	fd, err := unix.Open(s.root, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening volume root %s: %w", s.root, err)
	}
	return fd, nil
}

// lock takes the store's lock (flock(2) on <root>/.lock): creations and
// removals are serialised, so two `volume create x` at once make exactly
// one x, and the other sees it. Readers take no lock: a volume appears
// and disappears by one rename, whole.
func (s *Store) lock(rootfd int) (func(), error) {
	fd, err := unix.Openat(rootfd, lockName, unix.O_RDWR|unix.O_CREAT|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening volume lock %s: %w", filepath.Join(s.root, lockName), err)
	}
	if err := unix.Flock(fd, unix.LOCK_EX); err != nil {
		unix.Close(fd)
		return nil, fmt.Errorf("locking %s: %w", filepath.Join(s.root, lockName), err)
	}
	return func() { unix.Close(fd) }, nil
}

// CreateOptions are volume create's flags.
type CreateOptions struct {
	Labels  map[string]string
	Options map[string]string // --opt, the local driver's (parseOptions)
	// Ignore returns an existing volume of that name instead of ErrExists
	// (podman volume create --ignore); its labels and options are kept.
	Ignore bool
	// Anonymous marks the volume of a -v /dst.
	Anonymous bool
}

// Create makes a volume; name "" makes one with a random 64-hex name.
// The volume is made whole under a temporary name and renamed into place,
// under the store's lock: it exists with its record or not at all.
func (s *Store) Create(name string, o CreateOptions) (*Volume, error) {
	if name == "" {
		name = randomHex(32)
	}
	if err := ValidName(name); err != nil {
		return nil, err
	}
	p, err := parseOptions(o.Options)
	if err == nil {
		err = p.checkDevice()
	}
	if err != nil {
		return nil, err
	}
	rootfd, err := s.openRoot()
	if err != nil {
		return nil, err
	}
	defer unix.Close(rootfd)
	unlock, err := s.lock(rootfd)
	if err != nil {
		return nil, err
	}
	defer unlock()
	switch v, err := s.get(rootfd, name); {
	case err == nil && o.Ignore:
		return v, nil
	case err == nil:
		return nil, fmt.Errorf("volume with name %s already exists: %w", name, ErrExists)
	case !errors.Is(err, ErrNotFound):
		return nil, err
	}
	v := &Volume{
		Name: name, Driver: Driver, Labels: nonNil(o.Labels), Options: nonNil(o.Options),
		CreatedAt: s.now().UTC(), Anonymous: o.Anonymous,
		NeedsCopyUp: !p.noCopy && p.bindDevice == "", NeedsChown: p.bindDevice == "",
	}
	if err := s.place(rootfd, v); errors.Is(err, ErrExists) {
		return nil, err
	} else if err != nil {
		return nil, fmt.Errorf("creating volume %s: %w", name, err)
	}
	s.fill(v, p)
	return v, nil
}

// place writes v's directory under a temporary name, then renames it to
// v.Name. The caller holds the lock and has seen no v.Name.
func (s *Store) place(rootfd int, v *Volume) (err error) {
	stage := createPfx + randomHex(8)
	if err := unix.Mkdirat(rootfd, stage, 0o700); err != nil {
		return fmt.Errorf("mkdir %s: %w", stage, err)
	}
	defer func() {
		if err != nil {
			_ = overlay.CleanupMode(filepath.Join(s.root, stage), overlay.ModeDirect)
		}
	}()
	dfd, err := openDir(rootfd, stage)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	// _data belongs to the user: uid 0 in the container's default map.
	// podman chowns a fresh volume to the owner of the image's directory
	// on first use (copy-up); sandy does not (docs/cli/volume.md).
	if err := unix.Mkdirat(dfd, dataName, 0o755); err != nil {
		return fmt.Errorf("mkdir %s: %w", dataName, err)
	}
	if err := unix.Fchmodat(dfd, dataName, 0o755, 0); err != nil { // past the umask
		return fmt.Errorf("chmod %s: %w", dataName, err)
	}
	if err := writeRecord(dfd, v); err != nil {
		return err
	}
	// RENAME_NOREPLACE: a directory already there is never replaced, even
	// by a writer that ignores the lock. Some file systems lack it
	// (EINVAL); the lock and the check above stand then.
	err = unix.Renameat2(rootfd, stage, rootfd, v.Name, unix.RENAME_NOREPLACE)
	if errors.Is(err, unix.EINVAL) {
		err = unix.Renameat(rootfd, stage, rootfd, v.Name)
	}
	if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
		return fmt.Errorf("volume with name %s already exists: %w", v.Name, ErrExists)
	}
	if err != nil {
		return fmt.Errorf("renaming %s to %s: %w", stage, v.Name, err)
	}
	return nil
}

// writeRecord writes volume.json in the directory dfd atomically: a new
// file (O_EXCL, no symlink followed), synced, renamed over the old one.
func writeRecord(dfd int, v *Volume) error {
	data, err := json.MarshalIndent(v, "", "  ")
	if err != nil {
		return err
	}
	tmp := recordName + "." + randomHex(4)
	fd, err := unix.Openat(dfd, tmp, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return fmt.Errorf("writing volume record: %w", err)
	}
	f := os.NewFile(uintptr(fd), tmp)
	_, err = f.Write(append(data, '\n'))
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = unix.Renameat(dfd, tmp, dfd, recordName)
	}
	if err != nil {
		_ = unix.Unlinkat(dfd, tmp, 0)
		return fmt.Errorf("writing volume record: %w", err)
	}
	return nil
}

// Get returns the volume named name, or an error matching ErrNotFound.
func (s *Store) Get(name string) (*Volume, error) {
	if err := ValidName(name); err != nil {
		return nil, fmt.Errorf("no volume with name %q found: %w", name, ErrNotFound)
	}
	rootfd, err := s.openRoot()
	if err != nil {
		return nil, err
	}
	defer unix.Close(rootfd)
	return s.get(rootfd, name)
}

// get reads <root>/<name>/volume.json without following a symlink on the
// way: neither the volume's directory nor its record may be one.
func (s *Store) get(rootfd int, name string) (*Volume, error) {
	dfd, err := openDir(rootfd, name)
	if errors.Is(err, unix.ENOENT) {
		return nil, fmt.Errorf("no volume with name %q found: %w", name, ErrNotFound)
	}
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	defer unix.Close(dfd)
	v, err := readRecord(dfd)
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w (hint: remove %s if it is not a volume)", name, err, filepath.Join(s.root, name))
	}
	if v.Name != name {
		return nil, fmt.Errorf("volume %s: its record names %q (hint: remove %s if it is not a volume)", name, v.Name, filepath.Join(s.root, name))
	}
	var st unix.Stat_t
	if err := unix.Fstatat(dfd, dataName, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return nil, fmt.Errorf("volume %s: %s: %w", name, dataName, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return nil, fmt.Errorf("volume %s: %s is not a directory", name, filepath.Join(s.root, name, dataName))
	}
	p, err := parseOptions(v.Options)
	if err != nil {
		return nil, fmt.Errorf("volume %s: %w", name, err)
	}
	s.fill(v, p)
	return v, nil
}

func (s *Store) fill(v *Volume, p parsedOptions) {
	v.Mountpoint = filepath.Join(s.root, v.Name, dataName)
	v.source = p.bindDevice
	v.Labels, v.Options = nonNil(v.Labels), nonNil(v.Options)
}

// openDir opens name in dirfd as a directory, following no symlink.
func openDir(dirfd int, name string) (int, error) {
	fd, err := unix.Openat(dirfd, name, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ELOOP) || errors.Is(err, unix.ENOTDIR) {
		return -1, fmt.Errorf("opening %s: not a directory (a symlink?): %w", name, err)
	}
	if err != nil {
		return -1, fmt.Errorf("opening %s: %w", name, err)
	}
	return fd, nil
}

func readRecord(dfd int) (*Volume, error) {
	fd, err := unix.Openat(dfd, recordName, unix.O_RDONLY|unix.O_NOFOLLOW|unix.O_NONBLOCK|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", recordName, err)
	}
	f := os.NewFile(uintptr(fd), recordName)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", recordName, err)
	}
	if !fi.Mode().IsRegular() {
		return nil, fmt.Errorf("reading %s: not a regular file", recordName)
	}
	data, err := io.ReadAll(io.LimitReader(f, maxRecord+1))
	if err != nil {
		return nil, fmt.Errorf("reading %s: %w", recordName, err)
	}
	if len(data) > maxRecord {
		return nil, fmt.Errorf("reading %s: larger than %d bytes", recordName, maxRecord)
	}
	v := &Volume{}
	if err := json.Unmarshal(data, v); err != nil {
		return nil, fmt.Errorf("parsing %s: %w", recordName, err)
	}
	return v, nil
}

// List returns the volumes that match f, sorted by name.
func (s *Store) List(f Filters) ([]*Volume, error) {
	rootfd, err := s.openRoot()
	if err != nil {
		return nil, err
	}
	defer unix.Close(rootfd)
	all, err := s.list(rootfd)
	if err != nil {
		return nil, err
	}
	var out []*Volume
	for _, v := range all {
		ok, err := s.match(f, v)
		if err != nil {
			return nil, err
		}
		if ok {
			out = append(out, v)
		}
	}
	return out, nil
}

func (s *Store) list(rootfd int) ([]*Volume, error) {
	names, err := readNames(rootfd)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", s.root, err)
	}
	var out []*Volume
	for _, n := range names {
		if strings.HasPrefix(n, ".") || ValidName(n) != nil {
			continue // the lock, a volume being made or removed
		}
		v, err := s.get(rootfd, n)
		if errors.Is(err, ErrNotFound) {
			continue // removed meanwhile
		}
		if err != nil {
			return nil, err
		}
		out = append(out, v)
	}
	return out, nil
}

// readNames lists the directory rootfd (through a dup: reading moves the
// offset of the fd).
func readNames(rootfd int) ([]string, error) {
	fd, err := unix.Openat(rootfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), ".")
	defer f.Close()
	names, err := f.Readdirnames(-1)
	sort.Strings(names)
	return names, err
}

// Resolve returns the volume a container mounts for -v NAME:/dst, making
// it when it does not exist (as podman does); name "" makes an anonymous
// volume (-v /dst) with a random name.
func (s *Store) Resolve(name string) (*Volume, error) {
	if name == "" {
		return s.Create("", CreateOptions{Anonymous: true})
	}
	v, err := s.Get(name)
	if errors.Is(err, ErrNotFound) {
		v, err = s.Create(name, CreateOptions{Ignore: true})
	}
	if err != nil {
		return nil, err
	}
	if v.source != "" {
		if err := (parsedOptions{bindDevice: v.source}).checkDevice(); err != nil {
			return nil, fmt.Errorf("volume %s: %w", name, err)
		}
	}
	return v, nil
}

// FirstUse claims a volume's first use for the container about to mount
// it: it returns the volume's NeedsCopyUp and NeedsChown and clears them
// in its record, under the store's lock, so that of two containers
// started at once only one fills and chowns a fresh volume (podman clears
// them the same way, before it copies).
func (s *Store) FirstUse(name string) (copyUp, chown bool, err error) {
	rootfd, err := s.openRoot()
	if err != nil {
		return false, false, err
	}
	defer unix.Close(rootfd)
	unlock, err := s.lock(rootfd)
	if err != nil {
		return false, false, err
	}
	defer unlock()
	v, err := s.get(rootfd, name)
	if err != nil {
		return false, false, err
	}
	if !v.NeedsCopyUp && !v.NeedsChown {
		return false, false, nil
	}
	copyUp, chown = v.NeedsCopyUp, v.NeedsChown
	v.NeedsCopyUp, v.NeedsChown = false, false
	dfd, err := openDir(rootfd, name)
	if err != nil {
		return false, false, fmt.Errorf("volume %s: %w", name, err)
	}
	defer unix.Close(dfd)
	if err := writeRecord(dfd, v); err != nil {
		return false, false, fmt.Errorf("volume %s: %w", name, err)
	}
	return copyUp, chown, nil
}

// users is the InUse hook, or none.
func (s *Store) users(name string) ([]string, error) {
	if s.InUse == nil {
		return nil, nil
	}
	ids, err := s.InUse(name)
	if err != nil {
		return nil, fmt.Errorf("finding the containers using volume %s: %w", name, err)
	}
	return ids, nil
}

// Remove removes a volume and its data. A volume a container uses is an
// error matching ErrInUse, unless force: then the containers are removed
// first (RemoveContainers). The volume leaves its name in one rename, then
// its directory is removed.
func (s *Store) Remove(name string, force bool) error {
	rootfd, err := s.openRoot()
	if err != nil {
		return err
	}
	defer unix.Close(rootfd)
	unlock, err := s.lock(rootfd)
	if err != nil {
		return err
	}
	trash, err := s.detach(rootfd, name, force)
	unlock()
	if err != nil {
		return err
	}
	return s.removeTree(name, trash)
}

// detach checks that name may go, then renames it to a .remove- name.
// The caller holds the lock.
func (s *Store) detach(rootfd int, name string, force bool) (string, error) {
	if err := ValidName(name); err != nil {
		return "", fmt.Errorf("no volume with name %q found: %w", name, ErrNotFound)
	}
	if _, err := s.get(rootfd, name); err != nil {
		return "", err
	}
	ids, err := s.users(name)
	if err != nil {
		return "", err
	}
	if len(ids) > 0 {
		inUse := fmt.Errorf("volume %s is being used by the following container(s): %s: %w", name, strings.Join(ids, ", "), ErrInUse)
		if !force {
			return "", inUse
		}
		if s.RemoveContainers == nil {
			return "", fmt.Errorf("%w (sandy cannot remove them here: remove them first)", inUse)
		}
		if err := s.RemoveContainers(ids); err != nil {
			return "", fmt.Errorf("removing the containers using volume %s: %w", name, err)
		}
	}
	trash := removePfx + name
	if err := unix.Renameat(rootfd, name, rootfd, trash); err != nil {
		if errors.Is(err, unix.EEXIST) || errors.Is(err, unix.ENOTEMPTY) {
			// A removal of the same name that failed half-way: a
			// unique name instead.
			trash = removePfx + name + "." + randomHex(4)
			err = unix.Renameat(rootfd, name, rootfd, trash)
		}
		if err != nil {
			return "", fmt.Errorf("removing volume %s: %w", name, err)
		}
	}
	return trash, nil
}

// removeTree removes a detached volume's directory through fds (no
// symlink followed, no mount point crossed: overlay.Cleanup), handing
// what belongs to subordinate ids to RemoveForeign.
func (s *Store) removeTree(name, trash string) error {
	dir := filepath.Join(s.root, trash)
	err := overlay.CleanupMode(dir, overlay.ModeDirect)
	if errors.Is(err, overlay.ErrForeignOwned) && s.RemoveForeign != nil {
		err = s.RemoveForeign(dir)
	}
	if ce := (*overlay.CleanupError)(nil); errors.As(err, &ce) && ce.Foreign > 0 {
		return fmt.Errorf("volume %s is removed, but %d entries a container user wrote (e.g. %s) are left in %s: they belong to your subordinate ids; remove them with `podman unshare rm -rf %s` (docs/troubleshooting.md#volume-leftovers): %w", name, ce.Foreign, ce.Example, dir, dir, ErrLeftovers)
	}
	if err != nil {
		return fmt.Errorf("volume %s is removed, but removing %s: %w", name, dir, err)
	}
	return nil
}

// Prune removes every volume that matches f and that no container uses,
// and what killed creations left; it returns the names
// removed, sorted.
func (s *Store) Prune(f Filters) ([]string, error) {
	rootfd, err := s.openRoot()
	if err != nil {
		return nil, err
	}
	defer unix.Close(rootfd)
	unlock, err := s.lock(rootfd)
	if err != nil {
		return nil, err
	}
	all, err := s.list(rootfd)
	if err != nil {
		unlock()
		return nil, err
	}
	type gone struct{ name, trash string }
	var detached []gone
	for _, v := range all {
		trash, err := s.pruneOne(rootfd, f, v)
		if err != nil {
			unlock()
			return nil, err
		}
		if trash != "" {
			detached = append(detached, gone{v.Name, trash})
		}
	}
	leftovers := s.leftovers(rootfd)
	unlock()
	var names []string
	var errs []error
	for _, d := range detached {
		names = append(names, d.name)
		if err := s.removeTree(d.name, d.trash); err != nil {
			errs = append(errs, err)
		}
	}
	for _, l := range leftovers {
		_ = s.removeTree(l, l) // best effort: reported when it was left
	}
	return names, errors.Join(errs...)
}

// pruneOne detaches v when it matches f and no container uses it; it
// returns the detached directory's name, or "" when v stays.
func (s *Store) pruneOne(rootfd int, f Filters, v *Volume) (string, error) {
	ok, err := s.match(f, v)
	if err != nil || !ok {
		return "", err
	}
	ids, err := s.users(v.Name)
	if err != nil || len(ids) > 0 {
		return "", err
	}
	return s.detach(rootfd, v.Name, false)
}

// leftovers are the .create- directories no process works on (a creation
// killed half-way): the caller holds the lock, which every creation holds
// from its mkdir to its rename. A .remove- directory is a removal that
// failed, and said so.
func (s *Store) leftovers(rootfd int) []string {
	names, _ := readNames(rootfd)
	var out []string
	for _, n := range names {
		if strings.HasPrefix(n, createPfx) {
			out = append(out, n)
		}
	}
	return out
}

func nonNil(m map[string]string) map[string]string {
	if m == nil {
		return map[string]string{}
	}
	return m
}

// randomHex returns n random bytes in hex: names that must be unique, not
// secret (each is created exclusively), so math/rand/v2's generator
// (ChaCha8, seeded from the kernel for each process) serves; crypto/rand
// would link the FIPS 140 module into sandy, whose package inits every
// sandy process pays (cmd/sandy's TestRuntimeDeps).
func randomHex(n int) string {
	b := make([]byte, 0, n+8)
	for len(b) < n {
		b = binary.LittleEndian.AppendUint64(b, rand.Uint64())
	}
	return hex.EncodeToString(b[:n])
}
