package overlay

import (
	"fmt"
	"io/fs"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultScanLimit is how many entries the lifecycle lets ScanOwners look
// at before a container starts. The scan costs one fstatat(2) per entry,
// 1–3 µs each with a warm cache (docs/rootfs.md#numbers): 1024 entries
// cover a busybox or alpine root whole (a few hundred entries), and the
// top of a Debian root (/, then /etc, /usr, /var and the other top
// directories' entries: where a container writes), for 1–4 ms at most. A
// whole Debian root (30k–60k entries) would cost 0.1–1 s: more than the
// rest of the start.
const DefaultScanLimit = 1024

// OwnerReport counts rootfs entries owned by ids the container's maps do
// not cover. Inside the container they show as the overflow id (65534,
// "nobody"), read fine, but cannot be written, chmod'ed or copied up: the
// container has no capability over an id it cannot name.
type OwnerReport struct {
	Rootfs   string // the scanned directory, as given
	Count    int    // entries with an unmapped owner or group
	Checked  int    // entries looked at, the rootfs itself included
	Complete bool   // the whole tree was looked at (false: stopped at the limit)
	Example  string // the first unmapped entry found, as a container path
	UID      int    // its owner, as seen from the host
	GID      int    // its group, as seen from the host

	// RootUID and RootGID are the host ids of the container's root (the
	// owner a `chown -R` should give the tree), -1 when the maps have no
	// container id 0.
	RootUID, RootGID int
}

// Warning is the one line to print for r, or "" when there is nothing to
// say: what was found, what it means inside the container, and the fix.
func (r *OwnerReport) Warning() string {
	if r == nil || r.Count == 0 {
		return ""
	}
	found := fmt.Sprintf("%d entries are", r.Count)
	if !r.Complete {
		found = fmt.Sprintf("%d of the first %d entries checked are", r.Count, r.Checked)
	}
	chown := ""
	if r.RootUID >= 0 && r.RootGID >= 0 {
		chown = fmt.Sprintf("as root, chown -R %d:%d %s (the container's root then owns them), or ", r.RootUID, r.RootGID, r.Rootfs)
	}
	return FallbackUnmappedOwners.Line(found, r.Example, r.UID, r.GID, chown, r.Rootfs)
}

// AccessError is returned by ScanOwners when the container could not even
// enter its rootfs: the caller may not search the directory, and its owner
// or group is outside the container's id map, so the container's root has
// no capability over it either. Today's alternative is a bare
// "lstat rootfs/proc: permission denied" from inside the init.
type AccessError struct {
	Path      string
	UID, GID  int    // the directory's owner and group, host ids
	Owner     string // the owner's user name, "" when unknown
	Group     string // the group's name, "" when unknown
	Mode      fs.FileMode
	CallerUID int // the uid that was refused

	// RootUID and RootGID are the host ids of the container's root, -1
	// when unknown (as in OwnerReport).
	RootUID, RootGID int
}

func (e *AccessError) Error() string {
	owner, group := fmt.Sprintf("uid %d", e.UID), fmt.Sprintf("gid %d", e.GID)
	if e.Owner != "" {
		owner = fmt.Sprintf("%s (%s)", e.Owner, owner)
	}
	if e.Group != "" {
		group = fmt.Sprintf("group %s (%s)", e.Group, group)
	}
	chown := ""
	if e.RootUID >= 0 && e.RootGID >= 0 {
		chown = fmt.Sprintf("chown -R %d:%d %s (the container's root then owns it), or ", e.RootUID, e.RootGID, e.Path)
	}
	return fmt.Sprintf("rootfs %s: permission denied: it is owned by %s, %s, mode %04o, and neither you (uid %d) nor the container's root, which has no power over ids outside its map, may enter it"+
		"\nhint: as root, %schmod 0755 %s (docs/troubleshooting.md#rootfs-unreadable)",
		e.Path, owner, group, uint32(e.Mode.Perm()), e.CallerUID, chown, e.Path)
}

func (e *AccessError) Unwrap() error { return fs.ErrPermission }

// mapped reports whether the host id is inside one of the ranges; an empty
// map covers nothing.
func mapped(id uint32, m []specs.LinuxIDMapping) bool {
	for _, r := range m {
		if uint64(id) >= uint64(r.HostID) && uint64(id) < uint64(r.HostID)+uint64(r.Size) {
			return true
		}
	}
	return false
}

// hostOf0 returns the host id that container id 0 maps to, or -1.
func hostOf0(m []specs.LinuxIDMapping) int {
	for _, r := range m {
		if r.ContainerID == 0 && r.Size > 0 {
			return int(r.HostID)
		}
	}
	return -1
}
