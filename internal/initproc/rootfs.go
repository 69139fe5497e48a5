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
	"time"

	pathrs "github.com/cyphar/filepath-securejoin/pathrs-lite"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/cgroupv2"
	"github.com/sandy-rt/sandy/internal/inroot"
	"github.com/sandy-rt/sandy/internal/mountflags"
	"github.com/sandy-rt/sandy/userns"
)

// rootfs is the container's root being assembled in the init's mount
// namespace, before pivot_root.
type rootfs struct {
	cfg      *Config
	spec     *specs.Spec
	path     string   // the new root as seen by the init before pivot_root
	readonly bool     // the root layer has no writable upper
	direct   bool     // the root is the bundle's rootfs itself (--rootfs-mode=direct)
	root     *os.File // O_PATH handle on path: every in-root lookup starts here
	console  *os.File // pty slave, when process.terminal
	conn     *userns.Conn
	// selfCopies are the copies of sandy's binary bindSelf made (`run
	// --init`'s /run/sandy-init): a process exec'd from one is sandy's
	// pid 1, which gets the exec fifo (handOn).
	selfCopies []fileID
}

func setupRootfs(cfg *Config, conn *userns.Conn) (*rootfs, error) {
	r := &rootfs{cfg: cfg, spec: cfg.Spec, conn: conn}
	steps := []struct {
		name string
		fn   func() error
	}{
		{"setting the mounts' propagation", r.setMountPropagation},
		{"mounting the root layer", r.mountRootLayer},
		{"opening the root", r.openRoot},
		{"mounting config.json mounts", r.mountAll},
		{"setting up /dev", r.setupDev},
		{"setting up the console", r.setupConsole},
		{"writing /etc/resolv.conf, hosts and hostname", r.writeResolvConf},
		{"setting sysctls", r.setSysctls},
		{"setting the hostname", r.setHostname},
		{"masking paths", r.maskPaths},
		{"making paths read-only", r.readonlyPaths},
		{"creating the working directory", r.createCwd},
		{"making /dev read-only", r.devReadonly},
	}
	for _, s := range steps {
		t0 := time.Now()
		if err := s.fn(); err != nil {
			return nil, fmt.Errorf("%s: %w", s.name, err)
		}
		debugf(cfg, conn, "init: %s: %v", s.name, time.Since(t0))
	}
	return r, nil
}

// debugf sends a --debug line to the host.
func debugf(cfg *Config, conn *userns.Conn, format string, args ...any) {
	if cfg.Debug {
		_ = conn.Send(MsgDebug, fmt.Sprintf(format, args...))
	}
}

// setMountPropagation sets, before anything is mounted, the propagation
// of the mounts the new mount namespace copied from the caller's, as runc
// does (prepareRoot, then rootfsParentMountPrivate):
//
//   - rslave by default: the copies still receive what the host mounts
//     and unmounts later, and send nothing back. A volume bound rslave or
//     rshared then sees what the host mounts under its source after the
//     start (Kubernetes' HostToContainer, which containerd asks with the
//     option rslave and rootfsPropagation rslave); rprivate, which sandy
//     set before, cut every volume off from the host.
//   - linux.rootfsPropagation when set (rootPropagation): rshared keeps
//     the copies in the host's peer groups, so that a volume bound rshared
//     also sends the container's mounts under it back to the host
//     (Bidirectional, for which containerd sets rshared).
//
// Then the mount that holds the layer directory, where the root is
// assembled (and the bundle's rootfs without one), is made private if it
// is shared, so that nothing sandy mounts for the container (the root's
// bind, /proc, /dev, ...) propagates to the host, where / is shared under
// systemd; pivot_root(2) also fails with EINVAL when the new root's parent
// mount is shared.
func (r *rootfs) setMountPropagation() error {
	p := rootPropagation(r.spec.Linux.RootfsPropagation)
	if err := unix.Mount("", "/", "", propagationOpts[p], ""); err != nil {
		return fmt.Errorf("making / %s: %w", p, err)
	}
	dir := r.cfg.LayerDir
	if dir == "" {
		dir = r.cfg.Rootfs
	}
	return makeHoldingMountPrivate(dir)
}

