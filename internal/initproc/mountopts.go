package initproc

import (
	"strings"

	"golang.org/x/sys/unix"
)

// mountOpts is an OCI mount's options split the way mount(2) wants them.
type mountOpts struct {
	flags       uintptr // MS_* flags to set
	clear       uintptr // MS_* flags the options explicitly clear ("rw", "suid", ...)
	propagation uintptr // MS_PRIVATE, MS_SHARED, ... (with MS_REC for the r* forms)
	data        []string
	bind        bool
	recursive   bool
}

var flagOpts = map[string]struct {
	clear bool
	flag  uintptr
}{
	"ro": {false, unix.MS_RDONLY}, "rw": {true, unix.MS_RDONLY},
	"nosuid": {false, unix.MS_NOSUID}, "suid": {true, unix.MS_NOSUID},
	"nodev": {false, unix.MS_NODEV}, "dev": {true, unix.MS_NODEV},
	"noexec": {false, unix.MS_NOEXEC}, "exec": {true, unix.MS_NOEXEC},
	"sync": {false, unix.MS_SYNCHRONOUS}, "async": {true, unix.MS_SYNCHRONOUS},
	"dirsync": {false, unix.MS_DIRSYNC},
	"mand":    {false, unix.MS_MANDLOCK}, "nomand": {true, unix.MS_MANDLOCK},
	"noatime": {false, unix.MS_NOATIME}, "atime": {true, unix.MS_NOATIME},
	"nodiratime": {false, unix.MS_NODIRATIME}, "diratime": {true, unix.MS_NODIRATIME},
	"relatime": {false, unix.MS_RELATIME}, "norelatime": {true, unix.MS_RELATIME},
	"strictatime": {false, unix.MS_STRICTATIME}, "nostrictatime": {true, unix.MS_STRICTATIME},
	"silent": {false, unix.MS_SILENT}, "loud": {true, unix.MS_SILENT},
}

var propagationOpts = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// parseMountOptions splits OCI mount options into flags, propagation and
// filesystem data. typ "bind" makes it a bind mount even without the option.
func parseMountOptions(typ string, options []string) mountOpts {
	var o mountOpts
	if typ == "bind" || typ == "rbind" {
		o.bind = true
		o.recursive = typ == "rbind"
	}
	for _, opt := range options {
		switch {
		case opt == "bind":
			o.bind = true
		case opt == "rbind":
			o.bind, o.recursive = true, true
		case opt == "defaults", opt == "remount", strings.HasPrefix(opt, "x-"):
			// "defaults" means nothing to mount(2); x- options are for
			// userspace helpers.
		case opt == "rro", opt == "rrw", opt == "rnosuid", opt == "rnodev", opt == "rnoexec",
			opt == "idmap", opt == "ridmap", opt == "tmpcopyup":
			// Recursive mount_setattr attributes and idmapped mounts: not
			// applied (idmapped mounts of host filesystems need privilege
			// in the initial user namespace).
		default:
			if f, ok := flagOpts[opt]; ok {
				if f.clear {
					o.flags &^= f.flag
					o.clear |= f.flag
				} else {
					o.flags |= f.flag
					o.clear &^= f.flag
				}
				continue
			}
			if p, ok := propagationOpts[opt]; ok {
				o.propagation = p
				continue
			}
			o.data = append(o.data, opt)
		}
	}
	return o
}

// lockedFlags are the per-mount flags the kernel locks on mounts that a
// less privileged user namespace inherited: a bind remount inside the
// user namespace must keep them, or it fails with EPERM.
const lockedFlags = unix.MS_RDONLY | unix.MS_NOSUID | unix.MS_NODEV | unix.MS_NOEXEC |
	unix.MS_NOATIME | unix.MS_NODIRATIME | unix.MS_RELATIME

// atimeFlags are the mount flags that select the atime mode.
const atimeFlags = unix.MS_NOATIME | unix.MS_RELATIME | unix.MS_STRICTATIME | unix.MS_NODIRATIME

// statfsToMountFlags turns statfs(2) f_flags into MS_* flags.
func statfsToMountFlags(f int64) uintptr {
	var m uintptr
	for st, ms := range map[int64]uintptr{
		unix.ST_RDONLY: unix.MS_RDONLY, unix.ST_NOSUID: unix.MS_NOSUID, unix.ST_NODEV: unix.MS_NODEV,
		unix.ST_NOEXEC: unix.MS_NOEXEC, unix.ST_NOATIME: unix.MS_NOATIME, unix.ST_NODIRATIME: unix.MS_NODIRATIME,
		unix.ST_RELATIME: unix.MS_RELATIME,
	} {
		if f&st != 0 {
			m |= ms
		}
	}
	return m
}
