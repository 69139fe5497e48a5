// Package crifix starts a private containerd with its CRI plugin for the
// tests that drive sandy the way a kubelet does, through crictl: sandy as
// the RuntimeClass handler "sandy" of containerd's io.containerd.runc.v2
// shim (BinaryName = the sandy under test), runc as the handler "runc" to
// compare with, and CNI (Debian's containernetworking-plugins: bridge,
// host-local, loopback) on a bridge and subnet of its own.
//
// It is test support only: no sandy code imports it. Everything lives under
// one directory of the test: containerd's root, state, sockets and config,
// each shim's runtime root (Options.Root, so nothing is written under the
// system's /run/containerd), the CNI config and its address leases
// (host-local dataDir), and the network namespaces (netns_mounts_under_state_dir).
// The system containerd and its socket are never touched. The bridge
// (Bridge, on Subnet) is the only host-wide object; Stop deletes it. With
// Options.HostAddress the bridge has the address Gateway, so the host
// reaches the pods at their addresses (critest's port specs).
//
// It runs as root (the common cluster case): containerd as root, sandy as
// root through the shim. Options.SystemdCgroup is the systemd cgroup
// driver (SystemdCgroup = true, for a systemd host: the VM of hack/vm,
// hack/vm/cri-tests.sh). Options.Rootless runs containerd as the calling
// user (the test user, after testutil.AsUser) inside rootlesskit, as
// nerdctl's containerd-rootless.sh does (rootless.go): the CRI plugin with
// disable_cgroup and disable_apparmor, the bridge inside rootlesskit's
// network namespace (no host-wide object at all; with HostAddress its
// address is there too), the shims' sockets and the CNI result cache under
// the test's directory, and crictl, ctr and critest run inside
// rootlesskit's namespaces through nsenter (ClientCommand). Rootless,
// Options.Egress makes the bridge the pods' masquerading gateway and
// Options.HostPorts adds the CNI portmap plugin, their iptables rules
// rootlesskit's network namespace's own; the host reaches a host port
// only through rootlesskit's port driver (RootlessAPISocket, rootlessctl
// add-ports), which containerd does not ask.
//
// There is no registry to pull from: the sandbox ("pause") image and the
// busybox image are built by imagefix and loaded with
// `ctr -n k8s.io images import`. The pause container is busybox's sleep
// (Options.PauseCmd replaces the command), which containerd kills with
// SIGKILL on StopPodSandbox. ImportImage imports more images under any
// name, e.g. critest's (registry.k8s.io/e2e-test-images/...), which the
// CRI then finds without a registry. Critest finds the critest binary
// that hack/setup.sh builds, as Crictl finds crictl.
//
// Stop removes every pod, stops containerd, then ends what is left of its
// shims and containers (found by the test directory in their command line
// or root), unmounts what is left under the directory and deletes the
// bridge. Leaks reports what a test leaked before Stop would clean it.
package crifix
