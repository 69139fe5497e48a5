// Package hooks runs OCI lifecycle hooks (runtime-spec config.md#posix-platform-hooks):
// one hook is one executable started with the container's state JSON on its
// stdin, its own argv and environment, and an optional timeout.
//
// What it does, per the runtime spec and runc's behaviour where the spec is
// silent:
//
//   - Path must be absolute; it is executed directly, with no shell and no
//     PATH lookup. Args is the whole argv (Args[0] is argv[0]); empty Args
//     means argv = [Path].
//   - Env replaces the environment: a hook with no Env runs with an empty
//     environment, it does not inherit sandy's (runc passes its own
//     environment through, which leaks the caller's variables into hooks).
//   - The hook runs in a new process group. Timeout (seconds, > 0) or the
//     cancellation of ctx sends SIGKILL to that whole group, so a hook's
//     children die with it (a child that calls setsid escapes, as it would
//     from runc). A hook with no timeout may run forever: the caller stays
//     in control through ctx (internal/lifecycle cancels it when `sandy
//     run` gets SIGINT or SIGTERM during set-up), and the error then
//     carries ctx's cause. RunAll starts no hook once ctx is done.
//   - The hook inherits fds 0, 1 and 2 only: stdin is a pipe carrying the
//     state, stdout and stderr are relayed to the caller's writers. Every other
//     fd of the sandy process is marked close-on-exec before the hook starts
//     (CVE-2024-21626 is the reason runc learned to do the same for its init).
//   - A non-zero exit is an *Error carrying the exit status and the last
//     4 KiB of the hook's stderr.
//
// What it does not do: choose the moment or the namespaces a hook runs in.
// Its callers do:
//
//   - internal/lifecycle (host side) calls RunAllIn for prestart and
//     createRuntime, in the bundle directory, while the init waits before
//     pivot_root (the first failure aborts the create), and RunAllReport for poststart and
//     poststop (every hook runs; failures are printed as warnings).
//   - internal/initproc (the container init, already in the container's
//     namespaces) calls RunAll for createContainer, before pivot_root and
//     in the container's root directory, and for startContainer, after
//     `start` released it and before execve, in process.cwd (both as runc
//     runs them); a failure there ends the init.
//
// Both sides, then; Linux only.
package hooks
