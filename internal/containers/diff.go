package containers

import (
	"slices"

	"github.com/sandy-rt/sandy/internal/imagehelper"
)

// runtimeMountPoints are the paths the runtime makes in a container's root
// to mount over (podman's diff hides the same list, libpod initInodes):
// they are not the container's own changes.
var runtimeMountPoints = []string{"/dev", "/etc/hostname", "/etc/hosts", "/etc/resolv.conf",
	"/proc", "/run", "/run/.containerenv", "/run/notify", "/run/secrets", "/sys"}

// WithoutRuntimeMounts drops the runtime's mount points from a diff.
func WithoutRuntimeMounts(changes []imagehelper.Change) []imagehelper.Change {
	return slices.DeleteFunc(slices.Clone(changes), func(c imagehelper.Change) bool {
		return slices.Contains(runtimeMountPoints, c.Path)
	})
}
