package idmap

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Request is what Resolve needs to know about the caller and config.json.
type Request struct {
	UID, GID uint32 // the caller's real ids on the host
	// User is the caller's login name, for the subuid/subgid lookup (lines
	// match the name or the numeric id) and for hints.
	User string
	// UIDMappings and GIDMappings come from config.json; empty means
	// automatic (0 to the own id, 1..N to the subordinate ranges).
	UIDMappings []specs.LinuxIDMapping
	GIDMappings []specs.LinuxIDMapping
	// SubUIDFile and SubGIDFile default to /etc/subuid and /etc/subgid.
	// When both are left empty, /etc/nsswitch.conf names a subid source and
	// getsubids(1) is installed, getsubids is asked first, since it honours
	// NSS subid plugins; the files are read when it finds nothing (and
	// directly when no subid source is configured: shadow reads them then).
	SubUIDFile, SubGIDFile string
	// LookPath finds newuidmap, newgidmap and getsubids; default
	// exec.LookPath.
	LookPath func(string) (string, error)
	// Privileged: the caller has CAP_SETUID and CAP_SETGID in its own user
	// namespace (root on the host, or uid 0 of an engine's rootless user
	// namespace, as podman runs its runtime), so it may write any map of
	// ids that exist in its namespace itself, and the kernel checks them
	// (user_namespaces(7)): config.json's mappings are taken as they are,
	// with no subordinate-range check and no helper. See CanMapAny.
	Privileged bool
}

// Plan is a resolved pair of maps and how to write them.
type Plan struct {
	UIDs, GIDs []specs.LinuxIDMapping
	// Helpers is true when newuidmap/newgidmap write the maps; false when
	// Apply writes the single mapping itself, with setgroups denied.
	Helpers bool
	// Privileged is true when Apply writes the maps itself with the
	// caller's capabilities (Request.Privileged): any map, setgroups
	// allowed.
	Privileged bool
	// Warning is one line when the automatic maps were degraded to the
	// single mapping: what is missing and the fix. Otherwise "".
	Warning string
	// RootFix and Packages are Warning's fix as root does it, for `sandy
	// doctor --fix-script`: shell commands (the subuid/subgid lines with a
	// free range, the helpers' setuid bit) and the Debian packages to
	// install (uidmap). Empty without a Warning.
	RootFix  []string
	Packages []string

	uidHelper, gidHelper string // paths checked by Resolve; "" = look up at Apply
	uidHint, gidHint     string // how to get a subordinate range, for Apply's hints
}

const (
	defaultSubUIDFile = "/etc/subuid"
	defaultSubGIDFile = "/etc/subgid"
	installHint       = "apt-get install uidmap (Fedora: dnf install shadow-utils)"
	docRef            = "docs/troubleshooting.md#"
)

// problem is one reason the full maps cannot be used, and its fix: in
// words, and as what root runs (a shell command, a Debian package).
type problem struct{ what, fix, anchor, root, pkg string }

// side is the uid or the gid half of a Request.
type side struct {
	kind   string // "uidMappings" / "gidMappings", as in config.json
	idName string // "uid" / "gid"
	own    uint32
	cfg    []specs.LinuxIDMapping
	file   string
	group  bool // getsubids -g

	maps    []specs.LinuxIDMapping
	src     subSource
	problem *problem // set when an automatic side has no range
}

