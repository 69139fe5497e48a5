//go:build linux

package initproc

import "errors"

// loadSeccomp installs linux.seccomp. Until the seccomp package lands, a
// config that asks for a filter fails closed: a container never runs
// believing it is filtered when it is not.
func loadSeccomp(cfg *Config) error {
	if cfg.Spec.Linux.Seccomp == nil || cfg.NoSeccomp {
		return nil
	}
	return errors.New("linux.seccomp is not supported by this build (pass --no-seccomp to run without the filter)")
}
