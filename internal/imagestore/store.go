//go:build containers_image_openpgp

package imagestore

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"

	"go.podman.io/storage"
	"go.podman.io/storage/types"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/imagehelper"
)

// StoreOptions are the user's overrides of containers-storage.conf: the
// global flags --storage-root, --storage-runroot, --storage-driver and
// --storage-opt.
type StoreOptions struct {
	Root, RunRoot, Driver string
	DriverOpts            []string
	// SingleID is set when the namespace maps only the caller's own id
	// (no subordinate ranges): chown errors are ignored, as podman does
	// with ignore_chown_errors.
	SingleID bool
	// Warn receives the one-line notices of the driver ladder.
	Warn io.Writer
	// HoldsRemovals: this process holds the removals lock (LockRemovals),
	// so Open must not wait for it.
	HoldsRemovals bool
}

// Resolved is the configuration a Store was opened with, for `sandy info`
// style reports and doctor.
type Resolved struct {
	GraphRoot, RunRoot, Driver string
	DriverOpts                 []string
	// Fallback is the notice printed when the configured or default driver
	// could not be used, or "".
	Fallback string
}

// storeConfig reads containers-storage.conf the way podman does
// ($CONTAINERS_STORAGE_CONF, then ~/.config/containers/storage.conf for a
// rootless user, then /etc/containers/storage.conf and the rootless
// defaults under $XDG_DATA_HOME and $XDG_RUNTIME_DIR) and applies o.
func storeConfig(o StoreOptions) (types.StoreOptions, error) {
	// LoadStoreOptions reads the files each time (DefaultStoreOptions
	// caches the first answer for the process).
	so, err := types.LoadStoreOptions(types.LoadOptions{})
	if err != nil {
		return so, fmt.Errorf("reading containers-storage.conf: %w", err)
	}
	if o.Root != "" {
		so.GraphRoot = o.Root
	}
	if o.RunRoot != "" {
		so.RunRoot = o.RunRoot
	}
	if o.Driver != "" {
		so.GraphDriverName = o.Driver
		// Options of another driver would be refused by this one.
		if so.GraphDriverName != driverOf(so.GraphDriverOptions) {
			so.GraphDriverOptions = nil
		}
	}
	so.GraphDriverOptions = append(so.GraphDriverOptions, o.DriverOpts...)
	if so.GraphRoot == "" || so.RunRoot == "" {
		return so, errors.New("no storage root: set XDG_DATA_HOME/HOME and XDG_RUNTIME_DIR, or pass --storage-root and --storage-runroot")
	}
	return so, nil
}

// driverOf is the driver named by the first "driver.option" entry, or "".
func driverOf(opts []string) string {
	for _, o := range opts {
		if d, _, ok := strings.Cut(o, "."); ok {
			return d
		}
	}
	return ""
}

// Open opens the store. When no driver is configured the ladder is:
// overlay (native rootless overlay with userxattr, tried for real by the
// storage library), overlay with fuse-overlayfs as mount_program, vfs;
// each step down prints one line with the reason and the fix. A driver
// the user configured is used or is an error, never replaced.
//
// It first waits for the removals that `sandy run --rm` left behind
// (LockRemovals), so that what the caller sees of the store is what those
// runs left, removed.
func Open(o StoreOptions) (storage.Store, Resolved, error) {
	so, err := storeConfig(o)
	if err != nil {
		return nil, Resolved{}, err
	}
	if !o.HoldsRemovals {
		if err := waitRemovals(so.RunRoot); err != nil {
			return nil, Resolved{}, err
		}
	}
	if so.GraphDriverName == "" {
		prior, err := priorDriver(so.GraphRoot)
		if err != nil {
			return nil, Resolved{}, err
		}
		so.GraphDriverName = prior
	}
	if so.GraphDriverName != "" {
		so.GraphDriverOptions = singleID(so.GraphDriverOptions, so.GraphDriverName, o.SingleID)
		s, err := storage.GetStore(so)
		if err != nil {
			return nil, Resolved{}, fmt.Errorf("opening the image store %s (driver %s): %w", so.GraphRoot, so.GraphDriverName, err)
		}
		return s, resolvedOf(s, so, ""), nil
	}
	var notes []string
	for _, step := range ladder() {
		try := so
		try.GraphDriverName = step.driver
		try.GraphDriverOptions = singleID(append(append([]string(nil), so.GraphDriverOptions...), step.opts...), step.driver, o.SingleID)
		s, err := storage.GetStore(try)
		if err == nil {
			note := ""
			if len(notes) > 0 {
				note = strings.Join(notes, "; ") + "; using " + step.name
				if o.Warn != nil {
					fmt.Fprintf(o.Warn, "sandy: warning: %s\n", imagehelper.FallbackStoreDriver.Line(note, step.fix))
				}
			}
			return s, resolvedOf(s, try, note), nil
		}
		notes = append(notes, fmt.Sprintf("%s: %v", step.name, err))
	}
	return nil, Resolved{}, fmt.Errorf("opening the image store %s: no storage driver works: %s", so.GraphRoot, strings.Join(notes, "; "))
}

