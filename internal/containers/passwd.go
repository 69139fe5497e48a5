package containers

import (
	"bufio"
	"fmt"
	"strconv"
	"strings"
)

// PasswdEntry is one line of an image's /etc/passwd (passwd(5)).
type PasswdEntry struct {
	Name     string
	UID, GID uint32
	Gecos    string
	Home     string
	Shell    string
}

// GroupEntry is one line of an image's /etc/group (group(5)).
type GroupEntry struct {
	Name    string
	GID     uint32
	Members []string
}

// UserDB is an image's user and group database, parsed. The zero value is
// an image without /etc/passwd and /etc/group: only numeric ids resolve.
type UserDB struct {
	Users  []PasswdEntry
	Groups []GroupEntry
}

// ParsePasswd parses /etc/passwd text. Blank lines, comments, NIS lines
// ("+", "-") and lines whose uid or gid is not a number are skipped, as
// the C library's getpwent(3) skips them: a broken line in an image must
// not make every user unresolvable.
func ParsePasswd(text string) []PasswdEntry {
	var out []PasswdEntry
	for _, f := range dbLines(text, 7) {
		uid, err1 := parseID(f[2])
		gid, err2 := parseID(f[3])
		if err1 != nil || err2 != nil {
			continue
		}
		out = append(out, PasswdEntry{Name: f[0], UID: uid, GID: gid, Gecos: f[4], Home: f[5], Shell: f[6]})
	}
	return out
}

// ParseGroup parses /etc/group text, skipping what ParsePasswd skips.
func ParseGroup(text string) []GroupEntry {
	var out []GroupEntry
	for _, f := range dbLines(text, 4) {
		gid, err := parseID(f[2])
		if err != nil {
			continue
		}
		var members []string
		for _, m := range strings.Split(f[3], ",") {
			if m = strings.TrimSpace(m); m != "" {
				members = append(members, m)
			}
		}
		out = append(out, GroupEntry{Name: f[0], GID: gid, Members: members})
	}
	return out
}

// dbLines splits colon-separated database text into lines of n fields
// (missing trailing fields are ""), skipping what is not an entry.
func dbLines(text string, n int) [][]string {
	var out [][]string
	sc := bufio.NewScanner(strings.NewReader(text))
	sc.Buffer(nil, 1<<20)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line == "" || line[0] == '#' || line[0] == '+' || line[0] == '-' {
			continue
		}
		f := strings.SplitN(line, ":", n)
		if len(f) < 3 || f[0] == "" {
			continue
		}
		for len(f) < n {
			f = append(f, "")
		}
		out = append(out, f)
	}
	return out
}

// parseID parses a decimal id below (uid_t)-1.
func parseID(s string) (uint32, error) {
	v, err := strconv.ParseUint(strings.TrimSpace(s), 10, 32)
	if err != nil {
		return 0, err
	}
	if v == 1<<32-1 {
		return 0, fmt.Errorf("id %d is (uid_t)-1", v)
	}
	return uint32(v), nil
}

// user finds a passwd entry by name, or by uid when name is numeric (a
// numeric user is always a uid, as in runc and podman). First match wins.
func (db UserDB) user(spec string) (PasswdEntry, bool) {
	id, err := parseID(spec)
	for _, u := range db.Users {
		if (err == nil && u.UID == id) || (err != nil && u.Name == spec) {
			return u, true
		}
	}
	return PasswdEntry{}, false
}

// group finds a group entry by name, or by gid when spec is numeric.
func (db UserDB) group(spec string) (GroupEntry, bool) {
	id, err := parseID(spec)
	for _, g := range db.Groups {
		if (err == nil && g.GID == id) || (err != nil && g.Name == spec) {
			return g, true
		}
	}
	return GroupEntry{}, false
}

// ExecUser is what a user spec resolves to.
type ExecUser struct {
	UID, GID uint32
	// Home is the passwd entry's home directory, "" when the user has no
	// entry.
	Home string
	// Sgids are the groups listing the user as a member, only when the
	// spec names no group (runc's rule: an explicit group replaces them).
	Sgids []uint32
	// InPasswd: the user has a passwd entry.
	InPasswd bool
}

// Resolve resolves a user spec, "" | USER | UID | USER:GROUP | UID:GID,
// the way runc's GetExecUser does for podman: "" is uid 0; a name must
// exist in passwd; a number need not (its gid is then 0, or the group's);
// without a group, the gid is the passwd entry's and the supplementary
// groups are the groups that list the user by name.
func (db UserDB) Resolve(spec string) (ExecUser, error) {
	userPart, groupPart, hasGroup := strings.Cut(spec, ":")
	if userPart == "" {
		userPart = "0"
	}
	var eu ExecUser
	u, ok := db.user(userPart)
	switch {
	case ok:
		eu = ExecUser{UID: u.UID, GID: u.GID, Home: u.Home, InPasswd: true}
	default:
		id, err := parseID(userPart)
		if err != nil {
			return ExecUser{}, fmt.Errorf("unable to find user %s: no matching entries in passwd file", userPart)
		}
		eu.UID = id
	}
	if hasGroup && groupPart != "" {
		g, ok := db.group(groupPart)
		if ok {
			eu.GID = g.GID
			return eu, nil
		}
		id, err := parseID(groupPart)
		if err != nil {
			return ExecUser{}, fmt.Errorf("unable to find group %s: no matching entries in group file", groupPart)
		}
		eu.GID = id
		return eu, nil
	}
	if eu.InPasswd {
		for _, g := range db.Groups {
			for _, m := range g.Members {
				if m == u.Name {
					eu.Sgids = append(eu.Sgids, g.GID)
					break
				}
			}
		}
	}
	return eu, nil
}
