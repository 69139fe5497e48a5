package imagehelper

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/userns"
)

// The storage library's own markers (go.podman.io/storage/pkg/unshare):
// with them set, a process that is uid 0 in a user namespace uses the
// rootless store of the user it maps, as podman's re-exec'd self does.
const (
	EnvConfigured  = "_CONTAINERS_USERNS_CONFIGURED"
	EnvRootlessUID = "_CONTAINERS_ROOTLESS_UID"
	EnvRootlessGID = "_CONTAINERS_ROOTLESS_GID"
	// EnvSingleID tells the helper that its namespace maps only the caller.
	EnvSingleID = "_SANDY_IMAGE_SINGLE_ID"
)

// NeedsNamespace reports whether a process must enter the store's user
// and mount namespace before it opens the store: a rootless caller not
// yet inside it.
func NeedsNamespace() bool {
	return os.Geteuid() != 0 && os.Getenv(EnvConfigured) == ""
}

// Namespace is how the helper runs inside the store's namespace.
type Namespace struct {
	Args           []string
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Setsid puts the helper in a session of its own, out of reach of the
	// terminal's Ctrl-C (sandy run IMAGE keeps it for the container's
	// life and ends it itself).
	Setsid bool
	// Outlive: the helper is not killed when the caller dies (the held
	// helper of sandy run removes the container then, Abandoned).
	Outlive bool
	// Debug receives --debug's lines (which way the namespace was
	// entered); nil for none.
	Debug func(string)
}

// StartInNamespace starts the helper exe, for root in a new mount
// namespace only, else as uid 0 of a new user namespace with podman's map
// for the caller (0 → the caller, 1..N → its
// subordinate ranges, written by newuidmap and newgidmap; the single
// mapping when there are no ranges) and a new mount namespace. warning
// is the id map ladder's line when it stepped down to the single mapping
// ("" otherwise), for the caller to print with SingleIDNote.
func StartInNamespace(exe *os.File, ns Namespace) (child *userns.Child, warning string, err error) {
	pdeathsig := syscall.SIGKILL
	if ns.Outlive {
		pdeathsig = 0
	}
	if os.Geteuid() == 0 {
		// root's store is root's own, in the host's user namespace (its
		// overlay metadata in trusted.* xattrs): a mount namespace only.
		child, err = userns.Start(userns.Config{Exe: exe, Args: ns.Args, Env: os.Environ(), Cloneflags: syscall.CLONE_NEWNS,
			Stdin: ns.Stdin, Stdout: ns.Stdout, Stderr: ns.Stderr, CgroupFD: -1, Pdeathsig: pdeathsig, Setsid: ns.Setsid})
		if err != nil {
			return nil, "", fmt.Errorf("starting the image helper: %w", err)
		}
		return child, "", nil
	}
	plan, err := idmap.Resolve(idmap.CallerRequest())
	if err != nil {
		return nil, "", fmt.Errorf("deciding the image store's id maps: %w", err)
	}
	env := storeEnv(plan)
	debug := ns.Debug
	if debug == nil {
		debug = func(string) {}
	}
	child, err = startJoined(exe, ns, plan, env, pdeathsig, debug)
	if err == nil {
		return child, "", nil
	}
	debug("store namespace: a new user namespace: " + err.Error())
	child, err = userns.Start(userns.Config{
		Exe:        exe,
		Args:       ns.Args,
		Env:        env,
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		Stdin:      ns.Stdin,
		Stdout:     ns.Stdout,
		Stderr:     ns.Stderr,
		CgroupFD:   -1,
		Pdeathsig:  pdeathsig,
		Setsid:     ns.Setsid,
		Maps:       plan,
	})
	if err != nil {
		return nil, "", fmt.Errorf("entering the image store's user namespace: %w", err)
	}
	return child, plan.Warning, nil
}

// storeEnv is the helper's environment in the store's namespace: the
// storage library's markers.
func storeEnv(plan *idmap.Plan) []string {
	env := append(os.Environ(),
		EnvConfigured+"=done",
		EnvRootlessUID+"="+strconv.Itoa(os.Getuid()),
		EnvRootlessGID+"="+strconv.Itoa(os.Getgid()))
	if plan.Warning != "" {
		env = append(env, EnvSingleID+"=1")
	}
	return env
}

// joinCommand is the nsenter → unshare chain (pause.go) that runs the
// helper exePath with args in the user namespace nsPath, with a mount
// namespace of its own; both paths are /proc/self/fd/N of the process
// that execs nsenter.
type joinCommand struct{ nsenter, unshare string }

