// Package cgroupv2 gives a container its own cgroup v2 and enforces the
// limits of its config.json (linux.resources), or refuses loudly.
//
// It runs on the host side only, as the user's real uid: the D-Bus EXTERNAL
// authentication needs that uid, and the init must be in its cgroup before
// it runs container code. internal/lifecycle calls it; nothing in the init
// does.
//
// # Managers, best first (the degradation ladder)
//
//   - systemd: a transient scope sandy-<id>.scope on the user's own systemd
//     (the session bus: $DBUS_SESSION_BUS_ADDRESS, else $XDG_RUNTIME_DIR/bus,
//     else /run/user/$UID/bus; never the system bus, never dbus-launch; as
//     root, the system's systemd, directly on PID 1's private socket
//     /run/systemd/private, in system.slice by default: containerd's
//     --systemd-cgroup path names kubelet's pod slice there) with
//     Delegate=yes, the limits as unit properties, and inside it the leaves
//     container/ (the init) and supervisor/ (host-side helpers), because a
//     cgroup that enables controllers for children may hold no process
//     itself (the "no internal processes" rule of cgroup-v2.rst). The limits
//     are also written as files in container/, where the container's stats
//     and OOM events are read. Asked for by name (--systemd-cgroup), the
//     manager connects on a goroutine from New, beside the caller's next
//     steps; the first reply on PID 1's private socket is awaited with
//     pings (awaitReply: systemd 252 leaves a call sent with the
//     authentication's BEGIN unanswered otherwise).
//   - cgroupfs: the caller already sits in a delegated, writable v2 subtree
//     (a Delegate=yes unit, `systemd-run --user --scope -p Delegate=yes`, a CI
//     job's container). The container cgroup is made next to sandy's, after
//     moving the subtree's own processes into a sandy-supervisor leaf.
//     Prepare makes it before the init exists, so the init is cloned straight
//     into it (clone3 CLONE_INTO_CGROUP, Linux 5.7).
//   - none: no cgroup of its own (cgroup v1 or hybrid hosts, no bus, no
//     delegation). Any requested limit is an *UnenforcedError that says why
//     and how to fix it, unless Options.AllowUnenforced (--allow-unenforced)
//     turns each lost limit into one warning line. With no limit asked
//     for, auto ending here is one warning line (FallbackNone) when
//     Options.WarnNone (sandy run), else one Debug line (create, and a
//     forced none).
//
// A limit a manager cannot enforce (a controller the user's manager does not
// delegate: Debian and Fedora delegate cpu, memory and pids, not cpuset or
// io) is the same error, naming the controller and the systemd drop-in
// that delegates it.
//
// # Calling it
//
//	m, err := cgroupv2.New(cgroupv2.Options{ID: id, CgroupsPath: spec.Linux.CgroupsPath,
//		Manager: flagManager, Resources: spec.Linux.Resources,
//		AllowUnenforced: flagAllow, Warn: warn, Debug: debug})
//	err = m.Prepare(ctx)                  // before the init starts
//	fd, ok := m.CgroupFD()                // ok: SysProcAttr{UseCgroupFD: true, CgroupFD: fd}
//	... start the init, paused on its sync pipe ...
//	err = m.Apply(ctx, initPid)           // before the init runs container code
//	err = m.Supervise(ctx, sentinelPid)   // systemd: keeps the scope and its counters after the init exits
//	w, err := m.Watch()                   // OOM kills etc. while it runs
//	st, err := m.State()                  // into the container's state file
//	... later, maybe in another process ...
//	m, err = cgroupv2.Load(st)
//	err = m.Destroy(ctx)                  // kills what is left; idempotent
//	m.Close()
//
// After an error from Prepare or Apply, call Destroy: a scope may exist
// already, with the init in it.
//
// A cgroup namespace is rooted at the cgroup its creator is in when it is
// created (cgroup_namespaces(7)). With CgroupFD ok, CLONE_NEWCGROUP in the
// same clone3 roots it at the container cgroup. Without it (systemd), the
// init must unshare(CLONE_NEWCGROUP) only after Apply has moved it, or the
// container sees sandy's cgroup as its root (runc orders it the same way).
// Likewise sandy exec: Join first, then setns into the cgroup namespace.
//
// What it does not do: device access control (rootless runtimes cannot
// attach the BPF device program; devices are bind-mounted and the host's
// permissions apply), cgroup v1, and talking D-Bus from inside the user
// namespace. The OCI → cgroup v2 conversions (cpu.shares → cpu.weight,
// quota rounding for systemd, memory+swap → swap) follow runc and crun; see
// resources.go and docs/cgroups.md.
//
// ProbeScope walks New's ladder for real for `sandy doctor`: it dials the
// user bus, starts a no-op transient scope holding a waiting process the
// caller spawns, reads the controllers delegated to it and stops it; its
// reasons are New's words, so a none is run's FallbackNone line. Probe says
// the same from files alone.
//
// See cgroups(7), the kernel's Documentation/admin-guide/cgroup-v2.rst,
// systemd.resource-control(5) and https://systemd.io/CGROUP_DELEGATION/.
package cgroupv2
