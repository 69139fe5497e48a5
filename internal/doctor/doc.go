// Package doctor is `sandy doctor`: it lists the probes the leaf packages
// own (userns.Probe with overlay.ProbeMain for the user namespace and the
// rootfs ladder, userns.Limits.Diagnose for why a user namespace is
// refused and the AppArmor profile, idmap.Resolve for the id maps,
// overlay.CheckFuse, cgroupv2.ProbeScope for the cgroup manager (a no-op
// transient scope on the user bus, in Env.Cgroup) and
// cgroupv2.Linger, slirp.Check with slirp.TunProbeMain for the network,
// slirp.CheckPing and slirp.UnprivilegedPortStart), runs each once, and
// renders the result as text, JSON (docs/cli/doctor.md has the schema) or
// the root fix script (fixScript: the leaves' RootFix lines and packages).
//
// Every input goes through Env: the paths of the files it reads and the
// probes that try things. HostEnv is the real machine and the only one a
// command line gets; tests pass a fake one (TestRunFaults).
//
// The probes are the ones `run` uses, so doctor's details are the very
// words of run's one-line fallback warnings. This package adds only the
// consequence for the user and the split into detail and fix. Each leaf
// (idmap, overlay, slirp, cgroupv2, and internal/imagehelper for the image
// store) lists its fallback lines in a Fallbacks table that names the
// doctor check of each; TestFallbacks checks that the check is a row here
// and that docs/troubleshooting.md has the entry, TestFallbackSources that
// no warning line is written with words outside those tables. It runs on
// the host, in the sandy process; nothing here runs at package init.
package doctor
