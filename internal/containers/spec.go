package containers

import (
	"encoding/json"
	"errors"
	"fmt"
	"maps"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/spec"
)

// ErrNoCommand: neither the flags nor the image name a command (the CLI
// exits 125, as podman).
var ErrNoCommand = errors.New("no command or entrypoint provided, and no CMD or ENTRYPOINT from image")

// Options are `sandy run`'s flags for the container, parsed by the CLI
// into strings exactly as typed; Generate validates them.
type Options struct {
	// Entrypoint is --entrypoint: nil when not given; "" clears the
	// image's entrypoint; a JSON array is taken as the argv.
	Entrypoint *string
	// Command is the COMMAND [ARG...] after the image.
	Command []string
	// Env is -e, in order: K=V, K (the host's value, dropped when unset),
	// K* (every host variable starting with K).
	Env []string
	// EnvFiles are the --env-file files, already read, in order.
	EnvFiles []EnvFile
	// EnvHost is --env-host: the caller's whole environment, under the
	// image's. NoHTTPProxy is --http-proxy=false: without either, the
	// caller's proxy variables (ProxyEnv) are passed, as podman does.
	EnvHost, NoHTTPProxy bool
	Workdir              string // -w
	User                 string // -u USER|UID[:GROUP|GID]
	Hostname             string // --hostname
	// ReadOnly is --read-only; with it, /tmp, /var/tmp and /run are
	// tmpfs unless NoReadOnlyTmpfs (--read-only-tmpfs=false).
	ReadOnly, NoReadOnlyTmpfs bool
	Tmpfs                     []string // --tmpfs DST[:OPTS]
	// ImageVolume is --image-volume, what the image's VOLUME paths get:
	// "bind" (or ""), an anonymous volume, as podman's default; "tmpfs";
	// "ignore", nothing.
	ImageVolume     string
	Volumes         []string // -v [SRC:]DST[:OPTS]
	Mounts          []string // --mount type=...,...
	CapAdd, CapDrop []string
	// SecurityOpt is --security-opt: no-new-privileges[=true|false],
	// seccomp=unconfined, seccomp=FILE.
	SecurityOpt []string
	Privileged  bool
	Init        bool // --init
	Labels      []string
	Annotations []string
	Terminal    bool // -t
	Memory      string
	CPUs        string
	PidsLimit   *int64
	DNS         []string // --dns
	DNSSearch   []string // --dns-search
	DNSOption   []string // --dns-option
	AddHost     []string // --add-host HOST:IP
	// Network is --network: "" or "slirp4netns[:OPTIONS]", "none", "host".
	Network string
	// Userns is --userns: "" (the default map) or "keep-id".
	Userns string
}

// EnvFile is the content of one --env-file.
type EnvFile struct{ Name, Content string }

// Host is what Generate needs to know about the caller and the host,
// gathered by the caller (Generate reads nothing itself).
type Host struct {
	// ContainerID is the 64-hex id; the default hostname is its first 12.
	ContainerID string
	// Rootfs is spec.root.path: the container layer's mount point.
	Rootfs string
	// UID, GID, UserName, GroupName, Gecos and Home describe the caller,
	// for --userns=keep-id.
	UID, GID                         uint32
	UserName, GroupName, Gecos, Home string
	// SubUIDs and SubGIDs are the caller's subordinate ranges in file
	// order, as the id maps will use them (empty after a degrade to the
	// single mapping).
	SubUIDs, SubGIDs []idmap.SubIDRange
	// Env is the caller's environment, for -e K and K*.
	Env map[string]string
	// Cwd is the caller's working directory, for relative -v sources.
	Cwd string
	// InitPath is the host path of the init binary --init mounts.
	InitPath string
	// Rlimits are the limits the process gets (podman: RLIMIT_NOFILE and
	// RLIMIT_NPROC raised to the caller's hard limits, capped at 1048576).
	Rlimits []specs.POSIXRlimit
	// AllCaps is what --privileged and --cap-add=ALL grant: the caller's
	// bounding set. Empty means every capability sandy knows.
	AllCaps []string
}

// InitDest is where --init mounts the init binary in the container.
const InitDest = "/run/sandy-init"

