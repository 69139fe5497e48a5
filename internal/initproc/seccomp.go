//go:build linux

package initproc

import (
	"errors"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/seccomp"
	"github.com/sandy-rt/sandy/userns"
)

// finish is the process's last set-up: the process steps (setup), the
// console, and seccomp (sc may be nil), in that order but for the filter,
// which goes as late as it can: after every set-up step, so that only
// the ready message, the wait for start and execve run under it, as in
// runc. With process.noNewPrivileges false the kernel needs CAP_SYS_ADMIN
// to install a filter (seccomp(2)), so then it goes first, before the
// capabilities are dropped.
func (p *process) finish(sc *pendingFilter, conn *userns.Conn) error {
	p.conn = conn
	nnp := p.p.NoNewPrivileges
	if !nnp {
		if err := loadSeccomp(sc, conn); err != nil {
			return stepError("loading seccomp", err)
		}
	}
	if err := p.setup(); err != nil {
		return err
	}
	if err := p.attachConsole(); err != nil {
		return stepError("attaching the console", err)
	}
	if err := p.setLateRlimits(); err != nil {
		return stepError("setting the init's rlimits", err)
	}
	if nnp {
		if err := loadSeccomp(sc, conn); err != nil {
			return stepError("loading seccomp", err)
		}
	}
	return nil
}

// pendingFilter is a seccomp filter that is compiled, or being compiled
// on a goroutine: an exec init's, from the moment its config arrives,
// beside its entering the container (a fresh process's compile of
// Docker's default profile is 0.7-5 ms of CPU and page faults). The
// container's init gets its filter compiled by the host
// (compiledSeccomp). Either is installed by loadSeccomp, on the locked
// thread that execs, at the same moment.
type pendingFilter struct {
	done chan struct{}
	f    *seccomp.Filter
	err  error
}

// compileSeccomp starts compiling sc; nil for no profile.
func compileSeccomp(sc *specs.LinuxSeccomp) *pendingFilter {
	if sc == nil {
		return nil
	}
	pf := &pendingFilter{done: make(chan struct{})}
	go func() {
		defer close(pf.done)
		pf.f, pf.err = seccomp.Compile(sc)
	}()
	return pf
}

// compiledSeccomp is the container's filter that the host compiled
// (Config.SeccompFilter); nil when the container is not filtered. A spec
// that still has a profile without a filter, unless seccomp is off, is
// refused: the host strips the profile only when it sends its filter, and
// a container is never started less filtered than its config asked.
func compiledSeccomp(cfg *Config) (*pendingFilter, error) {
	if cfg.SeccompFilter == nil {
		if cfg.Spec.Linux != nil && cfg.Spec.Linux.Seccomp != nil && !cfg.NoSeccomp {
			return nil, errors.New("linux.seccomp came without its compiled filter")
		}
		return nil, nil
	}
	pf := &pendingFilter{done: make(chan struct{}), f: new(seccomp.Filter)}
	close(pf.done)
	if err := pf.f.UnmarshalBinary(cfg.SeccompFilter); err != nil {
		return nil, err
	}
	return pf, nil
}

// loadSeccomp waits for pf's filter and installs it on the calling
// (locked) thread, which is the thread that will execve. A NOTIFY
// listener fd goes to the host side, which hands it to the agent at
// listenerPath.
func loadSeccomp(pf *pendingFilter, conn *userns.Conn) error {
	if pf == nil {
		return nil
	}
	<-pf.done
	f, err := pf.f, pf.err
	if err != nil {
		return err
	}
	fd, err := f.Load()
	if err != nil {
		return err
	}
	if fd < 0 {
		return nil
	}
	defer unix.Close(fd)
	if err := conn.Send(MsgSeccomp, nil, fd); err != nil {
		return fmt.Errorf("sending the seccomp listener: %w", err)
	}
	// Wait until the host has handed it on: the agent must hold it before
	// the first notified syscall.
	if _, err := conn.Expect(MsgSeccompDone); err != nil {
		return err
	}
	return nil
}
