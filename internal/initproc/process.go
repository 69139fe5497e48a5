//go:build linux

package initproc

import (
	"bufio"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"math"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"sync"
	"syscall"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/spec"
	"github.com/sandy-rt/sandy/userns"
)

// process is the container process being prepared, after pivot_root (or,
// for exec, once in the container's mount namespace).
type process struct {
	p       *specs.Process
	console *os.File // pty slave, when p.Terminal
	// setgroupsDenied: the single-id fallback wrote "deny" to setgroups.
	setgroupsDenied bool
	pdeathsig       int // set again after the id change (which clears it)
	preserveFDs     int // fds 3..3+preserveFDs-1 stay open across execve
	caps            capability.Capabilities
	env             []string
	path            string       // the resolved executable
	conn            *userns.Conn // to the host, for "rlimits"
	cwdLater        bool         // process.cwd was denied to root: enter it as the user
}

func newProcess(p *specs.Process, console *os.File, setgroupsDenied bool, pdeathsig int) *process {
	return &process{p: p, console: console, setgroupsDenied: setgroupsDenied, pdeathsig: pdeathsig, env: p.Env}
}

// setup runs the process steps in the order the kernel needs: the
// bounding set is dropped while still uid 0, the ids change with
// PR_SET_KEEPCAPS so the permitted set survives, then the final
// capability sets are applied and no_new_privs is set.
//
// Two steps come before the id switch, as in runc (finalizeNamespace and
// its parent's prlimit at procReady): the host sets process.rlimits with
// prlimit(2) while the init still has its first ids, because prlimit on a
// process of another uid needs CAP_SYS_RESOURCE, which root may lack
// (a bounding set without it) and a rootless caller has not; and the init
// enters process.cwd while it is root in the container, so that a
// directory only root can enter works for any process.user. When that
// chdir is denied, the init tries again as process.user (a directory only
// the user can enter). Either way the path resolves under the root the
// init pivoted to; createCwd made it with in-root resolution, which
// refuses /proc/self/fd magic links, every fd above 2 is close-on-exec
// (see run and execRun), and verifyCwd checks the kernel's view of the
// result (CVE-2024-21626: a cwd reached through a leaked host fd).
func (p *process) setup() error {
	steps := []struct {
		name string
		fn   func() error
	}{
		{"dropping the capability bounding set", p.dropBounding},
		{"having the host set process.rlimits", p.requestRlimits},
		{"entering process.cwd", p.enterCwd},
		{"switching to process.user", p.setUser},
		{"entering process.cwd as process.user", p.enterCwdAsUser},
		{"setting capabilities", p.setCaps},
		{"setting the umask", p.setUmask},
		{"setting no_new_privs", p.setNoNewPrivs},
		{"finding the executable", p.lookPath},
	}
	for _, s := range steps {
		if err := s.fn(); err != nil {
			return stepError(s.name, err)
		}
	}
	return nil
}

// The names of the process's set-up steps (setup's table, and finish's),
// for the forked exec (forkplan.go), which reports its failures under the
// same names (TestStepNames checks them against setup's table).
const (
	stepBounding   = "dropping the capability bounding set"
	stepCwd        = "entering process.cwd"
	stepUser       = "switching to process.user"
	stepCwdAsUser  = "entering process.cwd as process.user"
	stepCaps       = "setting capabilities"
	stepNoNewPrivs = "setting no_new_privs"
	stepFind       = "finding the executable"
	stepLateRlimit = "setting the init's rlimits"
	stepSeccomp    = "loading seccomp"
)

// capsByName is every capability the library knows by its spec name
// (CAP_CHOWN), made on first use: once a process, not once a set.
var capsByName = sync.OnceValue(func() map[string]capability.Cap {
	m := map[string]capability.Cap{}
	for _, c := range capability.ListKnown() {
		m["CAP_"+strings.ToUpper(c.String())] = c
	}
	return m
})

