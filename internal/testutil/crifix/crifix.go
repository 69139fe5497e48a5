package crifix

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

const (
	// Bridge and Subnet are the CNI network's bridge and address range:
	// a name and a range of their own, so that no other network of the
	// host (Docker's, podman's, a cluster's 10.88.0.0/16) is touched.
	Bridge = "sandycri0"
	Subnet = "10.88.77.0/24"
	// Image is a busybox-static image (imagefix.Busybox); PauseImage the
	// same rootfs running `sleep`, the sandbox image.
	Image      = "localhost/sandy-cri-busybox:1"
	PauseImage = "localhost/sandy-cri-pause:1"
	// CrictlVersion is the crictl that hack/setup.sh builds into
	// CrictlCache (go install sigs.k8s.io/cri-tools/cmd/crictl@VERSION).
	CrictlVersion = "v1.37.0"
	CrictlCache   = "/var/cache/sandy-cri/bin/crictl"
	// CritestCache is critest, cri-tools' CRI validation suite, of the
	// same version, which hack/setup.sh builds as cri-tools' Makefile
	// does (go test -c ./cmd/critest in the module).
	CritestCache = "/var/cache/sandy-cri/bin/critest"
	// Gateway is the bridge's address when Options.HostAddress is set.
	Gateway = "10.88.77.1"
	// Namespace is the containerd namespace of the CRI plugin.
	Namespace = "k8s.io"
)

// Options configure Start.
type Options struct {
	// Sandy is the sandy binary of the handler "sandy".
	Sandy string
	// Env is added to containerd's environment, which its shims and so
	// sandy inherit: how an administrator configures sandy under
	// containerd (e.g. SANDY_ALLOW_UNENFORCED=1 on a cgroup v1 host).
	Env []string
	// Handlers maps more handler names to runtime binaries (BinaryName of
	// an io.containerd.runc.v2 runtime), e.g. "crun": "/usr/bin/crun".
	Handlers map[string]string
	// HostAddress gives the bridge the address Gateway, so that the host
	// reaches pods at their addresses (critest's port tests do). It is set
	// on the bridge before containerd starts, not by the CNI bridge
	// plugin's isGateway, which also turns on the host-wide
	// net.ipv4.ip_forward. Rootless, the bridge and its address are in
	// rootlesskit's network namespace, where the clients run: they reach
	// the pods, the host does not.
	HostAddress bool
	// HostPorts adds the CNI portmap plugin (capability portMappings,
	// snat) to the network, so that a pod's host ports are DNAT rules.
	// Rootless only: there the rules are made in rootlesskit's network
	// namespace and go with it; rootful, they would be the host's, on a
	// machine shared with other jobs. From the host, a host port is
	// reached only once rootlesskit's port driver is asked to forward it
	// (RootlessAPISocket; containerd does not ask).
	HostPorts bool
	// Egress lets pods reach beyond the node: the bridge is the pods'
	// gateway (isGateway, which also turns on ip_forward, and a default
	// route in each pod) and their connections are masqueraded (ipMasq,
	// iptables rules). Rootless only: there both are rootlesskit's network
	// namespace's own, and slirp4netns carries the connections on to the
	// host's network; rootful they would change the host.
	Egress bool
	// PauseCmd replaces the sandbox image's command (default: busybox's
	// sleep), e.g. for tests that look for their own sleep among the
	// pod's processes (a container shares the pause container's pid
	// namespace by default).
	PauseCmd []string
	// SystemdCgroup sets SystemdCgroup = true in every handler's options,
	// as kubeadm does on a systemd host: the shim passes --systemd-cgroup
	// and containerd a "slice:cri-containerd:ID" cgroupsPath, when the pod
	// config's cgroup_parent is a slice (kubelet's systemd cgroup driver
	// gives one; without it containerd sends a cgroupfs path, which the
	// runtime then refuses). Leaks then also lists the units and cgroups
	// of the containers' scopes.
	SystemdCgroup bool
	// Rootless runs containerd as the calling user (not root: the test
	// user, after testutil.AsUser) inside rootlesskit, as nerdctl's
	// containerd-rootless.sh does: user, mount and network namespaces of
	// rootlesskit's (slirp4netns), /etc, /run and /var/lib copied up, the
	// CRI plugin with disable_cgroup and disable_apparmor. The CNI plugins
	// run inside that network namespace, so the bridge is rootlesskit's,
	// not the host's; crictl and ctr run inside the namespaces too
	// (nsenter, as containerd-rootless-setuptool.sh nsenter), where the
	// CRI's stream server (exec, attach) listens. HostAddress and
	// SystemdCgroup are refused with it.
	Rootless bool
}

