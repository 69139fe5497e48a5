//go:build linux

package overlay

import (
	"bytes"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"golang.org/x/sys/unix"
)

// Cleanup removes a layer directory and everything in it, after a normal
// exit as much as after kill -9 of sandy, of the container or of
// fuse-overlayfs. It is idempotent: a missing layerDir is not an error.
//
// It runs on the host side, as the user, after the container is gone:
//
//  1. It kills a fuse-overlayfs left serving this layer (there is one only
//     when the container ran without its own pid namespace, or when the
//     container is still alive): a process of ours named fuse-overlayfs
//     whose mountpoint argument is layerDir/fuse.
//  2. It removes the tree through fds with openat2(RESOLVE_NO_XDEV |
//     RESOLVE_NO_SYMLINKS): it follows no symlink and crosses no mount point,
//     so whatever the container left (a symlink to the bundle, a mount) it
//     never reaches the bundle. Directories the user owns but cannot enter
//     (overlay's work/work is mode 0) are chmod'ed first.
//
// Files the container created as a non-root container user belong to the
// user's subordinate ids; outside the user namespace nobody but root can
// remove those. Cleanup then removes the rest and returns a *CleanupError
// that matches ErrForeignOwned: call Cleanup again from a process inside a
// user namespace with the container's maps (there it removes everything).
// A later Mount on the same layerDir also starts from scratch, so a leftover
// never shows through.
func Cleanup(layerDir string) error { return CleanupMode(layerDir, "") }

// CleanupMode is Cleanup for a layer whose rung is known (Root.Mode): only
// a fuse layer (or one of an unknown rung, "") can have a fuse-overlayfs
// to look for, which takes a walk over /proc.
func CleanupMode(layerDir string, mode Mode) error {
	if !filepath.IsAbs(layerDir) {
		return fmt.Errorf("removing layer %q: not an absolute path", layerDir)
	}
	layerDir = filepath.Clean(layerDir)
	if mode == "" || mode == ModeFuse || mode == ModeAuto {
		if err := killFuse(layerDir); err != nil {
			return &CleanupError{LayerDir: layerDir, Err: err}
		}
	}
	r := &remover{}
	if err := r.removeAt(filepath.Dir(layerDir), filepath.Base(layerDir)); err != nil {
		return &CleanupError{LayerDir: layerDir, Err: err}
	}
	if r.foreign > 0 {
		return &CleanupError{LayerDir: layerDir, Foreign: r.foreign, Example: r.example}
	}
	return nil
}

// removeAt removes parent/name inside the user namespace, where nothing is
// foreign; an entry it cannot remove is an error.
func removeAt(parent, name string) error {
	r := &remover{}
	if err := r.removeAt(parent, name); err != nil {
		return err
	}
	if r.foreign > 0 {
		return fmt.Errorf("%d entries not removable (e.g. %s): %w", r.foreign, r.example, ErrForeignOwned)
	}
	return nil
}

// remover removes trees through fds, counting what it may not remove.
type remover struct {
	foreign int
	example string
}

func (r *remover) removeAt(parent, name string) error {
	pfd, err := unix.Open(parent, unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("opening %s: %w", parent, err)
	}
	defer unix.Close(pfd)
	return r.remove(pfd, name, filepath.Join(parent, name))
}

func (r *remover) denied(p string) {
	r.foreign++
	if r.example == "" {
		r.example = p
	}
}

func isDenied(err error) bool { return errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) }

// remove removes the entry name in the directory pfd; disp is its path, for
// messages only.
func (r *remover) remove(pfd int, name, disp string) error {
	var st unix.Stat_t
	if err := unix.Fstatat(pfd, name, &st, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("stat %s: %w", disp, err)
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		err := unix.Unlinkat(pfd, name, 0)
		switch {
		case err == nil, errors.Is(err, unix.ENOENT):
			return nil
		case isDenied(err):
			r.denied(disp)
			return nil
		}
		return fmt.Errorf("removing %s: %w", disp, err)
	}
	fd, err := openDirBeneath(pfd, name)
	if isDenied(err) && int(st.Uid) == os.Geteuid() {
		// Ours but closed (overlay makes work/work mode 0): open it up.
		if err := chmodAt(pfd, name, 0o700); err != nil {
			return fmt.Errorf("chmod %s: %w", disp, err)
		}
		fd, err = openDirBeneath(pfd, name)
	}
	if isDenied(err) {
		r.denied(disp)
		return nil
	}
	if errors.Is(err, unix.EXDEV) {
		return fmt.Errorf("removing %s: it is a mount point; refusing to cross it (unmount it first)", disp)
	}
	if err != nil {
		return fmt.Errorf("opening %s: %w", disp, err)
	}
	d := os.NewFile(uintptr(fd), disp)
	defer d.Close()
	if int(st.Uid) == os.Geteuid() && st.Mode&0o700 != 0o700 {
		if err := unix.Fchmod(fd, 0o700); err != nil {
			return fmt.Errorf("chmod %s: %w", disp, err)
		}
	}
	before := r.foreign
	for {
		names, err := d.Readdirnames(1024)
		for _, n := range names {
			if err := r.remove(fd, n, filepath.Join(disp, n)); err != nil {
				return err
			}
		}
		if err != nil || len(names) == 0 {
			break
		}
	}
	if r.foreign > before {
		return nil // not empty; already counted
	}
	if err := unix.Unlinkat(pfd, name, unix.AT_REMOVEDIR); err != nil {
		if isDenied(err) {
			r.denied(disp)
			return nil
		}
		if errors.Is(err, unix.ENOENT) {
			return nil
		}
		return fmt.Errorf("removing %s: %w", disp, err)
	}
	return nil
}

