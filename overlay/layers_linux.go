//go:build linux

package overlay

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	"golang.org/x/sys/unix"
)

// mountLayers mounts the storage container o.Layers on LayerDir/merged.
// The result behaves as the direct rung: the container writes its own
// storage layer, the init makes missing mountpoints in it, and a read-only
// root (root.readonly) is made read-only by the init after pivot_root, as
// podman's runtimes do with the root podman mounts for them. Only merged
// (and fuse, for a mount program) of LayerDir are used.
func mountLayers(o Options) (*Root, error) {
	l := o.Layers
	if err := l.Check(); err != nil {
		return nil, err
	}
	if !filepath.IsAbs(o.LayerDir) || strings.ContainsAny(o.LayerDir, ",:\\\n") {
		return nil, fmt.Errorf("checking layer dir %q: want an absolute path without , : \\ or a newline", o.LayerDir)
	}
	m := &mounter{o: o, layer: filepath.Clean(o.LayerDir)}
	for _, name := range []string{mergedName, fuseName} {
		if err := removeAt(m.layer, name); err != nil {
			return nil, fmt.Errorf("removing leftover %s: %w", m.path(name), err)
		}
	}
	// Only what is used: merged, and fuse for a mount program (each
	// directory made costs 0.7-1 ms on a slow disk).
	made := []string{mergedName}
	if l.Driver != DriverVFS && l.Program != "" {
		made = append(made, fuseName)
	}
	for _, name := range made {
		if err := os.Mkdir(m.path(name), 0o700); err != nil {
			return nil, fmt.Errorf("making layer: %w", err)
		}
	}
	mode := ModeDirect
	var err error
	switch {
	case l.Driver == DriverVFS:
		err = m.bindLayer(l.Upper)
	case l.Program != "":
		mode = ModeFuse
		err = m.fuseLayers(l)
	default:
		if err := clearVolatile(l.Work); err != nil {
			return nil, err
		}
		err = m.kernelLayers(l, l.Volatile)
		if err != nil && l.Volatile && errors.Is(err, unix.EINVAL) && strings.Contains(why(err), "volatile") {
			err = m.kernelLayers(l, false)
		}
	}
	if err != nil {
		return nil, err
	}
	merged := m.path(mergedName)
	if err := unix.Mount("", merged, "", unix.MS_PRIVATE, ""); err != nil {
		return nil, fmt.Errorf("making %s private: %w", merged, err)
	}
	return &Root{Path: merged, Mode: mode, Upper: l.Upper}, nil
}

// clearVolatile removes the mark a volatile overlay leaves in its work
// directory (work/incompat/volatile), with which the kernel refuses to
// mount the layers again ("overlay with incompat feature 'volatile'
// cannot be mounted", EINVAL): the overlay that left it is gone, with
// the mount namespace of the init that made it (a raw init whose program
// failed after its mount, a container killed before it could clean up),
// and the storage container's layer is this container's alone.
func clearVolatile(work string) error {
	if err := os.RemoveAll(filepath.Join(work, "work", "incompat", "volatile")); err != nil {
		return fmt.Errorf("removing the mark of a volatile overlay gone: %w", err)
	}
	return nil
}

// bindLayer binds a vfs container's directory, its complete root.
func (m *mounter) bindLayer(dir string) error {
	if err := unix.Mount(dir, m.path(mergedName), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return &RungError{Mode: ModeDirect, Err: err, Why: fmt.Sprintf("binding the container's layer %s: %v", dir, err), Fix: "check that the image store is readable (sandy doctor, images row)"}
	}
	return nil
}