func capList(names []string) ([]capability.Cap, error) {
	last, err := capability.LastCap()
	if err != nil {
		return nil, err
	}
	byName := capsByName()
	var out []capability.Cap
	for _, n := range names {
		c, ok := byName[strings.ToUpper(n)]
		if !ok {
			return nil, fmt.Errorf("unknown capability %q", n)
		}
		if c > last {
			continue // newer than this kernel: nothing to grant
		}
		out = append(out, c)
	}
	return out, nil
}

func (p *process) capSets() (map[capability.CapType][]capability.Cap, error) {
	return capSetsOf(p.p.Capabilities)
}

// capSetsOf is process.capabilities by set, each capability the kernel
// knows (capList).
func capSetsOf(c *specs.LinuxCapabilities) (map[capability.CapType][]capability.Cap, error) {
	if c == nil {
		c = &specs.LinuxCapabilities{}
	}
	sets := map[capability.CapType][]string{
		capability.BOUNDING: c.Bounding, capability.EFFECTIVE: c.Effective,
		capability.PERMITTED: c.Permitted, capability.INHERITABLE: c.Inheritable,
		capability.AMBIENT: c.Ambient,
	}
	out := map[capability.CapType][]capability.Cap{}
	for which, names := range sets {
		l, err := capList(names)
		if err != nil {
			return nil, fmt.Errorf("process.capabilities: %w", err)
		}
		out[which] = l
	}
	return out, nil
}

func (p *process) dropBounding() error {
	sets, err := p.capSets()
	if err != nil {
		return err
	}
	caps, err := capability.NewPid2(0)
	if err != nil {
		return err
	}
	if err := caps.Load(); err != nil {
		return err
	}
	caps.Clear(capability.BOUNDS)
	caps.Set(capability.BOUNDING, sets[capability.BOUNDING]...)
	if err := caps.Apply(capability.BOUNDS); err != nil {
		return err
	}
	p.caps = caps
	return nil
}

// setUser takes process.user's ids. The host has checked them
// (spec.ValidateProcess, spec.CheckUserMapped); (uid_t)-1 is refused here
// once more, right before the calls, because setresuid(2), setresgid(2)
// read -1 as "leave unchanged" and would succeed: the process would run
// with the init's ids, root in the container.
func (p *process) setUser() error {
	u := p.p.User
	if err := refuseUnchanged(u); err != nil {
		return err
	}
	if len(u.AdditionalGids) > 0 && p.setgroupsDenied {
		return errSetgroupsDenied
	}
	if !p.setgroupsDenied {
		gids := make([]int, len(u.AdditionalGids))
		for i, g := range u.AdditionalGids {
			gids[i] = int(g)
		}
		if err := syscall.Setgroups(gids); err != nil {
			return setgroupsError(u.AdditionalGids, err)
		}
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 1, 0, 0, 0); err != nil {
		return err
	}
	if err := syscall.Setresgid(int(u.GID), int(u.GID), int(u.GID)); err != nil {
		return setresidError("gid", u.GID, err, readMap("/proc/self/gid_map"))
	}
	if err := syscall.Setresuid(int(u.UID), int(u.UID), int(u.UID)); err != nil {
		return setresidError("uid", u.UID, err, readMap("/proc/self/uid_map"))
	}
	if err := unix.Prctl(unix.PR_SET_KEEPCAPS, 0, 0, 0, 0); err != nil {
		return err
	}
	// A change of credentials clears the parent-death signal: set it again.
	if p.pdeathsig != 0 {
		if err := unix.Prctl(unix.PR_SET_PDEATHSIG, uintptr(p.pdeathsig), 0, 0, 0); err != nil {
			return err
		}
	}
	return nil
}

