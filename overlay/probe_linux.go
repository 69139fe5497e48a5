//go:build linux

package overlay

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
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
// goes) and prints a ProbeResult as JSON. `sandy doctor` runs it, then
// ProbeCleanup.
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
	// No unmount here: as at a container's end, the mounts go with this
	// mount namespace, and ProbeCleanup, on the host, stops a
	// fuse-overlayfs (which keeps the namespace alive) and removes dir.
	return json.NewEncoder(os.Stdout).Encode(res)
}

// ProbeCleanup removes the directory ProbeMain used, once it has exited,
// the way a container's layer is removed (CleanupMode). mode is the rung
// it reported, "" when unknown (a fuse-overlayfs is then looked for).
func ProbeCleanup(dir string, mode Mode) error {
	if err := CleanupMode(filepath.Join(dir, "layer"), mode); err != nil {
		return err
	}
	if err := os.RemoveAll(dir); err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return nil
}
