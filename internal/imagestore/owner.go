//go:build containers_image_openpgp

package imagestore

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/state"
)

// buildahStateFile is buildah's record of a working container, in the
// storage container's directory: buildah's IsContainer looks for it, and
// podman ps --external shows such a container's command as "buildah".
const buildahStateFile = "buildah.json"

// creatorMark is the Creator of a container made now: this helper's
// parent, the sandy that asked for it (sandy starts the helper itself,
// and sandy-create and sandy-store exec the next helper in their place),
// nil when its start time cannot be read.
func creatorMark() *imagehelper.Creator {
	ppid := os.Getppid()
	start, _, err := state.ProcStart(ppid)
	if ppid <= 1 || err != nil {
		return nil
	}
	return &imagehelper.Creator{Pid: ppid, Start: start}
}

// ownerOf tells who made a storage container from its metadata (decoded;
// zero when it is not sandy's and podman's shape) and its
// directory dir ("" when not known): buildah's record first (buildah
// never writes sandy's mark, and a container it holds is never sandy's to
// remove), then sandy's mark. A container that has neither is podman's,
// or another tool's, or an older sandy's: the caller cannot tell.
func ownerOf(meta containerMeta, dir string) (string, *imagehelper.Creator) {
	if dir != "" {
		if _, err := os.Lstat(filepath.Join(dir, buildahStateFile)); err == nil || !errors.Is(err, fs.ErrNotExist) {
			return imagehelper.OwnerBuildah, nil
		}
	}
	if meta.Creator != nil {
		return imagehelper.OwnerSandy, meta.Creator
	}
	return "", nil
}