// refuseUnchanged refuses an id of u that is (uid_t)-1 or (gid_t)-1.
func refuseUnchanged(u specs.User) error {
	var field string
	switch {
	case u.UID == math.MaxUint32:
		field = "process.user.uid"
	case u.GID == math.MaxUint32:
		field = "process.user.gid"
	case slices.Contains(u.AdditionalGids, math.MaxUint32):
		field = "process.user.additionalGids"
	default:
		return nil
	}
	return fmt.Errorf("%s: 4294967295 is -1, which setresuid(2) and setresgid(2) read as \"leave unchanged\": refusing to run the process with the init's ids", field)
}

// errSetgroupsDenied: additional gids where setgroups(2) is denied.
var errSetgroupsDenied = errors.New("process.user.additionalGids needs setgroups(2), which the single-id mapping denies (install uidmap and add /etc/subgid ranges)")

func setgroupsError(gids []uint32, err error) error {
	ints := make([]int, len(gids))
	for i, g := range gids {
		ints[i] = int(g)
	}
	return fmt.Errorf("setgroups %v: %w (is every additional gid mapped?)", ints, err)
}

// setresidError is a failed setresuid(2) ("uid") or setresgid(2), with the
// hint for an unmapped id; idMap is the user namespace's map of that kind.
func setresidError(kind string, id uint32, err error, idMap string) error {
	return fmt.Errorf("setres%s %d: %w%s", kind, id, err, unmappedHint(err, kind, id, idMap))
}

// readMap reads an id map file ("" when it cannot).
func readMap(path string) string {
	data, _ := os.ReadFile(path)
	return string(data)
}

func unmappedHint(err error, kind string, id uint32, idMap string) string {
	if !errors.Is(err, unix.EINVAL) {
		return ""
	}
	lines := strings.Split(strings.TrimSpace(idMap), "\n")
	for i, l := range lines {
		lines[i] = strings.Join(strings.Fields(l), " ")
	}
	return fmt.Sprintf(" (process.user.%s %d is not mapped in the container's user namespace (%s map: %s); fix: use an id inside the map, or map more ids, see docs/troubleshooting.md#unmapped-user)",
		kind, id, kind, strings.Join(lines, ", "))
}

func (p *process) setCaps() error {
	sets, err := p.capSets()
	if err != nil {
		return err
	}
	p.caps.Clear(capability.CAPS | capability.AMBS)
	for _, which := range []capability.CapType{capability.EFFECTIVE, capability.PERMITTED, capability.INHERITABLE} {
		p.caps.Set(which, sets[which]...)
	}
	// The kernel raises an ambient capability only if it is both permitted
	// and inheritable (capabilities(7)); runc's own example config lists
	// ambient capabilities that are not inheritable, and runc runs it, so
	// those are skipped rather than failing the container.
	ambient := raisableAmbient(sets)
	sets[capability.AMBIENT] = ambient
	p.caps.Set(capability.AMBIENT, ambient...)
	if err := p.caps.Apply(capability.CAPS); err != nil {
		return err
	}
	if len(sets[capability.AMBIENT]) > 0 {
		if err := p.caps.Apply(capability.AMBS); err != nil {
			return fmt.Errorf("ambient capabilities (each must also be permitted and inheritable): %w", err)
		}
	}
	return nil
}

// raisableAmbient is the ambient set of sets that the kernel can raise:
// each capability also permitted and inheritable (see setCaps).
func raisableAmbient(sets map[capability.CapType][]capability.Cap) []capability.Cap {
	var ambient []capability.Cap
	for _, c := range sets[capability.AMBIENT] {
		if slices.Contains(sets[capability.PERMITTED], c) && slices.Contains(sets[capability.INHERITABLE], c) {
			ambient = append(ambient, c)
		}
	}
	return ambient
}

func (p *process) setUmask() error {
	mask := 0o022
	if p.p.User.Umask != nil {
		mask = int(*p.p.User.Umask)
	}
	unix.Umask(mask)
	return nil
}

