package lifecycle

import (
	"context"
	"encoding/json"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/hooks"
	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/internal/state"
)

// hookState is the state JSON a hook reads on stdin.
func hookState(c *state.Container, status specs.ContainerState) []byte {
	st := specs.State{Version: specs.Version, ID: c.ID, Status: status, Pid: c.Pid, Bundle: c.Bundle, Annotations: c.Annotations}
	if status == specs.StateStopped {
		st.Pid = 0
	}
	data, _ := json.Marshal(st)
	return data
}

// runCreateHooks runs prestart (deprecated, same moment as in runc) and
// createRuntime hooks on the host while the init waits before pivot_root,
// then hands the init the state for its createContainer hooks. They run in
// the bundle directory, as runc's do (runc create and run change into it);
// poststart and poststop run in sandy's. A failing
// hook aborts the create, which then cleans up. So does the cancellation of
// ctx (`sandy run` interrupted by a signal), which kills the running hook's
// process group: a hook with no timeout never makes sandy deaf.
func (cr *creation) runCreateHooks(ctx context.Context) error {
	h := cr.bundle.Spec.Hooks
	st := hookState(cr.c, specs.StateCreating)
	//lint:ignore SA1019 prestart hooks are deprecated, not gone: runtimes still run them
	if err := hooks.RunAllIn(ctx, cr.c.Bundle, "prestart", h.Prestart, st, os.Stderr, os.Stderr); err != nil {
		return err
	}
	if err := hooks.RunAllIn(ctx, cr.c.Bundle, "createRuntime", h.CreateRuntime, st, os.Stderr, os.Stderr); err != nil {
		return err
	}
	var state specs.State
	_ = json.Unmarshal(st, &state)
	return cr.conn.Send(initproc.MsgHooksDone, state)
}

// runPoststart runs every poststart hook after the process started; a
// failure is reported and the rest still run (the spec: logged, the
// container goes on).
func runPoststart(g *Global, c *state.Container) {
	if c.Hooks == nil || len(c.Hooks.Poststart) == 0 {
		return
	}
	if err := hooks.RunAllReport(context.Background(), "poststart", c.Hooks.Poststart, hookState(c, specs.StateRunning), os.Stderr, os.Stderr); err != nil {
		g.Warn(err.Error())
	}
}

// runPoststop runs poststop hooks when the container is deleted; failures
// are reported, not fatal.
func runPoststop(g *Global, c *state.Container) {
	if c.Hooks == nil || len(c.Hooks.Poststop) == 0 {
		return
	}
	if err := hooks.RunAllReport(context.Background(), "poststop", c.Hooks.Poststop, hookState(c, specs.StateStopped), os.Stderr, os.Stderr); err != nil {
		g.Warn(err.Error())
	}
}
