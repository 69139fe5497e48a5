package overlay

import (
	"fmt"
	"io/fs"
	"path/filepath"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// OwnerReport counts rootfs entries owned by ids the container's maps do
// not cover. Inside the container they show as the overflow id (65534,
// "nobody"), read fine, but cannot be written, chmod'ed or copied up: the
// container has no capability over an id it cannot name.
type OwnerReport struct {
	Count   int    // entries with an unmapped owner or group
	Example string // one of them, as a container path
	UID     int    // its owner, as seen from the host
	GID     int    // its group, as seen from the host
}

// ScanOwners walks rootfs on the host side, where lstat shows host ids, and
// reports the entries whose owner or group no range of uidMap/gidMap covers
// (HostID..HostID+Size). It is precise only there: inside the user namespace
// an unmapped id and a mapped 65534 look the same. It reads the tree and
// costs one lstat per entry, so the caller decides when to pay for it (for
// instance only with the single-id map, where any file not owned by the user
// is unmapped). Empty maps mean no user namespace: nothing is reported.
func ScanOwners(rootfs string, uidMap, gidMap []specs.LinuxIDMapping) (*OwnerReport, error) {
	r := &OwnerReport{}
	if len(uidMap) == 0 && len(gidMap) == 0 {
		return r, nil
	}
	err := filepath.WalkDir(rootfs, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := d.Info()
		if err != nil {
			return err
		}
		st, ok := fi.Sys().(*syscall.Stat_t)
		if !ok {
			return nil
		}
		if mapped(st.Uid, uidMap) && mapped(st.Gid, gidMap) {
			return nil
		}
		r.Count++
		if r.Example == "" {
			rel, _ := filepath.Rel(rootfs, p)
			r.Example, r.UID, r.GID = filepath.Join("/", rel), int(st.Uid), int(st.Gid)
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("scanning owners in %s: %w", rootfs, err)
	}
	return r, nil
}

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

// Warning is the one line to print for r, or "" when there is nothing to
// say.
func (r *OwnerReport) Warning() string {
	if r == nil || r.Count == 0 {
		return ""
	}
	return fmt.Sprintf("rootfs: %d entries are owned by ids outside the container's id map (e.g. %s, host uid %d gid %d): the container sees them as nobody (65534) and cannot change them; fix: run with the full subordinate id range of /etc/subuid and /etc/subgid, or unpack the bundle with the same map", r.Count, r.Example, r.UID, r.GID)
}
