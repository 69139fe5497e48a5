package containers

import (
	"context"
	"fmt"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/state"
)

// StateStorage is the state of an external container: a storage container
// with no record of sandy's, podman's name for it (podman ps --external).
const StateStorage = "storage"

// externalOf completes l, a storage container without a record of sandy's,
// from what the helper read of its metadata: whose it is and, for sandy's
// own, whether the sandy that asked for it still lives (it is being made;
// its record comes next).
func externalOf(l Listed, sc imagehelper.StoredContainer) Listed {
	l.External, l.State, l.Owner = true, StateStorage, sc.Owner
	// podman's COMMAND column for a storage container: buildah's, or
	// the store's.
	l.Command = []string{"storage"}
	if sc.Owner == imagehelper.OwnerBuildah {
		l.Command = []string{"buildah"}
	}
	if c := sc.Creator; sc.Owner == imagehelper.OwnerSandy && c != nil && state.Alive(c.Pid, c.Start) {
		l.creator = c
	}
	return l
}

// Leftover reports whether c is a storage container sandy made and
// nobody is making any more: a sandy run killed (or failed, or its helper
// killed) between the store's answer and sandy's record. Nothing refers
// to it, nothing runs in it, and nothing can start it: prune and rm
// remove it.
func (l Listed) Leftover() bool {
	return l.External && l.Owner == imagehelper.OwnerSandy && l.creator == nil
}

// refusal is a verb's refusal of an external container: what the verb
// would do (what: "stop", "see the processes of") and podman's verb
// for it.
type refusal struct{ what, podman string }

// The verbs that act on a container sandy runs, and what they say of an
// external one.
var (
	refuseStop   = refusal{"stop", "stop"}
	refuseKill   = refusal{"kill", "kill"}
	refuseWait   = refusal{"wait for", "wait"}
	refuseStart  = refusal{"start", "start"}
	refuseLogs   = refusal{"read the log of", "logs"}
	refuseCopy   = refusal{"copy files to or from", "cp"}
	refuseTop    = refusal{"see the processes of", "top"}
	refuseAttach = refusal{"attach to", "attach"}
	refuseExec   = refusal{"run a command in", "exec"}
)

// externalError is the verb v's refusal of the external container c,
// said by who owns it (as ps -a --external and rm tell it): sandy's
// leftover, which nothing can run and sandy rm removes; one a live sandy
// is making, whose run is to be waited for; buildah's working container,
// for buildah; and one of no known owner (podman's, most likely), for
// podman's verb.
func externalError(c Listed, v refusal) error {
	id := short(c.ID)
	switch {
	case c.Leftover():
		return fmt.Errorf("container %s is the storage container of a sandy run killed before it wrote its record: nothing runs in it, and nothing can %s it; remove it with sandy rm %s", id, v.what, id)
	case c.Owner == imagehelper.OwnerSandy:
		return fmt.Errorf("container %s is being made by sandy (pid %d), which has not written its record yet: wait for that run, then %s it", id, c.creator.Pid, v.what)
	case c.Owner == imagehelper.OwnerBuildah:
		return fmt.Errorf("container %s is buildah's working container (buildah.json in its directory), which sandy cannot %s: use buildah (buildah run, buildah copy, buildah rm %s)", id, v.what, id)
	}
	return fmt.Errorf("container %s has no record of sandy's and no mark of sandy's in its storage metadata (podman made it, or another tool, or a sandy older than the mark): sandy cannot %s it; use podman %s %s", id, v.what, v.podman, id)
}

// checkExternalRemoval decides whether rm may remove the external
// container c: sandy's leftover always, one a live sandy is making or
// another tool's only with force, as podman rm -f removes a storage
// container it has no record of. Everything else is refused with who owns
// it and what to run.
func checkExternalRemoval(c Listed, force bool) error {
	id := short(c.ID)
	switch {
	case c.Leftover(), force:
		return nil
	case c.Owner == imagehelper.OwnerSandy:
		return fmt.Errorf("container %s is being made by sandy (pid %d), which has not written its record yet: wait for that run, or rm -f to remove its storage container now (that run then fails)", id, c.creator.Pid)
	case c.Owner == imagehelper.OwnerBuildah:
		return fmt.Errorf("container %s is buildah's working container (buildah.json in its directory): remove it with buildah rm %s, or sandy rm -f %s to remove its storage container and layer anyway", id, id, id)
	}
	return fmt.Errorf("container %s has no record of sandy's and no mark of sandy's in its storage metadata (podman made it, or another tool, or a sandy older than the mark): remove it with podman rm %s, or sandy rm -f %s to remove its storage container and layer anyway", id, id, id)
}

// removeExternal removes the external container c as checkExternalRemoval
// allows: for one of sandy's, first what its killed run may have left of
// the runtime (its init started under the container's id before the store
// answered); then the storage container and its layer, unmounted first
// if a killed helper left it mounted (the store's DeleteContainer
// unmounts the layer until its mount count is 0).
func (m Manage) removeExternal(ctx context.Context, c Listed, force bool) error {
	if err := checkExternalRemoval(c, force); err != nil {
		return err
	}
	if c.Owner == imagehelper.OwnerSandy {
		if err := m.removeRuntime(ctx, c.ID); err != nil {
			return err
		}
	}
	return m.removeStorage(ctx, c.ID)
}