// Resolve decides the uid and gid maps for a container started by the
// caller described in req.
//
// Automatic (no mappings in config.json): container id 0 is the caller's
// own id (size 1) and container ids 1..N are the caller's subordinate
// ranges in file order. When newuidmap/newgidmap are missing or not setuid
// root, or the caller has no subordinate range, Resolve degrades to the
// single mapping (own id to 0, written without helpers) and sets
// Plan.Warning. That is the only fallback.
//
// Mappings from config.json are validated (ValidateMappings) and every host
// id must be the caller's own id alone or inside an owned range; mappings
// that need the helpers when those are unusable are an error, never
// degraded. A config mapping of just the own id needs no helper.
func Resolve(req Request) (*Plan, error) {
	if req.Privileged && (len(req.UIDMappings) > 0 || len(req.GIDMappings) > 0) {
		return resolvePrivileged(req)
	}
	useGetsubids := req.SubUIDFile == "" && req.SubGIDFile == "" && nssHasSubid()
	if req.SubUIDFile == "" {
		req.SubUIDFile = defaultSubUIDFile
	}
	if req.SubGIDFile == "" {
		req.SubGIDFile = defaultSubGIDFile
	}
	if req.LookPath == nil {
		req.LookPath = exec.LookPath
	}
	var h helperStatus
	if !req.Privileged { // privileged, Apply needs no helper
		h.uidPath, h.gidPath, h.problem = findHelpers(req.LookPath, req.UID)
	}
	return resolve(req, useGetsubids, h)
}

// helperStatus is what findHelpers learnt about newuidmap and newgidmap.
type helperStatus struct {
	uidPath, gidPath string
	problem          *problem // nil: both usable
}

// resolve is Resolve once the helpers have been checked.
func resolve(req Request, useGetsubids bool, h helperStatus) (*Plan, error) {
	sides := []*side{
		{kind: "uidMappings", idName: "uid", own: req.UID, cfg: req.UIDMappings, file: req.SubUIDFile},
		{kind: "gidMappings", idName: "gid", own: req.GID, cfg: req.GIDMappings, file: req.SubGIDFile, group: true},
	}
	for _, s := range sides {
		if err := s.resolve(req, useGetsubids); err != nil {
			return nil, err
		}
	}
	p := &Plan{UIDs: sides[0].maps, GIDs: sides[1].maps,
		uidHint: sides[0].src.hint, gidHint: sides[1].src.hint}

	hp := h.problem
	for _, s := range sides {
		if len(s.cfg) > 0 && !isOwnSingle(s.cfg, s.own) && hp != nil {
			return nil, fmt.Errorf("%s in config.json need newuidmap and newgidmap: %s: %w\nhint: %s, or map only your own %s %d (size 1) (%s)",
				s.kind, hp.what, ErrNoHelpers, hp.fix, s.idName, s.own, docRef+hp.anchor)
		}
	}

	// Degrade the automatic sides, all together, to the single mapping.
	var probs []problem
	var degraded []*side
	for _, s := range sides {
		if len(s.cfg) > 0 {
			continue
		}
		degraded = append(degraded, s)
		if s.problem != nil {
			probs = append(probs, *s.problem)
		}
	}
	if hp != nil && len(degraded) > 0 {
		probs = append([]problem{*hp}, probs...)
	}
	if len(probs) > 0 {
		var ids []string
		for _, s := range degraded {
			s.maps = singleMapping(s.own)
			ids = append(ids, fmt.Sprintf("%s %d", s.idName, s.own))
		}
		p.UIDs, p.GIDs = sides[0].maps, sides[1].maps
		p.Warning = warning(probs, ids)
		for _, pr := range probs {
			if pr.root != "" && !slices.Contains(p.RootFix, pr.root) {
				p.RootFix = append(p.RootFix, pr.root)
			}
			if pr.pkg != "" && !slices.Contains(p.Packages, pr.pkg) {
				p.Packages = append(p.Packages, pr.pkg)
			}
		}
	}
	if hp == nil {
		p.uidHelper, p.gidHelper = h.uidPath, h.gidPath
	}
	p.Helpers = !isOwnSingle(p.UIDs, req.UID) || !isOwnSingle(p.GIDs, req.GID)
	if req.Privileged {
		p.Helpers, p.Privileged = false, true
	}
	return p, nil
}

// resolvePrivileged takes config.json's mappings as they are (an empty side
// gets the single own-id mapping), checked only for what the kernel
// would refuse.
func resolvePrivileged(req Request) (*Plan, error) {
	p := &Plan{UIDs: req.UIDMappings, GIDs: req.GIDMappings, Privileged: true}
	if len(p.UIDs) == 0 {
		p.UIDs = singleMapping(req.UID)
	}
	if len(p.GIDs) == 0 {
		p.GIDs = singleMapping(req.GID)
	}
	if err := ValidateMappings("uidMappings", p.UIDs); err != nil {
		return nil, err
	}
	if err := ValidateMappings("gidMappings", p.GIDs); err != nil {
		return nil, err
	}
	return p, nil
}