// Extra is what the caller needs besides the spec.
type Extra struct {
	// StopSignal is the image's StopSignal as a name ("SIGTERM" by default).
	StopSignal string
	// ExposedPorts are the image's, sorted ("80/tcp"), for -P.
	ExposedPorts []string
	// Labels are the image's labels overridden by --label.
	Labels map[string]string
	// Volumes are the named and anonymous volumes to resolve and mount
	// (VolumeMount); the spec does not hold them yet.
	Volumes []NamedVolume
	// Chown lists the mount destinations whose source is to be chowned to
	// the process user (the U option).
	Chown []string
	// Seccomp is the filter to install: "default" (the caller builds
	// sandy's default profile for the spec's bounding set), "unconfined",
	// or a profile file path in SeccompFile.
	Seccomp     string
	SeccompFile string
	// Network is "slirp4netns", "usernet" (sandy's own, experimental:
	// docs/networking.md), "none" or "host"; NetworkOptions the options
	// after the colon.
	Network        string
	NetworkOptions []string
	// Hostname, DNS, DNSSearch, DNSOptions and AddHosts are for
	// /etc/hostname, /etc/resolv.conf and /etc/hosts, which the caller
	// writes and binds.
	Hostname   string
	DNS        []string
	DNSSearch  []string
	DNSOptions []string
	AddHosts   []HostEntry
	// PasswdEntry and GroupEntry are lines to add to the container's
	// /etc/passwd and /etc/group ("" for none), as podman adds them: the
	// caller under keep-id, a numeric -u that has no entry.
	PasswdEntry, GroupEntry string
}

// defaultNetwork is the runtime's default network (tests replace it:
// what it finds depends on the machine).
var defaultNetwork = lifecycle.DefaultNetwork

// defaultCaps are podman 4's (containers.conf default_capabilities), the
// list `sandy spec --caps podman` writes too.
var defaultCaps = spec.PodmanCaps

// maskedPaths and readonlyPaths are podman 4's
// (pkg/specgen/generate BlockAccessToKernelFilesystems).
var (
	maskedPaths = []string{
		"/proc/acpi", "/proc/kcore", "/proc/keys", "/proc/latency_stats", "/proc/timer_list",
		"/proc/timer_stats", "/proc/sched_debug", "/proc/scsi", "/sys/firmware", "/sys/fs/selinux", "/sys/dev/block",
	}
	readonlyPaths = []string{"/proc/asound", "/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger"}
)

// umask is containers.conf's default.
const umask = uint32(0o022)

const defaultPath = "/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"

// Generate builds the OCI spec of a container from its image's config,
// the caller's flags, the image's user database and host facts. It is a
// pure function: no file, no process state.
func Generate(img imagehelper.ImageConfig, o Options, users UserDB, h Host) (*specs.Spec, *Extra, error) {
	g := newGen(img, o, users, h)
	return g.run([]genStep{
		{"network", g.network},
		{"args", g.args},
		{"workdir", g.workdir},
		{"user namespace", g.userns},
		{"user", g.user},
		{"env", g.env},
		{"capabilities", g.capabilities},
		{"security options", g.security},
		{"mounts", g.mounts},
		{"id maps", g.idMaps},
		{"resources", g.resources},
		{"metadata", g.metadata},
	})
}

// GenerateStart is the part of Generate that the flags and the host
// decide alone, before the image's config and user database are known:
// the namespaces, the id maps, the cgroup limits, process.terminal and
// the capabilities' bounding set, with the Extra fields of the network and
// of seccomp. `sandy run IMAGE`
// starts the container's init on it while the image helper makes the
// storage container (lifecycle.PendingBundle); Generate's spec must
// agree with it (spec.CheckStartAgrees), which the same steps ensure
// (TestGenerateStartAgrees). Its process, root and mounts are
// placeholders.
func GenerateStart(o Options, h Host) (*specs.Spec, *Extra, error) {
	g := newGen(imagehelper.ImageConfig{}, o, UserDB{}, h)
	return g.run([]genStep{
		{"network", g.network},
		{"user namespace", g.userns},
		// The bounding set is the flags' and the host's: the default
		// seccomp profile made from it (lifecycle: DefaultProfileFor) is
		// then the final spec's, and the host compiles it while the init
		// starts instead of after the bundle is written. The other sets
		// are placeholders here: they follow the image's user.
		{"capabilities", g.capabilities},
		{"security options", g.security},
		{"id maps", g.idMaps},
		{"resources", g.resources},
	})
}