// Containerd is a running private containerd with the CRI plugin.
type Containerd struct {
	// Dir holds everything: config, sockets, root, state, logs.
	Dir string
	// Socket is the containerd (and CRI) socket.
	Socket string
	crictl string
	// systemd: SystemdCgroup was set (Leaks looks for scopes).
	systemd bool
	// rootless: Options.Rootless; nsenter is then the command line that
	// enters rootlesskit's namespaces, before every crictl and ctr.
	rootless bool
	nsenter  []string
	// childPid is rootlesskit's child (Rootless): its mount namespace
	// holds the pods' mounts.
	childPid int
	// daemon are the pids of containerd (and rootlesskit) themselves,
	// which processes does not list.
	daemon map[int]bool
	cmd    *exec.Cmd
	waited chan error
	// madeRunDirs are /run/containerd/s and /run/containerd when they did
	// not exist before Start: Stop removes them once empty.
	madeRunDirs []string
}

// Crictl returns the crictl binary: $SANDY_CRICTL, else CrictlCache (the
// pinned version), else crictl in PATH; it skips (fails on CI) when there
// is none.
func Crictl(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SANDY_CRICTL"); p != "" {
		return p
	}
	if _, err := os.Stat(CrictlCache); err == nil {
		return CrictlCache
	}
	if p, err := exec.LookPath("crictl"); err == nil {
		return p
	}
	testutil.Skip(t, "crictl not found ($SANDY_CRICTL, PATH, %s): hack/setup.sh builds it (go install sigs.k8s.io/cri-tools/cmd/crictl@%s)", CrictlCache, CrictlVersion)
	return ""
}

// Critest returns the critest binary: $SANDY_CRITEST_BIN, else
// CritestCache; it skips (fails on CI) when there is none.
func Critest(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SANDY_CRITEST_BIN"); p != "" {
		return p
	}
	if _, err := os.Stat(CritestCache); err == nil {
		return CritestCache
	}
	testutil.Skip(t, "critest not found ($SANDY_CRITEST_BIN, %s): hack/setup.sh builds it (go test -c ./cmd/critest in sigs.k8s.io/cri-tools@%s)", CritestCache, CrictlVersion)
	return ""
}

// RequireRoot skips (fails on CI, which runs the suite as root) unless the
// test runs as root: containerd's CRI plugin, CNI and the shims are root's.
func RequireRoot(t testing.TB) {
	t.Helper()
	if os.Getuid() != 0 {
		testutil.Skip(t, "needs root: a rootful containerd with the CRI plugin and CNI (run the suite as root)")
	}
}

