//go:build linux

package initproc

import (
	"fmt"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/seccomp"
	"github.com/sandy-rt/sandy/userns"
)

// loadSeccomp compiles and installs linux.seccomp on the init's (locked)
// thread, which is the thread that will execve. It runs as late as it can:
// after every set-up step and before the init reports ready, so that only
// write/close/close_range/execve happen under the filter, as in runc. With
// process.noNewPrivileges false the kernel needs CAP_SYS_ADMIN to install
// it, so then it runs before the capabilities are dropped (early is true).
// A NOTIFY listener fd goes to the host side, which hands it to the agent
// at listenerPath.
func loadSeccomp(cfg *Config, conn *userns.Conn, early bool) error {
	sc := cfg.Spec.Linux.Seccomp
	if sc == nil || cfg.NoSeccomp || early == cfg.Spec.Process.NoNewPrivileges {
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