func newGen(img imagehelper.ImageConfig, o Options, users UserDB, h Host) *gen {
	g := &gen{img: img, o: o, users: users, h: h, x: &Extra{}}
	mask := umask
	g.s = &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: h.Rootfs, Readonly: o.ReadOnly},
		Process: &specs.Process{Terminal: o.Terminal, Rlimits: slices.Clone(h.Rlimits),
			User: specs.User{Umask: &mask}},
		Linux:       &specs.Linux{},
		Annotations: map[string]string{},
	}
	return g
}

// genStep is one named step of Generate.
type genStep struct {
	name string
	fn   func() error
}

func (g *gen) run(steps []genStep) (*specs.Spec, *Extra, error) {
	for _, step := range steps {
		if err := step.fn(); err != nil {
			if errors.Is(err, ErrNoCommand) {
				return nil, nil, err
			}
			return nil, nil, fmt.Errorf("generating the spec: %s: %w", step.name, err)
		}
	}
	return g.s, g.x, nil
}

// gen is one Generate call's state.
type gen struct {
	img   imagehelper.ImageConfig
	o     Options
	users UserDB
	h     Host
	s     *specs.Spec
	x     *Extra

	eu       ExecUser
	userSpec string // the -u or image User that applies
	keepID   bool
	ms       mountSet
	// addedHome is the home of the passwd entry added for the caller
	// under keep-id.
	addedHome string
}

// network: namespaces, hostname, DNS and hosts data, the ping sysctl.
func (g *gen) network() error {
	mode, opts, _ := strings.Cut(g.o.Network, ":")
	switch mode {
	case "", "slirp4netns", "usernet":
		g.x.Network = mode
		if mode == "" {
			// The runtime's default (usernet, else slirp4netns), named
			// for inspect; "" where neither can run: the runtime then
			// says so and gives loopback only.
			if d, err := defaultNetwork(); err == nil {
				g.x.Network = d
			}
		}
		if opts != "" {
			g.x.NetworkOptions = strings.Split(opts, ",")
		}
	case "none", "host":
		if opts != "" {
			return fmt.Errorf("--network %s takes no options", g.o.Network)
		}
		g.x.Network = mode
	default:
		return fmt.Errorf("--network %q: unsupported (sandy has slirp4netns, usernet, none and host)", g.o.Network)
	}
	g.s.Linux.Namespaces = []specs.LinuxNamespace{{Type: specs.PIDNamespace}}
	if g.x.Network != "host" {
		g.s.Linux.Namespaces = append(g.s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.NetworkNamespace})
		// containers.conf default_sysctls: ping without CAP_NET_RAW.
		g.s.Linux.Sysctl = map[string]string{"net.ipv4.ping_group_range": "0 0"}
	}
	g.s.Linux.Namespaces = append(g.s.Linux.Namespaces,
		specs.LinuxNamespace{Type: specs.IPCNamespace}, specs.LinuxNamespace{Type: specs.UTSNamespace},
		specs.LinuxNamespace{Type: specs.MountNamespace}, specs.LinuxNamespace{Type: specs.CgroupNamespace})
	if !g.rootful() {
		g.s.Linux.Namespaces = append(g.s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
	}

	g.x.Hostname = g.o.Hostname
	if g.x.Hostname == "" {
		g.x.Hostname = g.h.ContainerID[:min(12, len(g.h.ContainerID))]
	}
	g.s.Hostname = g.x.Hostname
	for _, d := range g.o.DNS {
		if d != "none" && !validIP(d) {
			return fmt.Errorf("--dns %q: not an IP address", d)
		}
	}
	g.x.DNS, g.x.DNSSearch, g.x.DNSOptions = slices.Clone(g.o.DNS), slices.Clone(g.o.DNSSearch), slices.Clone(g.o.DNSOption)
	for _, a := range g.o.AddHost {
		e, err := parseAddHost(a)
		if err != nil {
			return err
		}
		g.x.AddHosts = append(g.x.AddHosts, e)
	}
	return nil
}

func validIP(s string) bool { return net.ParseIP(s) != nil }

