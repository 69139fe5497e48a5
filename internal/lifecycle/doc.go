// Package lifecycle is sandy's host side: create, start, run, state, kill,
// delete and list, each a short list of named steps that call the leaf
// packages (idmap, userns, overlay, cgroupv2, slirp, seccomp) and the
// internal spec and state packages. It holds no syscalls that belong to a
// leaf. Partial work is undone through a cleanup stack when a step fails.
package lifecycle
