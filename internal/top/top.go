// Package top lists the processes of a container as `podman top` does:
// every process in the pid namespace of the container's init, read from
// /proc on the host, each shown by the ps(1)-style descriptors podman's
// psgo knows (user, pid, ppid, pcpu, etime, tty, time, args, …), with the
// container's view of pids and ids (its pid namespace, its uid and gid
// maps, the names in its /etc/passwd and /etc/group) and the host's for
// the h* descriptors.
//
// It reads, never joins: no setns, no process enters the container.
// podman's psgo joins the container's mount namespace (which a
// multi-threaded Go program can only do from a locked thread, and a
// rootless one only from inside its user namespace); the host's /proc
// already has everything but the names, and those come from the
// container's own files through its init's root, resolved in-root by the
// caller. psgo itself is not served by this project's module proxy, and
// what it does is a /proc reader of a few hundred lines.
package top

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"time"
)

// Descriptor is one column: its ps(1) AIX code (%C), its name (pcpu),
// its header (%CPU) and how a process is shown in it.
type Descriptor struct {
	Code, Name, Header string
	show               func(p *Process, v *View) string
}

// DefaultDescriptors are podman top's (ps -ef's) columns.
var DefaultDescriptors = []string{"user", "pid", "ppid", "pcpu", "etime", "tty", "time", "args"}

// descriptors in psgo's names and order. A function, not a table built
// at package init: sandy's start-up does no package-level work.
func descriptors() []Descriptor {
	return []Descriptor{
		{"%C", "pcpu", "%CPU", func(p *Process, v *View) string { return strconv.FormatFloat(p.pcpu(v.Now, v.Boot), 'f', 3, 64) }},
		{"%G", "group", "GROUP", func(p *Process, v *View) string { return v.group(p.Gids[1]) }},
		{"", "groups", "GROUPS", func(p *Process, v *View) string { return v.groups(p.Groups) }},
		{"%P", "ppid", "PPID", func(p *Process, v *View) string { return strconv.Itoa(v.nsPid(p.PPid)) }},
		{"%U", "user", "USER", func(p *Process, v *View) string { return v.user(p.Uids[1]) }},
		{"", "uid", "UID", func(p *Process, v *View) string { return v.uid(p.Uids[1]) }},
		{"%a", "args", "COMMAND", func(p *Process, _ *View) string { return p.args() }},
		{"%c", "comm", "COMMAND", func(p *Process, _ *View) string { return p.Comm }},
		{"%g", "rgroup", "RGROUP", func(p *Process, v *View) string { return v.group(p.Gids[0]) }},
		{"%n", "nice", "NI", func(p *Process, _ *View) string { return strconv.Itoa(p.Nice) }},
		{"%p", "pid", "PID", func(p *Process, _ *View) string { return strconv.Itoa(p.NSPid) }},
		{"%r", "pgid", "PGID", func(p *Process, v *View) string { return strconv.Itoa(v.nsPid(p.PGid)) }},
		{"%t", "etime", "ELAPSED", func(p *Process, v *View) string { return p.elapsed(v.Now, v.Boot).String() }},
		{"%u", "ruser", "RUSER", func(p *Process, v *View) string { return v.user(p.Uids[0]) }},
		{"%x", "time", "TIME", func(p *Process, _ *View) string { return p.cpuTime().String() }},
		{"%y", "tty", "TTY", func(p *Process, _ *View) string { return ttyName(p.TTY) }},
		{"%z", "vsz", "VSZ", func(p *Process, _ *View) string { return strconv.FormatUint(p.VSize/1024, 10) }},
		{"", "capamb", "AMBIENT CAPS", func(p *Process, _ *View) string { return capNames(p.CapAmb) }},
		{"", "capinh", "INHERITED CAPS", func(p *Process, _ *View) string { return capNames(p.CapInh) }},
		{"", "capprm", "PERMITTED CAPS", func(p *Process, _ *View) string { return capNames(p.CapPrm) }},
		{"", "capeff", "EFFECTIVE CAPS", func(p *Process, _ *View) string { return capNames(p.CapEff) }},
		{"", "capbnd", "BOUNDING CAPS", func(p *Process, _ *View) string { return capNames(p.CapBnd) }},
		{"", "seccomp", "SECCOMP", func(p *Process, _ *View) string { return seccompMode(p.Seccomp) }},
		{"", "hpid", "HPID", func(p *Process, _ *View) string { return strconv.Itoa(p.Pid) }},
		{"", "huser", "HUSER", func(p *Process, v *View) string { return v.hostUser(p.Uids[1]) }},
		{"", "huid", "HUID", func(p *Process, _ *View) string { return strconv.Itoa(p.Uids[1]) }},
		{"", "hgroup", "HGROUP", func(p *Process, v *View) string { return v.hostGroup(p.Gids[1]) }},
		{"", "rss", "RSS", func(p *Process, _ *View) string { return strconv.FormatUint(p.RSS/1024, 10) }},
		{"", "state", "STATE", func(p *Process, _ *View) string { return p.State }},
		{"", "stime", "STIME", func(p *Process, v *View) string { return p.started(v.Boot).String() }},
	}
}

// ErrUnknownDescriptor is the error for a descriptor top does not know.
var ErrUnknownDescriptor = errors.New("unknown descriptor")

