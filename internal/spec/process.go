package spec

import (
	"errors"
	"fmt"
	"math"
	"path/filepath"
	"slices"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/idmap"
)

// ValidateProcess checks a runtime-spec process object: config.json's
// (Load calls it, for create and run) and the one exec runs (built from
// the flags, or read from `exec --process FILE`). It changes nothing;
// callers fill the defaults first (an empty cwd is "/"). Errors name the
// field, as in config.json.
//
// The rules: args is not empty; cwd is absolute; no id of process.user is
// (uid_t)-1, which setresuid(2), setresgid(2) read as "leave unchanged"
// (the process would keep the ids of the init: root); each rlimit type
// is one of the kernel's, listed once (the runtime spec requires an
// error for a duplicate), with soft at most hard; every capability name
// is one sandy knows (a capability newer than the running kernel is
// known, and skipped when the sets are applied).
//
// Whether the ids are mapped in the container's user namespace depends
// on the maps, which are known later: see CheckUserMapped.
func ValidateProcess(p *specs.Process) error {
	if len(p.Args) == 0 || p.Args[0] == "" {
		return errors.New("process.args: empty (name the program to run, e.g. [\"sh\"])")
	}
	if !filepath.IsAbs(p.Cwd) {
		return fmt.Errorf("process.cwd %q: must be an absolute path", p.Cwd)
	}
	if err := checkUser(p.User); err != nil {
		return err
	}
	if err := checkRlimits(p.Rlimits); err != nil {
		return err
	}
	return checkCapabilities(p.Capabilities)
}

// invalidID is (uid_t)-1 and (gid_t)-1.
const invalidID = math.MaxUint32

// CheckID refuses (uid_t)-1 for the id named field (kind "uid" or "gid").
func CheckID(field string, id uint32, kind string) error {
	if id != invalidID {
		return nil
	}
	call := "setresuid(2)"
	if kind == "gid" {
		call = "setresgid(2)"
	}
	return fmt.Errorf("%s %d is (%s_t)-1, which no user namespace maps and %s reads as \"leave unchanged\" (the process would keep the init's ids: root in the container); fix: give a real %s, 0 to 4294967294, mapped in the container's user namespace",
		field, id, kind, call, kind)
}

func checkUser(u specs.User) error {
	if err := CheckID("process.user.uid", u.UID, "uid"); err != nil {
		return err
	}
	if err := CheckID("process.user.gid", u.GID, "gid"); err != nil {
		return err
	}
	for i, g := range u.AdditionalGids {
		if err := CheckID(fmt.Sprintf("process.user.additionalGids[%d]", i), g, "gid"); err != nil {
			return err
		}
	}
	return nil
}

// CheckMapped refuses an id (kind "uid" or "gid") that is not mapped in
// the container's user namespace, whose map of that kind is m (as
// written, or as read from /proc/PID/uid_map); field names the id in the
// error ("process.user.uid", "--user uid").
func CheckMapped(field string, id uint32, kind string, m []specs.LinuxIDMapping) error {
	if err := CheckID(field, id, kind); err != nil {
		return err
	}
	if idmap.Mapped(m, id) {
		return nil
	}
	return fmt.Errorf("%s %d is not mapped in the container's user namespace (%s map: %s); fix: use an id inside the map, or map more ids (linux.%sMappings in config.json, or a larger range in /etc/sub%s; see docs/troubleshooting.md#unmapped-user)",
		field, id, kind, idmap.FormatMap(m), kind, kind)
}

// CheckUserMapped refuses process.user ids that the container's user
// namespace does not map: uids and gids are its maps. setresuid(2) and
// setgroups(2) would fail with EINVAL inside the container; this says
// which id and which map, before anything starts.
func CheckUserMapped(u specs.User, uids, gids []specs.LinuxIDMapping) error {
	if err := CheckMapped("process.user.uid", u.UID, "uid", uids); err != nil {
		return err
	}
	if err := CheckMapped("process.user.gid", u.GID, "gid", gids); err != nil {
		return err
	}
	for i, g := range u.AdditionalGids {
		if err := CheckMapped(fmt.Sprintf("process.user.additionalGids[%d]", i), g, "gid", gids); err != nil {
			return err
		}
	}
	return nil
}

func checkRlimits(rls []specs.POSIXRlimit) error {
	seen := map[string]int{}
	for i, r := range rls {
		if _, ok := RlimitNumber(r.Type); !ok {
			return fmt.Errorf("process.rlimits[%d]: unknown type %q (want one of %s)", i, r.Type, strings.Join(rlimitNames(), ", "))
		}
		if j, dup := seen[r.Type]; dup {
			return fmt.Errorf("process.rlimits[%d]: %s is already set by process.rlimits[%d]", i, r.Type, j)
		}
		seen[r.Type] = i
		if r.Soft > r.Hard {
			return fmt.Errorf("process.rlimits[%d]: %s soft limit %d above hard limit %d", i, r.Type, r.Soft, r.Hard)
		}
	}
	return nil
}

func rlimitNames() []string {
	names := make([]string, 0, len(rlimits))
	for n := range rlimits {
		names = append(names, n)
	}
	slices.Sort(names)
	return names
}

// checkCapabilities checks the names the way the init reads them
// (initproc's capList): "CAP_" and a name moby/sys/capability knows, in
// any case.
func checkCapabilities(c *specs.LinuxCapabilities) error {
	if c == nil {
		return nil
	}
	known := map[string]bool{}
	for _, k := range capability.ListKnown() {
		known["CAP_"+strings.ToUpper(k.String())] = true
	}
	for _, set := range []struct {
		name  string
		names []string
	}{
		{"bounding", c.Bounding}, {"effective", c.Effective}, {"permitted", c.Permitted},
		{"inheritable", c.Inheritable}, {"ambient", c.Ambient},
	} {
		for _, n := range set.names {
			if !known[strings.ToUpper(n)] {
				return fmt.Errorf("process.capabilities.%s: unknown capability %q (names are CAP_ and the name in capabilities(7), e.g. CAP_NET_BIND_SERVICE)", set.name, n)
			}
		}
	}
	return nil
}