// args: ENTRYPOINT + CMD as podman's makeCommand, then --init.
func (g *gen) args() error {
	var ep []string
	epGiven := g.o.Entrypoint != nil
	if epGiven {
		if err := json.Unmarshal([]byte(*g.o.Entrypoint), &ep); err != nil {
			ep = []string{*g.o.Entrypoint}
		}
	} else {
		ep = g.img.Entrypoint
	}
	var args []string
	if len(ep) != 1 || ep[0] != "" {
		args = append(args, ep...)
	}
	cmd := g.o.Command
	// The image's CMD goes with the image's ENTRYPOINT only: --entrypoint
	// (even "") drops it.
	if len(cmd) == 0 && !(epGiven && len(ep) > 0) {
		cmd = g.img.Cmd
	}
	args = append(args, cmd...)
	if len(args) == 0 {
		return ErrNoCommand
	}
	if g.o.Init {
		if g.h.InitPath == "" {
			return errors.New("--init: no init binary to mount (Host.InitPath is empty)")
		}
		args = append([]string{InitDest, "--"}, args...)
	}
	g.s.Process.Args = args
	return nil
}

// workdir: -w, else the image's, else "/".
func (g *gen) workdir() error {
	wd := g.o.Workdir
	if wd == "" {
		wd = g.img.WorkingDir
	}
	if wd == "" {
		wd = "/"
	}
	if !path.IsAbs(wd) {
		return fmt.Errorf("workdir %q: must be an absolute path", wd)
	}
	g.s.Process.Cwd = path.Clean(wd)
	return nil
}

// userns: --userns, the default map or keep-id.
func (g *gen) userns() error {
	switch g.o.Userns {
	case "":
	case "keep-id":
		g.keepID = true
	default:
		return fmt.Errorf("--userns %q: unsupported (sandy has the default map and keep-id)", g.o.Userns)
	}
	return nil
}

// user: -u or the image's User through the image's passwd and group, or
// the caller's ids under keep-id; the primary group and the groups that
// list the user become additional gids (podman's generateSpec).
func (g *gen) user() error {
	g.userSpec = g.o.User
	if g.userSpec == "" {
		g.userSpec = g.img.User
	}
	if g.userSpec == "" && g.keepID {
		g.userSpec = fmt.Sprintf("%d:%d", g.h.UID, g.h.GID)
	}
	eu, err := g.users.Resolve(g.userSpec)
	if err != nil {
		return fmt.Errorf("user %q: %w", g.userSpec, err)
	}
	g.eu = eu
	u := &g.s.Process.User
	u.UID, u.GID = eu.UID, eu.GID
	if g.userSpec != "" {
		u.AdditionalGids = []uint32{eu.GID}
	}
	if !strings.Contains(g.userSpec, ":") {
		for _, sg := range eu.Sgids {
			if !slices.Contains(u.AdditionalGids, sg) {
				u.AdditionalGids = append(u.AdditionalGids, sg)
			}
		}
	}
	return nil
}

// ProxyEnv are the proxy variables run passes from the caller's
// environment unless --http-proxy=false (podman's list).
var ProxyEnv = []string{"http_proxy", "https_proxy", "ftp_proxy", "no_proxy", "HTTP_PROXY", "HTTPS_PROXY", "FTP_PROXY", "NO_PROXY"}

// env, podman's order, each over the one before: the defaults, the
// caller's (--env-host: all of it; else its proxy variables), the
// image's, the env files, -e; then HOSTNAME and HOME when unset.
func (g *gen) env() error {
	var e envList
	e.set("PATH", defaultPath)
	e.set("TERM", "xterm")
	e.set("container", "podman")
	switch {
	case g.o.EnvHost:
		for _, k := range slices.Sorted(maps.Keys(g.h.Env)) {
			e.set(k, g.h.Env[k])
		}
	case !g.o.NoHTTPProxy:
		for _, k := range ProxyEnv {
			if v, ok := g.h.Env[k]; ok {
				e.set(k, v)
			}
		}
	}
	for _, kv := range g.img.Env {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return fmt.Errorf("image env %q: no name", kv)
		}
		e.set(k, v)
	}
	for _, f := range g.o.EnvFiles {
		if err := parseEnvFile(&e, f.Name, f.Content, g.h.Env); err != nil {
			return err
		}
	}
	for _, l := range g.o.Env {
		if err := parseEnvLine(&e, l, g.h.Env); err != nil {
			return fmt.Errorf("-e: %w", err)
		}
	}
	g.s.Process.Env = e.kv
	return nil
}

