// Package copier is `sandy cp`'s file work: the command line's
// CONTAINER:PATH forms (ParseArgs), docker cp's rules for where a copy
// lands (Plan), and the tar stream both ways, read from and written into
// a root directory handle with every path resolved inside it
// (OpenSource, StatDest, Extract).
//
// It is podman's copier (buildah's package) reduced to what cp needs, in
// the same shape: one side writes a tar stream, the other extracts it,
// so the process that touches a container's root (internal/containers'
// cp worker, in the container's user namespace) never sees a host path,
// and the process on the host (the CLI, as the calling user) never
// resolves a path inside the container.
//
// Threat model. The root is untrusted: a running container can rename,
// replace and symlink anything in it while a copy runs. Every path below
// the root is resolved with in-root (chroot) semantics through
// pathrs-lite (openat2 RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS, or its
// checked fallback), and only directories are resolved that way; the
// last component of every entry is then read or written with *at calls
// relative to that directory's handle that never follow it
// (O_NOFOLLOW, AT_SYMLINK_NOFOLLOW, O_EXCL creation). A directory handle
// cannot leave the root's filesystem (rename(2) across mounts is
// EXDEV), so a swap between the lookup and the write lands, at worst,
// somewhere else inside the root. The tar stream is untrusted too (stdin,
// or a container's files): names with ".." or a leading "/" are refused,
// hard links may only name a regular file extracted earlier from the
// same stream, and device nodes are refused. The extraction root on the
// host side is the destination directory itself, so a container's
// symlinks cannot lead a copy out of it either.
//
// Files keep their modes, times, hard links within the stream and the
// extended attributes buildah's copier keeps (user.*, file capabilities,
// IMA; never overlayfs's user.overlay.*).
//
// It does not pick the root, the user namespace or the ids: its callers
// do (internal/containers, cp.go). It runs no program.
package copier
