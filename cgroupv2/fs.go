//go:build linux

package cgroupv2

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// Root is where the unified (v2) hierarchy must be mounted for sandy to
// manage cgroups: a hybrid host's /sys/fs/cgroup/unified carries no
// controllers that matter (on Debian: none, or hugetlb only).
const Root = "/sys/fs/cgroup"

// hierarchy says what is mounted at Root: "unified", "hybrid" or "legacy".
func hierarchy() string {
	var st unix.Statfs_t
	if err := unix.Statfs(Root, &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "unified"
	}
	if err := unix.Statfs(filepath.Join(Root, "unified"), &st); err == nil && st.Type == unix.CGROUP2_SUPER_MAGIC {
		return "hybrid"
	}
	return "legacy"
}

// ownCgroup returns the cgroupfs dir of pid's cgroup ("self" for the
// caller), from the "0::/path" line of /proc/PID/cgroup (cgroups(7)).
func ownCgroup(pid string) (string, error) {
	data, err := os.ReadFile("/proc/" + pid + "/cgroup")
	if err != nil {
		return "", fmt.Errorf("reading cgroup of %s: %w", pid, err)
	}
	for _, line := range strings.Split(string(data), "\n") {
		if p, ok := strings.CutPrefix(line, "0::"); ok {
			// " (deleted)" is appended when the cgroup was removed.
			p = strings.TrimSuffix(p, " (deleted)")
			return filepath.Join(Root, p), nil
		}
	}
	return "", fmt.Errorf("reading cgroup of %s: no cgroup v2 entry in /proc/%s/cgroup", pid, pid)
}

func readFile(dir, name string) (string, error) {
	data, err := os.ReadFile(filepath.Join(dir, name))
	return string(bytes.TrimSpace(data)), err
}

// writeFile writes one value to a cgroup interface file: O_WRONLY without
// O_CREAT or O_TRUNC, since cgroupfs files always exist and a missing one
// means the controller or kernel feature is missing.
func writeFile(dir, name, value string) error {
	p := filepath.Join(dir, name)
	f, err := os.OpenFile(p, os.O_WRONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return err
	}
	_, err = f.WriteString(value)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		return fmt.Errorf("writing %q to %s: %w", value, p, err)
	}
	return nil
}

func controllers(dir, file string) ([]string, error) {
	s, err := readFile(dir, file)
	if err != nil {
		return nil, err
	}
	return strings.Fields(s), nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}

func missing(want, have []string) []string {
	var out []string
	for _, w := range want {
		if !contains(have, w) {
			out = append(out, w)
		}
	}
	return out
}

// enableControllers writes "+c" for each of want to dir's
// cgroup.subtree_control, one write for all (one kernel pass).
func enableControllers(dir string, want []string) error {
	if len(want) == 0 {
		return nil
	}
	return writeFile(dir, "cgroup.subtree_control", "+"+strings.Join(want, " +"))
}

// movePid writes pid to dir/cgroup.procs. EINVAL right after clone can mean
// the task is still TASK_NEW; runc retries too.
func movePid(dir string, pid int) error {
	var err error
	for i := 0; i < 5; i++ {
		if err = writeFile(dir, "cgroup.procs", strconv.Itoa(pid)); !errors.Is(err, unix.EINVAL) {
			return err
		}
		time.Sleep(10 * time.Millisecond)
	}
	return err
}

// writable says whether the caller may create cgroups in dir and move
// processes into them: the dir and its cgroup.procs and
// cgroup.subtree_control must be writable (what systemd's Delegate= chowns).
func writable(dir string) bool {
	for _, p := range []string{dir, filepath.Join(dir, "cgroup.procs"), filepath.Join(dir, "cgroup.subtree_control")} {
		if unix.Access(p, unix.W_OK) != nil {
			return false
		}
	}
	return true
}

// leaf is a container cgroup dir, with the verbs every v2 manager shares.
type leaf struct{ path string }

func (l leaf) Path() string { return l.path }

