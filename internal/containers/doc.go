// Package containers turns an image and `sandy run`'s flags into a
// container: the OCI spec (Generate), which the runtime path that bundles
// use then runs unchanged, and Run, the glue of `sandy run IMAGE` (a
// storage container from the image helper, the spec written as its
// bundle, lifecycle.Run, --rm).
//
// Generate is a pure function, table-tested: the image's config
// (imagehelper.ImageConfig: image-spec's, declared without its package
// inits), the flags as typed (Options), the image's
// /etc/passwd and /etc/group parsed (ParsePasswd, ParseGroup → UserDB)
// and the facts about the caller (Host: ids, subordinate ranges,
// environment, working directory, the init binary's path) come in as
// arguments; the spec and what the caller must still do (Extra: named
// volumes to resolve, files to write for /etc/hosts, resolv.conf,
// hostname, passwd and group lines, the seccomp choice, the stop signal,
// the exposed ports, labels) come out. It reads no file and no process
// state, runs on the host side, and imports no image library (it is on
// cmd/sandy's side of the image helper's boundary).
//
// The rules are podman 4.3's (pkg/specgen/generate, libpod
// generateSpec, common/pkg/config defaults); docs/images.md "Spec from an
// image" lists them. Deliberate differences from podman 4.3.1 for the same
// image and flags, all checked by TestGoldenBusybox:
//
//   - Order is deterministic: the environment is the defaults, then the
//     image's, then --env-file, then -e, each name kept where it first
//     appeared (podman builds it from a map, in random order); mounts
//     are sorted by depth, stable, as podman's sortMounts.
//   - /dev/shm is a tmpfs of 64 MiB mounted by the runtime (podman binds
//     a tmpfs it mounted under its userdata directory).
//   - /etc/hosts, /etc/resolv.conf, /etc/hostname and /run/.containerenv
//     are not in the spec: the caller writes them from Extra and adds
//     their bind mounts.
//   - No seccomp profile is in the spec: Extra.Seccomp says which one the
//     caller installs ("default": sandy's, from the seccomp package, built
//     for the spec's bounding set).
//   - No default pids limit (podman sets 2048 with a systemd cgroup
//     manager on cgroup v2): a limit sandy cannot enforce is an error, so
//     only --pids-limit sets one.
//   - --memory sets no swap limit; podman's annotations
//     (io.container.manager, io.podman.annotations.*) and the
//     org.opencontainers.image.stopSignal annotation are not written: the
//     caller's container record keeps that state.
//   - The namespaces always include cgroup, and user unless the caller is
//     root, who runs in the host's user namespace as rootful podman does
//     (podman: the user
//     namespace is its rootless one, set up before the runtime; cgroup is
//     private on cgroup v2); without keep-id the spec has no id maps and
//     the runtime writes its automatic ones (the same as podman's
//     rootless map: 0 → the caller, 1..N → the subordinate ranges).
//   - --init mounts the init at /run/sandy-init (podman: /run/podman-init):
//     sandy's own binary (Host.InitPath = initproc.SelfBinary, which the
//     container's init copies to a read-only tmpfs; internal/pid1).
//   - -v sources keep the host mount's locked flags through the runtime,
//     which reads them (podman adds nosuid/nodev/noexec by statfs).
//   - z and Z are accepted and dropped (no SELinux relabelling); overlay
//     volumes (O) and idmapped mounts are refused.
//   - --privileged binds no host devices (podman binds every /dev node
//     the caller can open).
//   - A numeric user with no passwd entry gets HOME (the working
//     directory, the home of the entry podman adds) in the spec; podman
//     leaves HOME to the runtime, which reads that entry.
//
// Under --userns=keep-id, Run has the image helper make the storage
// container with podman's keep-id map relative to the store's user
// namespace (storeMaps, keepIDStoreMap), which Generate's map
// (keepIDMap, written from the host) is composed with that namespace: the
// store then gives the container an image owned as that map sees it (an
// id-mapped copy of the image's top layer, or fuse-overlayfs's mapping
// options), as it does for podman (docs/images.md "Keep-id").
//
// ApplyToBundle is the same flags' meaning for a bundle: `sandy run
// ./bundle [COMMAND [ARG...]]` with -e, --env-file, -v, --mount, --tmpfs,
// -w and -t changes the loaded config.json in memory for that run
// (lifecycle's CreateOptions.EditSpec, through EditBundle, which also
// checks that bind sources exist); the file is never written. It is pure
// and all or nothing, and it refuses the flags only an image container
// has, naming the config.json field to edit instead.
//
// `sandy run -d IMAGE` hands the container to its monitor (monitor.go:
// MonitorMain, the hidden `sandy _monitor --pending ID`, conmon's job),
// started before the helper answers and given the container's directory
// once the bundle is written (pending.go), which runs it through
// lifecycle.Run in the foreground,
// logs its output with ctrlog, records its exit and removes it under
// --rm; the CLI returns once the process runs (detach.go). The monitor
// also serves the container's attach socket (attach.go, internal/attach):
// the output to the attached clients, their stdin to the container (-i),
// their window size to its pty (-t). Manage has the verbs that act on a
// container from outside (manage.go: ls, rm; verbs.go: stop, start, kill,
// wait, logs; attachverb.go: attach, start -a), which read the record
// (sandy.json) and the runtime's state, and wait for the monitor's end;
// they find the container by name, id or prefix through the name index
// (index.go: the store's container directory and the records, without
// the image helper), and list the store only for what the index cannot
// answer. Copy (cp.go,
// `sandy cp`) copies between a container and the host through a worker
// (the hidden `sandy _cp`) in the container's user namespace, in the
// running init's root or in the stopped container's layers, which it
// mounts in a mount namespace of its own; internal/copier does the
// in-root file work on both sides (docs/cli/cp.md).
//
// container=podman is set in the environment as podman does: software
// inside images tests for it (systemd's virtualization detection knows
// "podman", not "sandy"); /run/.containerenv names the engine.
package containers