// openDirBeneath opens the directory name in pfd without following a symlink
// or crossing a mount point (openat2(2): RESOLVE_NO_XDEV also refuses a bind
// mount of the same filesystem, which a device-number check would miss).
func openDirBeneath(pfd int, name string) (int, error) {
	how := &unix.OpenHow{
		Flags:   unix.O_RDONLY | unix.O_DIRECTORY | unix.O_NOFOLLOW | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_SYMLINKS | unix.RESOLVE_NO_MAGICLINKS,
	}
	for {
		fd, err := unix.Openat2(pfd, name, how)
		if errors.Is(err, unix.EINTR) || errors.Is(err, unix.EAGAIN) {
			continue
		}
		return fd, err
	}
}

// chmodAt changes the mode of the directory name in pfd without following
// a symlink put there in a race: chmod(2) on an O_PATH handle's
// /proc/self/fd link acts on that very inode.
func chmodAt(pfd int, name string, mode uint32) error {
	how := &unix.OpenHow{Flags: unix.O_PATH | unix.O_NOFOLLOW | unix.O_CLOEXEC, Resolve: unix.RESOLVE_BENEATH | unix.RESOLVE_NO_XDEV | unix.RESOLVE_NO_SYMLINKS}
	fd, err := unix.Openat2(pfd, name, how)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	var st unix.Stat_t
	if err := unix.Fstat(fd, &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		return unix.ENOTDIR
	}
	return unix.Chmod("/proc/self/fd/"+strconv.Itoa(fd), mode)
}

// killFuse kills fuse-overlayfs processes of this user serving layerDir and
// waits for them to go.
func killFuse(layerDir string) error {
	pids, err := fusePIDs("/proc", layerDir, os.Geteuid())
	if err != nil {
		return err
	}
	for _, pid := range pids {
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	deadline := time.Now().Add(5 * time.Second)
	for _, pid := range pids {
		for alive(pid) {
			if time.Now().After(deadline) {
				return fmt.Errorf("fuse-overlayfs (pid %d) serving %s did not exit after SIGKILL", pid, layerDir)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	return nil
}

// fusePIDs lists, from a procfs at proc, the fuse-overlayfs processes owned
// by uid whose mountpoint (last argument) is layerDir/fuse.
func fusePIDs(proc, layerDir string, uid int) ([]int, error) {
	ents, err := os.ReadDir(proc)
	if err != nil {
		return nil, fmt.Errorf("listing %s: %w", proc, err)
	}
	want := filepath.Join(layerDir, fuseName)
	var pids []int
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join(proc, e.Name())
		comm, err := os.ReadFile(filepath.Join(dir, "comm"))
		if err != nil || string(bytes.TrimSpace(comm)) != fuseBinary {
			continue
		}
		var st unix.Stat_t
		if err := unix.Stat(dir, &st); err != nil || int(st.Uid) != uid {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
		if err != nil {
			continue
		}
		if fuseServes(cmdline, want) {
			pids = append(pids, pid)
		}
	}
	return pids, nil
}

// fuseServes reports whether a NUL-separated cmdline ends with mountpoint.
func fuseServes(cmdline []byte, mountpoint string) bool {
	args := bytes.Split(bytes.TrimRight(cmdline, "\x00"), []byte{0})
	return len(args) > 1 && string(args[len(args)-1]) == mountpoint
}

// alive reports whether pid still runs (a zombie counts as gone).
func alive(pid int) bool {
	b, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
	if err != nil {
		return false
	}
	i := bytes.LastIndexByte(b, ')')
	return i < 0 || i+2 >= len(b) || b[i+2] != 'Z'
}