// warning renders the one-line degradation warning.
func warning(probs []problem, ids []string) string {
	whats := make([]string, len(probs))
	var fixes, refs []string
	for i, pr := range probs {
		whats[i] = pr.what
		if !slices.Contains(fixes, pr.fix) {
			fixes = append(fixes, pr.fix)
		}
		if ref := docRef + pr.anchor; !slices.Contains(refs, ref) {
			refs = append(refs, ref)
		}
	}
	return FallbackSingleID.Line(strings.Join(whats, " and "), strings.Join(ids, " and "), strings.Join(fixes, "; "), strings.Join(refs, ", "))
}

func (s *side) resolve(req Request, useGetsubids bool) error {
	auto := len(s.cfg) == 0
	if !auto && isOwnSingle(s.cfg, s.own) {
		s.maps = s.cfg
		return nil
	}
	src, err := lookupSubIDs(req, s, useGetsubids)
	if err != nil {
		return err
	}
	s.src = src
	if !auto {
		if err := ValidateMappings(s.kind, s.cfg); err != nil {
			return err
		}
		if err := checkOwned(s.kind, s.cfg, s.own, src.ranges, s.idName, src.name, src.hint); err != nil {
			return err
		}
		s.maps = s.cfg
		return nil
	}
	if len(src.ranges) == 0 {
		s.problem = &problem{what: fmt.Sprintf("no range for %s in %s", ownerName(req.User, req.UID), src.name), fix: src.fix, anchor: "subuid", root: src.root}
		return nil
	}
	m, err := buildAuto(s.own, src.ranges)
	if err != nil {
		return fmt.Errorf("building %s from %s: %w", s.kind, src.name, err)
	}
	s.maps = m
	return nil
}

// subSource is where a caller's subordinate ranges came from.
type subSource struct {
	ranges []SubIDRange
	name   string // "/etc/subuid", or "getsubids" when NSS answered
	fix    string // the fix when a range is missing
	hint   string // fix plus the troubleshooting link
	root   string // the shell command root runs to add the range, "" when none fits
}

func ownerName(user string, id uint32) string {
	if user != "" {
		return user
	}
	return strconv.FormatUint(uint64(id), 10)
}

// lookupSubIDs asks getsubids (when allowed and installed), then the file.
// A missing file means no ranges; an unreadable or malformed one is an
// error, since newuidmap would fail on it too.
func lookupSubIDs(req Request, s *side, useGetsubids bool) (subSource, error) {
	// Both files are keyed by the user (subgid(5)): name or numeric uid,
	// never the gid.
	owner := ownerName(req.User, req.UID)
	var entries []subIDEntry
	data, err := os.ReadFile(s.file)
	switch {
	case err == nil:
		entries, err = parseSubIDEntries(strings.NewReader(string(data)))
		if err != nil {
			return subSource{}, fmt.Errorf("parsing %s: %w", s.file, err)
		}
	case !errors.Is(err, fs.ErrNotExist):
		return subSource{}, fmt.Errorf("reading subordinate %ss: %w", s.idName, err)
	}
	const count = 65536
	var hint, root string
	if start, ok := FreeStart(ranges(entries), count); ok {
		line := fmt.Sprintf("%s:%d:%d", owner, start, count)
		hint = fmt.Sprintf("add the line %q to %s", line, s.file)
		root = fmt.Sprintf("echo '%s' >> %s", line, s.file)
		if req.User != "" {
			flag := "--add-subuids"
			if s.group {
				flag = "--add-subgids"
			}
			hint += fmt.Sprintf(" (as root: usermod %s %d-%d %s)", flag, start, start+count-1, req.User)
		}
	} else {
		hint = fmt.Sprintf("no %d ids above %d are free in %s: add a smaller range for %s there", count, FirstFreeID, s.file, owner)
	}
	src := subSource{name: s.file, fix: hint, hint: hint + " (" + docRef + "subuid)", root: root}

	if useGetsubids && req.User != "" {
		if rs := getsubids(req.LookPath, req.User, s.group); len(rs) > 0 {
			src.ranges, src.name = rs, "getsubids"
			return src, nil
		}
	}
	for _, e := range entries {
		if e.owner == req.User && req.User != "" || e.owner == strconv.FormatUint(uint64(req.UID), 10) {
			src.ranges = append(src.ranges, e.r)
		}
	}
	return src, nil
}

