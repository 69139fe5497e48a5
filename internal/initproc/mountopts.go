package initproc

import (
	"fmt"
	"sort"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
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
	// attrSet and attrClr are MOUNT_ATTR_* attributes applied with
	// mount_setattr(2) AT_RECURSIVE after the mount: the r* options
	// ("rro", "rnosuid", ...) that reach every submount of a bind.
	attrSet, attrClr uint64
	// idmap is "idmap" or "ridmap" when the config asks for an idmapped
	// mount, which sandy refuses (see refuseIdmap).
	idmap string
	// tmpcopyup: fill a new tmpfs with what the directory it covers held.
	tmpcopyup bool
	// copyup and chownup are a volume's first use (podman's copy-up and
	// chown, done by the init inside the user namespace): the bind's
	// directory takes the owner and mode of the directory it covers (the
	// process user's when the image has none there) and, for copyup, its
	// content when the bind's directory is empty.
	copyup, chownup bool
	// rchown is podman's U: everything under the bind goes to the
	// process user (chownTree).
	rchown bool
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

// recAttrOpts are the recursive mount attributes, as runc 1.1 names them
// (mount_setattr(2)); a clear entry removes the attribute.
var recAttrOpts = map[string]struct {
	clear bool
	attr  uint64
}{
	"rro": {false, unix.MOUNT_ATTR_RDONLY}, "rrw": {true, unix.MOUNT_ATTR_RDONLY},
	"rnosuid": {false, unix.MOUNT_ATTR_NOSUID}, "rsuid": {true, unix.MOUNT_ATTR_NOSUID},
	"rnodev": {false, unix.MOUNT_ATTR_NODEV}, "rdev": {true, unix.MOUNT_ATTR_NODEV},
	"rnoexec": {false, unix.MOUNT_ATTR_NOEXEC}, "rexec": {true, unix.MOUNT_ATTR_NOEXEC},
	"rnodiratime": {false, unix.MOUNT_ATTR_NODIRATIME}, "rdiratime": {true, unix.MOUNT_ATTR_NODIRATIME},
	"rrelatime": {false, unix.MOUNT_ATTR_RELATIME}, "rnorelatime": {true, unix.MOUNT_ATTR_RELATIME},
	"rnoatime": {false, unix.MOUNT_ATTR_NOATIME}, "ratime": {true, unix.MOUNT_ATTR_NOATIME},
	"rstrictatime": {false, unix.MOUNT_ATTR_STRICTATIME}, "rnostrictatime": {true, unix.MOUNT_ATTR_STRICTATIME},
	"rnosymfollow": {false, unix.MOUNT_ATTR_NOSYMFOLLOW}, "rsymfollow": {true, unix.MOUNT_ATTR_NOSYMFOLLOW},
}

var propagationOpts = map[string]uintptr{
	"private": unix.MS_PRIVATE, "rprivate": unix.MS_PRIVATE | unix.MS_REC,
	"shared": unix.MS_SHARED, "rshared": unix.MS_SHARED | unix.MS_REC,
	"slave": unix.MS_SLAVE, "rslave": unix.MS_SLAVE | unix.MS_REC,
	"unbindable": unix.MS_UNBINDABLE, "runbindable": unix.MS_UNBINDABLE | unix.MS_REC,
}

// MountOptions lists every mount option the init understands, sorted, for
// `sandy features` (engines such as containerd look for "rro" there before
// they use it). Filesystem data options (mode=, size=, ...) are not listed.
func MountOptions() []string {
	opts := []string{"bind", "rbind", "tmpcopyup", "copyup", "chownup", "rchown", "defaults"}
	for o := range flagOpts {
		opts = append(opts, o)
	}
	for o := range propagationOpts {
		opts = append(opts, o)
	}
	for o := range recAttrOpts {
		opts = append(opts, o)
	}
	sort.Strings(opts)
	return opts
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
		case opt == "idmap", opt == "ridmap":
			o.idmap = opt
		case opt == "tmpcopyup":
			o.tmpcopyup = true
		case opt == "copyup":
			o.copyup = true
		case opt == "chownup":
			o.chownup = true
		case opt == "rchown":
			o.rchown = true
		default:
			if a, ok := recAttrOpts[opt]; ok {
				o.addAttr(a.attr, a.clear)
				continue
			}
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

// refuseOptions rejects the options sandy cannot honour, rather than run
// the container with less than the config asks for.
func refuseOptions(m specs.Mount, o mountOpts) error {
	if o.idmap != "" {
		return fmt.Errorf("option %q: an idmapped mount needs CAP_SYS_ADMIN in the initial user namespace (mount_setattr(2) MOUNT_ATTR_IDMAP on a host filesystem), which a rootless container's init does not have; fix: remove %q and give the files owners inside the container's id map (docs/troubleshooting.md#idmap)", o.idmap, o.idmap)
	}
	if o.tmpcopyup && m.Type != "tmpfs" {
		return fmt.Errorf("option \"tmpcopyup\" is for tmpfs mounts, not %q", m.Type)
	}
	if (o.copyup || o.chownup) && !o.bind {
		return fmt.Errorf("options \"copyup\" and \"chownup\" are for bind mounts of a directory (a volume's first use), not %q", m.Type)
	}
	if o.rchown && !o.bind {
		return fmt.Errorf("option \"rchown\" is for bind mounts, not %q", m.Type)
	}
	return nil
}

// addAttr records a recursive attribute; a later option wins over an
// earlier one, as for the plain flags.
func (o *mountOpts) addAttr(attr uint64, clear bool) {
	if clear {
		o.attrSet &^= attr
		o.attrClr |= attr
		return
	}
	o.attrSet |= attr
	o.attrClr &^= attr
	if attr&unix.MOUNT_ATTR__ATIME == attr {
		// The atime mode is one field: setting one needs the whole
		// field in attr_clr (mount_setattr(2), "MOUNT_ATTR__ATIME").
		// MOUNT_ATTR_RELATIME is 0, so this also covers "rrelatime".
		o.attrSet &^= unix.MOUNT_ATTR__ATIME &^ attr
		o.attrClr |= unix.MOUNT_ATTR__ATIME
	}
}
