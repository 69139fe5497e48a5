package cgroupv2

import "fmt"

// Fallback is one kind of warning line this package gives when sandy runs
// with less than it asked for: a rung down a degradation ladder
// (docs/design.md), one line per lost thing. The line's words live here,
// in format, so every warning site builds its line from an entry of
// Fallbacks; the entry also names the `sandy doctor` check that reports the
// same condition and the docs entry with the fix. internal/doctor's
// TestFallbacks checks both, and that no warning line is written
// anywhere else.
type Fallback struct {
	ID     string // stable name, unique across sandy
	Doctor string // the doctor check (doctor.Check.Name) that reports the condition
	Doc    string // the entry with the fix: "troubleshooting.md#anchor" under docs/; an entry on another page is linked from troubleshooting.md
	format string // the line, for fmt.Sprintf
}

// Line is the warning line, without the "sandy: warning: " prefix.
func (f Fallback) Line(args ...any) string { return fmt.Sprintf(f.format, args...) }

// The lines New, Prepare, Apply and Update give Options.Warn, and the one
// the init gives when it mounts /sys/fs/cgroup.
var (
	// FallbackUnenforced: a limit config.json asks for is not enforced
	// (--allow-unenforced), one line per limit.
	FallbackUnenforced = Fallback{ID: "cgroup-unenforced", Doctor: "cgroup", Doc: "cgroups.md#when-a-limit-cannot-be-enforced",
		format: "%s not enforced: %s (--allow-unenforced)"}
	// FallbackMountRO: a cgroup mount config.json asks rw for is mounted
	// read-only (internal/initproc).
	FallbackMountRO = Fallback{ID: "cgroup-mount-ro", Doctor: "cgroup", Doc: "troubleshooting.md#cgroup-mount",
		format: "mount %s: cgroup mounted read-only, not rw as the options ask: %s, and a writable view would let it change cgroups outside its own; fix: run with a systemd or delegated cgroupfs manager and a cgroup namespace (docs/troubleshooting.md#cgroup-mount)"}
)

// FallbackNone: --cgroup-manager=auto ended on none and config.json
// asks for no limit (a lost limit is an error, or FallbackUnenforced's
// lines): the container gets no cgroup of its own (Choice.Warning).
// Doctor's cgroup row says the line's first part, "cgroup manager none:
// REASON", and its fix (Probe).
var FallbackNone = Fallback{ID: "cgroup-none", Doctor: "cgroup", Doc: "troubleshooting.md#cgroup-manager-none",
	format: "cgroup manager none: %s: the container gets no cgroup of its own, so it has no memory, pids or cpu limits and ps, pause, update and events do not work for it; fix: %s (docs/troubleshooting.md#cgroup-manager-none)"}

// Fallbacks lists every Fallback of this package.
var Fallbacks = []Fallback{FallbackUnenforced, FallbackMountRO, FallbackNone}