// home sets HOME and HOSTNAME when the flags and the image left them
// unset, once the mounts are known: HOME is the home of the passwd entry
// added for the caller under keep-id, else the user's entry's, else the
// working directory (the home of the entry added for a numeric user).
func (g *gen) home() {
	var e envList
	e.kv = g.s.Process.Env
	switch {
	case e.has("HOME"):
	case g.addedHome != "":
		e.set("HOME", g.addedHome)
	case g.eu.Home != "":
		e.set("HOME", g.eu.Home)
	default:
		e.set("HOME", g.s.Process.Cwd)
	}
	if !e.has("HOSTNAME") {
		e.set("HOSTNAME", g.x.Hostname)
	}
	g.s.Process.Env = e.kv
}

// isRoot: podman gives the full sets to root only ("", "root", "0"; "" is
// not root under keep-id).
func (g *gen) isRoot() bool {
	u, _, _ := strings.Cut(g.userSpec, ":")
	return u == "" || u == "root" || u == "0"
}

// capabilities: podman's defaults with --cap-add/--cap-drop, or all with
// --privileged; a non-root user gets only the added ones in its effective,
// permitted, inheritable and ambient sets (the bounding set is the same).
func (g *gen) capabilities() error {
	all := g.h.AllCaps
	if len(all) == 0 {
		all = knownCaps()
	}
	var caps []string
	if g.o.Privileged {
		caps = slices.Clone(all)
		slices.Sort(caps)
	} else {
		var err error
		if caps, err = mergeCaps(defaultCaps, g.o.CapAdd, g.o.CapDrop, all); err != nil {
			return err
		}
	}
	c := &specs.LinuxCapabilities{Bounding: caps}
	if g.isRoot() {
		c.Effective, c.Permitted = slices.Clone(caps), slices.Clone(caps)
	} else {
		added, err := mergeCaps(nil, g.o.CapAdd, nil, all)
		if err != nil {
			return err
		}
		var user []string
		for _, a := range added {
			if slices.Contains(caps, a) {
				user = append(user, a)
			}
		}
		c.Effective, c.Permitted, c.Inheritable, c.Ambient = user, slices.Clone(user), slices.Clone(user), slices.Clone(user)
	}
	g.s.Process.Capabilities = c
	return nil
}

// security: --security-opt, masked and read-only paths.
func (g *gen) security() error {
	g.x.Seccomp = "default"
	for _, so := range g.o.SecurityOpt {
		k, v, hasV := strings.Cut(so, "=")
		if !hasV {
			k, v, hasV = strings.Cut(so, ":") // docker's old form
		}
		switch k {
		case "no-new-privileges":
			b := true
			if hasV {
				var err error
				if b, err = strconv.ParseBool(v); err != nil {
					return fmt.Errorf("--security-opt %q: want true or false", so)
				}
			}
			g.s.Process.NoNewPrivileges = b
		case "seccomp":
			switch {
			case v == "unconfined":
				g.x.Seccomp = "unconfined"
			case path.IsAbs(v):
				g.x.Seccomp, g.x.SeccompFile = "file", v
			case v != "" && g.h.Cwd != "":
				g.x.Seccomp, g.x.SeccompFile = "file", path.Join(g.h.Cwd, v)
			default:
				return fmt.Errorf("--security-opt %q: want seccomp=unconfined or seccomp=PROFILE.json", so)
			}
		case "label", "apparmor", "mask", "unmask":
			return fmt.Errorf("--security-opt %q: not supported by sandy (no SELinux or AppArmor handling)", so)
		default:
			return fmt.Errorf("--security-opt %q: unknown option (sandy has no-new-privileges, seccomp=unconfined, seccomp=FILE)", so)
		}
	}
	if g.o.Privileged {
		if g.x.Seccomp == "default" {
			g.x.Seccomp = "unconfined"
		}
		return nil
	}
	g.s.Linux.MaskedPaths = slices.Clone(maskedPaths)
	g.s.Linux.ReadonlyPaths = slices.Clone(readonlyPaths)
	if g.x.Network == "host" {
		// /sys is the host's, bound: hide its kernel knobs.
		g.s.Linux.MaskedPaths = append(g.s.Linux.MaskedPaths, "/sys/kernel")
	}
	return nil
}

