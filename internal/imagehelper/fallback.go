package imagehelper

import "fmt"

// Fallback is one kind of warning line the image helper gives when it runs
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

// FallbackStoreDriver: a new image store could not use the best storage
// driver and uses the next one (the ladder of internal/images.Open). It
// lives here, not in internal/images, so that internal/doctor sees it
// without linking the image libraries.
var FallbackStoreDriver = Fallback{ID: "images-driver", Doctor: "images", Doc: "troubleshooting.md#image-store-native-overlay--using-fuse-overlayfs--using-vfs",
	format: "image store: %s (fix: %s)"}

// Fallbacks lists every Fallback of this package.
var Fallbacks = []Fallback{FallbackStoreDriver}
