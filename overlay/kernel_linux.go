//go:build linux

package overlay

import (
	"errors"
	"fmt"
	"os"
	"strings"

	"golang.org/x/sys/unix"
)

// kernel mounts the kernel overlay filesystem on merged.
//
// It uses the new mount API (fsopen(2), fsconfig(2), fsmount(2),
// move_mount(2)) rather than mount(2) for one reason: when the kernel
// refuses, it says why in messages read from the fs context fd, where
// mount(2) only writes them to dmesg, which an unprivileged user often cannot
// read. Overlay in a user namespace needs Linux 5.11 (userxattr), which has
// the new API, so there is no mount(2) path.
//
// Options, and why:
//   - userxattr: keep overlay's own metadata (opaque dirs, redirects) in
//     user.overlay.* xattrs, the only ones an unprivileged mounter may
//     write; required for a mount in a user namespace.
//   - volatile: skip syncing upper; the layer is thrown away with the run
//     and Mount always makes a fresh one, so a crash loses nothing that
//     would have been kept (overlayfs.rst, "Volatile mount"). Retried
//     without it when refused.
//   - lowerdir: the stub layer (if any) over the rootfs, the rootfs named as
//     /proc/self/fd/N of our O_PATH handle, so its path needs no escaping.
func (m *mounter) kernel() (*Root, error) {
	err := m.kernelMount(true)
	if err != nil && errors.Is(err, unix.EINVAL) && strings.Contains(why(err), "volatile") {
		err = m.kernelMount(false)
	}
	if err != nil {
		return nil, err
	}
	return m.root(ModeOverlay, true)
}

func (m *mounter) kernelMount(volatile bool) error {
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
			return m.kernelError(fsfd, fmt.Sprintf("setting overlay option %s", key), err)
		}
		return nil
	}
	if err := m.ensureFor(); err != nil {
		return err
	}
	if err := set("lowerdir", m.lowerdirs(fdPath(m.lower))); err != nil {
		return err
	}
	if !m.o.Readonly {
		if err := set("upperdir", m.path(upperName)); err != nil {
			return err
		}
		if err := set("workdir", m.path(workName)); err != nil {
			return err
		}
		if volatile {
			if err := set("volatile", ""); err != nil {
				return err
			}
		}
	}
	if err := set("userxattr", ""); err != nil {
		return err
	}
	if err := unix.FsconfigCreate(fsfd); err != nil {
		return m.kernelError(fsfd, "creating overlay", err)
	}
	attr := 0
	if m.o.Readonly {
		attr |= unix.MOUNT_ATTR_RDONLY
	}
	mfd, err := unix.Fsmount(fsfd, unix.FSMOUNT_CLOEXEC, attr)
	if err != nil {
		return m.kernelError(fsfd, "fsmount", err)
	}
	defer unix.Close(mfd)
	target, err := os.OpenFile(m.path(mergedName), unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", m.path(mergedName), err)
	}
	defer target.Close()
	// Onto the fd, not the path: the mount lands exactly on the directory
	// we made (STYLE.md: mount onto fds).
	if err := unix.MoveMount(mfd, "", int(target.Fd()), "", unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH); err != nil {
		return &RungError{Mode: ModeOverlay, Why: fmt.Sprintf("moving overlay onto %s: %v", m.path(mergedName), err), Err: err}
	}
	return nil
}

func kernelOpenError(err error) error {
	re := &RungError{Mode: ModeOverlay, Err: err}
	switch {
	case errors.Is(err, unix.ENOSYS):
		re.Why = "the kernel has no fsopen(2) (Linux older than 5.2)"
		re.Fix = "use Linux 5.11 or later"
	case errors.Is(err, unix.ENODEV):
		re.Why = "the kernel has no overlay filesystem"
		re.Fix = "modprobe overlay as root (CONFIG_OVERLAY_FS)"
	case errors.Is(err, unix.EPERM):
		re.Why = "mounting is not permitted in this user namespace (fsopen: operation not permitted)"
		re.Fix = "check that no seccomp or AppArmor policy blocks mounts in user namespaces (Ubuntu: kernel.apparmor_restrict_unprivileged_userns)"
	default:
		re.Why = fmt.Sprintf("fsopen overlay: %v", err)
		re.Fix = "see docs/rootfs.md#troubleshooting"
	}
	return re
}

// kernelError turns a refusal into a RungError that quotes the kernel.
func (m *mounter) kernelError(fsfd int, step string, err error) error {
	return classifyKernel(step, fsMessages(fsfd), fsTypeName(m.layer), fsTypeName(m.o.Lower), err)
}

// classifyKernel names the cause and the fix of an overlay refusal from the
// step that failed and the kernel's own message.
func classifyKernel(step, msg, layerFS, lowerFS string, err error) *RungError {
	re := &RungError{Mode: ModeOverlay, Err: err, Why: fmt.Sprintf("%s: %v", step, err)}
	if msg != "" {
		re.Why += " (kernel: " + msg + ")"
	}
	switch {
	case strings.HasSuffix(step, "userxattr"):
		re.Why = "the kernel does not know overlay's userxattr option (Linux older than 5.11)"
		re.Fix = "use Linux 5.11 or later"
	case strings.Contains(msg, "upper") || strings.Contains(msg, "workdir") || strings.Contains(msg, "d_type"):
		re.Why = fmt.Sprintf("the kernel refuses the layer dir on %s as overlay upper (%s)", layerFS, msg)
		re.Fix = "put the state root on tmpfs, ext4, xfs or btrfs (--root DIR, or XDG_RUNTIME_DIR)"
	case strings.Contains(msg, "lower"):
		re.Why = fmt.Sprintf("the kernel refuses the rootfs on %s as overlay lower (%s)", lowerFS, msg)
		re.Fix = "move the bundle to a local filesystem"
	default:
		re.Fix = "see docs/rootfs.md#troubleshooting"
	}
	return re
}

// fsMessages drains the messages the kernel queued on an fs context fd
// (fsopen(2), "Message retrieval interface"). Each read returns one message
// prefixed with "e ", "w " or "i ".
func fsMessages(fd int) string {
	var msgs []string
	buf := make([]byte, 1024)
	for range 16 {
		n, err := unix.Read(fd, buf)
		if err != nil || n <= 0 {
			break
		}
		s := strings.TrimSpace(string(buf[:n]))
		if len(s) > 2 && s[1] == ' ' {
			s = s[2:]
		}
		msgs = append(msgs, s)
	}
	return strings.Join(msgs, "; ")
}

// fsTypeName names the filesystem p is on, for messages.
func fsTypeName(p string) string {
	var st unix.Statfs_t
	if err := unix.Statfs(p, &st); err != nil {
		return "an unknown filesystem"
	}
	return magicName(int64(st.Type))
}

func magicName(magic int64) string {
	switch magic {
	case unix.TMPFS_MAGIC:
		return "tmpfs"
	case unix.EXT4_SUPER_MAGIC:
		return "ext4"
	case unix.XFS_SUPER_MAGIC:
		return "xfs"
	case unix.BTRFS_SUPER_MAGIC:
		return "btrfs"
	case unix.OVERLAYFS_SUPER_MAGIC:
		return "overlayfs"
	case unix.FUSE_SUPER_MAGIC:
		return "fuse"
	case unix.NFS_SUPER_MAGIC:
		return "nfs"
	case 0x2fc12fc1:
		return "zfs"
	case unix.V9FS_MAGIC:
		return "9p"
	case unix.SQUASHFS_MAGIC:
		return "squashfs"
	}
	return fmt.Sprintf("filesystem 0x%x", magic)
}