// rootPropagation is the propagation setMountPropagation gives every copied
// mount for linux.rootfsPropagation p: p itself, except unbindable, which
// pivotRoot applies once the root is / (an unbindable tree cannot be
// bound, and the root is a bind), and an empty or unknown p (pivotRoot
// refuses that), which get runc's default, rslave.
func rootPropagation(p string) string {
	if _, ok := propagationOpts[p]; !ok || strings.HasSuffix(p, "unbindable") {
		return "rslave"
	}
	return p
}

// makeHoldingMountPrivate makes the mount that holds dir private when it is
// in a peer group (shared). The mount is found by its ID (statx(2)
// STATX_MNT_ID, Linux 5.8) in mountinfo, and its mount point is checked to
// be that mount before its propagation changes: a mount stacked on the
// same path would take the change instead.
func makeHoldingMountPrivate(dir string) error {
	var st unix.Statx_t
	if err := unix.Statx(unix.AT_FDCWD, dir, unix.AT_STATX_DONT_SYNC, unix.STATX_MNT_ID, &st); err != nil {
		return fmt.Errorf("statx %s: %w", dir, err)
	}
	if st.Mask&unix.STATX_MNT_ID == 0 {
		return fmt.Errorf("statx %s: no mount ID (Linux 5.8 or later needed)", dir)
	}
	info, err := os.ReadFile("/proc/thread-self/mountinfo")
	if err != nil {
		return err
	}
	m, err := mountByID(info, st.Mnt_id)
	if err != nil {
		return fmt.Errorf("finding the mount that holds %s: %w", dir, err)
	}
	if !m.shared {
		return nil
	}
	f, err := os.OpenFile(m.mountPoint, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening the mount point %s of %s: %w", m.mountPoint, dir, err)
	}
	defer f.Close()
	var top unix.Statx_t
	if err := unix.Statx(int(f.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_STATX_DONT_SYNC, unix.STATX_MNT_ID, &top); err != nil {
		return fmt.Errorf("statx %s: %w", m.mountPoint, err)
	}
	if top.Mnt_id != st.Mnt_id {
		return fmt.Errorf("making the mount that holds %s private: another mount is stacked on its mount point %s", dir, m.mountPoint)
	}
	if err := unix.Mount("", procPath(f), "", unix.MS_PRIVATE, ""); err != nil {
		return fmt.Errorf("making the mount %s (holding %s) private: %w", m.mountPoint, dir, err)
	}
	return nil
}

func (r *rootfs) openRoot() error {
	f, err := os.OpenFile(r.path, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	r.root = f
	return nil
}

// procPath is the magic link that names f for mount(2): mounting onto it
// mounts onto the inode f refers to, not onto a path a rename could
// redirect.
func procPath(f *os.File) string { return fmt.Sprintf("/proc/thread-self/fd/%d", f.Fd()) }

// openDir resolves unsafePath inside the root (symlinks resolved as if the
// root were /) and returns an O_PATH handle on it, creating missing
// directories with mode 0755.
func (r *rootfs) openDir(unsafePath string) (*os.File, error) {
	return inroot.MkdirAll(r.root, unsafePath, 0o755)
}

// openFile resolves unsafePath inside the root and returns an O_PATH handle
// on it, creating an empty regular file (and missing parent directories)
// when nothing is there. A dangling symlink at the end is followed inside
// the root and its target created: an image's /etc/resolv.conf may be
// systemd-resolved's link to ../run/systemd/resolve/stub-resolv.conf,
// which refused, made such an image unrunnable but with --network none. Each step is resolved again
// from the root (pathrs: no magic link, nothing above the root), and a
// relative target is read from where its directory really is in the root.
func (r *rootfs) openFile(unsafePath string) (*os.File, error) {
	p := path.Clean("/" + unsafePath)
	for range maxDanglingLinks {
		f, err := inroot.Open(r.root, p)
		if err == nil || !errors.Is(err, fs.ErrNotExist) {
			return f, err
		}
		next, err := r.createFile(p)
		if err != nil {
			return nil, fmt.Errorf("creating %s: %w", unsafePath, err)
		}
		if next == "" {
			return inroot.Open(r.root, p)
		}
		p = next
	}
	return nil, fmt.Errorf("creating %s: more than %d dangling symlinks: %w", unsafePath, maxDanglingLinks, unix.ELOOP)
}

// maxDanglingLinks bounds the dangling symlinks openFile follows (the
// kernel's own bound on a path's symlinks is 40).
const maxDanglingLinks = 40

// createFile creates the empty regular file p (a clean absolute path in
// the root), making its parent directories; when a symlink is in the way
// (dangling: p did not resolve), it returns the link's target as a path
// in the root instead, for the caller to go on with.
func (r *rootfs) createFile(p string) (next string, err error) {
	dir, base := path.Split(p)
	parent, err := r.openDir(dir)
	if err != nil {
		return "", err
	}
	defer parent.Close()
	fd, err := unix.Openat(int(parent.Fd()), base, unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC, 0o644)
	if err == nil {
		unix.Close(fd)
		return "", nil
	}
	if !errors.Is(err, unix.EEXIST) {
		return "", err
	}
	target, lerr := readlinkat(int(parent.Fd()), base)
	if lerr != nil {
		return "", nil // made meanwhile: the caller opens it
	}
	if path.IsAbs(target) {
		return path.Clean(target), nil
	}
	if err := r.checkInRoot(parent, dir); err != nil {
		return "", err
	}
	real, err := os.Readlink(procPath(parent))
	if err != nil {
		return "", err
	}
	return path.Join("/", strings.TrimPrefix(real, r.path), target), nil
}

// checkInRoot verifies that the handle f still names a path inside the
// root: a concurrent rename inside the rootfs must not have moved the
// target out of it between resolving and mounting.
func (r *rootfs) checkInRoot(f *os.File, unsafePath string) error {
	real, err := os.Readlink(procPath(f))
	if err != nil {
		return err
	}
	if real != r.path && !strings.HasPrefix(real, r.path+"/") {
		return fmt.Errorf("%s resolved to %s, outside the container root %s", unsafePath, real, r.path)
	}
	return nil
}

// reopen returns a handle on whatever is now mounted at unsafePath (the
// old handle still names the covered directory).
func (r *rootfs) reopen(unsafePath string) (*os.File, error) {
	f, err := inroot.Open(r.root, unsafePath)
	if err != nil {
		return nil, err
	}
	if err := r.checkInRoot(f, unsafePath); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

func (r *rootfs) mountAll() error {
	for i, m := range r.spec.Mounts {
		if err := r.mountOne(m); err != nil {
			return fmt.Errorf("mounts[%d] (%s on %s): %w", i, m.Type, m.Destination, err)
		}
	}
	return nil
}

func (r *rootfs) mountOne(m specs.Mount) error {
	o := parseMountOptions(m.Type, m.Options)
	if err := refuseOptions(m, o); err != nil {
		return err
	}
	if o.bind && m.Source == SelfBinary {
		return r.bindSelf(m)
	}
	if o.bind {
		return r.bindMount(m, o)
	}
	if m.Type == "proc" || m.Type == "sysfs" {
		if err := r.checkOrdinaryDir(m); err != nil {
			return err
		}
	}
	if isDevTmpfs(m, o) {
		// Mounted writable and filled first (setupDev, setupConsole),
		// made read-only at the end (devReadonly), as runc does.
		o.flags &^= unix.MS_RDONLY
		o.attrSet &^= unix.MOUNT_ATTR_RDONLY
	}
	target, err := r.openDir(m.Destination)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := r.checkInRoot(target, m.Destination); err != nil {
		return err
	}
	data := strings.Join(o.data, ",")
	switch m.Type {
	case "sysfs":
		err = unix.Mount(m.Source, procPath(target), "sysfs", o.flags, data)
		if errors.Is(err, unix.EPERM) || errors.Is(err, unix.EBUSY) {
			// A fresh sysfs needs a network namespace owned by our user
			// namespace; without one, show the host's read-only, with
			// every submount (the host's cgroup hierarchies among them).
			if err := r.bindHostReadonly(m.Destination, target, "/sys", o.flags); err != nil {
				return err
			}
			// Recursive options may add to that, never undo it ("rrw").
			o.attrClr &^= readonlyAttrs
			return r.finishMount(m.Destination, o)
		}
	case "cgroup", "cgroup2":
		if err := r.mountCgroup(m, &o, target); err != nil {
			return err
		}
		return r.finishMount(m.Destination, o)
	case "devpts":
		err = unix.Mount(m.Source, procPath(target), "devpts", o.flags, data)
		if errors.Is(err, unix.EINVAL) && strings.Contains(data, "gid=") {
			// gid=5 (tty) is not mapped under a single-id map.
			err = unix.Mount(m.Source, procPath(target), "devpts", o.flags, dropOption(o.data, "gid="))
		}
	default:
		err = unix.Mount(m.Source, procPath(target), m.Type, o.flags, data)
	}
	if err != nil {
		return mountHint(m.Type, err)
	}
	if o.tmpcopyup {
		if err := r.copyUp(m.Destination, target, hasOption(o.data, "mode=")); err != nil {
			return fmt.Errorf("tmpcopyup: %w", err)
		}
	}
	return r.finishMount(m.Destination, o)
}

// checkOrdinaryDir refuses a proc or sysfs mount whose destination in the
// rootfs is a symlink or anything else that is not a directory, as runc
// does (CVE-2019-19921, CVE-2023-27561): resolved in the root the mount
// would land elsewhere, and tools that check /proc by path (and the
// container's own masked and read-only paths) would miss it.
func (r *rootfs) checkOrdinaryDir(m specs.Mount) error {
	dir, base := path.Split(path.Clean("/" + m.Destination))
	if base == "" {
		return fmt.Errorf("filesystem %q must be mounted on an ordinary directory, not /", m.Type)
	}
	parent, err := inroot.Open(r.root, dir)
	if errors.Is(err, fs.ErrNotExist) {
		return nil // made as a directory below
	}
	if err != nil {
		return err
	}
	defer parent.Close()
	var st unix.Stat_t
	err = unix.Fstatat(int(parent.Fd()), base, &st, unix.AT_SYMLINK_NOFOLLOW)
	if errors.Is(err, unix.ENOENT) {
		return nil
	}
	if err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT != unix.S_IFDIR {
		what := "not a directory"
		if st.Mode&unix.S_IFMT == unix.S_IFLNK {
			what = "a symlink"
		}
		return fmt.Errorf("filesystem %q must be mounted on ordinary directory: %s in the rootfs is %s; fix: make it a directory in the image", m.Type, m.Destination, what)
	}
	return nil
}

// isDevTmpfs reports whether m is the config's own tmpfs on /dev.
func isDevTmpfs(m specs.Mount, o mountOpts) bool {
	return !o.bind && m.Type == "tmpfs" && path.Clean(m.Destination) == "/dev"
}

// devReadonly makes the config's /dev tmpfs read-only once it is filled,
// when its options say "ro" or "rro" (runc's finalizeRootfs): mounted
// read-only from the start, /dev could get no devices, links, /dev/pts or
// console.
func (r *rootfs) devReadonly() error {
	m, ok := r.hasMount("/dev")
	if !ok {
		return nil
	}
	o := parseMountOptions(m.Type, m.Options)
	if !isDevTmpfs(m, o) {
		return nil
	}
	if o.flags&unix.MS_RDONLY != 0 {
		if err := r.remount("/dev", o.flags, o.clear); err != nil {
			return err
		}
	}
	return r.setAttrs("/dev", o.attrSet&unix.MOUNT_ATTR_RDONLY, 0)
}

// finishMount applies what follows the mount itself: the recursive
// attributes, then the propagation.
func (r *rootfs) finishMount(dest string, o mountOpts) error {
	if err := r.setAttrs(dest, o.attrSet, o.attrClr); err != nil {
		return err
	}
	return r.setPropagation(dest, o.propagation)
}

// setAttrs applies MOUNT_ATTR_* attributes to the mount at dest and every
// mount below it, with mount_setattr(2) AT_RECURSIVE (Linux 5.12): unlike
// a bind remount, which changes only the top mount of an rbind, this
// reaches the submounts too ("rro" makes a whole tree read-only). The
// kernel refuses to clear a flag it locked on a mount inherited from a
// more privileged namespace (EPERM): that is an error naming the option.
func (r *rootfs) setAttrs(dest string, set, clr uint64) error {
	if set == 0 && clr == 0 {
		return nil
	}
	f, err := r.reopen(dest)
	if err != nil {
		return err
	}
	defer f.Close()
	attr := unix.MountAttr{Attr_set: set, Attr_clr: clr}
	err = unix.MountSetattr(int(f.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_RECURSIVE, &attr)
	switch {
	case err == nil:
		return nil
	case errors.Is(err, unix.ENOSYS):
		return fmt.Errorf("recursive mount options on %s: mount_setattr: %w (the kernel is older than 5.12); fix: use the non-recursive options (ro, nosuid, ...) or a newer kernel", dest, err)
	case errors.Is(err, unix.EPERM) && clr&unix.MOUNT_ATTR__ATIME != 0:
		return fmt.Errorf("recursive mount options on %s: mount_setattr: %w: the kernel locks the atime mode of mounts from the host, and the options change it; fix: drop the recursive atime option", dest, err)
	case errors.Is(err, unix.EPERM) && clr != 0:
		return fmt.Errorf("recursive mount options on %s: mount_setattr: %w: a submount has a flag from the host that the options clear (%#x), and a user namespace cannot clear it", dest, err, clr)
	case errors.Is(err, unix.EINVAL) && set&unix.MOUNT_ATTR_NOSYMFOLLOW != 0:
		return fmt.Errorf("recursive mount options on %s: mount_setattr: %w (rnosymfollow needs Linux 5.14)", dest, err)
	}
	return fmt.Errorf("recursive mount options on %s: mount_setattr: %w", dest, err)
}

// readonlyAttrs are what a view of a host tree always gets: read-only and
// inert on every submount.
const readonlyAttrs = unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC

// mountCgroup gives the container a cgroup view that cannot change the
// host's hierarchy (CVE-2023-25809: a rootless container could mkdir
// cgroups in its user's delegated tree through a writable view of it).
//
// With a cgroup namespace, a fresh cgroup2 mount: the kernel roots it at
// the namespace's cgroup (cgroup_namespaces(7)), so the container sees
// only its own subtree. It is read-only unless the options say "rw" and
// that cgroup is one sandy made for this container (Config.CgroupOwned):
// otherwise it is the caller's own cgroup, shared with everything the
// user runs there. Without a cgroup namespace, or where the kernel refuses
// a fresh mount (a joined namespace of another owner, cgroup v1), the
// host's /sys/fs/cgroup is bound with every submount read-only, as the
// container already sees its place in it in /proc/self/cgroup.
//
// The recursive options in o may add attributes but never clear the ones
// a read-only view has ("rrw" counts as "rw").
func (r *rootfs) mountCgroup(m specs.Mount, o *mountOpts, target *os.File) error {
	_, cgroupNS := namespace(r.spec, specs.CgroupNamespace)
	askedRW := o.clear&unix.MS_RDONLY != 0 || o.attrClr&unix.MOUNT_ATTR_RDONLY != 0
	writable := askedRW && cgroupNS && r.cfg.CgroupOwned
	if !writable {
		o.attrClr &^= unix.MOUNT_ATTR_RDONLY
	}
	if askedRW && !writable {
		why := "it has no cgroup namespace"
		if cgroupNS {
			why = "its cgroup namespace is not rooted at a cgroup sandy made for it (the cgroup manager is none, or the namespace is joined)"
		}
		_ = r.conn.Send(MsgWarn, cgroupv2.FallbackMountRO.Line(m.Destination, why))
	}
	flags := o.flags | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC
	if !writable {
		flags |= unix.MS_RDONLY
	}
	if cgroupNS {
		err := unix.Mount("cgroup2", procPath(target), "cgroup2", flags, "")
		if err == nil {
			return nil
		}
		if writable {
			return fmt.Errorf("mounting a cgroup2 filesystem: %w", err)
		}
	}
	o.attrClr &^= readonlyAttrs
	return r.bindHostReadonly(m.Destination, target, "/sys/fs/cgroup", o.flags)
}

func hasOption(opts []string, prefix string) bool {
	for _, o := range opts {
		if strings.HasPrefix(o, prefix) {
			return true
		}
	}
	return false
}

func dropOption(opts []string, prefix string) string {
	var out []string
	for _, o := range opts {
		if !strings.HasPrefix(o, prefix) {
			out = append(out, o)
		}
	}
	return strings.Join(out, ",")
}

func mountHint(typ string, err error) error {
	if errors.Is(err, unix.EPERM) {
		// The kernel allows these for a namespace the container's user
		// namespace owns, not for one shared with the host (a rootless
		// engine's hostPID or hostIPC pod).
		if ns, ok := map[string]string{"proc": "pid", "mqueue": "ipc", "sysfs": "network"}[typ]; ok {
			return fmt.Errorf("%w (a %s mount needs a %s namespace that the container's user namespace owns; one shared with the host is not)", err, typ, ns)
		}
		return fmt.Errorf("%w (a %s mount is not allowed in a user namespace)", err, typ)
	}
	if errors.Is(err, unix.ENODEV) {
		return fmt.Errorf("%w (the kernel has no %q filesystem)", err, typ)
	}
	return err
}

// bindMount handles "bind"/"rbind" mounts of a host path.
func (r *rootfs) bindMount(m specs.Mount, o mountOpts) error {
	src := m.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(r.cfg.Bundle, src)
	}
	fi, err := os.Stat(src)
	if err != nil {
		return fmt.Errorf("bind source: %w", err)
	}
	firstUse := o.copyup || o.chownup
	if firstUse && !fi.IsDir() {
		return fmt.Errorf("options \"copyup\" and \"chownup\" need a directory, and %s is not one", src)
	}
	// Whether the image has the directory the volume covers decides whose
	// it becomes on first use: looked at before openDir makes it. A
	// directory on another mount than the root's (a bind or a kernel
	// filesystem mounted before, at a shallower destination) is not the
	// image's: its content is never copied into the volume.
	inImage := false
	if firstUse {
		if f, err := inroot.Open(r.root, m.Destination); err == nil {
			inImage, err = r.onRootMount(f)
			f.Close()
			if err != nil {
				return err
			}
		}
	}
	var target *os.File
	if fi.IsDir() {
		target, err = r.openDir(m.Destination)
	} else {
		target, err = r.openFile(m.Destination)
	}
	if err != nil {
		return err
	}
	defer target.Close()
	if err := r.checkInRoot(target, m.Destination); err != nil {
		return err
	}
	flags := uintptr(unix.MS_BIND)
	if o.recursive {
		flags |= unix.MS_REC
	}
	if err := unix.Mount(src, procPath(target), "", flags, ""); err != nil {
		return fmt.Errorf("bind mounting %s: %w", src, err)
	}
	if firstUse {
		if err := r.volumeFirstUse(m.Destination, target, inImage, o.copyup); err != nil {
			return fmt.Errorf("a volume's first use: %w", err)
		}
	}
	if o.rchown {
		if err := r.chownTree(m.Destination); err != nil {
			return fmt.Errorf("rchown: %w", err)
		}
	}
	if o.flags != 0 || o.clear != 0 {
		if err := r.remount(m.Destination, o.flags, o.clear); err != nil {
			return err
		}
	}
	return r.finishMount(m.Destination, o)
}

// onRootMount reports whether f is on the root layer's own mount (its
// mount ID, statx(2) STATX_MNT_ID), not on one mounted inside the root.
func (r *rootfs) onRootMount(f *os.File) (bool, error) {
	var a, b unix.Statx_t
	for _, x := range []struct {
		f  *os.File
		st *unix.Statx_t
	}{{r.root, &a}, {f, &b}} {
		if err := unix.Statx(int(x.f.Fd()), "", unix.AT_EMPTY_PATH|unix.AT_STATX_DONT_SYNC, unix.STATX_MNT_ID, x.st); err != nil {
			return false, fmt.Errorf("statx %s: %w", x.f.Name(), err)
		}
		if x.st.Mask&unix.STATX_MNT_ID == 0 {
			return false, fmt.Errorf("statx %s: no mount ID (Linux 5.8 or later needed)", x.f.Name())
		}
	}
	return a.Mnt_id == b.Mnt_id, nil
}

// bindHostReadonly bind-mounts the host path src with its submounts onto
// target, the top mount with flags, and makes the whole tree read-only,
// nosuid, nodev and noexec (a bind remount alone would leave the
// submounts as the host has them, writable).
func (r *rootfs) bindHostReadonly(dest string, target *os.File, src string, flags uintptr) error {
	if err := unix.Mount(src, procPath(target), "", unix.MS_BIND|unix.MS_REC, ""); err != nil {
		return fmt.Errorf("bind mounting host %s: %w", src, err)
	}
	if err := r.remount(dest, flags|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, 0); err != nil {
		return err
	}
	return r.setAttrs(dest, readonlyAttrs, 0)
}

// remount applies per-mount flags to the bind mount at dest. Flags the
// kernel locked on the source mount (it came from a more privileged mount
// namespace) are kept, unless the config explicitly clears one, which is
// then an error that names it.
func (r *rootfs) remount(dest string, flags, clear uintptr) error {
	f, err := r.reopen(dest)
	if err != nil {
		return err
	}
	defer f.Close()
	var st unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &st); err != nil {
		return err
	}
	// The raw init's remount (userns.TrapRemount) computes the same
	// (mountflags).
	locked := mountflags.FromStatfs(st.Flags) & mountflags.Locked
	want := mountflags.Remount(st.Flags, flags, clear)
	err = unix.Mount("", procPath(f), "", unix.MS_BIND|unix.MS_REMOUNT|want, "")
	if errors.Is(err, unix.EPERM) && flags&mountflags.Atime != 0 {
		// The kernel locks the atime mode of an inherited mount as a whole
		// (MNT_LOCK_ATIME): keep the source's instead of the one asked for.
		want = mountflags.RemountAtime(st.Flags, want)
		err = unix.Mount("", procPath(f), "", unix.MS_BIND|unix.MS_REMOUNT|want, "")
	}
	if errors.Is(err, unix.EPERM) && clear&locked != 0 {
		return fmt.Errorf("remounting %s: %w: the host mounts it with flags the options clear (%#x), and a user namespace cannot clear them", dest, err, clear&locked)
	}
	if err != nil {
		return fmt.Errorf("remounting %s: %w", dest, err)
	}
	return nil
}

func (r *rootfs) setPropagation(dest string, prop uintptr) error {
	if prop == 0 {
		return nil
	}
	f, err := r.reopen(dest)
	if err != nil {
		return err
	}
	defer f.Close()
	return unix.Mount("", procPath(f), "", prop, "")
}

func (r *rootfs) setSysctls() error {
	for k, v := range r.spec.Linux.Sysctl {
		p := "/proc/sys/" + strings.ReplaceAll(k, ".", "/")
		f, err := inroot.Open(r.root, p)
		if err != nil {
			return fmt.Errorf("%s: %w (is /proc mounted, and is the sysctl namespaced?)", k, err)
		}
		w, err := pathrs.Reopen(f, unix.O_WRONLY|unix.O_CLOEXEC)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", k, err)
		}
		_, err = w.WriteString(v)
		w.Close()
		if err != nil {
			return fmt.Errorf("%s=%s: %w", k, v, err)
		}
	}
	return nil
}

func (r *rootfs) setHostname() error {
	if r.spec.Hostname == "" && r.spec.Domainname == "" {
		return nil
	}
	if _, ok := namespace(r.spec, specs.UTSNamespace); !ok {
		return errors.New("hostname/domainname set, but the container has no uts namespace of its own (add {\"type\": \"uts\"} to linux.namespaces)")
	}
	if r.spec.Hostname != "" {
		if err := unix.Sethostname([]byte(r.spec.Hostname)); err != nil {
			return err
		}
	}
	if r.spec.Domainname != "" {
		if err := unix.Setdomainname([]byte(r.spec.Domainname)); err != nil {
			return err
		}
	}
	return nil
}

// maskPaths hides each path: a read-only empty tmpfs over a directory,
// /dev/null over anything else. Without CAP_SYS_ADMIN (the default
// capability set) the container cannot unmount them.
func (r *rootfs) maskPaths() error {
	for _, p := range r.spec.Linux.MaskedPaths {
		f, err := inroot.Open(r.root, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		err = r.maskOne(f, p)
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
	}
	return nil
}

func (r *rootfs) maskOne(f *os.File, p string) error {
	if err := r.checkInRoot(f, p); err != nil {
		return err
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return err
	}
	if st.Mode&unix.S_IFMT == unix.S_IFDIR {
		return unix.Mount("tmpfs", procPath(f), "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0k,mode=0555")
	}
	return unix.Mount("/dev/null", procPath(f), "", unix.MS_BIND, "")
}

func (r *rootfs) readonlyPaths() error {
	for _, p := range r.spec.Linux.ReadonlyPaths {
		f, err := inroot.Open(r.root, p)
		if errors.Is(err, fs.ErrNotExist) {
			continue
		}
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := r.checkInRoot(f, p); err != nil {
			f.Close()
			return err
		}
		err = unix.Mount(procPath(f), procPath(f), "", unix.MS_BIND|unix.MS_REC, "")
		f.Close()
		if err != nil {
			return fmt.Errorf("%s: %w", p, err)
		}
		if err := r.remount(p, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, 0); err != nil {
			return err
		}
	}
	return nil
}

// createCwd makes process.cwd exist, as runc does.
func (r *rootfs) createCwd() error {
	f, err := r.openDir(r.spec.Process.Cwd)
	if err != nil {
		return fmt.Errorf("%s: %w", r.spec.Process.Cwd, err)
	}
	return f.Close()
}

// pivotRoot makes the assembled root the process's / and detaches the old
// root, with runc's pivot_root(".", ".") trick: no directory has to be
// created in the rootfs to hold the old root (pivot_root(2), "NOTES").
func (r *rootfs) pivotRoot() error {
	oldroot, err := unix.Open("/", unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(oldroot)
	newroot, err := unix.Open(r.path, unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	defer unix.Close(newroot)
	if err := unix.Fchdir(newroot); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	// The old root is now stacked under "." : make it a slave so that the
	// lazy unmount cannot propagate to the host, then detach it.
	if err := unix.Fchdir(oldroot); err != nil {
		return err
	}
	if err := unix.Mount("", ".", "", unix.MS_SLAVE|unix.MS_REC, ""); err != nil {
		return err
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	if err := unix.Chdir("/"); err != nil {
		return err
	}
	r.root.Close()
	r.root = nil
	if r.spec.Root.Readonly {
		if err := remountReadonlyRoot(); err != nil {
			return fmt.Errorf("making / read-only: %w", err)
		}
	}
	if p := r.spec.Linux.RootfsPropagation; p != "" {
		flags, ok := propagationOpts[p]
		if !ok {
			return fmt.Errorf("linux.rootfsPropagation: unknown value %q", p)
		}
		if err := unix.Mount("", "/", "", flags, ""); err != nil {
			return fmt.Errorf("linux.rootfsPropagation %s: %w", p, err)
		}
	}
	return nil
}

func remountReadonlyRoot() error {
	var st unix.Statfs_t
	if err := unix.Statfs("/", &st); err != nil {
		return err
	}
	flags := mountflags.Remount(st.Flags, unix.MS_RDONLY, 0)
	return unix.Mount("", "/", "", unix.MS_BIND|unix.MS_REMOUNT|flags, "")
}

func namespace(s *specs.Spec, typ specs.LinuxNamespaceType) (specs.LinuxNamespace, bool) {
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == typ {
			return ns, true
		}
	}
	return specs.LinuxNamespace{}, false
}
