package lifecycle

import (
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/seccomp"
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

// handOnListener gives the init's seccomp notify listener to the agent at
// listenerPath with the container's state (runc's protocol), then tells
// the init to go on.
func (cr *creation) handOnListener(fd int) error {
	defer unix.Close(fd)
	sc := cr.bundle.Spec.Linux.Seccomp
	st := specs.State{Version: specs.Version, ID: cr.c.ID, Status: specs.StateCreating,
		Pid: cr.c.Pid, Bundle: cr.c.Bundle, Annotations: cr.c.Annotations}
	data, err := json.Marshal(st)
	if err != nil {
		return err
	}
	if err := seccomp.SendListener(sc.ListenerPath, data, sc.ListenerMetadata, fd); err != nil {
		return err
	}
	return cr.conn.Send(initproc.MsgSeccompDone, nil)
}
