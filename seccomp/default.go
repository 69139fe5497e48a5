package seccomp

import (
	"fmt"

	mobyseccomp "github.com/moby/profiles/seccomp"
	"github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultProfileFor returns moby's default profile
// (github.com/moby/profiles/seccomp) for the native architecture, with the
// rules that depend on capabilities chosen for the bounding set caps
// (e.g. "CAP_SYS_ADMIN" allows mount, setns, clone with namespace flags).
// It fails only when the kernel release cannot be parsed (moby compares it
// against the minimum kernel of a few rules).
func DefaultProfileFor(caps []string) (*specs.LinuxSeccomp, error) {
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	p, err := mobyseccomp.GetDefaultProfile(rs)
	if err != nil {
		return nil, fmt.Errorf("building moby's default seccomp profile: %w", err)
	}
	return p, nil
}

// DefaultProfile is DefaultProfileFor for callers that cannot handle its
// error; it panics when the kernel release is unparsable, never silently
// returning no profile.
func DefaultProfile(caps []string) *specs.LinuxSeccomp {
	p, err := DefaultProfileFor(caps)
	if err != nil {
		panic(err)
	}
	return p
}

// LoadProfileFor reads a seccomp profile in the JSON format of podman and
// docker (containers/common's and moby's: defaultAction, archMap, syscalls
// with includes/excludes on capabilities, architectures and kernel
// versions) and returns it as the OCI configuration for the native
// architecture and the bounding set caps, as podman's
// --security-opt seccomp=FILE does. A profile with neither a default
// action nor any syscall rule means no filter: nil, as for moby.
func LoadProfileFor(body []byte, caps []string) (*specs.LinuxSeccomp, error) {
	rs := &specs.Spec{Process: &specs.Process{Capabilities: &specs.LinuxCapabilities{Bounding: caps}}}
	p, err := mobyseccomp.LoadProfile(string(body), rs)
	if err != nil {
		return nil, fmt.Errorf("reading the seccomp profile: %w", err)
	}
	return p, nil
}
