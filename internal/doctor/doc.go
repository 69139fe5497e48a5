// Package doctor is `sandy doctor`: it lists the probes the leaf packages
// own (userns.Probe with overlay.ProbeMain for the user namespace and the
// rootfs ladder, idmap.Resolve for the id maps, cgroupv2.Probe for the
// cgroup manager, slirp.Check for the network), runs each once, and renders
// the result as text or JSON (docs/cli/doctor.md has the schema).
//
// The probes are the ones `run` uses, so doctor's details are the very
// words of run's one-line fallback warnings. This package adds only the
// consequence for the user and the split into detail and fix. It runs on
// the host, in the sandy process; nothing here runs at package init.
package doctor
