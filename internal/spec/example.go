package spec

import (
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// DefaultCaps are the capabilities runc's example config grants.
var DefaultCaps = []string{"CAP_AUDIT_WRITE", "CAP_KILL", "CAP_NET_BIND_SERVICE"}

// PodmanCaps are podman 4's default capabilities (containers.conf
// default_capabilities), sorted: what a distribution's package manager
// needs as root in the container (dpkg chowns what it unpacks, apt drops
// to _apt with setgroups/setgid/setuid), and what a container from an
// image gets.
var PodmanCaps = []string{
	"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_BIND_SERVICE",
	"CAP_SETFCAP", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT",
}

// ExampleOptions are `sandy spec`'s flags.
type ExampleOptions struct {
	Rootless bool
	// Writable sets root.readonly to false (--writable).
	Writable bool
	// Caps is "runc" ("" too: runc's three capabilities) or "podman"
	// (PodmanCaps) (--caps).
	Caps string
}

// DefaultMaskedPaths and DefaultReadonlyPaths are runc's example lists.
var (
	DefaultMaskedPaths = []string{
		"/proc/acpi", "/proc/asound", "/proc/kcore", "/proc/keys", "/proc/latency_stats",
		"/proc/timer_list", "/proc/timer_stats", "/proc/sched_debug", "/proc/scsi",
		"/sys/firmware", "/sys/devices/virtual/powercap",
	}
	DefaultReadonlyPaths = []string{
		"/proc/bus", "/proc/fs", "/proc/irq", "/proc/sys", "/proc/sysrq-trigger",
	}
)

// Example returns the config.json that `sandy spec` writes: runc's example
// (sh in a busybox-like rootfs with a terminal), and with rootless set, a
// user namespace whose mappings sandy fills in at run time from
// /etc/subuid and /etc/subgid (no uid/gid mappings are written, so the
// same file works for any user), no "gid=5" on devpts, and no
// linux.resources.
func Example(rootless bool) *specs.Spec {
	s, _ := ExampleWith(ExampleOptions{Rootless: rootless})
	return s
}

// ExampleWith is Example with `sandy spec`'s other flags: --writable
// (root.readonly false) and --caps podman (PodmanCaps in the bounding,
// effective and permitted sets, as podman gives them to root).
func ExampleWith(o ExampleOptions) (*specs.Spec, error) {
	rootless := o.Rootless
	var caps []string
	switch o.Caps {
	case "", "runc":
		caps = append(caps, DefaultCaps...)
	case "podman":
		caps = append(caps, PodmanCaps...)
	default:
		return nil, fmt.Errorf("--caps %q: want runc or podman", o.Caps)
	}
	s := &specs.Spec{
		Version: specs.Version,
		Root:    &specs.Root{Path: "rootfs", Readonly: !o.Writable},
		Process: &specs.Process{
			Terminal: true,
			User:     specs.User{UID: 0, GID: 0},
			Args:     []string{"sh"},
			Env:      []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "TERM=xterm"},
			Cwd:      "/",
			Capabilities: &specs.LinuxCapabilities{
				Bounding: caps, Effective: caps, Permitted: caps,
			},
			Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1024, Soft: 1024}},
			NoNewPrivileges: true,
		},
		Hostname: "sandy",
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs", Options: []string{"nosuid", "strictatime", "mode=755", "size=65536k"}},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts", Options: []string{"nosuid", "noexec", "newinstance", "ptmxmode=0666", "mode=0620", "gid=5"}},
			{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}},
			{Destination: "/dev/mqueue", Type: "mqueue", Source: "mqueue", Options: []string{"nosuid", "noexec", "nodev"}},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs", Options: []string{"nosuid", "noexec", "nodev", "ro"}},
			{Destination: "/sys/fs/cgroup", Type: "cgroup", Source: "cgroup", Options: []string{"nosuid", "noexec", "nodev", "relatime", "ro"}},
		},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{
				{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.IPCNamespace},
				{Type: specs.UTSNamespace}, {Type: specs.MountNamespace}, {Type: specs.CgroupNamespace},
			},
			MaskedPaths:   append([]string(nil), DefaultMaskedPaths...),
			ReadonlyPaths: append([]string(nil), DefaultReadonlyPaths...),
		},
	}
	if rootless {
		s.Linux.Namespaces = append(s.Linux.Namespaces, specs.LinuxNamespace{Type: specs.UserNamespace})
		for i := range s.Mounts {
			if s.Mounts[i].Type == "devpts" {
				var opts []string
				for _, o := range s.Mounts[i].Options {
					if o != "gid=5" {
						opts = append(opts, o)
					}
				}
				s.Mounts[i].Options = opts
			}
		}
	} else {
		s.Linux.Resources = &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	}
	return s, nil
}
