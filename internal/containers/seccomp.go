package containers

import (
	"fmt"
	"io"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/seccomp"
)

// maxSeccompProfile bounds the profile file read: podman's own default
// profile is about 20 KiB.
const maxSeccompProfile = 4 << 20

// loadSeccompFile puts the profile of --security-opt seccomp=FILE in the
// spec, for the spec's bounding set, as podman does: the file is read
// once, at creation, and the container keeps what it said (config.json),
// whatever happens to the file later. A profile with no default action
// and no rules means no filter, as for podman and docker.
func loadSeccompFile(s *specs.Spec, file string) error {
	f, err := os.Open(file)
	if err != nil {
		return fmt.Errorf("--security-opt seccomp=%s: %w", file, err)
	}
	defer f.Close()
	body, err := io.ReadAll(io.LimitReader(f, maxSeccompProfile+1))
	if err != nil {
		return fmt.Errorf("--security-opt seccomp=%s: %w", file, err)
	}
	if len(body) > maxSeccompProfile {
		return fmt.Errorf("--security-opt seccomp=%s: the profile is larger than %d MiB", file, maxSeccompProfile>>20)
	}
	var caps []string
	if s.Process != nil && s.Process.Capabilities != nil {
		caps = s.Process.Capabilities.Bounding
	}
	p, err := seccomp.LoadProfileFor(body, caps)
	if err != nil {
		return fmt.Errorf("--security-opt seccomp=%s: %w", file, err)
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	s.Linux.Seccomp = p
	return nil
}
