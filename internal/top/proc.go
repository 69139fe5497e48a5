package top

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/moby/sys/capability"
)

// clockTicks is USER_HZ, the unit of /proc/PID/stat's times: 100 on
// every Linux architecture Go supports.
const clockTicks = 100

// Process is what /proc/PID/stat, status and cmdline say of a process.
type Process struct {
	Pid   int // on the host
	NSPid int // in the innermost pid namespace (status NSpid's last)
	PPid  int // host pid of the parent
	PGid  int // host pid of the process group leader
	Comm  string
	State string
	TTY   int // tty_nr
	Nice  int
	// UTime and STime in clock ticks; Start in ticks since boot.
	UTime, STime, Start uint64
	VSize, RSS          uint64 // bytes
	Cmdline             []string
	// Uids and Gids: real, effective, saved, filesystem (host ids).
	Uids, Gids                             [4]int
	Groups                                 []int
	CapInh, CapPrm, CapEff, CapBnd, CapAmb uint64
	Seccomp                                int
}

// InNamespace lists the processes of procRoot (/proc) in the pid
// namespace of init (a host pid): the init and everything `exec` added.
// A process that ends while it is read is left out.
func InNamespace(procRoot string, init int) ([]*Process, error) {
	ns, err := os.Readlink(filepath.Join(procRoot, strconv.Itoa(init), "ns", "pid"))
	if err != nil {
		return nil, fmt.Errorf("reading the pid namespace of the container's init (%d): %w", init, err)
	}
	entries, err := os.ReadDir(procRoot)
	if err != nil {
		return nil, err
	}
	var procs []*Process
	for _, e := range entries {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || !e.IsDir() {
			continue
		}
		// Another user's processes cannot be read (EACCES): not ours.
		if l, err := os.Readlink(filepath.Join(procRoot, e.Name(), "ns", "pid")); err != nil || l != ns {
			continue
		}
		p, err := Read(procRoot, pid)
		if errors.Is(err, fs.ErrNotExist) {
			continue // ended meanwhile
		}
		if err != nil {
			return nil, err
		}
		procs = append(procs, p)
	}
	return procs, nil
}

// Read reads one process.
func Read(procRoot string, pid int) (*Process, error) {
	dir := filepath.Join(procRoot, strconv.Itoa(pid))
	p := &Process{Pid: pid}
	stat, err := os.ReadFile(filepath.Join(dir, "stat"))
	if err != nil {
		return nil, err
	}
	if err := p.parseStat(string(stat)); err != nil {
		return nil, fmt.Errorf("%s/stat: %w", dir, err)
	}
	status, err := os.ReadFile(filepath.Join(dir, "status"))
	if err != nil {
		return nil, err
	}
	if err := p.parseStatus(string(status)); err != nil {
		return nil, fmt.Errorf("%s/status: %w", dir, err)
	}
	cmdline, err := os.ReadFile(filepath.Join(dir, "cmdline"))
	if err != nil {
		return nil, err
	}
	if s := strings.TrimRight(string(cmdline), "\x00"); s != "" {
		p.Cmdline = strings.Split(s, "\x00")
	}
	return p, nil
}

// parseStat reads proc(5)'s stat line: the comm is between the first "("
// and the last ")" (it may hold both), the fields after it by number.
func (p *Process) parseStat(s string) error {
	open, closing := strings.IndexByte(s, '('), strings.LastIndexByte(s, ')')
	if open < 0 || closing < open {
		return fmt.Errorf("no (comm) in %q", s)
	}
	p.Comm = s[open+1 : closing]
	f := strings.Fields(s[closing+1:])
	// f[0] is field 3 (state); field n is f[n-3].
	if len(f) < 24-3+1 {
		return fmt.Errorf("%d fields after the comm, want at least 22", len(f))
	}
	num := func(n int) int64 {
		v, err := strconv.ParseInt(f[n-3], 10, 64)
		if err != nil {
			return 0
		}
		return v
	}
	p.State = f[0]
	p.PPid, p.PGid, p.TTY = int(num(4)), int(num(5)), int(num(7))
	p.UTime, p.STime = uint64(num(14)), uint64(num(15))
	p.Nice = int(num(19))
	p.Start = uint64(num(22))
	p.VSize = uint64(num(23))
	p.RSS = uint64(num(24)) * uint64(os.Getpagesize())
	return nil
}

