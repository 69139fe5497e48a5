//go:build linux

package initproc

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path"
	"path/filepath"
	"strings"

	securejoin "github.com/cyphar/filepath-securejoin"
	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/inroot"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/userns"
)

// defaultDevices are the devices every container gets (runtime spec,
// "Default Devices"). A user namespace cannot mknod, so each one is the
// host's device node bind-mounted onto an empty file.
var defaultDevices = []string{"/dev/null", "/dev/zero", "/dev/full", "/dev/random", "/dev/urandom", "/dev/tty"}

func (r *rootfs) hasMount(dest string) (specs.Mount, bool) {
	for _, m := range r.spec.Mounts {
		if path.Clean(m.Destination) == dest {
			return m, true
		}
	}
	return specs.Mount{}, false
}

// setupDev populates /dev: a tmpfs when the config mounts none (so the
// rootfs is never written), the default and configured devices, and the
// standard links.
func (r *rootfs) setupDev() error {
	m, ok := r.hasMount("/dev")
	if ok && parseMountOptions(m.Type, m.Options).bind {
		return nil // the host's /dev (or another tree) as the config asks
	}
	if !ok {
		target, err := r.openDir("/dev")
		if err != nil {
			return err
		}
		err = unix.Mount("tmpfs", procPath(target), "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k")
		target.Close()
		if err != nil {
			return fmt.Errorf("mounting a tmpfs on /dev: %w", err)
		}
	}
	for _, d := range defaultDevices {
		if err := r.bindDevice(d, d); err != nil {
			return err
		}
	}
	_, devpts := r.hasMount("/dev/pts")
	for _, d := range r.spec.Linux.Devices {
		if devpts && path.Clean("/"+d.Path) == "/dev/ptmx" {
			// The link to the container's own devpts below is /dev/ptmx,
			// as runc skips it in linux.devices.
			continue
		}
		if err := r.configDevice(d); err != nil {
			return err
		}
	}
	links := r.devLinks()
	dev, err := r.openDir("/dev")
	if err != nil {
		return err
	}
	defer dev.Close()
	for _, l := range links {
		name := path.Base(l[1])
		if name == "ptmx" {
			_ = unix.Unlinkat(int(dev.Fd()), name, 0)
		}
		if err := unix.Symlinkat(l[0], int(dev.Fd()), name); err != nil && !errors.Is(err, unix.EEXIST) {
			return fmt.Errorf("linking %s: %w", l[1], err)
		}
	}
	return nil
}

// devLinks are the links setupDev makes in /dev: target, link.
func (r *rootfs) devLinks() [][2]string {
	links := [][2]string{
		{"/proc/self/fd", "/dev/fd"}, {"/proc/self/fd/0", "/dev/stdin"},
		{"/proc/self/fd/1", "/dev/stdout"}, {"/proc/self/fd/2", "/dev/stderr"},
	}
	if _, ok := r.hasMount("/proc"); ok {
		links = append(links, [2]string{"/proc/kcore", "/dev/core"})
	}
	if _, devpts := r.hasMount("/dev/pts"); devpts {
		links = append(links, [2]string{"pts/ptmx", "/dev/ptmx"})
	}
	return links
}

// bindDevice bind-mounts the host device hostPath onto dest in the root.
func (r *rootfs) bindDevice(hostPath, dest string) error {
	target, err := r.openFile(dest)
	if err != nil {
		return fmt.Errorf("%s: %w", dest, err)
	}
	defer target.Close()
	if err := r.checkInRoot(target, dest); err != nil {
		return err
	}
	if err := unix.Mount(hostPath, procPath(target), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mounting %s onto %s: %w", hostPath, dest, err)
	}
	return nil
}

// configDevice makes a linux.devices entry. In the initial user namespace
// (sandy run by root, with no user namespace in the config) it is a new
// node, as runc makes it; in a user namespace mknod(2) of a device is
// refused, so only a host device with the same path and numbers can be
// bind-mounted in.
func (r *rootfs) configDevice(d specs.LinuxDevice) error {
	if !userns.InUserNS() {
		return r.mknodDevice(d)
	}
	var st unix.Stat_t
	if err := unix.Stat(d.Path, &st); err != nil {
		return fmt.Errorf("linux.devices %s: a user namespace cannot create device nodes, and the host has none at %s: %w", d.Path, d.Path, err)
	}
	if unix.Major(st.Rdev) != uint32(d.Major) || unix.Minor(st.Rdev) != uint32(d.Minor) {
		return fmt.Errorf("linux.devices %s: the host's %s is %d:%d, the config asks for %d:%d (a user namespace cannot create device nodes)",
			d.Path, d.Path, unix.Major(st.Rdev), unix.Minor(st.Rdev), d.Major, d.Minor)
	}
	return r.bindDevice(d.Path, d.Path)
}

