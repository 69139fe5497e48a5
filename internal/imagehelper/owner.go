package imagehelper

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
)

// Who made a storage container that has no record of sandy's
// (StoredContainer.Owner): the store is shared with podman and buildah,
// and a container is removed by sandy without -f only when it is sandy's
// own (docs/cli/container.md "container rm").
const (
	// OwnerSandy: the container's storage metadata carries sandy's
	// Creator mark, so a sandy run asked for it; without a record it is
	// one that run never finished (killed before it wrote sandy.json), or
	// one it is making now (its creator lives).
	OwnerSandy = "sandy"
	// OwnerBuildah: buildah's working container, whose directory holds
	// buildah's own record (buildah.json; buildah's IsContainer, and
	// podman ps --external's "buildah" command, look for it).
	OwnerBuildah = "buildah"
)

// Creator is the sandy process that asked the helper for a storage
// container, kept in the container's storage metadata: while it lives the
// container is being made (its record is not written yet), and once it is
// gone a container without a record is left over.
type Creator struct {
	Pid int `json:"pid"`
	// Start is field 22 of /proc/PID/stat, against a reused pid.
	Start uint64 `json:"start"`
}

// RecordFile is sandy's record of a container it made, in the storage
// container's own directory (Prepared.Dir): the container is sandy's,
// what it runs, how it ended (containers.Record). podman's and buildah's
// containers have none.
const RecordFile = "sandy.json"

// Abandoned reports whether a held helper whose sandy is gone without a
// word (end of its input: killed) removes the container it made, whose
// directory is dir: a --rm (volatile) one always; another when sandy died
// before it wrote RecordFile there. Such a container is sandy's, nothing
// refers to it, and nobody can have used it: sandy hands the directory to
// the container's init and monitor only once the record is written, and
// it learns the directory from the helper's answer. A record written at
// the last moment is seen, as the input ends only once sandy is gone. A
// record that cannot be looked at keeps the container (sandy rm decides
// then).
func Abandoned(dir string, volatile bool) bool {
	if volatile {
		return true
	}
	_, err := os.Lstat(filepath.Join(dir, RecordFile))
	return errors.Is(err, fs.ErrNotExist)
}
