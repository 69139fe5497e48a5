// Package initproc is the container init: the sandy binary re-exec'd by the
// host side into the new namespaces (`sandy init`, hidden). It runs on the
// container side only and is a list of named steps:
//
//	waitForMaps → gainCaps (re-exec) → receiveConfig → setupRootfs
//	(root layer, OCI mounts, /dev, console, sysctls, masked and read-only
//	paths) → pivotRoot → setupProcess (rlimits, cwd, user, capabilities,
//	no_new_privs) → ready → waitStart (exec fifo) → seccomp → execve
//
// Every failure is sent to the host side as one userns.ChildError, which
// prints it once; the init itself prints nothing. Every path inside the
// container root is resolved with pathrs-lite (in-root, symlink-safe) and
// mounted through /proc/thread-self/fd/N, so a symlink in the rootfs can
// never redirect a mount outside it (CVE-2021-30465). Before execve every fd
// above 2 is close-on-exec and the cwd is inside the new root
// (CVE-2024-21626).
package initproc