// Start starts a private containerd under a new temporary directory and
// loads the images; t.Cleanup stops it (Stop). The bridge must not exist
// already (another run's leftover fails the test with the command to
// remove it).
func Start(t testing.TB, o Options) *Containerd {
	t.Helper()
	if o.Rootless {
		requireRootless(t, o)
	} else {
		RequireRoot(t)
		if o.HostPorts || o.Egress {
			t.Fatal("crifix: Options.HostPorts and Egress are for Rootless only: rootful, their iptables rules and ip_forward would be the host's, on a shared machine")
		}
	}
	testutil.RequireBinary(t, "containerd", "apt-get install containerd")
	testutil.RequireBinary(t, "ctr", "apt-get install containerd")
	plugins := []string{"bridge", "host-local", "loopback"}
	if o.HostPorts {
		plugins = append(plugins, "portmap")
	}
	if o.HostPorts || o.Egress {
		testutil.RequireBinary(t, "iptables", "apt-get install iptables")
	}
	for _, p := range plugins {
		if _, err := os.Stat(filepath.Join(cniBinDir, p)); err != nil {
			testutil.Skip(t, "CNI plugin %s/%s missing (apt-get install containernetworking-plugins)", cniBinDir, p)
		}
	}
	crictl := Crictl(t)
	if _, err := os.Stat("/sys/class/net/" + Bridge); err == nil && !o.Rootless {
		t.Fatalf("bridge %s exists already (another run's leftover, or a run in progress): ip link del %s", Bridge, Bridge)
	}
	// Short: the socket path must fit in sun_path (108 bytes).
	dir, err := os.MkdirTemp("", "sandy-cri-")
	if err != nil {
		t.Fatal(err)
	}
	c := &Containerd{Dir: dir, Socket: filepath.Join(dir, "c.sock"), crictl: crictl, systemd: o.SystemdCgroup, rootless: o.Rootless}
	// containerd 1.6's shims put their sockets in /run/containerd/s
	// whatever the daemon's --state: what the harness made there goes
	// with it (a root-only /run/containerd left behind breaks a rootless
	// ctr later, which makes its FIFOs under /run/containerd/fifo).
	// Rootless, /run/containerd is a directory of Dir bound in
	// rootlesskit's mount namespace (rootlessChild).
	for _, d := range []string{shimRunDir, filepath.Dir(shimRunDir)} {
		if _, err := os.Stat(d); errors.Is(err, fs.ErrNotExist) && !o.Rootless {
			c.madeRunDirs = append(c.madeRunDirs, d)
		}
	}
	t.Cleanup(func() { c.Stop(t) })
	if err := c.writeConfig(o); err != nil {
		t.Fatal(err)
	}
	if o.HostAddress && !o.Rootless {
		if err := makeBridge(); err != nil {
			t.Fatal(err)
		}
	}
	if o.Rootless {
		err = c.startRootless(o.Env, o.HostAddress)
	} else {
		err = c.start(o.Env)
	}
	if err != nil {
		t.Fatal(err)
	}
	if err := c.loadImages(t, o.PauseCmd); err != nil {
		t.Fatal(err)
	}
	return c
}

const cniBinDir = "/usr/lib/cni"

// shimRunDir is where containerd 1.6's shims make their sockets.
const shimRunDir = "/run/containerd/s"

// bridgeCommands are the ip(8) commands that make the bridge with the
// address Gateway, up. The CNI bridge plugin takes a bridge that exists as
// it is.
func bridgeCommands() [][]string {
	return [][]string{
		{"link", "add", Bridge, "type", "bridge"},
		{"addr", "add", Gateway + "/24", "dev", Bridge},
		{"link", "set", Bridge, "up"},
	}
}

// makeBridge makes the bridge on the host (bridgeCommands).
func makeBridge() error {
	for _, args := range bridgeCommands() {
		if out, err := exec.Command("ip", args...).CombinedOutput(); err != nil {
			return fmt.Errorf("ip %s: %w: %s", strings.Join(args, " "), err, out)
		}
	}
	return nil
}

