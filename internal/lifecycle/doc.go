// Package lifecycle is sandy's host side: the runc verbs (create, start,
// run, exec, state, kill, delete, list) and the cgroup ones (ps, pause,
// resume, update, events), plus features. It runs as the caller, never
// inside a container's namespaces; the container side is internal/initproc,
// reached over the userns sync protocol.
//
// create and exec are each a list of named steps (create.go's create,
// exec.go's Exec) that call the leaf packages (idmap, userns, overlay,
// cgroupv2, slirp, seccomp) and internal/spec and internal/state; --debug
// prints each step's name and duration, and docs/design.md lists them (a
// test keeps the two equal). Partial work is undone through a cleanup
// stack when a step fails. run is create, start, a wait that forwards
// signals and relays the pty, and delete; in the foreground the delete is
// endRun's steps (reap.go), which return the status once the id is free
// and leave the slow rest (the network's processes exiting, the layer's
// removal) to a reaper, the hidden `sandy _reap` (ReapMain).
//
// The system calls made here are host-side glue that belongs to no leaf:
// mkfifo(3) for the exec fifo, prlimit(2) for process.rlimits (set on the
// init from outside when it asks, before it switches to process.user: the
// Go runtime of the init starts without them, a low RLIMIT_AS kills it at
// start, and prlimit needs no capability while the init has its first
// ids), and signals, through a pidfd where the target may be
// reused (kill). Everything a kernel surface owns (namespaces, maps,
// mounts, cgroups, BPF) is a leaf's.
//
// Containers left behind by a `sandy run` that died (its owner process is
// gone), and retired state directories whose reaper died, are collected by
// create (and so run) and list.
package lifecycle
