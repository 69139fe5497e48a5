package containers

import (
	"errors"
	"fmt"
	"math"
	"path"
	"slices"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/idmap"
)

// idMaps writes the keep-id maps; without keep-id the spec has none and
// the runtime builds its automatic maps (0 → the caller, 1..N → the
// subordinate ranges), which is podman's default rootless map.
func (g *gen) idMaps() error {
	if !g.keepID {
		return nil
	}
	if err := checkKeepID(g.h); err != nil {
		return err
	}
	uids, err := keepIDMap(g.h.UID, g.h.SubUIDs)
	if err != nil {
		return fmt.Errorf("uid map: %w", err)
	}
	gids, err := keepIDMap(g.h.GID, g.h.SubGIDs)
	if err != nil {
		return fmt.Errorf("gid map: %w", err)
	}
	g.s.Linux.UIDMappings, g.s.Linux.GIDMappings = uids, gids
	// gid=5 on devpts depends on the map, known only now.
	for i, m := range g.s.Mounts {
		if m.Type == "devpts" && !idmap.Mapped(gids, 5) {
			g.s.Mounts[i].Options = slices.DeleteFunc(slices.Clone(m.Options), func(o string) bool { return o == "gid=5" })
		}
	}
	return nil
}

// checkKeepID refuses keep-id where podman does (a root caller) and
// where it has nothing to map the image's other ids to.
func checkKeepID(h Host) error {
	if h.UID == 0 {
		return errors.New("--userns=keep-id: keep-id is only supported in rootless mode (the caller is root)")
	}
	if len(h.SubUIDs) == 0 || len(h.SubGIDs) == 0 {
		return errors.New("--userns=keep-id needs subordinate ids: add ranges for the user to /etc/subuid and /etc/subgid (docs/troubleshooting.md#subuid)")
	}
	return nil
}

// keepIDStoreMaps are the maps the storage container of a keep-id run is
// made with: podman's own (pkg/util getRootlessKeepIDMapping), so that
// the store treats the container as podman's. The store's files are owned
// as seen from its namespace (the image's root is the caller), and the
// container's namespace maps the caller to its own uid, not to 0: storage
// gives such a container an id-mapped copy of the image's top layer
// (store.go imageTopLayerForMapping), made once per image and map and
// kept with the image, shared with podman's keep-id containers of the same
// user (it is found by the map, which is why sandy's must equal podman's).
// keepIDMap is this map composed with the store's namespace.
func keepIDStoreMaps(h Host) (uids, gids []specs.LinuxIDMapping, err error) {
	if err := checkKeepID(h); err != nil {
		return nil, nil, err
	}
	return keepIDStoreMap(h.UID, subTotal(h.SubUIDs)), keepIDStoreMap(h.GID, subTotal(h.SubGIDs)), nil
}

// keepIDStoreMap is podman's keep-id map relative to its rootless
// namespace, for own ≠ 0 and N subordinate ids (the namespace has ids
// 0..N):
//
//	container 0 .. min(own,N)-1 → namespace 1 .. min(own,N)
//	container own               → namespace 0 (the caller)
//	container own+1 .. N        → namespace own+1 .. N
func keepIDStoreMap(own uint32, total uint64) []specs.LinuxIDMapping {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1, Size: uint32(min(uint64(own), total))}}
	m = append(m, specs.LinuxIDMapping{ContainerID: own, HostID: 0, Size: 1})
	if total > uint64(own) {
		n := min(total-uint64(own), math.MaxUint32-uint64(own)-1)
		m = append(m, specs.LinuxIDMapping{ContainerID: own + 1, HostID: own + 1, Size: uint32(n)})
	}
	return m
}

func subTotal(ranges []idmap.SubIDRange) uint64 {
	var total uint64
	for _, r := range ranges {
		total += uint64(r.Count)
	}
	return total
}

// storeMaps are the storage container's id maps for o, relative to the
// image store's user namespace (0 → the caller, k → the k-th subordinate
// id), as podman passes them to containers/storage (IDMappingOptions):
// podman's keep-id maps for --userns=keep-id, none (the store's own)
// otherwise. Errors are keep-id's refusals (a root caller, no
// subordinate ids), before anything is made.
func storeMaps(o Options) (uids, gids []specs.LinuxIDMapping, err error) {
	if o.Userns != "keep-id" {
		return nil, nil, nil
	}
	h, err := CallerHost("", "")
	if err != nil {
		return nil, nil, err
	}
	return keepIDStoreMaps(h)
}