// parseStatus reads the lines of status top needs.
func (p *Process) parseStatus(s string) error {
	ints := func(v string) []int {
		var out []int
		for _, f := range strings.Fields(v) {
			if n, err := strconv.Atoi(f); err == nil {
				out = append(out, n)
			}
		}
		return out
	}
	hex := func(v string) uint64 {
		n, _ := strconv.ParseUint(strings.TrimSpace(v), 16, 64)
		return n
	}
	for _, line := range strings.Split(s, "\n") {
		key, v, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		switch key {
		case "Uid", "Gid":
			ids := ints(v)
			if len(ids) != 4 {
				return fmt.Errorf("%s: %q", key, v)
			}
			if key == "Uid" {
				copy(p.Uids[:], ids)
			} else {
				copy(p.Gids[:], ids)
			}
		case "Groups":
			p.Groups = ints(v)
		case "NSpid":
			if ids := ints(v); len(ids) > 0 {
				p.NSPid = ids[len(ids)-1]
			}
		case "CapInh":
			p.CapInh = hex(v)
		case "CapPrm":
			p.CapPrm = hex(v)
		case "CapEff":
			p.CapEff = hex(v)
		case "CapBnd":
			p.CapBnd = hex(v)
		case "CapAmb":
			p.CapAmb = hex(v)
		case "Seccomp":
			p.Seccomp, _ = strconv.Atoi(strings.TrimSpace(v))
		}
	}
	if p.NSPid == 0 {
		p.NSPid = p.Pid // a kernel without NSpid (before 4.1)
	}
	return nil
}

func (p *Process) started(boot time.Time) time.Time {
	return boot.Add(time.Duration(p.Start) * time.Second / clockTicks)
}

func (p *Process) elapsed(now, boot time.Time) time.Duration {
	return max(now.Sub(p.started(boot)), 0)
}

func (p *Process) cpuTime() time.Duration {
	return time.Duration(p.UTime+p.STime) * time.Second / clockTicks
}

// pcpu is ps's %CPU: the CPU time over the time the process has run.
func (p *Process) pcpu(now, boot time.Time) float64 {
	e := p.elapsed(now, boot)
	if e <= 0 {
		return 0
	}
	return 100 * p.cpuTime().Seconds() / e.Seconds()
}

// args is the command line, or [comm] for a process without one (a
// zombie), as ps shows them.
func (p *Process) args() string {
	if len(p.Cmdline) == 0 {
		return "[" + p.Comm + "]"
	}
	return strings.Join(p.Cmdline, " ")
}

// ttyName names a tty_nr as ps does: pts/N for the pseudo-terminals
// (majors 136–143), ttyN and ttySN for the consoles and serial lines, ?
// for none or another device.
func ttyName(nr int) string {
	major, minor := (nr>>8)&0xfff, (nr&0xff)|((nr>>12)&0xfff00)
	switch {
	case nr == 0:
		return "?"
	case major >= 136 && major <= 143:
		return "pts/" + strconv.Itoa((major-136)*256+minor)
	case major == 4 && minor < 64:
		return "tty" + strconv.Itoa(minor)
	case major == 4:
		return "ttyS" + strconv.Itoa(minor-64)
	case major == 5 && minor == 1:
		return "console"
	}
	return "?"
}

// capNames shows a capability set as psgo does: "none", "full" (every
// capability this build knows), or the names, upper case, by comma.
func capNames(set uint64) string {
	if set == 0 {
		return "none"
	}
	var names []string
	full := true
	for _, c := range capability.ListKnown() {
		if set&(1<<uint(c)) != 0 {
			names = append(names, strings.ToUpper(c.String()))
		} else {
			full = false
		}
	}
	if full {
		return "full"
	}
	return strings.Join(names, ",")
}

func seccompMode(m int) string {
	switch m {
	case 0:
		return "disabled"
	case 1:
		return "strict"
	case 2:
		return "filter"
	}
	return "?"
}