func lookJoin() (joinCommand, error) {
	var j joinCommand
	var err error
	if j.nsenter, err = exec.LookPath("nsenter"); err != nil {
		return j, fmt.Errorf("no nsenter to join the pause process's (apt-get install util-linux): %w", err)
	}
	if j.unshare, err = exec.LookPath("unshare"); err != nil {
		return j, fmt.Errorf("no unshare to join the pause process's (apt-get install util-linux): %w", err)
	}
	return j, nil
}

func (j joinCommand) argv(nsPath, exePath string, args []string) []string {
	return append([]string{"nsenter", "--user=" + nsPath, "--preserve-credentials", "--",
		j.unshare, "--mount", "--propagation", "unchanged", "--", exePath}, args...)
}

func joinedLine(s *storeNS) string {
	how := "joined"
	if s.created {
		how = "started and joined"
	}
	return fmt.Sprintf("store namespace: %s the pause process %d's user namespace", how, s.pid)
}

// startJoined starts the helper in the user namespace a pause process
// holds (pause.go), with a mount namespace of its own.
func startJoined(exe *os.File, ns Namespace, plan *idmap.Plan, env []string, pdeathsig syscall.Signal, debug func(string)) (*userns.Child, error) {
	j, lookErr := lookJoin() // the fork needs neither program
	sns, err := joinStoreNS(plan, j, debug)
	if err != nil {
		return nil, err
	}
	defer sns.Close()
	child, reason, err := forkJoined(exe, ns, sns, env, pdeathsig)
	if err != nil {
		return nil, err
	}
	if child != nil {
		debug(joinedLine(sns) + " (forked: no nsenter, no unshare)")
		return child, nil
	}
	debug("store namespace: nsenter and unshare, not the fork: " + reason)
	if lookErr != nil {
		return nil, lookErr
	}
	// fd 3: the namespace; fd 4: the helper's binary.
	cmd := &exec.Cmd{
		Path:        j.nsenter,
		Args:        j.argv("/proc/self/fd/3", "/proc/self/fd/4", ns.Args),
		Env:         env,
		Stdin:       ns.Stdin,
		Stdout:      ns.Stdout,
		Stderr:      ns.Stderr,
		ExtraFiles:  []*os.File{sns.ns, exe},
		SysProcAttr: &syscall.SysProcAttr{Pdeathsig: pdeathsig, Setsid: ns.Setsid},
	}
	if err := cmd.Start(); err != nil {
		return nil, fmt.Errorf("starting %s: %w", j.nsenter, err)
	}
	debug(joinedLine(sns))
	return &userns.Child{Cmd: cmd}, nil
}

// execJoined replaces this process with the helper at path running args
// in the store's namespace held by the pause process (pause.go): no
// second helper start, as sandy-image's own re-exec into the namespace
// costs. It returns only when it cannot; the caller then execs the
// helper, which enters the namespace itself.
func execJoined(path string, args []string, debug func(string)) error {
	plan, err := idmap.Resolve(idmap.CallerRequest())
	if err != nil {
		return fmt.Errorf("deciding the image store's id maps: %w", err)
	}
	j, err := lookJoin()
	if err != nil {
		return err
	}
	sns, err := joinStoreNS(plan, j, debug)
	if err != nil {
		return err
	}
	defer sns.Close()
	exe, err := os.Open(path)
	if err != nil {
		return fmt.Errorf("opening %s: %w", path, err)
	}
	defer exe.Close()
	// Both stay open across the execs, at their numbers.
	for _, f := range []*os.File{sns.ns, exe} {
		if _, err := unix.FcntlInt(f.Fd(), unix.F_SETFD, 0); err != nil {
			return fmt.Errorf("passing fd %d to nsenter: %w", f.Fd(), err)
		}
	}
	argv := j.argv(fmt.Sprintf("/proc/self/fd/%d", sns.ns.Fd()), fmt.Sprintf("/proc/self/fd/%d", exe.Fd()), args)
	debug(joinedLine(sns))
	err = unix.Exec(j.nsenter, argv, storeEnv(plan))
	for _, f := range []*os.File{sns.ns, exe} {
		_, _ = unix.FcntlInt(f.Fd(), unix.F_SETFD, unix.FD_CLOEXEC)
	}
	return fmt.Errorf("running %s: %w", j.nsenter, err)
}