// writeConfig writes containerd's config (version 2) and the CNI conflist.
func (c *Containerd) writeConfig(o Options) error {
	handlers := map[string]string{"runc": "", "sandy": o.Sandy}
	for k, v := range o.Handlers {
		handlers[k] = v
	}
	names := make([]string, 0, len(handlers))
	for k := range handlers {
		names = append(names, k)
	}
	sort.Strings(names)
	var b strings.Builder
	fmt.Fprintf(&b, `version = 2
root = %q
state = %q
[grpc]
  address = %q
[ttrpc]
  address = %q
[plugins."io.containerd.internal.v1.opt"]
  path = %q
[plugins."io.containerd.grpc.v1.cri"]
  sandbox_image = %q
  netns_mounts_under_state_dir = true
  # containerd asks -998 for the pause container; lowering a score needs
  # CAP_SYS_RESOURCE, which containerd may lack (as in a container): keep
  # the scores at or above containerd's own instead of failing.
  restrict_oom_score_adj = true
  stream_server_address = "127.0.0.1"
  stream_server_port = "0"
`, c.path("root"), c.path("state"), c.Socket, c.Socket+".ttrpc", c.path("opt"), PauseImage)
	if o.Rootless {
		b.WriteString(rootlessCRIConfig)
	}
	fmt.Fprintf(&b, `  [plugins."io.containerd.grpc.v1.cri".cni]
    bin_dir = %q
    conf_dir = %q
  [plugins."io.containerd.grpc.v1.cri".containerd]
    default_runtime_name = "runc"
    snapshotter = "overlayfs"
`, cniBinDir, c.path("net.d"))
	for _, n := range names {
		fmt.Fprintf(&b, `    [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%s]
      runtime_type = "io.containerd.runc.v2"
      [plugins."io.containerd.grpc.v1.cri".containerd.runtimes.%s.options]
        Root = %q
`, n, n, c.path("runtime-root", n))
		if handlers[n] != "" {
			fmt.Fprintf(&b, "        BinaryName = %q\n", handlers[n])
		}
		if o.SystemdCgroup {
			b.WriteString("        SystemdCgroup = true\n")
		}
	}
	if err := os.WriteFile(c.path("config.toml"), []byte(b.String()), 0o644); err != nil {
		return fmt.Errorf("writing containerd config: %w", err)
	}
	// isGateway false (but for Egress): the bridge plugin would otherwise
	// give the bridge an address and turn on the host's
	// net.ipv4.ip_forward, a host-wide setting; the pods need only their
	// address and the pod's own loopback. No ipMasq: no iptables rules.
	ipam := map[string]any{
		"type":    "host-local",
		"ranges":  [][]map[string]string{{{"subnet": Subnet, "gateway": Gateway}}},
		"dataDir": c.path("cni-ipam"),
	}
	if o.Egress {
		ipam["routes"] = []map[string]string{{"dst": "0.0.0.0/0"}}
	}
	plugins := []any{
		map[string]any{"type": "bridge", "bridge": Bridge, "isGateway": o.Egress, "ipMasq": o.Egress, "ipam": ipam},
		map[string]any{"type": "loopback"},
	}
	if o.HostPorts {
		// containerd passes a pod's port mappings to a plugin that has
		// the capability. snat: a connection to 127.0.0.1:HOSTPORT (as
		// critest and rootlesskit's builtin port driver make) is
		// DNAT'ed in OUTPUT, and needs route_localnet on the bridge and
		// a masquerade rule, which portmap sets with it.
		plugins = append(plugins, map[string]any{
			"type": "portmap", "capabilities": map[string]bool{"portMappings": true}, "snat": true,
		})
	}
	conflist := map[string]any{"cniVersion": "1.0.0", "name": "sandycri", "plugins": plugins}
	data, _ := json.MarshalIndent(conflist, "", "  ")
	if err := os.MkdirAll(c.path("net.d"), 0o755); err != nil {
		return err
	}
	if err := os.WriteFile(c.path("net.d", "10-sandycri.conflist"), data, 0o644); err != nil {
		return fmt.Errorf("writing CNI config: %w", err)
	}
	crictlYAML := fmt.Sprintf("runtime-endpoint: unix://%s\nimage-endpoint: unix://%s\ntimeout: 60\n", c.Socket, c.Socket)
	return os.WriteFile(c.path("crictl.yaml"), []byte(crictlYAML), 0o644)
}

func (c *Containerd) path(elem ...string) string {
	return filepath.Join(append([]string{c.Dir}, elem...)...)
}

// start runs containerd and waits for its CRI service to answer.
func (c *Containerd) start(env []string) error {
	if err := c.launch(exec.Command("containerd", "--config", c.path("config.toml")), env); err != nil {
		return err
	}
	if err := c.waitReady(); err != nil {
		return err
	}
	c.daemon = map[int]bool{c.cmd.Process.Pid: true}
	return nil
}

