package idmap

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

// FallbackSingleID: the automatic maps degraded to the single mapping
// (Plan.Warning).
var FallbackSingleID = Fallback{ID: "idmap-single", Doctor: "idmap", Doc: "troubleshooting.md#user-id-mapping",
	format: "using a single id mapping: %s, so the container has only %s (as root) and no other users or groups; fix: %s (%s)"}

// Fallbacks lists every Fallback of this package.
var Fallbacks = []Fallback{FallbackSingleID}
