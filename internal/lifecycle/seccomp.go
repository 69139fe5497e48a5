package lifecycle

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"sync"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/seccomp"
	"github.com/sandy-rt/sandy/userns"
)

// The container's seccomp filter is compiled here, on the host, once: on a
// goroutine started once the init is (seccompJob), beside the init's exec
// and Go start (1-3 ms, on the other CPU where there is one), and joined
// before the init's config is sent (awaitSeccomp), which carries the
// compiled program; the init only installs it (initproc: loadSeccomp, on
// the thread that execs, at the same moment as before). A profile sandy
// cannot compile still fails the create before the container runs
// anything: the undo kills the init, which has not started the
// container's process. So a container never runs believing it is
// filtered when it is not. Before, the host compiled a bundle's own
// profile before the clone, only to check it, and the init compiled every
// profile again on its one CPU (GOMAXPROCS=1) beside its mounts: a fresh
// process's compile of the default profile is 0.7-1 ms of CPU here.

// seccompJob is a profile to compile on a goroutine, from the moment the
// init is started (startInit): then the host has nothing else to do on
// its CPU but the owner scan and the layer directory, while the init's
// clone, exec and Go start take the other. Started earlier, beside the
// clone, the compile took the CPU that the clone's parent and child share
// (paired runs with the default profile in config.json: `starting the
// init` 1.24 → 2.23 ms).
type seccompJob struct {
	profile *specs.LinuxSeccomp
	once    sync.Once
	done    chan struct{}
	f       *seccomp.Filter
	err     error
}

// start starts the compile; once.
func (j *seccompJob) start() {
	if j == nil {
		return
	}
	j.once.Do(func() {
		go func() {
			defer close(j.done)
			j.f, j.err = seccomp.Compile(j.profile)
		}()
	})
}

// awaitSeccomp joins the compile that checkConfig planned and startInit
// started, and checks the filter as the init will need it: nothing to do
// without a profile.
func (cr *creation) awaitSeccomp(context.Context) error {
	j := cr.seccomp
	if j == nil {
		return nil
	}
	j.start() // where startInit did not: a pending bundle's changed profile
	<-j.done
	if j.err != nil {
		return fmt.Errorf("linux.seccomp: %w", j.err)
	}
	for _, name := range j.f.UnknownSyscalls() {
		cr.g.Debugf("linux.seccomp: %s", name)
	}
	if j.f.NeedsListener() && j.profile.ListenerPath == "" {
		return fmt.Errorf("linux.seccomp: SCMP_ACT_NOTIFY needs linux.seccomp.listenerPath")
	}
	return nil
}

// planSeccomp plans the compile of the profile of the spec checkConfig
// checks, unless it is the one being compiled already (a pending bundle's
// final spec, checked again in awaitBundle, has the start spec's profile
// when the flags decided it) or the container is not filtered.
func (cr *creation) planSeccomp(s *specs.Spec) {
	sc := s.Linux.Seccomp
	if sc == nil || cr.o.NoSeccomp {
		cr.seccomp = nil
		return
	}
	if cr.seccomp != nil && (cr.seccomp.profile == sc || reflect.DeepEqual(cr.seccomp.profile, sc)) {
		return
	}
	cr.seccomp = &seccompJob{profile: sc, done: make(chan struct{})}
}

// seccompFilter is the compiled filter for the init's config, nil when
// the container is not filtered; awaitSeccomp has joined it.
func (cr *creation) seccompFilter() ([]byte, error) {
	if cr.seccomp == nil {
		return nil, nil
	}
	return cr.seccomp.f.MarshalBinary()
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