// writePlan writes the plan's files; a file the kernel lacks (the
// controller is off, or e.g. memory.swap.max without swap accounting) is a
// lost limit, reported through o.lose.
func (l leaf) writePlan(o *Options, p *plan) error {
	var lost []limit
	var lostFiles []string
	for i, f := range p.Files {
		err := writeFile(l.path, f.Name, f.Value)
		if errors.Is(err, fs.ErrNotExist) {
			lost = append(lost, p.fileFor[i])
			lostFiles = append(lostFiles, f.Name)
			continue
		}
		if err != nil {
			return fmt.Errorf("setting %s: %w", p.fileFor[i], err)
		}
	}
	return o.lose(lost, nil, "the kernel offers no "+strings.Join(lostFiles, ", ")+" in "+l.path,
		"enable the controller or kernel feature (e.g. swapaccount=1 for memory.swap.max)")
}

// Pids lists every process in the container cgroup and the cgroups below
// it (a container may nest its own, through its cgroup namespace).
func (l leaf) Pids() ([]int, error) {
	var pids []int
	err := filepath.WalkDir(l.path, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			if p != l.path && errors.Is(err, fs.ErrNotExist) {
				return nil // removed while walking
			}
			return err
		}
		if !d.IsDir() {
			return nil
		}
		s, err := readFile(p, "cgroup.procs")
		if err != nil {
			if errors.Is(err, fs.ErrNotExist) {
				return nil
			}
			return err
		}
		for _, f := range strings.Fields(s) {
			if n, err := strconv.Atoi(f); err == nil {
				pids = append(pids, n)
			}
		}
		return nil
	})
	if err != nil {
		return nil, fmt.Errorf("listing pids of %s: %w", l.path, err)
	}
	return pids, nil
}

