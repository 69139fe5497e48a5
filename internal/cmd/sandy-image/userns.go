//go:build containers_image_openpgp

package main

import (
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"strconv"
	"syscall"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/userns"
)

// The storage library's own markers (go.podman.io/storage/pkg/unshare):
// with them set, a process that is uid 0 in a user namespace uses the
// rootless store of the user it maps, as podman's re-exec'd self does.
const (
	envConfigured  = "_CONTAINERS_USERNS_CONFIGURED"
	envRootlessUID = "_CONTAINERS_ROOTLESS_UID"
	envRootlessGID = "_CONTAINERS_ROOTLESS_GID"
	// envSingleID tells the child that its namespace maps only the caller.
	envSingleID = "_SANDY_IMAGE_SINGLE_ID"
)

// needsNamespace reports whether this process must re-run itself in
// sandy's user and mount namespace: a rootless caller not yet inside it.
func needsNamespace() bool {
	return os.Geteuid() != 0 && os.Getenv(envConfigured) == ""
}

// runInNamespace re-runs this helper, with the same arguments, as uid 0
// of a new user namespace with podman's map for the caller (0 → the
// caller, 1..N → its subordinate ranges, written by newuidmap and
// newgidmap; the single mapping with one warning line when there are no
// ranges) and a new mount namespace, and returns its exit status.
// Signals sent to this process are passed on; the child cancels its copy.
func runInNamespace(args []string, stderr io.Writer) (int, error) {
	plan, err := idmap.Resolve(idmap.CallerRequest())
	if err != nil {
		return 125, fmt.Errorf("deciding the image store's id maps: %w", err)
	}
	env := append(os.Environ(),
		envConfigured+"=done",
		envRootlessUID+"="+strconv.Itoa(os.Getuid()),
		envRootlessGID+"="+strconv.Itoa(os.Getgid()))
	if plan.Warning != "" {
		fmt.Fprintf(stderr, "sandy: warning: %s; the image store keeps one owner for every file (ignore_chown_errors)\n", plan.Warning)
		env = append(env, envSingleID+"=1")
	}
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return 125, fmt.Errorf("opening the sandy-image binary: %w", err)
	}
	defer exe.Close()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	child, err := userns.Start(userns.Config{
		Exe:        exe,
		Args:       args,
		Env:        env,
		Cloneflags: syscall.CLONE_NEWUSER | syscall.CLONE_NEWNS,
		Stdin:      os.Stdin,
		Stdout:     os.Stdout,
		Stderr:     os.Stderr,
		CgroupFD:   -1,
		Pdeathsig:  syscall.SIGKILL,
		Maps:       plan,
	})
	if err != nil {
		return 125, fmt.Errorf("entering the image store's user namespace: %w", err)
	}
	go func() {
		// A terminal's Ctrl-C reaches the child too; it treats the
		// first SIGINT or SIGTERM as "cancel" and ignores repeats.
		for s := range sigs {
			_ = child.Cmd.Process.Signal(s)
		}
	}()
	err = child.Cmd.Wait()
	var exit *exec.ExitError
	if errors.As(err, &exit) {
		if ws, ok := exit.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
			return 128 + int(ws.Signal()), nil
		}
		return exit.ExitCode(), nil
	}
	if err != nil {
		return 125, err
	}
	return 0, nil
}
