package idmap

import "errors"

// Sentinel errors, matched with errors.Is.
var (
	// ErrMalformed marks a subuid/subgid line or getsubids output that does
	// not parse.
	ErrMalformed = errors.New("malformed subordinate id entry")
	// ErrInvalidMapping marks an id mapping the kernel would reject: zero
	// size, a range past the last id, overlapping ranges, too many lines.
	ErrInvalidMapping = errors.New("invalid id mapping")
	// ErrNotOwned marks a mapping whose host ids are neither the caller's
	// own id nor inside the caller's subordinate ranges.
	ErrNotOwned = errors.New("host ids not owned by the caller")
	// ErrNoHelpers marks config.json mappings that need newuidmap and
	// newgidmap when those are missing or unusable.
	ErrNoHelpers = errors.New("newuidmap/newgidmap unusable")
)

// HelperError is returned by Plan.Apply when newuidmap or newgidmap fails.
// Error prints the argv, the exit status, the helper's output and a hint.
type HelperError struct {
	Argv   []string // full argv, argv[0] is the helper
	Output string   // combined stdout and stderr, trimmed
	Hint   string   // one line telling the user what to check or fix
	Err    error    // usually an *exec.ExitError
}

func (e *HelperError) Error() string {
	s := e.Argv[0] + " " + formatArgv(e.Argv[1:]) + ": " + e.Err.Error()
	if e.Output != "" {
		s += ": " + e.Output
	}
	if e.Hint != "" {
		s += "\nhint: " + e.Hint
	}
	return s
}

func (e *HelperError) Unwrap() error { return e.Err }
