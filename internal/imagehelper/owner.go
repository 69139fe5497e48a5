package imagehelper

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
