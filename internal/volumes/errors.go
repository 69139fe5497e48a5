package volumes

import "errors"

// Sentinel errors, matched with errors.Is. The CLI maps them to podman's
// exit codes (volume rm: 1 no such volume, 2 in use).
var (
	// ErrNotFound: no volume has that name.
	ErrNotFound = errors.New("no such volume")
	// ErrExists: a volume of that name exists already.
	ErrExists = errors.New("volume already exists")
	// ErrInUse: a container uses the volume.
	ErrInUse = errors.New("volume is being used")
	// ErrInvalidName: the name does not match [a-zA-Z0-9][a-zA-Z0-9_.-]*.
	ErrInvalidName = errors.New("invalid volume name")
	// ErrUnsupportedOption: a --opt that sandy cannot honour.
	ErrUnsupportedOption = errors.New("unsupported volume option")
	// ErrLeftovers: a volume is removed, but files of subordinate ids
	// are left in its .remove- directory (Store.RemoveForeign removes them).
	ErrLeftovers = errors.New("files of subordinate ids left")
	// ErrInvalidFilter: a --filter that is not key=value of a known key.
	ErrInvalidFilter = errors.New("invalid volume filter")
)
