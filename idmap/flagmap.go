package idmap

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ParseFlagMap parses a map in podman's --uidmap notation,
// "CONTAINER:HOST:SIZE", several joined by commas
// ("0:1:1000,1000:0:1"), and checks it with ValidateMappings. kind names
// the flag in errors.
func ParseFlagMap(kind, text string) ([]specs.LinuxIDMapping, error) {
	var m []specs.LinuxIDMapping
	for _, tr := range strings.Split(text, ",") {
		f := strings.Split(tr, ":")
		if len(f) != 3 {
			return nil, fmt.Errorf("%s %q: want CONTAINER:HOST:SIZE: %w", kind, tr, ErrInvalidMapping)
		}
		var n [3]uint32
		for j, s := range f {
			v, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%s %q: %q is not an id: %w", kind, tr, s, ErrInvalidMapping)
			}
			n[j] = uint32(v)
		}
		m = append(m, specs.LinuxIDMapping{ContainerID: n[0], HostID: n[1], Size: n[2]})
	}
	if err := ValidateMappings(kind, m); err != nil {
		return nil, err
	}
	return m, nil
}

// FlagMap renders m as ParseFlagMap reads it.
func FlagMap(m []specs.LinuxIDMapping) string {
	s := make([]string, len(m))
	for i, l := range m {
		s[i] = fmt.Sprintf("%d:%d:%d", l.ContainerID, l.HostID, l.Size)
	}
	return strings.Join(s, ",")
}
