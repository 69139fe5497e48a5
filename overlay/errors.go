package overlay

import (
	"errors"
	"fmt"
)

var (
	// ErrUnknownMode is returned by ParseMode for a value that names no rung.
	ErrUnknownMode = errors.New("unknown rootfs mode")

	// ErrForeignOwned is returned (wrapped in a *CleanupError) by Cleanup
	// when entries of the layer belong to subordinate ids that the calling
	// user cannot remove outside the user namespace. Run Cleanup again from
	// a process inside a user namespace with the container's id maps.
	ErrForeignOwned = errors.New("layer holds files owned by subordinate ids")

	// ErrMountpointMissing is returned by Mount with ModeBind when a
	// mountpoint the caller asked for does not exist in the read-only
	// bundle and there is no layer to create it in.
	ErrMountpointMissing = errors.New("mountpoint missing in the read-only rootfs")

	// ErrNeedsMount is matched by every *NeedsMountError: Layers.ReadFile
	// cannot tell what a mount of the layers shows without making one.
	ErrNeedsMount = errors.New("the layers must be mounted to be read")
)

// RungError reports why one rung of the ladder could not be used. Mount
// returns it when a forced mode fails; ModeAuto folds the reasons into its
// warning line.
type RungError struct {
	Mode Mode   // the rung that failed
	Why  string // the cause, one clause, lower case
	Fix  string // what the user can do about it
	Err  error  // the underlying error, for errors.Is
}

func (e *RungError) Error() string {
	s := fmt.Sprintf("rootfs mode %s: %s", e.Mode, e.Why)
	if e.Fix != "" {
		s += "; hint: " + e.Fix
	}
	return s
}

func (e *RungError) Unwrap() error { return e.Err }

// CleanupError is returned by Cleanup when a part of the layer could not be
// removed. Foreign counts entries owned by ids the caller has no power over.
type CleanupError struct {
	LayerDir string
	Foreign  int    // entries that need a process in the user namespace
	Example  string // one such path
	Err      error
}

func (e *CleanupError) Error() string {
	if e.Foreign > 0 {
		return fmt.Sprintf("removing layer %s: %d entries owned by subordinate ids (e.g. %s) cannot be removed from outside the user namespace; hint: run the cleanup inside a user namespace with the container's id maps", e.LayerDir, e.Foreign, e.Example)
	}
	return fmt.Sprintf("removing layer %s: %v", e.LayerDir, e.Err)
}

func (e *CleanupError) Unwrap() error {
	if e.Foreign > 0 {
		return ErrForeignOwned
	}
	return e.Err
}