// launch starts cmd, containerd or the rootlesskit that runs it, with
// env added, its output in containerd.log.
func (c *Containerd) launch(cmd *exec.Cmd, env []string) error {
	logf, err := os.OpenFile(c.path("containerd.log"), os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd.Env = append(os.Environ(), env...)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Its own process group: the test's ^C does not reach it first.
	cmd.SysProcAttr = &syscall.SysProcAttr{Setpgid: true}
	if err := cmd.Start(); err != nil {
		return fmt.Errorf("starting %s: %w", cmd.Path, err)
	}
	c.cmd = cmd
	c.waited = make(chan error, 1)
	go func() { c.waited <- cmd.Wait() }()
	return nil
}

// waitReady waits for the CRI service to answer crictl info (rootless:
// once rootlesskit has written its child's pid, which the clients
// enter).
func (c *Containerd) waitReady() error {
	deadline := time.Now().Add(30 * time.Second)
	for {
		if c.rootless && c.nsenter == nil {
			c.enterRootless()
		}
		if c.nsenter != nil || !c.rootless {
			if _, _, err := c.Crictl("info"); err == nil {
				return nil
			}
		}
		select {
		case err := <-c.waited:
			c.waited <- err
			return fmt.Errorf("containerd exited: %v\n%s", err, c.LogTail(30))
		default:
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("containerd's CRI service did not answer within 30s:\n%s", c.LogTail(30))
		}
		time.Sleep(200 * time.Millisecond)
	}
}

// LogTail returns the last n lines of containerd's log.
func (c *Containerd) LogTail(n int) string {
	data, _ := os.ReadFile(c.path("containerd.log"))
	lines := strings.Split(strings.TrimRight(string(data), "\n"), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, "\n")
}

// loadImages builds the busybox and pause images and imports them.
func (c *Containerd) loadImages(t testing.TB, pauseCmd []string) error {
	bb := imagefix.Busybox(t)
	pause := bb
	pause.Config.Cmd = []string{"/bin/sleep", "2147483647"}
	if pauseCmd != nil {
		pause.Config.Cmd = pauseCmd
	}
	for ref, img := range map[string]imagefix.Image{Image: bb, PauseImage: pause} {
		if err := c.ImportImage(ref, img); err != nil {
			return err
		}
	}
	return nil
}

// ImportImage writes img as a docker-archive tagged ref (a full name such
// as "registry.k8s.io/e2e-test-images/busybox:1.29-2") and imports it into
// the CRI plugin's namespace: the CRI then finds it under that name
// without a registry.
func (c *Containerd) ImportImage(ref string, img imagefix.Image) error {
	tarPath := c.path(strings.NewReplacer("/", "_", ":", "_").Replace(ref) + ".tar")
	if _, err := imagefix.DockerArchive(tarPath, ref, img, false); err != nil {
		return fmt.Errorf("writing image %s: %w", ref, err)
	}
	defer os.Remove(tarPath)
	argv := c.ClientCommand("ctr", "--address", c.Socket, "-n", Namespace, "images", "import", tarPath)
	out, err := exec.Command(argv[0], argv[1:]...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ctr images import %s: %v\n%s", tarPath, err, out)
	}
	return nil
}

// Endpoint is the CRI endpoint (unix://Socket) for CRI clients such as
// critest.
func (c *Containerd) Endpoint() string { return "unix://" + c.Socket }

// Crictl runs crictl against this containerd and returns its stdout and
// stderr; err is non-nil when it exits non-zero (an *exec.ExitError).
func (c *Containerd) Crictl(args ...string) (stdout, stderr string, err error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	return c.crictlCtx(ctx, args...)
}

func (c *Containerd) crictlCtx(ctx context.Context, args ...string) (string, string, error) {
	argv := append(c.CrictlCommand(), args...)
	cmd := exec.CommandContext(ctx, argv[0], argv[1:]...)
	var o, e bytes.Buffer
	cmd.Stdout, cmd.Stderr = &o, &e
	err := cmd.Run()
	return o.String(), e.String(), err
}

// CrictlCommand is the crictl command line (binary and config flag;
// rootless, after nsenter into rootlesskit's namespaces) for callers that
// run it themselves, e.g. under script(1) for a terminal.
func (c *Containerd) CrictlCommand() []string {
	return c.ClientCommand(c.crictl, "--config", c.path("crictl.yaml"))
}

// ClientCommand is the command line that runs argv where the CRI's
// clients run: as it is rootful; rootless, after nsenter into
// rootlesskit's user, mount and network namespaces, where the socket's
// stream server and the bridge are (critest runs so).
func (c *Containerd) ClientCommand(argv ...string) []string {
	return append(append([]string{}, c.nsenter...), argv...)
}

// Must runs crictl and fails t when it exits non-zero; it returns stdout
// without the final newline.
func (c *Containerd) Must(t testing.TB, args ...string) string {
	t.Helper()
	out, errOut, err := c.Crictl(args...)
	if err != nil {
		t.Fatalf("crictl %s: %v\nstderr: %s\ncontainerd log:\n%s", strings.Join(args, " "), err, errOut, c.LogTail(15))
	}
	return strings.TrimRight(out, "\n")
}

// WriteJSON writes v as JSON to a file under Dir named name and returns
// its path (pod and container configs for crictl).
func (c *Containerd) WriteJSON(t testing.TB, name string, v any) string {
	t.Helper()
	data, err := json.Marshal(v)
	if err != nil {
		t.Fatal(err)
	}
	p := c.path("specs", name)
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		t.Fatal(err)
	}
	return p
}

// LogDir returns a directory for pods' container logs.
func (c *Containerd) LogDir(name string) string { return c.path("logs", name) }