// kernelLayers mounts the kernel overlay of the storage layers, as the
// store's overlay driver does (userxattr for a rootless user's store,
// trusted.* xattrs for root's: Layers.Trusted), with every
// directory named by an O_PATH fd: the paths need no escaping, and a lower
// list that does not fit one fsconfig string goes one "lowerdir+" at a
// time.
func (m *mounter) kernelLayers(l *Layers, volatile bool) error {
	var fdPaths []string
	open := func(p string) (string, error) {
		f, err := os.OpenFile(p, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		if err != nil {
			return "", fmt.Errorf("opening storage layer: %w", err)
		}
		// Closed when Mount returns: the mount holds the directories.
		m.opened = append(m.opened, f)
		return fdPath(f), nil
	}
	defer m.closeOpened()
	for _, p := range l.Lowers {
		fp, err := open(p)
		if err != nil {
			return err
		}
		fdPaths = append(fdPaths, fp)
	}
	upper, err := open(l.Upper)
	if err != nil {
		return err
	}
	work, err := open(l.Work)
	if err != nil {
		return err
	}
	fsfd, err := unix.Fsopen("overlay", unix.FSOPEN_CLOEXEC)
	if err != nil {
		return kernelOpenError(err)
	}
	defer unix.Close(fsfd)
	set := func(key, val string) error {
		var err error
		if val == "" {
			err = unix.FsconfigSetFlag(fsfd, key)
		} else {
			err = unix.FsconfigSetString(fsfd, key, val)
		}
		if err != nil {
			if key == "lowerdir+" {
				return &RungError{Mode: ModeOverlay, Err: err,
					Why: fmt.Sprintf("the image has %d layers, more than this kernel's overlay takes in one mount option (lowerdir+ needs Linux 6.8): %v", len(l.Lowers), err),
					Fix: "use Linux 6.8 or later, or set mount_program = \"/usr/bin/fuse-overlayfs\" in storage.conf"}
			}
			return m.kernelError(fsfd, fmt.Sprintf("setting overlay option %s", key), err)
		}
		return nil
	}
	key, values := LowerdirPlan(fdPaths)
	for _, v := range values {
		if err := set(key, v); err != nil {
			return err
		}
	}
	opts := [][2]string{{"upperdir", upper}, {"workdir", work}}
	if !l.Trusted {
		opts = append(opts, [2]string{"userxattr", ""})
	}
	for _, kv := range opts {
		if err := set(kv[0], kv[1]); err != nil {
			return err
		}
	}
	if volatile {
		if err := set("volatile", ""); err != nil {
			return err
		}
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return m.kernelError(fsfd, "creating overlay", err)
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, 0)
	if err != nil {
		return m.kernelError(fsfd, "fsmount", err)
	}
	defer unix.Close(mfd)
	target, err := os.OpenFile(m.path(mergedName), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", m.path(mergedName), err)
	}
	defer target.Close()
	if err := unix.MoveMount(mfd, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return &RungError{Mode: ModeOverlay, Why: fmt.Sprintf("moving overlay onto %s: %v", m.path(mergedName), err), Err: err}
	}
	return nil
}

// fuseLayers mounts the storage layers with the store's mount program
// (fuse-overlayfs), in a mount namespace of its own as the fuse rung does,
// then binds its mount on merged.
func (m *mounter) fuseLayers(l *Layers) error {
	if err := checkDevFuse(); err != nil {
		return err
	}
	fuseDir := m.path(fuseName)
	if err := unix.Mount(fuseDir, fuseDir, "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding %s: %w", fuseDir, err)
	}
	if err := unix.Mount("", fuseDir, "", unix.MS_SHARED, ""); err != nil {
		return fmt.Errorf("making %s shared: %w", fuseDir, err)
	}
	opts := "lowerdir=" + strings.Join(l.Lowers, ":") + ",upperdir=" + l.Upper + ",workdir=" + l.Work
	if l.IDMapOptions != "" {
		// The store shifts this container's ids at mount time; the
		// numbers hold in the container's namespace too (images.shiftIDs).
		opts += "," + l.IDMapOptions
	}
	if err := runFuse(l.Program, opts, fuseDir, nil); err != nil {
		return err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(fuseDir, &st); err != nil || st.Type != unix.FUSE_SUPER_MAGIC {
		return &RungError{Mode: ModeFuse, Why: fmt.Sprintf("%s exited 0 but its mount did not reach %s (found %s)", l.Program, fuseDir, magicName(int64(st.Type))), Fix: "see docs/rootfs.md#troubleshooting", Err: err}
	}
	if err := unix.Mount("", fuseDir, "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making %s private: %w", fuseDir, err)
	}
	if err := unix.Mount(fuseDir, m.path(mergedName), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("binding %s on %s: %w", fuseDir, m.path(mergedName), err)
	}
	return nil
}

func (m *mounter) closeOpened() {
	for _, f := range m.opened {
		f.Close()
	}
	m.opened = nil
}
