// Package volumes keeps sandy's named volumes: podman's `volume
// create/ls/inspect/rm/prune/exists` and the volumes `sandy run -v
// NAME:/dst` and `-v /dst` mount (Store.Resolve).
//
// A Store is a directory, sandy's own: DefaultRoot is
// ${XDG_DATA_HOME:-$HOME/.local/share}/sandy/volumes for a user and
// /var/lib/sandy/volumes for root. It is not podman's
// <graphroot>/volumes: podman tracks its volumes in its own database, and
// a directory it did not make there is not a volume to it. Each volume is
// <root>/<name>/_data, the directory a container binds, beside
// <root>/<name>/volume.json, its record (name, driver "local", labels,
// options, creation time, anonymous). The package runs on the host side,
// as the user, and mounts nothing: the caller turns Volume.Source into a
// bind mount (containers.VolumeMount) for the runtime.
//
// Guarantees:
//
//   - Names are podman's, [a-zA-Z0-9][a-zA-Z0-9_.-]*: one path component
//     that is never "." or "..", so no name leaves the root; anonymous
//     volumes get 64 random hex digits.
//   - Creations and removals hold the store's lock (flock(2) on
//     <root>/.lock). A volume is made whole under a temporary .create-
//     name and renamed into place with RENAME_NOREPLACE, so two `volume
//     create x` at once make one x, and the other fails with ErrExists
//     naming x; readers take no lock and never see half a volume. A
//     removal renames the volume away first, then removes its tree.
//   - Every access goes from an fd of the root through one validated name
//     with O_NOFOLLOW: a symlink planted as a volume directory, a record or
//     _data is refused, never followed; the record is written with O_EXCL
//     and renamed over the old one (atomic). Trees are removed by
//     overlay.Cleanup, which follows no symlink and crosses no mount point.
//   - The local driver's options (--opt) are honoured or refused, never
//     accepted and ignored: a bind volume (type=none, o=bind,
//     device=DIR) and nocopy are honoured; tmpfs, block and network file
//     systems, uid=/gid= and size=/inodes= are refused with the reason
//     and what to use instead (parseOptions says why each).
//
// What it does not do (yet):
//
//   - Know containers: the caller supplies Store.InUse (which containers
//     use a volume: rm refuses those, prune keeps them, dangling= filters
//     on them), Store.RemoveContainers (rm --force) and
//     Store.RemoveForeign (removing files a non-root container user wrote,
//     which belong to subordinate ids, from inside a user namespace).
//     Without them no volume is in use and such files are left, with the
//     command that removes them.
//   - Copy-up and chown themselves: on first use podman copies the image's
//     content at the mount point into a fresh volume and gives the volume
//     that directory's owner. The store records and claims the first use
//     (NeedsCopyUp, NeedsChown, FirstUse); the container's init does the
//     copy and the chown, inside the container's user namespace (the
//     "copyup" and "chownup" mount options, internal/initproc).
//   - Mount counts, volume plugins, quotas.
package volumes
