//go:build linux

package initproc

import (
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
func (p *process) finish(sc *specs.LinuxSeccomp, conn *userns.Conn) error {
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

// loadSeccomp compiles and installs sc on the calling (locked) thread,
// which is the thread that will execve. A NOTIFY listener fd goes to the
// host side, which hands it to the agent at listenerPath.
func loadSeccomp(sc *specs.LinuxSeccomp, conn *userns.Conn) error {
	if sc == nil {
		return nil
	}
	f, err := seccomp.Compile(sc)
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