// mknodDevice creates the device node d in the root, resolved in-root
// (its parent directory is made as needed) and never following a symlink
// at its last component. An existing node is kept, as runc keeps it.
func (r *rootfs) mknodDevice(d specs.LinuxDevice) error {
	var typ uint32
	switch d.Type {
	case "c", "u":
		typ = unix.S_IFCHR
	case "b":
		typ = unix.S_IFBLK
	case "p":
		typ = unix.S_IFIFO
	default:
		return fmt.Errorf("linux.devices %s: unknown type %q (want c, b, u or p)", d.Path, d.Type)
	}
	perm := uint32(0o666)
	if d.FileMode != nil {
		perm = uint32(*d.FileMode & 0o7777)
	}
	dir, base := path.Split(path.Clean("/" + d.Path))
	parent, err := r.openDir(dir)
	if err != nil {
		return fmt.Errorf("linux.devices %s: %w", d.Path, err)
	}
	defer parent.Close()
	if err := r.checkInRoot(parent, dir); err != nil {
		return err
	}
	pfd := int(parent.Fd())
	err = unix.Mknodat(pfd, base, typ|perm, int(unix.Mkdev(uint32(d.Major), uint32(d.Minor))))
	if errors.Is(err, unix.EEXIST) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("linux.devices %s: mknod: %w", d.Path, err)
	}
	// mknod(2) applies the umask: set the mode the config asks for.
	if err := unix.Fchmodat(pfd, base, perm, 0); err != nil {
		return fmt.Errorf("linux.devices %s: chmod: %w", d.Path, err)
	}
	uid, gid := -1, -1
	if d.UID != nil {
		uid = int(*d.UID)
	}
	if d.GID != nil {
		gid = int(*d.GID)
	}
	if err := unix.Fchownat(pfd, base, uid, gid, unix.AT_SYMLINK_NOFOLLOW); err != nil {
		return fmt.Errorf("linux.devices %s: chown: %w", d.Path, err)
	}
	return nil
}