// setLateRlimits sets the rlimits the init sets itself (spec.SetByInit),
// as late as it can: after every allocation-heavy step, before seccomp
// when that goes last. syscall.Setrlimit (not unix's) also tells Go's
// syscall.Exec not to restore its start-up RLIMIT_NOFILE.
func (p *process) setLateRlimits() error {
	for _, rl := range p.p.Rlimits {
		if !spec.SetByInit(rl.Type) {
			continue
		}
		n, _ := spec.RlimitNumber(rl.Type) // checked by spec.ValidateProcess
		lim := syscall.Rlimit{Cur: rl.Soft, Max: rl.Hard}
		if err := syscall.Setrlimit(n, &lim); err != nil {
			return lateRlimitError(rl, err)
		}
	}
	return nil
}

func lateRlimitError(rl specs.POSIXRlimit, err error) error {
	if errors.Is(err, unix.EPERM) {
		return fmt.Errorf("%s %d/%d: %w (above the hard limit sandy was started with: raise it with `ulimit -H` before running sandy)", rl.Type, rl.Soft, rl.Hard, err)
	}
	return fmt.Errorf("%s: %w", rl.Type, err)
}

// requestRlimits asks the host to set process.rlimits on this process
// (prlimit(2), from the host, with the caller's privileges) and waits until
// it has: the limits then hold for the process this init execs. The host
// sets them, rather than the init with setrlimit(2), so that raising a
// hard limit is judged on the caller's capabilities (CAP_SYS_RESOURCE is
// checked in the initial user namespace, where the init has none). The
// Go runtime of the init lives under them from here on, as runc's init
// does from procReady.
func (p *process) requestRlimits() error {
	if len(p.p.Rlimits) == 0 {
		return nil
	}
	if err := p.conn.Send(MsgRlimits, nil); err != nil {
		return err
	}
	_, err := p.conn.Expect(MsgRlimitsDone)
	return err
}

// enterCwd enters process.cwd with the init's ids (root in the container);
// a permission error is left for enterCwdAsUser, as runc does: the user
// may be able to enter a directory the init cannot (a volume chowned to
// the user, with a rootless init that lacks CAP_DAC_OVERRIDE over it).
func (p *process) enterCwd() error {
	err := unix.Chdir(p.p.Cwd)
	if errors.Is(err, unix.EACCES) || errors.Is(err, unix.EPERM) {
		p.cwdLater = true
		return nil
	}
	if err != nil {
		return fmt.Errorf("%s: %w", p.p.Cwd, err)
	}
	return verifyCwd(p.p.Cwd)
}

// enterCwdAsUser enters process.cwd as process.user when the init could
// not.
func (p *process) enterCwdAsUser() error {
	if !p.cwdLater {
		return nil
	}
	if err := unix.Chdir(p.p.Cwd); err != nil {
		return fmt.Errorf("%s: %w", p.p.Cwd, err)
	}
	return verifyCwd(p.p.Cwd)
}

// verifyCwd refuses a working directory outside the container's root:
// getcwd(2) then prefixes "(unreachable)" (CVE-2024-21626, where a cwd of
// /proc/self/fd/N led through a leaked fd to the host).
func verifyCwd(cwd string) error {
	wd, err := unix.Getwd() // ENOENT for "(unreachable)"
	if errors.Is(err, unix.ENOENT) || err == nil && !strings.HasPrefix(wd, "/") {
		return cwdOutsideError(cwd, false)
	}
	if err != nil {
		// getcwd itself may be denied: a seccomp profile loaded before
		// the capabilities drop (noNewPrivileges false) can block it, as
		// runtime-tools' linux_seccomp test does. Walk ".." instead.
		inside, werr := cwdUnderRoot()
		if werr != nil {
			return cwdWalkError(cwd, err, werr)
		}
		if !inside {
			return cwdOutsideError(cwd, true)
		}
	}
	return nil
}

