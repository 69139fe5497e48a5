package lifecycle

import (
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// checkSeccomp rejects a profile this build cannot install, before any
// process starts: the container fails closed, never runs unfiltered.
func checkSeccomp(*specs.LinuxSeccomp) error {
	return errors.New("linux.seccomp is set, and this build cannot install seccomp filters yet; pass --no-seccomp to run the container unfiltered")
}
