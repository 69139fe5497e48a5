//go:build containers_image_openpgp

package main

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"syscall"

	"github.com/sandy-rt/sandy/internal/imagehelper"
)

// runInNamespace re-runs this helper, with the same arguments, inside the
// image store's user and mount namespace (imagehelper.StartInNamespace)
// and returns its exit status. Signals sent to this process are passed
// on; the child cancels its copy.
func runInNamespace(args []string, g *global) (int, error) {
	stderr := g.stderr
	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		return 125, fmt.Errorf("opening the sandy-image binary: %w", err)
	}
	defer exe.Close()
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP, syscall.SIGQUIT)
	defer signal.Stop(sigs)
	child, warning, err := imagehelper.StartInNamespace(exe, imagehelper.Namespace{Args: args, Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr,
		Debug: func(line string) { g.debugf("%s", line) }})
	if warning != "" {
		fmt.Fprintf(stderr, "sandy: warning: %s\n", imagehelper.SingleIDNote(warning))
	}
	if err != nil {
		return 125, err
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
