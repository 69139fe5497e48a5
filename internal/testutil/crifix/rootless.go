package crifix

import (
	"fmt"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// rootlessCRIConfig is what the CRI plugin needs in rootlesskit's user
// namespace; containerd itself warns "Running containerd in a user
// namespace typically requires disable_cgroup, disable_apparmor,
// restrict_oom_score_adj set to be true" (restrict_oom_score_adj is set
// for every mode).
//
// disable_cgroup: on this hybrid host the only cgroup v2 hierarchy
// (/sys/fs/cgroup/unified) has no controller but hugetlb (a controller is
// in one hierarchy at a time, and the others are v1's), the v1
// hierarchies are root's and nothing delegates a subtree (no systemd).
// Without it containerd asks cpu.shares of every sandbox and a cgroupfs
// path: sandy refuses the pod (cannot enforce cpu shares) unless
// SANDY_ALLOW_UNENFORCED=1, and runc fails (mkdir
// /sys/fs/cgroup/cpuset/k8s.io/...: permission denied). With it
// containerd sends neither a cgroups path nor limits (a pod's limits are
// dropped by containerd, as disable_cgroup says), and UpdateContainerResources
// still reaches the runtime, which refuses it (TestCRIPodRootless).
//
// disable_apparmor: loading a profile (apparmor_parser) needs the
// initial namespace's privilege.
const rootlessCRIConfig = `  # rootless (containerd in rootlesskit's user namespace), as containerd warns
  disable_cgroup = true
  disable_apparmor = true
`

// rootlessStateDir is rootlesskit's --state-dir under Dir: its child_pid
// names the process whose namespaces the clients enter.
const rootlessStateDir = "rootlesskit"

// requireRootless checks what Options.Rootless needs: not root (the daemon
// runs as the calling user; as root, AsUser re-runs the test as the test
// user), rootlesskit, slirp4netns, nsenter and mount (and ip for
// HostAddress); SystemdCgroup has no rootless form here.
func requireRootless(t testing.TB, o Options) {
	t.Helper()
	if o.SystemdCgroup {
		t.Fatal("crifix: Options.Rootless does not take SystemdCgroup (no user systemd here)")
	}
	if os.Getuid() == 0 {
		t.Fatal("crifix: Options.Rootless runs containerd as the calling user, and this is root: call testutil.AsUser first (it re-runs the test as the test user)")
	}
	testutil.RequireBinary(t, "rootlesskit", "apt-get install rootlesskit")
	testutil.RequireBinary(t, "slirp4netns", "apt-get install slirp4netns")
	testutil.RequireBinary(t, "nsenter", "apt-get install util-linux")
	testutil.RequireBinary(t, "mount", "apt-get install mount")
	testutil.RequireBinary(t, "newuidmap", "apt-get install uidmap")
	if o.HostAddress {
		testutil.RequireBinary(t, "ip", "apt-get install iproute2")
	}
}

// rootlesskitArgs are containerd-rootless.sh's (nerdctl v2) rootlesskit
// flags, less --detach-netns (rootlesskit 2.0; Debian 12 has 1.1): the
// network namespace of slirp4netns (sandboxed and with seccomp where it
// can), the host's loopback out of reach, /etc, /run and /var/lib
// copied up (tmpfs with symlinks to the host's entries, so that the child
// can replace one), mounts propagated from the host (rslave).
func (c *Containerd) rootlesskitArgs() []string {
	return []string{
		"--state-dir=" + c.path(rootlessStateDir),
		"--net=slirp4netns", "--mtu=65520",
		"--slirp4netns-sandbox=auto", "--slirp4netns-seccomp=auto",
		"--disable-host-loopback", "--port-driver=builtin",
		"--copy-up=/etc", "--copy-up=/run", "--copy-up=/var/lib",
		"--propagation=rslave",
	}
}

// rootlessChild is the script rootlesskit runs in its namespaces, the
// child half of containerd-rootless.sh: the copy-up left symlinks to the
// host's /run/containerd and /var/lib/cni (root's, when they exist), which
// it replaces with directories of Dir, bound there: the shims' sockets
// (/run/containerd/s, where containerd 1.6 puts them whatever its state
// dir) and the CNI plugins' result cache (/var/lib/cni/results) stay
// under Dir, for Leaks, and leave no trace on the host. With hostAddress
// it makes the bridge with the address Gateway first (bridgeCommands), in
// rootlesskit's network namespace, where the clients run.
func (c *Containerd) rootlessChild(hostAddress bool) string {
	var bridge strings.Builder
	if hostAddress {
		for _, args := range bridgeCommands() {
			bridge.WriteString("ip " + strings.Join(args, " ") + "\n")
		}
	}
	return fmt.Sprintf(`set -e
rm -f /run/containerd /var/lib/cni
mkdir -p /run/containerd /var/lib/cni %[1]s %[2]s
mount --bind %[1]s /run/containerd
mount --bind %[2]s /var/lib/cni
%[4]sexec containerd --config %[3]s
`, shellQuote(c.path("run")), shellQuote(c.path("cni-cache")), shellQuote(c.path("config.toml")), bridge.String())
}

// startRootless runs containerd in rootlesskit and waits for its CRI
// service to answer (through nsenter).
func (c *Containerd) startRootless(env []string, hostAddress bool) error {
	script := c.path("rootless-child.sh")
	if err := os.WriteFile(script, []byte(c.rootlessChild(hostAddress)), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", script, err)
	}
	args := append(c.rootlesskitArgs(), "/bin/sh", script)
	if err := c.launch(exec.Command("rootlesskit", args...), env); err != nil {
		return err
	}
	if err := c.waitReady(); err != nil {
		return err
	}
	// Everything of the daemon now running: rootlesskit's parent and
	// child and containerd (slirp4netns's command line does not name Dir).
	c.daemon = map[int]bool{c.cmd.Process.Pid: true}
	for _, p := range c.processes() {
		pid, _ := strconv.Atoi(strings.Fields(p)[0])
		c.daemon[pid] = true
	}
	return nil
}

// enterRootless reads rootlesskit's child_pid, once written, and sets the
// clients' nsenter prefix: its user (keeping the caller's credentials,
// which are root's there), mount and network namespaces, as
// `containerd-rootless-setuptool.sh nsenter` does. No --wd: nsenter opens
// that directory before it enters the mount namespace, so the client's
// working directory would be one it cannot name (getwd: ENOENT, which
// critest fails on); entering the mount namespace sets it to the root,
// and every path the clients get is absolute.
func (c *Containerd) enterRootless() {
	data, err := os.ReadFile(c.path(rootlessStateDir, "child_pid"))
	if err != nil {
		return
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(data)))
	if err != nil || pid <= 0 {
		return
	}
	c.childPid = pid
	c.nsenter = []string{"nsenter", "-U", "--preserve-credentials", "-m", "-n", "-t", strconv.Itoa(pid)}
}

// Rootless reports whether containerd runs in rootlesskit (Options.Rootless).
func (c *Containerd) Rootless() bool { return c.rootless }

func shellQuote(s string) string {
	return "'" + strings.ReplaceAll(s, "'", `'\''`) + "'"
}

// RootlessAPISocket is rootlesskit's API socket (Rootless), which
// `rootlessctl --socket PATH add-ports` asks to forward a port of the host
// to rootlesskit's network namespace (its builtin port driver).
func (c *Containerd) RootlessAPISocket() string { return c.path(rootlessStateDir, "api.sock") }

// RootlessChild is the pid of rootlesskit's child (Rootless), whose
// user, mount and network namespaces containerd and the pods share.
func (c *Containerd) RootlessChild() int { return c.childPid }