// cwdOutsideError: process.cwd led out of the root, by getcwd(2)'s
// account or (walked) the ".." walk's.
func cwdOutsideError(cwd string, walked bool) error {
	if walked {
		return fmt.Errorf("%s: the directory entered is outside the container's root (its \"..\" chain never reaches the root)", cwd)
	}
	return fmt.Errorf("%s: the directory entered is outside the container's root (getcwd(2) finds it unreachable)", cwd)
}

func cwdWalkError(cwd string, getcwdErr, walkErr error) error {
	return fmt.Errorf("%s: getcwd: %w; walking up to the root: %w", cwd, getcwdErr, walkErr)
}

// cwdUnderRoot reports whether the root is an ancestor of the working
// directory, with openat(2) and fstat(2) only: ".." stops at the
// process's root (path_resolution(7)), so a directory inside the root
// reaches it; one outside (entered through a leaked fd) reaches the top
// of its own tree, whose ".." is itself, without passing the root.
func cwdUnderRoot() (bool, error) {
	var root unix.Stat_t
	if err := unix.Stat("/", &root); err != nil {
		return false, err
	}
	fd, err := unix.Open(".", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return false, err
	}
	var prev unix.Stat_t
	for i := 0; i < 4096; i++ {
		var st unix.Stat_t
		if err := unix.Fstat(fd, &st); err != nil {
			unix.Close(fd)
			return false, err
		}
		if st.Dev == root.Dev && st.Ino == root.Ino {
			unix.Close(fd)
			return true, nil
		}
		if i > 0 && st.Dev == prev.Dev && st.Ino == prev.Ino {
			unix.Close(fd)
			return false, nil // the top of a tree that is not the root
		}
		prev = st
		parent, err := unix.Openat(fd, "..", unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
		unix.Close(fd)
		if err != nil {
			return false, err
		}
		fd = parent
	}
	unix.Close(fd)
	return false, errors.New("more than 4096 levels")
}

func (p *process) setNoNewPrivs() error {
	if !p.p.NoNewPrivileges {
		return nil
	}
	return unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0)
}

// lookPath finds args[0] the way execvp would, in the container's root and
// with the container's PATH; not found is exit 127 and not executable 126,
// as a shell (and runc run) report them.
func (p *process) lookPath() error {
	name := p.p.Args[0]
	if !hasEnv(p.env, "HOME") {
		p.env = append(p.env, "HOME="+homeOf(p.p.User.UID))
	}
	if strings.Contains(name, "/") {
		if err := executable(name); err != nil {
			return execError(name, err)
		}
		p.path = name
		return nil
	}
	var denied error
	for _, cand := range execCandidates(name, p.env) {
		err := executable(cand)
		if err == nil {
			p.path = cand
			return nil
		}
		if errors.Is(err, fs.ErrPermission) && denied == nil {
			denied = err
		}
	}
	if denied != nil {
		return execError(name, denied)
	}
	return notFoundError(name)
}

func notFoundError(name string) error {
	return &userns.ChildError{Message: fmt.Sprintf("exec: %q: executable file not found in $PATH", name), ExitCode: 127}
}

// execCandidates are the paths execvp(3) tries for a name without a
// slash: each entry of the environment's PATH (sandy's default without
// one; an empty entry is the working directory) joined with it, in order.
func execCandidates(name string, env []string) []string {
	if strings.Contains(name, "/") {
		return []string{name}
	}
	pathEnv := envValue(env, "PATH")
	if pathEnv == "" {
		pathEnv = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"
	}
	var out []string
	for _, dir := range filepath.SplitList(pathEnv) {
		if dir == "" {
			dir = "."
		}
		out = append(out, filepath.Join(dir, name))
	}
	return out
}

func executable(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return err
	}
	if fi.IsDir() {
		return fs.ErrPermission
	}
	if err := unix.Access(p, unix.X_OK); err != nil {
		return fs.ErrPermission
	}
	return nil
}

