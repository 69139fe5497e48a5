//go:build linux

package overlay

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/mountflags"
)

// bind is the last rung: the rootfs itself, bind-mounted read-only on
// merged. Nothing can be written, so the init must put tmpfs on the paths the
// config needs writable; and a missing mountpoint cannot be made.
func (m *mounter) bind() (*Root, error) {
	if len(m.miss) > 0 {
		return nil, &RungError{Mode: ModeBind, Err: ErrMountpointMissing,
			Why: fmt.Sprintf("mountpoints missing in the read-only rootfs: %s", strings.Join(m.miss, ", ")),
			Fix: "create them in the bundle's rootfs, or use a mode with a layer (overlay, fuse, copy)"}
	}
	if err := m.ensure(mergedName); err != nil {
		return nil, err
	}
	merged := m.path(mergedName)
	// MS_REC: the bundle may itself hold mounts (a rootfs assembled with
	// binds); a plain bind would show the empty directories under them.
	if err := unix.Mount(fdPath(m.lower), merged, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return nil, &RungError{Mode: ModeBind, Err: err, Why: fmt.Sprintf("binding the rootfs on %s: %v", merged, err), Fix: "see docs/rootfs.md#troubleshooting"}
	}
	if err := remountReadonly(merged); err != nil {
		return nil, err
	}
	return m.root(ModeBind, false)
}

// direct is the rung with no layer, only the user asks for: the rootfs
// bind-mounted writable on merged, as runc uses it. Missing mountpoints are
// for the init to create in it. A read-only root is mounted writable too:
// the init makes its mountpoints first and remounts / read-only after
// pivot_root, as runc does.
func (m *mounter) direct() (*Root, error) {
	// Only merged/ of the layer directory is used: the mount point to
	// pivot_root into.
	merged := m.path(mergedName)
	if err := os.Mkdir(merged, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return nil, fmt.Errorf("making %s: %w", merged, err)
	}
	if err := unix.Mount(fdPath(m.lower), merged, "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return nil, &RungError{Mode: ModeDirect, Err: err, Why: fmt.Sprintf("binding the rootfs on %s: %v", merged, err), Fix: "see docs/rootfs.md#troubleshooting"}
	}
	p := merged
	if err := unix.Mount("", p, "", unix.MS_PRIVATE, ""); err != nil {
		return nil, fmt.Errorf("making %s private: %w", p, err)
	}
	return &Root{Path: p, Mode: ModeDirect}, nil
}

// remountReadonly makes the bind mount at p read-only. In a user namespace a
// remount must keep the flags the mount was locked with (nosuid, nodev,
// noexec, atime; mount(2) EPERM), so they are read back with statfs(2) and
// passed again.
func remountReadonly(p string) error {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return fmt.Errorf("statfs %s: %w", p, err)
	}
	flags := mountflags.Remount(st.Flags, unix.MS_RDONLY, 0)
	if err := unix.Mount("", p, "", unix.MS_REMOUNT|unix.MS_BIND|flags, ""); err != nil {
		return fmt.Errorf("remounting %s read-only: %w", p, err)
	}
	return nil
}

// copyTimeout bounds the copy rung: generous, a copy is slow by nature.
const copyTimeout = 30 * time.Minute

// copy is the rung only a user asks for: a full copy of the rootfs into
// merged, with owners, modes, times and xattrs kept (cp -a, reflinked where
// the filesystem can). Inside the user namespace the owners are container
// ids, so the copy needs no chown pass; files of ids outside the map come
// out owned by root of the container, and cp says so.
func (m *mounter) copy() (*Root, error) {
	if err := m.ensure(mergedName); err != nil {
		return nil, err
	}
	merged := m.path(mergedName)
	cmd := exec.Command("cp", "-a", "--reflink=auto", "--", m.o.Lower+"/.", merged)
	inheritProcFDs(cmd, m.o.Lower, merged)
	out, _, err := runQuiet(cmd, copyTimeout)
	if err != nil {
		out = strings.TrimSpace(out)
		lines := strings.Split(out, "\n")
		if out == "" {
			return nil, &RungError{Mode: ModeCopy, Err: err, Why: fmt.Sprintf("cp -a %s: %v", m.o.Lower, err), Fix: "check free space in the state root"}
		}
		// cp goes on after a failed chown or xattr; report, keep the copy.
		m.warn(FallbackCopyInexact.Line(len(lines), lines[0]))
	}
	if m.stubs {
		if err := copyStubs(m.path(stubsName), merged); err != nil {
			return nil, err
		}
		m.stubTimes(merged)
	}
	if err := unix.Mount(merged, merged, "", unix.MS_BIND, ""); err != nil {
		return nil, fmt.Errorf("binding %s on itself: %w", merged, err)
	}
	if m.o.Readonly {
		if err := remountReadonly(merged); err != nil {
			return nil, err
		}
	}
	return m.root(ModeCopy, false)
}

// copyStubs makes the stub entries (all fresh, in a directory of ours) in
// the copy, where they were missing from the rootfs and so from the copy.
func copyStubs(stubs, dst string) error {
	return filepath.WalkDir(stubs, func(p string, d os.DirEntry, err error) error {
		if err != nil || p == stubs {
			return err
		}
		rel, _ := filepath.Rel(stubs, p)
		t := filepath.Join(dst, rel)
		if d.IsDir() {
			if err := os.Mkdir(t, 0o755); err != nil && !errors.Is(err, fs.ErrExist) {
				return fmt.Errorf("making mountpoint %s: %w", t, err)
			}
			return nil
		}
		f, err := os.OpenFile(t, os.O_CREATE|os.O_EXCL|os.O_WRONLY|unix.O_NOFOLLOW, 0o644)
		if err != nil {
			return fmt.Errorf("making mountpoint %s: %w", t, err)
		}
		return f.Close()
	})
}