// keepIDMap is podman's keep-id map (pkg/util GetKeepIDMapping) composed
// with podman's rootless namespace (0 → own, k → the k-th subordinate id),
// so that sandy, which has no intermediate namespace, writes the same
// container → host map directly:
//
//	container 0 .. min(own,N)-1   → subordinate ids 0 .. min(own,N)-1
//	container own                 → own (the caller)
//	container own+1 .. N          → subordinate ids own .. N-1
//
// where N is the number of subordinate ids, taken in file order.
func keepIDMap(own uint32, ranges []idmap.SubIDRange) ([]specs.LinuxIDMapping, error) {
	total := subTotal(ranges)
	var m []specs.LinuxIDMapping
	m = appendSub(m, ranges, 0, min(uint64(own), total), 0)
	m = append(m, specs.LinuxIDMapping{ContainerID: own, HostID: own, Size: 1})
	if total > uint64(own) {
		n := min(total-uint64(own), math.MaxUint32-uint64(own)-1)
		m = appendSub(m, ranges, uint64(own), n, uint64(own)+1)
	}
	if len(m) > idmap.MaxLines {
		return nil, fmt.Errorf("%d subordinate ranges make %d map lines, more than the kernel's %d", len(ranges), len(m), idmap.MaxLines)
	}
	return m, nil
}

// appendSub maps n container ids from ctr on to the subordinate ids from
// index from on (ranges concatenated in order), one line per range piece.
func appendSub(m []specs.LinuxIDMapping, ranges []idmap.SubIDRange, from, n, ctr uint64) []specs.LinuxIDMapping {
	var base uint64 // index of the first id of r
	for _, r := range ranges {
		if n == 0 {
			break
		}
		end := base + uint64(r.Count)
		if from < end {
			off := from - base
			size := min(uint64(r.Count)-off, n)
			m = append(m, specs.LinuxIDMapping{ContainerID: uint32(ctr), HostID: r.Start + uint32(off), Size: uint32(size)})
			from, n, ctr = from+size, n-size, ctr+size
		}
		base = end
	}
	return m
}

// keepIDHome is podman's home for the caller's added passwd entry: the
// caller's home when it, or a directory above it, is a mount destination
// (a volume included), else the working directory.
func (g *gen) keepIDHome() string {
	home := g.h.Home
	if home == "" || !path.IsAbs(home) {
		return g.s.Process.Cwd
	}
	mounted := func(d string) bool {
		for _, m := range g.ms.mounts {
			if m.Destination == d {
				return true
			}
		}
		for _, v := range g.ms.volumes {
			if v.Dest == d {
				return true
			}
		}
		return false
	}
	for d := path.Clean(home); d != "/"; d = path.Dir(d) {
		if mounted(d) {
			return home
		}
	}
	return g.s.Process.Cwd
}

// passwdEntries decides the /etc/passwd and /etc/group lines podman adds
// (libpod generatePasswdEntry, generateGroupEntry): the caller under
// keep-id unless the image knows its name or uid; a numeric user with no
// entry; a numeric group with no entry.
func (g *gen) passwdEntries() {
	var addedUID, addedGID uint32
	if g.keepID && g.h.UID != 0 {
		_, byName := g.users.user(g.h.UserName)
		_, byID := g.users.user(strconv.FormatUint(uint64(g.h.UID), 10))
		if !byName && !byID && g.h.UserName != "" {
			g.addedHome = g.keepIDHome()
			g.x.PasswdEntry += fmt.Sprintf("%s:*:%d:%d:%s:%s:/bin/sh\n", g.h.UserName, g.h.UID, g.h.GID, g.h.Gecos, g.addedHome)
			addedUID = g.h.UID
		}
	}
	if g.keepID && g.h.GID != 0 && g.h.GroupName != "" {
		_, byName := g.users.group(g.h.GroupName)
		_, byID := g.users.group(strconv.FormatUint(uint64(g.h.GID), 10))
		if !byName && !byID {
			g.x.GroupEntry += fmt.Sprintf("%s:x:%d:%s\n", g.h.GroupName, g.h.GID, g.h.UserName)
			addedGID = g.h.GID
		}
	}
	if g.userSpec == "" {
		return
	}
	userPart, groupPart, hasGroup := strings.Cut(g.userSpec, ":")
	if uid, err := parseID(userPart); err == nil && !(addedUID != 0 && uid == addedUID) && !g.eu.InPasswd {
		g.x.PasswdEntry += fmt.Sprintf("%d:*:%d:%d:container user:%s:/bin/sh\n", uid, uid, g.eu.GID, g.s.Process.Cwd)
	}
	if !hasGroup {
		groupPart = userPart
	}
	if gid, err := parseID(groupPart); err == nil && !(addedGID != 0 && gid == addedGID) {
		if _, ok := g.users.group(groupPart); !ok {
			g.x.GroupEntry += fmt.Sprintf("%d:x:%d:%s\n", gid, gid, userPart)
		}
	}
}

// unixSignal converts a signal number.
func unixSignal(n int) syscall.Signal { return syscall.Signal(n) }