// Parse turns podman top's descriptor arguments (names or AIX codes,
// separated by spaces or commas; none: the defaults) into columns.
func Parse(args []string) ([]Descriptor, error) {
	var names []string
	for _, a := range args {
		names = append(names, strings.FieldsFunc(a, func(r rune) bool { return r == ',' || r == ' ' })...)
	}
	if len(names) == 0 {
		names = DefaultDescriptors
	}
	all := descriptors()
	var out []Descriptor
	for _, n := range names {
		i := slices.IndexFunc(all, func(d Descriptor) bool { return n == d.Name || (d.Code != "" && n == d.Code) })
		if i < 0 {
			return nil, fmt.Errorf("%q: %w (known: %s)", n, ErrUnknownDescriptor, strings.Join(Names(), ", "))
		}
		out = append(out, all[i])
	}
	return out, nil
}

// Names lists the descriptors' names, sorted.
func Names() []string {
	var names []string
	for _, d := range descriptors() {
		names = append(names, d.Name)
	}
	slices.Sort(names)
	return names
}

// View is what the processes are seen through: the container's maps and
// names, the host's names, and the clock.
type View struct {
	UIDMap, GIDMap []IDMap          // the container's (inside → host)
	Users, Groups  map[int]string   // the container's /etc/passwd and /etc/group, by id inside
	HostUsers      func(int) string // names on the host, by host id ("" when none)
	HostGroups     func(int) string
	// Now is the time of the listing; Boot the host's boot time.
	Now, Boot time.Time

	nsPids map[int]int // host pid → pid in the container
}

// IDMap is one line of /proc/PID/uid_map as the host sees it.
type IDMap struct{ Inside, Host, Size int }

// toInside maps a host id into the container; ok is false when the id
// is not mapped (shown as the overflow id, 65534, as the kernel does).
func toInside(m []IDMap, id int) (int, bool) {
	if len(m) == 0 {
		return id, true
	}
	for _, e := range m {
		if id >= e.Host && id < e.Host+e.Size {
			return e.Inside + id - e.Host, true
		}
	}
	return 65534, false
}

func (v *View) uid(host int) string {
	id, _ := toInside(v.UIDMap, host)
	return strconv.Itoa(id)
}

func (v *View) user(host int) string {
	id, _ := toInside(v.UIDMap, host)
	if n, ok := v.Users[id]; ok {
		return n
	}
	return strconv.Itoa(id)
}

func (v *View) group(host int) string {
	id, _ := toInside(v.GIDMap, host)
	if n, ok := v.Groups[id]; ok {
		return n
	}
	return strconv.Itoa(id)
}

func (v *View) groups(host []int) string {
	var names []string
	for _, g := range host {
		names = append(names, v.group(g))
	}
	if len(names) == 0 {
		return "none"
	}
	return strings.Join(names, ",")
}

func (v *View) hostUser(id int) string {
	if v.HostUsers != nil {
		if n := v.HostUsers(id); n != "" {
			return n
		}
	}
	return strconv.Itoa(id)
}

func (v *View) hostGroup(id int) string {
	if v.HostGroups != nil {
		if n := v.HostGroups(id); n != "" {
			return n
		}
	}
	return strconv.Itoa(id)
}

// nsPid is a host pid's pid in the container: 0 for a process outside it
// (the init's parent, a session leader on the host), as in ps.
func (v *View) nsPid(host int) int {
	return v.nsPids[host]
}

// Table is the listing: a header and one row per process, by pid in the
// container.
func Table(procs []*Process, cols []Descriptor, v *View) [][]string {
	v.nsPids = map[int]int{}
	for _, p := range procs {
		v.nsPids[p.Pid] = p.NSPid
	}
	slices.SortFunc(procs, func(a, b *Process) int { return a.NSPid - b.NSPid })
	header := make([]string, len(cols))
	for i, c := range cols {
		header[i] = c.Header
	}
	rows := [][]string{header}
	for _, p := range procs {
		row := make([]string, len(cols))
		for i, c := range cols {
			row[i] = c.show(p, v)
		}
		rows = append(rows, row)
	}
	return rows
}

// ReadIDMap reads /proc/PID/uid_map or gid_map.
func ReadIDMap(path string) ([]IDMap, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, err
	}
	var m []IDMap
	for _, line := range strings.Split(strings.TrimSpace(string(b)), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			continue
		}
		in, err1 := strconv.Atoi(f[0])
		host, err2 := strconv.Atoi(f[1])
		size, err3 := strconv.Atoi(f[2])
		if err := errors.Join(err1, err2, err3); err != nil {
			return nil, fmt.Errorf("reading %s: %q: %w", path, line, err)
		}
		m = append(m, IDMap{Inside: in, Host: host, Size: size})
	}
	return m, nil
}

// BootTime is the host's boot time, from procRoot/stat's btime.
func BootTime(procRoot string) (time.Time, error) {
	b, err := os.ReadFile(filepath.Join(procRoot, "stat"))
	if err != nil {
		return time.Time{}, err
	}
	for _, line := range strings.Split(string(b), "\n") {
		if v, ok := strings.CutPrefix(line, "btime "); ok {
			s, err := strconv.ParseInt(strings.TrimSpace(v), 10, 64)
			if err != nil {
				return time.Time{}, fmt.Errorf("btime %q: %w", v, err)
			}
			return time.Unix(s, 0), nil
		}
	}
	return time.Time{}, fmt.Errorf("no btime in %s/stat", procRoot)
}