// nssHasSubid reports whether /etc/nsswitch.conf names a subid source.
// Without one, shadow's helpers (newuidmap, getsubids) read /etc/subuid and
// /etc/subgid themselves, so reading the files directly gives the same
// answer without two process starts on every container start.
func nssHasSubid() bool {
	data, err := os.ReadFile("/etc/nsswitch.conf")
	if err != nil {
		return false
	}
	return hasSubidLine(string(data))
}

func hasSubidLine(conf string) bool {
	for _, line := range strings.Split(conf, "\n") {
		line = strings.TrimSpace(line)
		if i := strings.IndexByte(line, '#'); i >= 0 {
			line = strings.TrimSpace(line[:i])
		}
		if key, val, ok := strings.Cut(line, ":"); ok && strings.TrimSpace(key) == "subid" && strings.TrimSpace(val) != "" {
			return true
		}
	}
	return false
}

// getsubids runs getsubids(1), which answers from the NSS subid plugin when
// one is configured and from /etc/subuid otherwise. It exits 1 both when the
// user has no range and on errors, so any failure means "ask the file".
func getsubids(lookPath func(string) (string, error), user string, group bool) []SubIDRange {
	path, err := lookPath("getsubids")
	if err != nil {
		return nil
	}
	args := []string{user}
	if group {
		args = []string{"-g", user}
	}
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, path, args...).Output()
	if err != nil {
		return nil
	}
	rs, err := parseGetsubids(string(out))
	if err != nil {
		return nil
	}
	return rs
}

// ToHost returns the host uid that containerUID maps to.
func (p *Plan) ToHost(containerUID uint32) (uint32, bool) { return toHost(p.UIDs, containerUID) }

// ToHostGID returns the host gid that containerGID maps to.
func (p *Plan) ToHostGID(containerGID uint32) (uint32, bool) { return toHost(p.GIDs, containerGID) }

// ToContainer returns the container uid that hostUID appears as.
func (p *Plan) ToContainer(hostUID uint32) (uint32, bool) { return toContainer(p.UIDs, hostUID) }

// ToContainerGID returns the container gid that hostGID appears as.
func (p *Plan) ToContainerGID(hostGID uint32) (uint32, bool) { return toContainer(p.GIDs, hostGID) }

// ContainerIDCount returns how many uids the uid map holds (saturating at
// MaxUint32).
func (p *Plan) ContainerIDCount() uint32 {
	var n uint64
	for _, l := range p.UIDs {
		n += uint64(l.Size)
	}
	return uint32(min(n, 1<<32-1))
}

func toHost(m []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	for _, l := range m {
		if id >= l.ContainerID && uint64(id-l.ContainerID) < uint64(l.Size) {
			return l.HostID + (id - l.ContainerID), true
		}
	}
	return 0, false
}

func toContainer(m []specs.LinuxIDMapping, id uint32) (uint32, bool) {
	for _, l := range m {
		if id >= l.HostID && uint64(id-l.HostID) < uint64(l.Size) {
			return l.ContainerID + (id - l.HostID), true
		}
	}
	return 0, false
}

// RootIsCaller reports whether the maps make host uid uid container uid 0:
// the child then gains its capabilities by an execve once they are
// written (userns.GainCaps). With maps that give the caller another uid
// (podman's keep-id), userns.Start carries the capabilities over execve
// in the ambient set instead.
func (p *Plan) RootIsCaller(uid uint32) bool {
	h, ok := toHost(p.UIDs, 0)
	return ok && h == uid
}