// Leaks lists what pods and containers left behind once every pod is
// removed: mounts under Dir (rootless: in rootlesskit's mount namespace),
// network namespaces, runtime state directories, CRI state, address
// leases, shim sockets and CNI results (rootless: under Dir), and
// processes other than containerd itself (and rootlesskit) that belong to
// this containerd (a shim or a container: its command line names Dir, or
// its root is under Dir).
func (c *Containerd) Leaks() []string {
	var leaks []string
	for _, m := range c.mounts() {
		leaks = append(leaks, "mount "+m)
	}
	for _, d := range []string{
		"state/io.containerd.grpc.v1.cri/netns",
		"state/io.containerd.grpc.v1.cri/sandboxes",
		"state/io.containerd.grpc.v1.cri/containers",
		"state/io.containerd.runtime.v2.task/" + Namespace,
		"runtime-root/sandy/" + Namespace,
		"runtime-root/runc/" + Namespace,
		"run/s",
		"cni-cache/results",
	} {
		ents, _ := os.ReadDir(c.path(d))
		for _, e := range ents {
			leaks = append(leaks, filepath.Join(d, e.Name()))
		}
	}
	leases, _ := filepath.Glob(c.path("cni-ipam", "sandycri", "10.*"))
	for _, l := range leases {
		leaks = append(leaks, "address lease "+filepath.Base(l))
	}
	for _, p := range c.processes() {
		leaks = append(leaks, "process "+p)
	}
	if c.systemd {
		leaks = append(leaks, scopeLeaks()...)
	}
	return leaks
}

// SystemdCgroup reports whether the handlers run with the systemd cgroup
// driver (Options.SystemdCgroup).
func (c *Containerd) SystemdCgroup() bool { return c.systemd }

// PodSlice is the cgroup_parent kubelet's systemd cgroup driver gives a
// BestEffort pod with this uid: the path of its slice
// kubepods-besteffort-pod<uid>.slice, the uid's dashes escaped to
// underscores as kubelet does (a dash in a slice name is a level of the
// hierarchy, systemd.slice(5)). containerd takes the last element as the
// slice of the scopes.
func PodSlice(uid string) string {
	return "/kubepods.slice/kubepods-besteffort.slice/kubepods-besteffort-pod" + strings.ReplaceAll(uid, "-", "_") + ".slice"
}

// ScopeUnit is the scope of the container (or sandbox) id under the
// systemd cgroup driver.
func ScopeUnit(id string) string { return ScopePrefix + "-" + id + ".scope" }

// ScopePrefix is the prefix of the scopes containerd names in a
// "slice:prefix:name" cgroupsPath: cri-containerd-ID.scope.
const ScopePrefix = "cri-containerd"

// scopeLeaks lists the containers' systemd scopes (SystemdCgroup): the
// units systemd still lists, in any state, and their cgroup directories
// anywhere in the hierarchy. The host is the test's own (the VM): every
// such scope is this containerd's.
func scopeLeaks() []string {
	var leaks []string
	out, err := exec.Command("systemctl", "list-units", "--all", "--plain", "--no-legend", ScopePrefix+"-*.scope").Output()
	if err != nil {
		leaks = append(leaks, fmt.Sprintf("systemctl list-units: %v", err))
	}
	for _, line := range strings.Split(strings.TrimSpace(string(out)), "\n") {
		if f := strings.Fields(line); len(f) > 0 {
			leaks = append(leaks, "unit "+strings.Join(f, " "))
		}
	}
	_ = filepath.WalkDir("/sys/fs/cgroup", func(p string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return nil
		}
		if strings.HasPrefix(d.Name(), ScopePrefix+"-") {
			leaks = append(leaks, "cgroup "+p)
			return filepath.SkipDir
		}
		return nil
	})
	return leaks
}

// mounts returns the mount points under Dir, deepest first: the host's,
// or (rootless) those of rootlesskit's mount namespace while its child
// lives (the namespace goes with its last process).
func (c *Containerd) mounts() []string {
	mountinfo := "/proc/self/mountinfo"
	if c.rootless {
		if c.childPid == 0 {
			return nil
		}
		mountinfo = fmt.Sprintf("/proc/%d/mountinfo", c.childPid)
	}
	data, _ := os.ReadFile(mountinfo)
	var ms []string
	for _, line := range strings.Split(string(data), "\n") {
		f := strings.Fields(line)
		if len(f) > 4 && strings.HasPrefix(f[4], c.Dir+"/") {
			ms = append(ms, f[4])
		}
	}
	sort.Sort(sort.Reverse(sort.StringSlice(ms)))
	return ms
}