// openPty opens a new pty pair from ptmx, an O_PATH handle on a devpts
// instance's ptmx. The slave comes from TIOCGPTPEER, with no path lookup in
// the container's /dev/pts, which the container could otherwise race
// (kernel 4.13+).
func openPty(ptmx *os.File) (master, slave *os.File, err error) {
	master, err = pathrs.Reopen(ptmx, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if err != nil {
		return nil, nil, fmt.Errorf("opening /dev/pts/ptmx: %w", err)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(master.Fd()), &st); err != nil || st.Mode&unix.S_IFMT != unix.S_IFCHR {
		master.Close()
		return nil, nil, errors.New("/dev/pts/ptmx is not a character device")
	}
	if err := unix.IoctlSetPointerInt(int(master.Fd()), unix.TIOCSPTLCK, 0); err != nil {
		master.Close()
		return nil, nil, fmt.Errorf("unlocking the pty: %w", err)
	}
	fd, _, errno := unix.Syscall(unix.SYS_IOCTL, master.Fd(), unix.TIOCGPTPEER, unix.O_RDWR|unix.O_NOCTTY|unix.O_CLOEXEC)
	if errno != 0 {
		master.Close()
		return nil, nil, fmt.Errorf("opening the pty slave: %w", errno)
	}
	return master, os.NewFile(fd, "console"), nil
}

// preparePty gives a new pty the process's window size
// (process.consoleSize, when both its sides are set) and hands the slave to
// the process's user, so that it can use its terminal; the group stays the
// one devpts gave it (its gid= option). As runc does, a chown the kernel
// refuses (the pty's owner or the uid not mapped, a read-only devpts) leaves
// the owner as it is.
func preparePty(slave *os.File, p *specs.Process) error {
	if b := p.ConsoleSize; b != nil && b.Height != 0 && b.Width != 0 {
		ws := &unix.Winsize{Row: uint16(b.Height), Col: uint16(b.Width)}
		if err := unix.IoctlSetWinsize(int(slave.Fd()), unix.TIOCSWINSZ, ws); err != nil {
			return fmt.Errorf("setting the pty's size to process.consoleSize: %w", err)
		}
	}
	err := unix.Fchown(int(slave.Fd()), int(p.User.UID), -1)
	if err != nil && !errors.Is(err, unix.EINVAL) && !errors.Is(err, unix.EPERM) && !errors.Is(err, unix.EROFS) {
		return fmt.Errorf("giving the pty to uid %d: %w", p.User.UID, err)
	}
	return nil
}

// setupConsole allocates the container's pty from its own devpts
// instance, binds the slave onto /dev/console and sends the master to the
// host side.
func (r *rootfs) setupConsole() error {
	if !r.spec.Process.Terminal {
		return nil
	}
	ptmx, err := inroot.Open(r.root, "/dev/pts/ptmx")
	if err != nil {
		return fmt.Errorf("process.terminal needs a devpts mount on /dev/pts: %w", err)
	}
	master, slave, err := openPty(ptmx)
	ptmx.Close()
	if err != nil {
		return err
	}
	defer master.Close()
	r.console = slave
	if err := preparePty(slave, r.spec.Process); err != nil {
		return err
	}
	target, err := r.openFile("/dev/console")
	if err != nil {
		return err
	}
	defer target.Close()
	if err := unix.Mount(procPath(r.console), procPath(target), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mounting the pty onto /dev/console: %w", err)
	}
	return r.conn.Send(MsgPty, nil, int(master.Fd()))
}

// writeResolvConf gives the container the resolver, hosts and hostname
// files the network set-up asked for: each a file in the writable root layer if there is one, else a
// read-only bind of a file in the layer directory. The bundle is never
// written.
func (r *rootfs) writeResolvConf() error {
	if r.cfg.ResolvConf != "" {
		if err := r.provideFile("/etc/resolv.conf", r.cfg.ResolvConf); err != nil {
			return err
		}
	}
	if r.cfg.Hosts != "" {
		if err := r.provideFile("/etc/hosts", r.cfg.Hosts); err != nil {
			return err
		}
	}
	if r.cfg.Hosts != "" && r.spec.Hostname != "" {
		return r.provideFile("/etc/hostname", r.spec.Hostname+"\n")
	}
	return nil
}

// provideFile gives the container the file dest with content: written
// into a writable layer, else bind-mounted read-only from the layer
// directory (a read-only root, or the bundle's own rootfs, which sandy does
// not write).
func (r *rootfs) provideFile(dest, content string) error {
	if !r.readonly && !r.direct {
		return r.writeInRoot(dest, content)
	}
	if r.cfg.LayerDir == "" {
		return fmt.Errorf("%s: no layer directory to hold it", dest)
	}
	src := path.Join(r.cfg.LayerDir, strings.ReplaceAll(strings.TrimPrefix(dest, "/"), "/", "_"))
	if err := os.WriteFile(src, []byte(content), 0o644); err != nil {
		return err
	}
	target, err := r.openFile(dest)
	if err != nil {
		if errors.Is(err, fs.ErrNotExist) || errors.Is(err, unix.EROFS) {
			return fmt.Errorf("%s: %w", dest, err)
		}
		if r.direct {
			return directRootHint(dest, err)
		}
		return err
	}
	defer target.Close()
	if err := r.checkInRoot(target, dest); err != nil {
		return err
	}
	if err := unix.Mount(src, procPath(target), "", unix.MS_BIND, ""); err != nil {
		return err
	}
	return r.remount(dest, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, 0)
}

// directRootHint explains a file sandy must create in the bundle's own
// rootfs (--rootfs-mode=direct: the mountpoint of the read-only bind of
// /etc/resolv.conf, say) and may not: the container's root, which creates
// it, may not write the directory (a rootfs owned by the host's root,
// outside the container's map).
func directRootHint(dest string, err error) error {
	if !errors.Is(err, unix.EACCES) && !errors.Is(err, unix.EPERM) {
		return err
	}
	return fmt.Errorf("%w\nhint: with --rootfs-mode=direct the container runs on the bundle's rootfs itself, and the container's root may not create %s in it (the rootfs is not writable by the container's root); fix: run without --rootfs-mode=direct (the default private layer), chown the rootfs to the container's root, or use --network=none, which writes no /etc files (docs/troubleshooting.md#direct-rootfs-not-writable)", err, dest)
}

// writeInRoot writes a regular file into the writable root layer. A
// symlink at dest (e.g. resolv.conf pointing into /run) is replaced, never
// followed, so the write stays inside the root.
func (r *rootfs) writeInRoot(dest, content string) error {
	dir, base := path.Split(path.Clean(dest))
	parent, err := r.openDir(dir)
	if err != nil {
		return err
	}
	defer parent.Close()
	pfd := int(parent.Fd())
	// parent is an O_PATH handle: reopen it as a real directory fd.
	dfd, err := unix.Openat(pfd, ".", unix.O_RDONLY|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(dfd)
	if err := unix.Unlinkat(dfd, base, 0); err != nil && !errors.Is(err, unix.ENOENT) {
		return fmt.Errorf("replacing %s: %w", dest, err)
	}
	fd, err := unix.Openat(dfd, base, unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0o644)
	if err != nil {
		return fmt.Errorf("writing %s: %w", dest, err)
	}
	f := os.NewFile(uintptr(fd), dest)
	defer f.Close()
	if _, err := f.WriteString(content); err != nil {
		return fmt.Errorf("writing %s: %w", dest, err)
	}
	return nil
}

// mountRootLayer makes r.path, the root the container will see: the
// overlay package's copy-on-write layer over the bundle's rootfs (or the
// rung --rootfs-mode forces), so the bundle is never written. Every path
// the init will mount onto is passed along, so that a read-only root still
// has its mountpoints (in a stub layer, never in the bundle).
func (r *rootfs) mountRootLayer() error {
	mode, err := overlay.ParseMode(r.cfg.RootfsMode)
	if err != nil {
		return err
	}
	root, err := overlay.Mount(overlay.Options{
		Lower:       r.cfg.Rootfs,
		LayerDir:    r.cfg.LayerDir,
		Mode:        mode,
		Readonly:    r.spec.Root.Readonly,
		Mountpoints: r.mountpoints(),
		Warn:        func(msg string) { _ = r.conn.Send(MsgWarn, msg) },
		Layers:      r.cfg.Layers,
	})
	if err != nil {
		return err
	}
	r.path = root.Path
	r.readonly = root.Readonly
	// An image container's root is its own storage layer: written
	// directly, as the direct rung's (the files sandy provides are bound,
	// so that commit does not take them into the image).
	r.direct = root.Mode == overlay.ModeDirect || r.cfg.Layers != nil
	return r.conn.Send(MsgRootfs, string(root.Mode))
}

// resolveInLower follows the symlinks of the container path unsafePath in
// the bundle's rootfs with chroot semantics, for the overlay package to
// make the mountpoint where the mount will land: a tmpfs on /conf/stack
// with /conf -> /real/conf needs /real/conf/stack in a read-only root
// (runc mounts.bats, "tmpfs mount with absolute symlink"). It only names a
// stub to create in sandy's own layer: the mount itself is resolved again
// with fds, in the root (openDir), and checked (checkInRoot), so a rootfs
// that changes meanwhile cannot redirect it.
func (r *rootfs) resolveInLower(unsafePath string) string {
	full, err := securejoin.SecureJoin(r.cfg.Rootfs, unsafePath)
	if err != nil {
		return unsafePath
	}
	rel, err := filepath.Rel(r.cfg.Rootfs, full)
	if err != nil || rel == ".." || strings.HasPrefix(rel, "../") {
		return unsafePath
	}
	return "/" + rel
}

// mountpoints lists the container paths the init mounts onto.
func (r *rootfs) mountpoints() []overlay.Mountpoint {
	var mps []overlay.Mountpoint
	for _, m := range r.spec.Mounts {
		file := false
		if parseMountOptions(m.Type, m.Options).bind {
			src := m.Source
			if !path.IsAbs(src) {
				src = path.Join(r.cfg.Bundle, src)
			}
			if fi, err := os.Stat(src); err == nil && !fi.IsDir() {
				file = true
			}
		}
		mps = append(mps, overlay.Mountpoint{Path: r.resolveInLower(m.Destination), File: file})
	}
	if _, ok := r.hasMount("/dev"); !ok {
		mps = append(mps, overlay.Mountpoint{Path: "/dev"})
	}
	if r.cfg.ResolvConf != "" {
		mps = append(mps, overlay.Mountpoint{Path: "/etc/resolv.conf", File: true})
	}
	if r.cfg.Hosts != "" {
		mps = append(mps, overlay.Mountpoint{Path: "/etc/hosts", File: true}, overlay.Mountpoint{Path: "/etc/hostname", File: true})
	}
	mps = append(mps, overlay.Mountpoint{Path: r.spec.Process.Cwd})
	return mps
}
