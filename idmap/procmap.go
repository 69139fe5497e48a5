package idmap

import (
	"fmt"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ParseProcMap parses the text of /proc/PID/uid_map or /proc/PID/gid_map
// (user_namespaces(7)): one line per range, "ID-inside-ns ID-outside-ns
// length", the numbers padded with spaces. The first column is always
// the ids of PID's user namespace (the container's); the second is
// relative to the reader's namespace. The result is checked with
// ValidateMappings, as the kernel checked it when the map was written.
func ParseProcMap(kind, text string) ([]specs.LinuxIDMapping, error) {
	var m []specs.LinuxIDMapping
	for i, line := range strings.Split(strings.TrimSpace(text), "\n") {
		f := strings.Fields(line)
		if len(f) != 3 {
			return nil, fmt.Errorf("%s line %d %q: want 3 numbers: %w", kind, i+1, line, ErrMalformed)
		}
		var n [3]uint32
		for j, s := range f {
			v, err := strconv.ParseUint(s, 10, 32)
			if err != nil {
				return nil, fmt.Errorf("%s line %d %q: %w", kind, i+1, line, ErrMalformed)
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

// Mapped reports whether the container id is inside one of m's ranges,
// that is, whether a process of that namespace can take it
// (setresuid(2), setgroups(2) fail with EINVAL otherwise). (uid_t)-1 is
// never mapped: a valid map ends at 4294967294 (ValidateMappings).
func Mapped(m []specs.LinuxIDMapping, id uint32) bool {
	_, ok := toHost(m, id)
	return ok
}

// FormatMap renders m in the kernel's order of columns, one range per
// comma, for messages: "0 1001 1, 1 100000 65536".
func FormatMap(m []specs.LinuxIDMapping) string {
	if len(m) == 0 {
		return "empty"
	}
	s := make([]string, len(m))
	for i, l := range m {
		s[i] = fmt.Sprintf("%d %d %d", l.ContainerID, l.HostID, l.Size)
	}
	return strings.Join(s, ", ")
}
