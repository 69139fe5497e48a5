// Package userns starts a process in new namespaces and talks to it.
//
// It owns the parent↔child sync protocol (Conn: length-framed JSON messages
// with file descriptors passed by SCM_RIGHTS over a socketpair), starting
// the re-exec'd child with clone flags (Start), having its uid/gid maps
// written through idmap, the child's re-exec that gains its capabilities
// inside the new user namespace once the maps exist (GainCaps), the
// protected handle on the sandy binary that keeps it from being
// overwritten from inside a container (CVE-2019-5736, SelfExe: when the
// caller can write it, the binary seen through a detached read-only
// overlayfs mount, which root makes itself and anyone else in a user
// namespace of a short-lived raw child's, exens.go; else a sealed memfd
// copy), and "am I in a user
// namespace" (InUserNS, a thin wrapper over github.com/moby/sys/userns).
//
// Why a re-exec at all: unshare(CLONE_NEWUSER) fails with EINVAL in a
// multi-threaded process (unshare(2)), and every Go process is
// multi-threaded, so the namespaces come from clone flags when the child is
// exec'd. The child is exec'd before its maps exist, so execve(2) leaves it
// without capabilities (its euid is unmapped at that moment; see
// capabilities(7), "Capabilities and execution of programs"); once the
// parent has written the maps the child is uid 0 in the namespace and one
// more execve gives it the full set (rootlesskit's gainCaps does the same).
// Maps in which the caller is not uid 0 (podman's keep-id: the caller keeps
// its own uid) give nothing to that execve, and the child could not
// setuid(0) without capabilities: Start then has the child raise its
// capabilities into the ambient set right after the clone, while it holds
// them all in its new namespace, so that they survive its execve; GainCaps
// makes it uid and gid 0 of the namespace and empties the ambient and
// inheritable sets (RootMapper). A child that waits for its maps itself
// (Config.AwaitsMaps: the container's init) is started the same way for
// any maps, so that its Go start overlaps newuidmap and newgidmap; other
// children wait for them in a /bin/sh gate before their one execve.
//
// A child whose user namespace exists already, with its maps (the image
// store's, which a pause process holds: Config.SharedUserNS), is forked
// into it (ForkJoined, shared.go): no maps to write, no gate.
//
// Namespaces to join by path (a pod's) are joined before the clone:
// network, IPC, UTS and pid namespaces, when no user namespace is made, by Start
// itself on a locked thread (setns.go); any other through util-linux
// nsenter and the spawn helper (spawn.go).
//
// ForkExec starts a process in running namespaces with no helper and no
// second program start (`sandy exec`): a raw fork from Go, as Go's own
// syscall.forkAndExecInChild1 and runc's nsexec do, whose first child
// joins the namespaces by fd and forks the process into the pid namespace
// as the caller's child, which runs a plan computed before the fork
// (ForkPlan: fds, bounding set, seccomp, cwd, ids, capabilities, rlimits,
// no_new_privs, execve candidates) with raw system calls and reports a
// failure as a {step, errno} record (ForkError). On amd64 the children
// share the caller's memory (CLONE_VM on stacks of their own), so no page
// table is copied. forkexec.go has the rules that code after a fork in Go
// must keep and the security properties.
//
// Probe creates a throwaway user and mount namespace for `sandy doctor`
// and runs a probe child in it; its failures carry the same hint as a
// container start's (cloneHint). Limits (ReadLimits: the sysctls
// user.max_user_namespaces, kernel.unprivileged_userns_clone and
// kernel.apparmor_restrict_unprivileged_userns, and a seccomp filter on
// this process) and Diagnose turn a refused user namespace into its one
// cause and fix; AppArmorProfile is the profile that fix installs.
//
// It knows nothing about mounts or OCI. Both sides use it: Start and
// Conn's parent half on the host, GainCaps and Conn's child half inside.
package userns
