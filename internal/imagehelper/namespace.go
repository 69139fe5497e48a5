package imagehelper

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"syscall"

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
	// helper of run --rm removes the container then).
	Outlive bool
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
	env := append(os.Environ(),
		EnvConfigured+"=done",
		EnvRootlessUID+"="+strconv.Itoa(os.Getuid()),
		EnvRootlessGID+"="+strconv.Itoa(os.Getgid()))
	if plan.Warning != "" {
		env = append(env, EnvSingleID+"=1")
	}
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