func execError(name string, err error) error {
	if errors.Is(err, fs.ErrNotExist) {
		return &userns.ChildError{Message: fmt.Sprintf("exec: %q: no such file or directory", name), ExitCode: 127}
	}
	return &userns.ChildError{Message: fmt.Sprintf("exec: %q: permission denied", name), ExitCode: 126}
}

func hasEnv(env []string, key string) bool {
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			return true
		}
	}
	return false
}

func envValue(env []string, key string) string {
	v := ""
	for _, e := range env {
		if strings.HasPrefix(e, key+"=") {
			v = e[len(key)+1:]
		}
	}
	return v
}

// homeOf reads the container's /etc/passwd for uid's home, "/" if absent.
func homeOf(uid uint32) string {
	f, err := os.Open("/etc/passwd")
	if err != nil {
		return "/"
	}
	defer f.Close()
	return homeIn(f, uid)
}

// homeIn reads uid's home from a passwd file, "/" if absent.
func homeIn(passwd io.Reader, uid uint32) string {
	s := bufio.NewScanner(passwd)
	for s.Scan() {
		fl := strings.Split(s.Text(), ":")
		if len(fl) >= 6 && fl[2] == strconv.FormatUint(uint64(uid), 10) && fl[5] != "" {
			return fl[5]
		}
	}
	return "/"
}

// exec is the last step. Every fd above 2 (but the preserved ones) is
// close-on-exec since the init started (see run), so none reaches the
// container; one more pass catches anything opened since, where the
// seccomp profile allows close_range. The one exception: fifo, when not
// nil, is the exec fifo, handed on to sandy's own pid 1 (handOn).
func (p *process) exec(fifo *os.File) error {
	_ = unix.CloseRange(uint(3+p.preserveFDs), math.MaxUint32, unix.CLOSE_RANGE_CLOEXEC)
	args := p.p.Args
	if fifo != nil {
		var err error
		if args, err = p.handOn(fifo); err != nil {
			return stepError("handing the exec fifo to sandy-init", err)
		}
	}
	err := unix.Exec(p.path, args, p.env)
	return execError(p.path, err)
}

// attachConsole makes the pty the process's stdio and controlling terminal.
func (p *process) attachConsole() error {
	if p.console == nil {
		return nil
	}
	if _, err := unix.Setsid(); err != nil {
		return fmt.Errorf("setsid: %w", err)
	}
	fd := int(p.console.Fd())
	for i := 0; i <= 2; i++ {
		if err := unix.Dup3(fd, i, 0); err != nil {
			return err
		}
	}
	if err := unix.IoctlSetInt(0, unix.TIOCSCTTY, 0); err != nil {
		return fmt.Errorf("TIOCSCTTY: %w", err)
	}
	return p.console.Close()
}

// setOOMScoreAdj writes process.oomScoreAdj while the host's /proc is still
// reachable. Lowering the score below the caller's needs CAP_SYS_RESOURCE
// in the initial user namespace (proc(5), oom_score_adj): rootless, the
// score can only be raised; root can lack the capability too (a bounding
// set without it, as in a container), and then fails as runc does, with
// the capability named: containerd's CRI asks -998 for every sandbox
// unless restrict_oom_score_adj is set.
func setOOMScoreAdj(cfg *Config) error {
	if cfg.Spec.Process.OOMScoreAdj == nil {
		return nil
	}
	v := strconv.Itoa(*cfg.Spec.Process.OOMScoreAdj)
	if err := os.WriteFile("/proc/self/oom_score_adj", []byte(v), 0); err != nil {
		if !hasCap(unix.CAP_SYS_RESOURCE) {
			return fmt.Errorf("process.oomScoreAdj %s: %w: lowering it needs CAP_SYS_RESOURCE, which sandy lacks here (see CapBnd in /proc/self/status); under containerd's CRI set restrict_oom_score_adj = true (docs/troubleshooting.md#oom_score_adj)", v, err)
		}
		return fmt.Errorf("process.oomScoreAdj %s: %w (rootless, it can only be raised above the caller's)", v, err)
	}
	return nil
}
