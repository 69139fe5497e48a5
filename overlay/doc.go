// Package overlay builds the container's root filesystem: a private,
// per-run copy-on-write layer over the bundle's rootfs/, so the container
// may change anything and the bundle never changes, byte for byte, mode,
// owner, xattrs and directory mtimes included. The one exception is the
// direct mode, asked for by the caller (and by engines, which hand the
// runtime a root of their own to diff and commit): no layer, the rootfs
// itself mounted writable, so the container's writes and the mountpoints
// it lacks land in the bundle, as under runc.
//
// # Who calls it, and where
//
// Mount runs in the container init (the re-exec'd sandy binary), inside the
// new user and mount namespaces, after the uid/gid maps are written and
// with full capabilities there, before the OCI mounts and pivot_root(2). It
// returns Root.Path, a private mount point the init mounts into and then
// pivot_roots into. Cleanup and ScanOwners run on the host side, as the
// user: the lifecycle calls ScanOwners before the init starts (bounded by
// DefaultScanLimit), to warn about entries owned by ids outside the
// container's maps and to refuse a rootfs the container could not enter
// (*AccessError). Nothing here starts namespaces, writes id maps or resolves
// container paths: userns, idmap and the init do.
//
// # The ladder
//
// Mode names a rung; the values are the --rootfs-mode spellings.
//
//	overlay  kernel overlayfs with userxattr, mounted in the user namespace
//	         (Linux 5.11+); lowerdir = [stubs:]rootfs, upper and work in
//	         LayerDir; volatile (no syncs: the layer dies with the run)
//	fuse     fuse-overlayfs, started by Mount inside the namespaces
//	bind     the rootfs bind-mounted read-only; no writable layer
//	copy     cp -a of the rootfs into LayerDir (only when asked for)
//	direct   the rootfs itself, bind-mounted writable on LayerDir/merged:
//	         the container writes the bundle (only when asked for; a
//	         read-only root is remounted read-only by the init after
//	         pivot_root)
//	auto     overlay, else fuse, else bind, with exactly one Warn line
//	         saying what was lost, why, and the fix
//
// A forced rung that cannot work returns a *RungError (Why + Fix); it never
// falls back. A read-only root (Options.Readonly) needs no upper: overlay
// and fuse mount without one, and auto takes the bind when no mountpoint
// stub is needed. Only the direct rung writes into the rootfs, and nothing
// ever chowns or copies it except the copy rung: inside the user namespace
// the kernel and fuse-overlayfs already see the container's ids, so
// fuse-overlayfs needs no uidmapping= either.
//
// # The fuse-overlayfs process
//
// It is a child of the init, in the container's user and pid namespaces,
// and in a mount namespace of its own (so the init's pivot_root does not
// move its root onto the filesystem it serves). It daemonizes once mounted
// and is reparented to the init, pid 1 of the container: when pid 1 exits
// the kernel kills it with the rest of the pid namespace, and its mount
// namespace goes with it. Mount waits only for the daemonizing parent, with
// output in a memfd: it leaves no goroutine, no fd and no child of its own,
// so the init may execve(2) the user process right after. Without a pid
// namespace it would outlive the container: Cleanup kills it, found by its
// mountpoint argument LayerDir/fuse.
//
// # Layer directory
//
//	LayerDir/upper   the container's changes (overlay, fuse)
//	LayerDir/work    overlay's work dir
//	LayerDir/stubs   missing mountpoints (Options.Mountpoints), a lower layer
//	                 above the rootfs, so they exist even in a read-only root
//	LayerDir/fuse    fuse-overlayfs's mountpoint (shared, in its mount ns)
//	LayerDir/merged  Root.Path
//
// Mount empties all of them first, so a leftover of a killed run never
// shows through, and makes only those its rung uses (a read-only bind
// root: merged alone; the kernel overlay: upper, work and merged): a
// directory made costs 0.7-1 ms on a slow disk, where making all five
// was 3 ms of a 22 ms run. Cleanup removes LayerDir through fds without following
// symlinks or crossing mount points (openat2 RESOLVE_NO_XDEV); files the
// container made as a non-root user belong to subordinate ids, which only a
// process inside a user namespace with the maps can remove: Cleanup then
// returns an error matching ErrForeignOwned.
//
// ProbeMain (the hidden role ProbeRole) walks the ladder for `sandy doctor`
// over an empty root inside a throwaway user namespace, with Mount itself,
// so doctor reports the rung and the warning lines run would. CheckFuse
// (fuse-overlayfs in PATH, /dev/fuse opened for reading and writing) is the
// fuse rung's precondition, which doctor reports on its own line.
//
// See docs/rootfs.md for the user guide, each warning line and its fix, and
// the numbers; overlayfs.rst (userxattr, volatile), fuse-overlayfs(1),
// mount_namespaces(7) and pid_namespaces(7) for the kernel behaviour relied on.
package overlay