// processes lists live processes (not zombies: a shim's double fork
// leaves them to an init that may not reap) other than the daemon's own
// (containerd, rootlesskit) that belong to this containerd, as "PID
// cmdline".
func (c *Containerd) processes() []string {
	ents, _ := os.ReadDir("/proc")
	var ps []string
	for _, e := range ents {
		pid, err := strconv.Atoi(e.Name())
		if err != nil || c.daemon[pid] {
			continue
		}
		stat, err := os.ReadFile(filepath.Join("/proc", e.Name(), "stat"))
		if err != nil {
			continue
		}
		if i := bytes.LastIndexByte(stat, ')'); i > 0 && i+2 < len(stat) && stat[i+2] == 'Z' {
			continue
		}
		cmdline, _ := os.ReadFile(filepath.Join("/proc", e.Name(), "cmdline"))
		root, _ := os.Readlink(filepath.Join("/proc", e.Name(), "root"))
		if bytes.Contains(cmdline, []byte(c.Dir+"/")) || strings.HasPrefix(root, c.Dir+"/") {
			ps = append(ps, fmt.Sprintf("%d %s", pid, bytes.ReplaceAll(bytes.TrimRight(cmdline, "\x00"), []byte{0}, []byte{' '})))
		}
	}
	return ps
}

// Stop removes every pod (so that CNI releases addresses and the shims
// exit), stops containerd, ends any process of its own left (by pid),
// unmounts what is left under Dir, deletes the bridge and Dir.
func (c *Containerd) Stop(t testing.TB) {
	t.Helper()
	if c.cmd != nil {
		if out, _, err := c.Crictl("pods", "-q"); err == nil && strings.TrimSpace(out) != "" {
			_, errOut, err := c.Crictl("rmp", "-af")
			if err != nil {
				t.Logf("crifix: crictl rmp -af: %v: %s", err, errOut)
			}
		}
		_ = c.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-c.waited:
		case <-time.After(15 * time.Second):
			_ = c.cmd.Process.Kill()
			<-c.waited
		}
		c.cmd = nil
		// Rootless: rootlesskit's child is gone with it, and its mount
		// namespace with the last process killed below.
		c.childPid = 0
	}
	for _, p := range c.processes() {
		pid, _ := strconv.Atoi(strings.Fields(p)[0])
		t.Logf("crifix: killing a leftover process: %s", p)
		_ = unix.Kill(pid, unix.SIGKILL)
	}
	for _, m := range c.mounts() {
		if err := unix.Unmount(m, unix.MNT_DETACH); err != nil && !errors.Is(err, unix.EINVAL) {
			t.Logf("crifix: unmounting leftover %s: %v", m, err)
		}
	}
	// Rootless, the bridge was rootlesskit's (one of the host's of that
	// name is another run's).
	if _, err := os.Stat("/sys/class/net/" + Bridge); err == nil && !c.rootless {
		if out, err := exec.Command("ip", "link", "del", Bridge).CombinedOutput(); err != nil {
			t.Errorf("crifix: ip link del %s: %v: %s", Bridge, err, out)
		}
	}
	for _, d := range c.madeRunDirs {
		// Only once empty: anything else there is not the harness's.
		if err := os.Remove(d); err != nil && !errors.Is(err, fs.ErrNotExist) {
			t.Logf("crifix: removing %s: %v", d, err)
		}
	}
	if os.Getenv("SANDY_CRI_KEEP") != "" {
		t.Logf("crifix: SANDY_CRI_KEEP set: %s kept", c.Dir)
		return
	}
	if c.rootless {
		// The snapshots' directories are the user's (root's in the
		// namespace), some without write permission (overlayfs's work/work
		// is mode 0): make them writable first.
		_ = filepath.WalkDir(c.Dir, func(p string, d fs.DirEntry, err error) error {
			if err == nil && d.IsDir() {
				_ = os.Chmod(p, 0o700)
			}
			return nil
		})
	}
	if err := os.RemoveAll(c.Dir); err != nil {
		t.Errorf("crifix: removing %s: %v", c.Dir, err)
	}
}
