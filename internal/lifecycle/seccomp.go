package lifecycle

import (
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/seccomp"
	"github.com/sandy-rt/sandy/userns"
)

// checkSeccomp compiles linux.seccomp on the host before anything starts,
// so that a profile sandy cannot install fails the create cleanly: a
// container never runs believing it is filtered when it is not.
func (cr *creation) checkSeccomp(sc *specs.LinuxSeccomp) error {
	f, err := seccomp.Compile(sc)
	if err != nil {
		return fmt.Errorf("linux.seccomp: %w", err)
	}
	for _, name := range f.UnknownSyscalls() {
		cr.g.Debugf("linux.seccomp: %s", name)
	}
	if f.NeedsListener() && sc.ListenerPath == "" {
		return fmt.Errorf("linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")
	}
	return nil
}

// handOnListener gives a seccomp notify listener (the init's or an exec
// init's) to the agent at sc.listenerPath with the container's state
// (runc's protocol), then tells the process on conn to go on.
func handOnListener(conn *userns.Conn, sc *specs.LinuxSeccomp, c *state.Container, status specs.ContainerState, fd int) error {
	defer unix.Close(fd)
	st := specs.State{Version: specs.Version, ID: c.ID, Status: status,
		Pid: c.Pid, Bundle: c.Bundle, Annotations: c.Annotations}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := seccomp.SendListener(sc.ListenerPath, data, sc.ListenerMetadata, fd); err != nil {
		return err
	}
	return conn.Send(initproc.MsgSeccompDone, nil)
}
