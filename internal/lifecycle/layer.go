package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"strings"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/userns"
)

// checkRootfs looks at the rootfs from the host side, where its real owners
// show, before anything starts: a rootfs the container could not enter is
// an error that says whose it is, its mode and the fix (not the init's
// bare "lstat …/proc: permission denied"). Entries owned by ids outside the
// container's maps, which it would see as nobody and could not change,
// are one warning line, from scanRootfs once the init is started. The scan is bounded (overlay.DefaultScanLimit
// entries, breadth first), so a large image costs as little as a small
// one (docs/rootfs.md#numbers). A copy gives the container its own files,
// so the warning does not apply to it. Without a user namespace of our
// own there is nothing to check.
func (cr *creation) checkRootfs(context.Context) error {
	if cr.plan == nil || cr.imageRoot() {
		return nil
	}
	// The root alone (a limit of one entry): whether the init may enter
	// it, before anything starts; the tree is scanned while the init's
	// runtime starts (scanRootfs).
	_, err := overlay.ScanOwners(cr.bundle.Rootfs, cr.plan.UIDs, cr.plan.GIDs, 1)
	var ae *overlay.AccessError
	if errors.As(err, &ae) {
		return err
	}
	return nil
}

// scanRootfs warns once when entries of the rootfs belong to ids outside
// the container's maps (the container sees them as nobody and may not
// change them), up to overlay.DefaultScanLimit entries.
func (cr *creation) scanRootfs(context.Context) error {
	if cr.plan == nil || cr.imageRoot() {
		// An image's layers were written inside the store's user
		// namespace, which has the container's maps.
		return nil
	}
	rep, err := overlay.ScanOwners(cr.bundle.Rootfs, cr.plan.UIDs, cr.plan.GIDs, overlay.DefaultScanLimit)
	var ae *overlay.AccessError
	if errors.As(err, &ae) {
		return err
	}
	if err != nil {
		// A check that could not finish does not stop the container.
		cr.g.Debugf("checking the rootfs owners: %v", err)
		return nil
	}
	cr.g.Debugf("rootfs owners: %d unmapped of %d entries checked (whole tree: %v)", rep.Count, rep.Checked, rep.Complete)
	if mode, _ := overlay.ParseMode(cr.o.RootfsMode); mode != overlay.ModeCopy {
		if w := rep.Warning(); w != "" {
			cr.g.Warn(w)
		}
	}
	return nil
}

// removeLayer removes the container's layer directory. Files the container
// made as a non-root container user belong to subordinate ids, which the
// user cannot remove from the host: those are removed by a helper started
// in a user namespace with the container's maps (RemoveLayerMain).
func removeLayer(g *Global, c *state.Container) error {
	if c.LayerDir == "" {
		return nil
	}
	if c.KeepLayer != "" {
		// The container's changes, kept for inspection: a rename, so the
		// directory must be on the state root's filesystem.
		upper := filepath.Join(c.LayerDir, "upper")
		if err := os.Rename(upper, c.KeepLayer); err != nil && !errors.Is(err, fs.ErrNotExist) {
			g.Warn(fmt.Sprintf("--keep-layer: moving %s to %s: %v (it must be on the same filesystem as the state root)", upper, c.KeepLayer, err))
		}
	}
	err := overlay.CleanupMode(c.LayerDir, overlay.Mode(c.RootfsMode))
	if err != nil && errors.Is(err, overlay.ErrForeignOwned) && len(c.UIDMappings) > 0 {
		g.Debugf("removing %s inside a user namespace: %v", c.LayerDir, err)
		err = removeInUserNS(c)
	}
	if err == nil {
		err = removeLayerTemp(c)
	}
	return err
}

// removeLayerTemp removes c's LayerTemp, if any.
func removeLayerTemp(c *state.Container) error {
	if c.LayerTemp == "" {
		return nil
	}
	if err := os.Remove(c.LayerTemp); err != nil && !errors.Is(err, fs.ErrNotExist) {
		return err
	}
	return nil
}

// RemoveLayerRole is the hidden argv[1] of the removal helper.
const RemoveLayerRole = "_remove-layer"

func removeInUserNS(c *state.Container) error {
	plan := &idmap.Plan{UIDs: c.UIDMappings, GIDs: c.GIDMappings, Helpers: c.MapHelpers, Privileged: idmap.CanMapAny()}
	if plan.Privileged {
		plan.Helpers = false
	}
	return removeTree(c.LayerDir, plan)
}

// RemoveTreeInUserNS removes dir, which holds files owned by the caller's
// subordinate ids (a volume a container user wrote into), from a helper
// in a user namespace with the caller's automatic maps (0 → the caller,
// 1..N → the subordinate ranges), which may remove every one of them: the
// volume store's RemoveForeign. As overlay.Cleanup does on the host, it
// follows no symlink and crosses no mount point.
func RemoveTreeInUserNS(dir string) error {
	plan, err := idmap.Resolve(idmap.CallerRequest())
	if err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	return removeTree(dir, plan)
}

// removeTree runs the removal helper on dir in a user namespace with plan's
// maps.
func removeTree(dir string, plan *idmap.Plan) error {
	link, err := newChildLink(false, nil)
	if err != nil {
		return err
	}
	defer link.parent.Close()
	var out strings.Builder
	ch, err := userns.Start(userns.Config{
		Exe:        link.exe,
		Args:       []string{RemoveLayerRole, dir},
		Env:        childEnv,
		Cloneflags: userns.CloneNewUser,
		Stderr:     &out,
		ExtraFiles: []*os.File{link.child},
		CgroupFD:   -1,
		Maps:       plan,
	})
	link.started()
	if err != nil {
		return fmt.Errorf("removing %s: %w", dir, err)
	}
	_ = link.parent.Send("maps", nil)
	if err := ch.Cmd.Wait(); err != nil {
		return fmt.Errorf("removing %s in a user namespace: %v: %s", dir, err, strings.TrimSpace(out.String()))
	}
	return nil
}

// RemoveLayerMain is the removal helper: it waits for its maps, gains its
// capabilities in the user namespace and removes the layer.
func RemoveLayerMain(args []string) int {
	if len(args) != 1 {
		fmt.Fprintln(os.Stderr, "usage: sandy _remove-layer DIR")
		return 2
	}
	if os.Getenv(removeMarker) == "" {
		conn := userns.NewConn(3)
		if _, err := conn.Recv(); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
		if err := userns.GainCaps(removeMarker); err != nil {
			fmt.Fprintln(os.Stderr, err)
			return 1
		}
	}
	if err := overlay.Cleanup(args[0]); err != nil {
		fmt.Fprintln(os.Stderr, err)
		return 1
	}
	return 0
}

const removeMarker = "_SANDY_REMOVE_CAPS"