// gid5Mapped: devpts gets gid=5 (tty) only when gid 5 exists in the
// container (podman drops the option otherwise).
// rootful: root runs containers in the host's user namespace, as rootful
// podman does by default: root's image store keeps overlay's metadata in
// trusted.* xattrs, which only the initial user namespace may use.
func (g *gen) rootful() bool { return g.h.UID == 0 }

func (g *gen) gid5Mapped() bool {
	if g.rootful() {
		return true
	}
	if len(g.s.Linux.GIDMappings) > 0 {
		return idmap.Mapped(g.s.Linux.GIDMappings, 5)
	}
	var n uint64
	for _, r := range g.h.SubGIDs {
		n += uint64(r.Count)
	}
	return n >= 5
}

// defaultMounts are runtime-tools' generate.New mounts with podman's
// rootless changes.
func (g *gen) defaultMounts() []specs.Mount {
	ro := "ro"
	if g.o.Privileged {
		ro = "rw"
	}
	devpts := []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}
	if !g.gid5Mapped() {
		devpts = []string{"rprivate", "nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620"}
	}
	ms := []specs.Mount{
		{Destination: "/proc", Type: "proc", Source: "proc", Options: []string{"nosuid", "noexec", "nodev"}},
		{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "noexec", "strictatime", "mode=755", "size=65536k"}},
		{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: devpts},
		{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
	}
	if g.x.Network == "host" {
		// A new sysfs needs a network namespace of one's own.
		ms = append(ms, specs.Mount{Destination: "/sys", Type: "bind", Source: "/sys", Options: []string{"rprivate", "nosuid", "noexec", "nodev", ro, "rbind"}})
	} else {
		sysOpts := []string{"nosuid", "noexec", "nodev", "ro"}
		if g.o.Privileged {
			sysOpts = []string{"rprivate", "nosuid", "noexec", "nodev", "rw"}
		}
		ms = append(ms,
			specs.Mount{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: sysOpts},
			specs.Mount{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"rprivate", "nosuid", "noexec", "nodev", "relatime", ro}})
	}
	return append(ms, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}})
}

// mounts: the defaults, superseded by -v, --mount, --tmpfs, the read-only
// tmpfs and the init binary; sorted so no mount covers a later one.
func (g *gen) mounts() error {
	for _, m := range g.o.Mounts {
		if err := parseMount(m, g.h.Cwd, &g.ms); err != nil {
			return err
		}
	}
	for _, v := range g.o.Volumes {
		if err := parseVolume(v, g.h.Cwd, &g.ms); err != nil {
			return err
		}
	}
	for _, t := range g.o.Tmpfs {
		if err := parseTmpfs(t, &g.ms); err != nil {
			return err
		}
	}
	if err := g.imageVolumes(); err != nil {
		return err
	}
	if g.o.ReadOnly && !g.o.NoReadOnlyTmpfs {
		for _, d := range []string{"/tmp", "/var/tmp", "/run"} {
			if !g.ms.taken(d) {
				g.ms.mounts = append(g.ms.mounts, specs.Mount{Destination: d, Type: "tmpfs", Source: "tmpfs", Options: []string{"rw", "rprivate", "nosuid", "nodev", "tmpcopyup"}})
			}
		}
	}
	if g.o.Init {
		if err := g.ms.addMount("--init", specs.Mount{Destination: InitDest, Type: "bind", Source: g.h.InitPath, Options: []string{"bind", "ro", "rprivate"}}); err != nil {
			return err
		}
	}
	user := g.ms.mounts
	dests := map[string]bool{}
	for _, m := range user {
		dests[m.Destination] = true
	}
	for _, v := range g.ms.volumes {
		dests[v.Dest] = true
	}
	all := slices.Clone(user)
	for _, m := range g.defaultMounts() {
		if dests[m.Destination] || (dests["/dev"] && strings.HasPrefix(m.Destination, "/dev/")) {
			continue
		}
		all = append(all, m)
	}
	sortMounts(all)
	g.s.Mounts = all
	g.x.Volumes = g.ms.volumes
	g.x.Chown = g.ms.chown
	return nil
}

