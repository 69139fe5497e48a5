//go:build linux

package initproc

import (
	"context"
	"encoding/json"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/hooks"
	"github.com/sandy-rt/sandy/userns"
)

// createHooks is the runtime spec's "before pivot_root" moment: the host
// runs prestart and createRuntime (in the runtime's namespaces), then the
// init runs createContainer here, in the container's namespaces, where the
// host's paths are still visible, with the container's root (root, an
// O_PATH handle on it) as their working directory, as runc runs them. It
// returns the state JSON for the startContainer hooks.
func createHooks(cfg *Config, conn *userns.Conn, root *os.File) ([]byte, error) {
	h := cfg.Spec.Hooks
	if h == nil {
		return nil, nil
	}
	var st []byte
	//lint:ignore SA1019 prestart hooks are deprecated, not gone: runtimes still run them
	if len(h.Prestart)+len(h.CreateRuntime)+len(h.CreateContainer)+len(h.StartContainer) == 0 {
		return nil, nil
	}
	if err := conn.Send(MsgHooks, nil); err != nil {
		return nil, stepError("running hooks", err)
	}
	m, err := conn.Expect(MsgHooksDone)
	if err != nil {
		return nil, stepError("running prestart/createRuntime hooks", err)
	}
	var state specs.State
	if err := m.Decode(&state); err != nil {
		return nil, err
	}
	if st, err = json.Marshal(state); err != nil {
		return nil, err
	}
	if len(h.CreateContainer) > 0 {
		if err := unix.Fchdir(int(root.Fd())); err != nil {
			return nil, stepError("entering the container's root for createContainer hooks", err)
		}
	}
	if err := hooks.RunAll(context.Background(), "createContainer", h.CreateContainer, st, os.Stderr, os.Stderr); err != nil {
		return nil, stepError("running createContainer hooks", err)
	}
	return st, nil
}

// startHooks runs startContainer hooks after `start`, in the container
// (after pivot_root: their paths resolve in the container's root).
func startHooks(cfg *Config, st []byte) error {
	h := cfg.Spec.Hooks
	if h == nil || len(h.StartContainer) == 0 {
		return nil
	}
	if err := hooks.RunAll(context.Background(), "startContainer", h.StartContainer, st, os.Stderr, os.Stderr); err != nil {
		return stepError("running startContainer hooks", err)
	}
	return nil
}