// Freeze writes cgroup.freeze and waits until cgroup.events says the
// whole subtree has stopped (the kernel freezes asynchronously).
func (l leaf) Freeze(ctx context.Context, frozen bool) error {
	v := "0"
	if frozen {
		v = "1"
	}
	if err := writeFile(l.path, "cgroup.freeze", v); err != nil {
		return fmt.Errorf("freezing: %w", err)
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		ev, err := l.Events()
		if err != nil {
			return fmt.Errorf("freezing: %w", err)
		}
		if ev.Frozen == frozen {
			return nil
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s/cgroup.events to say frozen %s: %w", l.path, v, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
}

func parseKV(s string) map[string]uint64 {
	m := map[string]uint64{}
	sc := bufio.NewScanner(strings.NewReader(s))
	for sc.Scan() {
		k, v, ok := strings.Cut(sc.Text(), " ")
		if !ok {
			continue
		}
		if n, err := strconv.ParseUint(strings.TrimSpace(v), 10, 64); err == nil {
			m[k] = n
		}
	}
	return m
}

func (l leaf) readKV(name string) map[string]uint64 {
	s, _ := readFile(l.path, name)
	return parseKV(s)
}

func (l leaf) readUint(name string) uint64 {
	s, _ := readFile(l.path, name)
	n, _ := strconv.ParseUint(s, 10, 64) // "max" reads as 0: no limit
	return n
}

// Events reads memory.events, pids.events and cgroup.events.
func (l leaf) Events() (*Events, error) {
	ce, err := readFile(l.path, "cgroup.events")
	if err != nil {
		return nil, fmt.Errorf("reading events of %s: %w", l.path, err)
	}
	c := parseKV(ce)
	m := l.readKV("memory.events")
	p := l.readKV("pids.events")
	return &Events{
		OOM: m["oom"], OOMKill: m["oom_kill"], MemMax: m["max"], MemHigh: m["high"],
		PidsMax: p["max"], Populated: c["populated"] == 1, Frozen: c["frozen"] == 1,
	}, nil
}

func (l leaf) Stats() (*Stats, error) {
	ev, err := l.Events()
	if err != nil {
		return nil, err
	}
	cpu := l.readKV("cpu.stat")
	return &Stats{
		MemoryCurrent: l.readUint("memory.current"), MemoryMax: l.readUint("memory.max"),
		MemoryPeak: l.readUint("memory.peak"), SwapCurrent: l.readUint("memory.swap.current"),
		MemoryStat:   l.readKV("memory.stat"),
		CPUUsageUsec: cpu["usage_usec"], CPUUserUsec: cpu["user_usec"], CPUSystemUsec: cpu["system_usec"],
		CPUNrPeriods: cpu["nr_periods"], CPUNrThrottled: cpu["nr_throttled"], CPUThrottledUsec: cpu["throttled_usec"],
		PidsCurrent: l.readUint("pids.current"), PidsMax: l.readUint("pids.max"),
		Events: *ev,
	}, nil
}

// Kill signals every process. SIGKILL goes through cgroup.kill (Linux
// 5.14), which also catches processes forked while it runs; other signals,
// and SIGKILL on older kernels, go to each pid, with the cgroup frozen
// first so no new process escapes the list.
func (l leaf) Kill(sig int) error {
	if syscall.Signal(sig) == unix.SIGKILL {
		err := writeFile(l.path, "cgroup.kill", "1")
		// ENODEV: the cgroup is being removed (see removed).
		if err == nil || errors.Is(err, unix.ENODEV) || errors.Is(err, fs.ErrNotExist) && !l.exists() {
			return nil
		}
		if !errors.Is(err, fs.ErrNotExist) {
			return fmt.Errorf("killing: %w", err)
		}
		_ = l.Freeze(context.Background(), true)
		defer func() { _ = writeFile(l.path, "cgroup.freeze", "0") }()
	}
	pids, err := l.Pids()
	if err != nil {
		if !l.exists() {
			return nil
		}
		return err
	}
	for _, pid := range pids {
		if err := unix.Kill(pid, syscall.Signal(sig)); err != nil && !errors.Is(err, unix.ESRCH) {
			return fmt.Errorf("sending signal %d to %d: %w", sig, pid, err)
		}
	}
	return nil
}

// removed tells whether err says the cgroup is gone or going: ENOENT, or
// ENODEV, which kernfs returns for a file of a cgroup that is being removed
// (systemd stopping an empty scope removes its subtree while sandy's
// Destroy waits for it to empty).
func removed(err error) bool {
	return errors.Is(err, unix.ENOENT) || errors.Is(err, unix.ENODEV)
}

func (l leaf) exists() bool {
	_, err := os.Stat(l.path)
	return err == nil
}

// remove kills what is left and removes the cgroup dirs bottom-up. rmdir
// fails with EBUSY while a dying process still counts, so it waits for
// cgroup.events "populated 0" first.
func (l leaf) remove(ctx context.Context) error {
	if l.path == "" || !l.exists() {
		return nil
	}
	if err := l.Kill(int(unix.SIGKILL)); err != nil {
		return err
	}
	ctx, cancel := context.WithTimeout(ctx, 10*time.Second)
	defer cancel()
	for {
		ev, err := l.Events()
		if err != nil {
			if removed(err) || !l.exists() {
				return nil
			}
			return err
		}
		if !ev.Populated {
			break
		}
		select {
		case <-ctx.Done():
			return fmt.Errorf("waiting for %s to empty: %w", l.path, ctx.Err())
		case <-time.After(time.Millisecond):
		}
	}
	var dirs []string
	_ = filepath.WalkDir(l.path, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			dirs = append(dirs, p)
		}
		return nil
	})
	for i := len(dirs) - 1; i >= 0; i-- {
		if err := unix.Rmdir(dirs[i]); err != nil && !removed(err) {
			return fmt.Errorf("removing cgroup %s: %w", dirs[i], err)
		}
	}
	return nil
}

// openDir opens dir as the fd CLONE_INTO_CGROUP takes (clone3(2)).
func openDir(dir string) (int, error) {
	fd, err := unix.Open(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return -1, fmt.Errorf("opening cgroup %s: %w", dir, err)
	}
	return fd, nil
}

// lazyFD opens dir when fd is not open yet and dir exists.
func lazyFD(fd int, dir string) int {
	if fd >= 0 || dir == "" {
		return fd
	}
	if nfd, err := openDir(dir); err == nil {
		return nfd
	}
	return -1
}

// inCgroup says whether pid already sits in dir (cloned into it).
func inCgroup(pid int, dir string) bool {
	p, err := ownCgroup(strconv.Itoa(pid))
	return err == nil && p == dir
}