// imageVolumes gives each of the image's VOLUME paths that no -v,
// --mount or --tmpfs took an anonymous volume (podman's default,
// --image-volume=bind), a tmpfs, or nothing. The paths are the image's
// and untrusted: cleaned as absolute paths here, resolved inside the
// root by the init like every mount destination.
func (g *gen) imageVolumes() error {
	mode := g.o.ImageVolume
	switch mode {
	case "", "bind", "anonymous":
	case "tmpfs", "ignore":
	default:
		return fmt.Errorf("--image-volume %q: want bind, tmpfs or ignore", mode)
	}
	if mode == "ignore" {
		return nil
	}
	var dsts []string
	for v := range g.img.Volumes {
		dsts = append(dsts, path.Clean("/"+v))
	}
	slices.Sort(dsts)
	for _, dst := range slices.Compact(dsts) {
		if dst == "/" || g.ms.taken(dst) {
			continue
		}
		var err error
		if mode == "tmpfs" {
			err = g.ms.addMount("image VOLUME "+dst, specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: []string{"rw", "rprivate", "nosuid", "nodev", "tmpcopyup"}})
		} else {
			err = g.ms.addVolume("image VOLUME "+dst, NamedVolume{Dest: dst})
		}
		if err != nil {
			return err
		}
	}
	return nil
}

// sortMounts sorts as podman's sortMounts: fewer path components first,
// stable, so that no mount covers a later one.
func sortMounts(ms []specs.Mount) {
	slices.SortStableFunc(ms, func(a, b specs.Mount) int { return depth(a.Destination) - depth(b.Destination) })
}

func depth(p string) int {
	if p == "/" {
		return 0
	}
	return strings.Count(path.Clean(p), "/")
}

// resources: --memory, --cpus, --pids-limit.
func (g *gen) resources() error {
	r := &specs.LinuxResources{}
	set := false
	if g.o.Memory != "" {
		n, err := parseMemory(g.o.Memory)
		if err != nil {
			return err
		}
		r.Memory = &specs.LinuxMemory{Limit: &n}
		set = true
	}
	if g.o.CPUs != "" {
		q, err := parseCPUs(g.o.CPUs)
		if err != nil {
			return err
		}
		p := uint64(cpuPeriod)
		r.CPU = &specs.LinuxCPU{Quota: &q, Period: &p}
		set = true
	}
	if g.o.PidsLimit != nil {
		switch n := *g.o.PidsLimit; {
		case n > 0:
			r.Pids = &specs.LinuxPids{Limit: &n}
			set = true
		case n == 0 || n == -1: // unlimited, as podman
		default:
			return fmt.Errorf("--pids-limit %d: want a positive number, or 0 or -1 for no limit", n)
		}
	}
	if set {
		g.s.Linux.Resources = r
	}
	return nil
}

// metadata: stop signal, exposed ports, labels, annotations, the passwd
// and group entries and HOME.
func (g *gen) metadata() error {
	sig, err := signalName(g.img.StopSignal)
	if err != nil {
		return fmt.Errorf("image StopSignal: %w", err)
	}
	g.x.StopSignal = sig
	g.x.ExposedPorts = slices.Sorted(maps.Keys(g.img.ExposedPorts))
	g.x.Labels = maps.Clone(g.img.Labels)
	if g.x.Labels == nil {
		g.x.Labels = map[string]string{}
	}
	for _, l := range g.o.Labels {
		k, v, _ := strings.Cut(l, "=")
		if k == "" {
			return fmt.Errorf("--label %q: no name", l)
		}
		g.x.Labels[k] = v
	}
	for _, a := range g.o.Annotations {
		k, v, ok := strings.Cut(a, "=")
		if k == "" || !ok {
			return fmt.Errorf("--annotation %q: want KEY=VALUE", a)
		}
		g.s.Annotations[k] = v
	}
	g.passwdEntries()
	g.home()
	return nil
}

// signalName normalizes a signal name or number ("" is SIGTERM).
func signalName(s string) (string, error) {
	if s == "" {
		return "SIGTERM", nil
	}
	if n, err := strconv.Atoi(s); err == nil {
		if name := unix.SignalName(unixSignal(n)); name != "" {
			return name, nil
		}
		if n >= 34 && n <= 64 { // real-time signals have no name in x/sys
			return strconv.Itoa(n), nil
		}
		return "", fmt.Errorf("invalid signal %q", s)
	}
	name := strings.ToUpper(s)
	if !strings.HasPrefix(name, "SIG") {
		name = "SIG" + name
	}
	if unix.SignalNum(name) == 0 {
		return "", fmt.Errorf("invalid signal %q", s)
	}
	return name, nil
}
