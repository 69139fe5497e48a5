// Package initproc is the container init: the sandy binary re-exec'd by the
// host side into the new namespaces (`sandy init`, hidden), and the exec
// init (`sandy _exec`, exec.go) that becomes a process of `sandy exec`. It
// runs on the container side only; its host side is internal/lifecycle,
// and the messages between them are listed in protocol.go.
//
// The init (init.go's run) is a list of named steps:
//
//	hello (its pid) → wait for "maps" → gainCaps (a re-exec, only where no
//	/bin/sh gate or clone-written maps gave it its capabilities already)
//	→ every fd ≥ 3 close-on-exec → receive the Config → parent-death
//	signal, not dumpable → cgroup namespace (when the host could not clone
//	it into its cgroup) → lo up → oom_score_adj → join a mount namespace
//	given by path → setupRootfs (private mounts, root layer, config.json
//	mounts, /dev, console, resolv.conf and hosts, sysctls, hostname, masked
//	and read-only paths, cwd) → "hooks" (the host runs prestart and
//	createRuntime) and createContainer hooks → pivot_root → seccomp if
//	no_new_privs is false → process set-up (bounding set, "rlimits", cwd,
//	user, cwd again if the first was denied, capabilities, umask,
//	no_new_privs, the executable's lookup: 127 or 126) → console → seccomp if no_new_privs is true → "ready" →
//	waitStart (the exec fifo) → startContainer hooks → execve (of sandy's
//	own pid 1 under `run --init`, with the exec fifo handed on to it:
//	selfbin.go's handOn, so that start returns once it handles signals)
//
// process.rlimits are not set here: before the id switch the init asks the
// host ("rlimits"), which sets them with prlimit(2) while the init still
// has the ids it started with (prlimit on a process of another uid needs
// CAP_SYS_RESOURCE), as runc does at procReady; the Go runtime of the init
// starts without them (a low RLIMIT_AS kills it at start). process.cwd is
// entered before the id switch too, and once more after it only if root
// was denied, as runc does.
// docs/design.md lists the steps under the names their errors carry.
//
// Every failure before `start` is sent to the host side as one
// userns.ChildError, which prints it once; the init itself prints nothing.
// A failure after `start` released it (a startContainer hook, execve) is
// also written to the container's stderr, since nobody may be reading the
// sync socket any more, and the init exits with the error's ExitCode (127,
// 126) or 1. Every path inside the container root is resolved with
// pathrs-lite (in-root, symlink-safe), checked to lie under the root, and
// mounted through /proc/thread-self/fd/N, so a symlink in the rootfs can
// never redirect a mount outside it (CVE-2021-30465); a dangling symlink
// at a file's mount target is followed the same way, in the root. The
// copies a tmpfs's or a volume's first use makes (copyup.go) are made
// relative to directory fds and given their owner, mode and times through
// an fd on each entry made, never by name: a volume may already be
// mounted in another running container, which can swap entries for
// symlinks meanwhile; and only the image's own directory is copied, never
// one on another mount. Every fd above 2 is
// close-on-exec from the start (but the exec fifo handed on to sandy's
// own pid 1, which closes it before it starts the command), the cwd is
// entered after pivot_root, and getcwd(2) must show it inside the new
// root (CVE-2024-21626).
package initproc
