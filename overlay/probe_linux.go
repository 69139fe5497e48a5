//go:build linux

package overlay

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// ProbeRole is the hidden argv[1] of ProbeMain.
const ProbeRole = "_probe-rootfs"

// ProbeResult is what ProbeMain found: the rung ModeAuto settles on in
// that directory, and the warning lines Mount gave (the very lines `run`
// prints when it settles below overlay).
type ProbeResult struct {
	Mode     Mode     `json:"mode"`
	Warnings []string `json:"warnings,omitempty"`
}

// ProbeMain runs inside a throwaway user and mount namespace (see
// userns.Probe), as root there: it walks the rootfs ladder for real with
// Mount(ModeAuto) over an empty lower directory, with the layer in
// args[0] (a fresh directory in the state root, where a container's layer
// goes), prints a ProbeResult as JSON and undoes the mount. `sandy doctor`
// runs it.
func ProbeMain(args []string) error {
	if len(args) != 1 {
		return errors.New("usage: sandy " + ProbeRole + " DIR")
	}
	dir := args[0]
	lower := filepath.Join(dir, "lower")
	layer := filepath.Join(dir, "layer")
	for _, d := range []string{lower, layer} {
		if err := os.Mkdir(d, 0o700); err != nil {
			return fmt.Errorf("making %s: %w", d, err)
		}
	}
	var res ProbeResult
	r, err := Mount(Options{Lower: lower, LayerDir: layer, Mode: ModeAuto,
		Warn: func(s string) { res.Warnings = append(res.Warnings, s) }})
	if err != nil {
		return err
	}
	res.Mode = r.Mode
	// The mount namespace dies with this process; the unmount is for
	// CleanupMode, which removes the layer directory.
	if err := unix.Unmount(r.Path, unix.MNT_DETACH); err != nil {
		return fmt.Errorf("unmounting %s: %w", r.Path, err)
	}
	if err := CleanupMode(layer, r.Mode); err != nil {
		return err
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