// singleID adds DRIVER.ignore_chown_errors=true for a single-id store.
func singleID(opts []string, driver string, on bool) []string {
	if !on {
		return opts
	}
	return append(opts, driver+".ignore_chown_errors=true")
}

// knownDrivers are the drivers whose directory under the graph root
// marks a store created with them.
var knownDrivers = []string{"overlay", "vfs", "btrfs", "zfs"}

// priorDriver is the driver the store at root was created with (by
// sandy, podman, buildah or skopeo), "" for a new store. A store must
// keep its driver: each driver sees only its own layers and images.
func priorDriver(root string) (string, error) {
	var found []string
	for _, d := range knownDrivers {
		if fi, err := os.Stat(filepath.Join(root, d+"-layers")); err == nil && fi.IsDir() {
			found = append(found, d)
		}
	}
	switch len(found) {
	case 0:
		return "", nil
	case 1:
		return found[0], nil
	}
	return "", fmt.Errorf("the image store %s holds layers of several drivers (%s): pass --storage-driver, or set driver in storage.conf", root, strings.Join(found, ", "))
}

type ladderStep struct {
	name, driver string
	opts         []string
	fix          string // what gives the previous (better) step back
}

// ladder is the driver fallback order when none is configured.
func ladder() []ladderStep {
	steps := []ladderStep{{name: "native overlay", driver: "overlay"}}
	if p, err := exec.LookPath("fuse-overlayfs"); err == nil {
		steps = append(steps, ladderStep{name: "fuse-overlayfs", driver: "overlay", opts: []string{"overlay.mount_program=" + p},
			fix: "a kernel >= 5.13 and a storage root on ext4/xfs/btrfs (not NFS or overlay) give native overlay"})
	}
	steps = append(steps, ladderStep{name: "vfs (a full copy per layer)", driver: "vfs",
		fix: "apt-get install fuse-overlayfs, or a storage root on a local filesystem that supports overlay"})
	return steps
}

func resolvedOf(s storage.Store, so types.StoreOptions, note string) Resolved {
	return Resolved{GraphRoot: s.GraphRoot(), RunRoot: s.RunRoot(), Driver: s.GraphDriverName(), DriverOpts: so.GraphDriverOptions, Fallback: note}
}

// Shutdown releases the store; layers mounted by this process stay as the
// storage library records them (force=false).
func Shutdown(s storage.Store) {
	if s != nil {
		_, _ = s.Shutdown(false)
	}
}

// NoSuchImage wraps storage's not-found error with the name the user typed.
func NoSuchImage(name string) error {
	return fmt.Errorf("%s: %w", name, storage.ErrImageUnknown)
}

// removalsLock is the file, in the store's run root, whose flock(2) a
// helper that removes a container behind `sandy run --rm` holds
// exclusively until it exits (LockRemovals), and every helper verb takes
// shared, at once released, before it opens the store (WaitRemovals). In
// the run root: a reboot, which ends every removal, empties it.
const removalsLock = "sandy-removals.lock"

func removalsLockFile(runRoot string) (*os.File, error) {
	if err := os.MkdirAll(runRoot, 0o700); err != nil {
		return nil, fmt.Errorf("creating the store's run root: %w", err)
	}
	p := filepath.Join(runRoot, removalsLock)
	f, err := os.OpenFile(p, os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", p, err)
	}
	return f, nil
}

// LockRemovals takes the removals lock of the store o selects
// exclusively and keeps it until the removal it guards is done (the
// caller keeps the file: a helper closes it once the removal is done, or
// exits): the removal ends with the lock, however it ends. Open with
// o.HoldsRemovals then.
func LockRemovals(o StoreOptions) (*os.File, error) {
	f, err := OpenRemovals(o)
	if err != nil {
		return nil, err
	}
	if err := LockOpened(f); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// OpenRemovals opens the removals lock of the store o selects, not
// locked: a held helper opens it while its container runs, so that
// taking it at "remove-behind" (LockOpened), which sandy waits for, is
// one flock(2) and not a read of containers-storage.conf.
func OpenRemovals(o StoreOptions) (*os.File, error) {
	so, err := storeConfig(o)
	if err != nil {
		return nil, err
	}
	return removalsLockFile(so.RunRoot)
}

// LockOpened takes the removals lock f (OpenRemovals) exclusively.
func LockOpened(f *os.File) error {
	if err := flockRetry(int(f.Fd()), unix.LOCK_EX); err != nil {
		return fmt.Errorf("locking %s: %w", f.Name(), err)
	}
	return nil
}

// waitRemovals waits until no removal holds the removals lock.
func waitRemovals(runRoot string) error {
	f, err := removalsLockFile(runRoot)
	if err != nil {
		return err
	}
	defer f.Close()
	if err := flockRetry(int(f.Fd()), unix.LOCK_SH); err != nil {
		return fmt.Errorf("waiting for the removals under way (%s): %w", f.Name(), err)
	}
	return nil
}

func flockRetry(fd, how int) error {
	for {
		err := unix.Flock(fd, how)
		if !errors.Is(err, unix.EINTR) {
			return err
		}
	}
}
