package overlay

import "fmt"

// Fallback is one kind of warning line this package gives when sandy runs
// with less than it asked for: a rung down a degradation ladder
// (docs/design.md), one line per lost thing. The line's words live here,
// in format, so every warning site builds its line from an entry of
// Fallbacks; the entry also names the `sandy doctor` check that reports the
// same condition and the docs entry with the fix. internal/doctor's
// TestFallbacks checks both, and that no warning line is written
// anywhere else.
type Fallback struct {
	ID     string // stable name, unique across sandy
	Doctor string // the doctor check (doctor.Check.Name) that reports the condition
	Doc    string // the entry with the fix: "troubleshooting.md#anchor" under docs/; an entry on another page is linked from troubleshooting.md
	format string // the line, for fmt.Sprintf
}

// Line is the warning line, without the "sandy: warning: " prefix.
func (f Fallback) Line(args ...any) string { return fmt.Sprintf(f.format, args...) }

// The lines Mount gives Options.Warn, and OwnerReport.Warning.
var (
	// FallbackFuse: kernel overlay failed, fuse-overlayfs is used.
	FallbackFuse = Fallback{ID: "rootfs-fuse", Doctor: "rootfs", Doc: "rootfs.md#fuse-fallback",
		format: "rootfs: using fuse-overlayfs instead of kernel overlay (slower file I/O, one more process in the container): %s; fix: %s"}
	// FallbackBind: neither overlay works; the root is a read-only bind
	// and the config asks for a read-only root anyway.
	FallbackBind = Fallback{ID: "rootfs-bind", Doctor: "rootfs", Doc: "rootfs.md#bind-fallback",
		format: "rootfs: read-only bind of the bundle (no overlay available): kernel overlay: %s; fuse-overlayfs: %s; fix: %s; or %s"}
	// FallbackBindWritable: as FallbackBind, but the config asks for a
	// writable root: writes fail.
	FallbackBindWritable = Fallback{ID: "rootfs-bind-writable", Doctor: "rootfs", Doc: "rootfs.md#bind-fallback",
		format: "rootfs: no writable layer, the root is a read-only bind of the bundle (writes outside tmpfs mounts fail with EROFS): kernel overlay: %s; fuse-overlayfs: %s; fix: %s; or %s; or pass --rootfs-mode=copy"}
	// FallbackWhiteouts: fuse-overlayfs hides .wh.* entries of the bundle.
	FallbackWhiteouts = Fallback{ID: "rootfs-fuse-whiteouts", Doctor: "rootfs", Doc: "rootfs.md#wh-names",
		format: "rootfs: fuse-overlayfs hides %d entries named .wh.* in the bundle (e.g. %s) and the files they name; fix: rename them in the bundle, or use a kernel with overlay in user namespaces (--rootfs-mode=overlay)"}
	// FallbackCopyInexact: --rootfs-mode=copy could not keep every owner
	// or mode.
	FallbackCopyInexact = Fallback{ID: "rootfs-copy-inexact", Doctor: "idmap", Doc: "rootfs.md#copy-inexact",
		format: "rootfs: the copy is not exact (%d problems, e.g. %s); fix: use the full subordinate id range for the container"}
	// FallbackUnmappedOwners: rootfs entries owned by ids outside the
	// container's maps (OwnerReport.Warning).
	FallbackUnmappedOwners = Fallback{ID: "rootfs-unmapped-owners", Doctor: "idmap", Doc: "rootfs.md#unmapped-owners",
		format: "rootfs: %s owned by ids outside the container's id map (e.g. %s, host uid %d gid %d): " +
			"inside they show as nobody (65534) and the container's root cannot write, chmod or chown them; " +
			"fix: %sunpack the rootfs as yourself in a user namespace (podman unshare tar -C %s -xf ROOTFS.tar), " +
			"or run with an id map that covers those ids (docs/rootfs.md#unmapped-owners)"}
)

// Fallbacks lists every Fallback of this package.
var Fallbacks = []Fallback{FallbackFuse, FallbackBind, FallbackBindWritable, FallbackWhiteouts, FallbackCopyInexact, FallbackUnmappedOwners}
