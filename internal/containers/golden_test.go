package containers

import (
	"encoding/json"
	"os"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/imagehelper"
)

// The testdata/podman-4.3.1-*.json files are config.json files that
// podman 4.3.1 (Debian 12, rootless, crun, cgroup v1 host) wrote for
// `podman create localhost/busybox sh` and `podman create --userns=keep-id
// -v SRC:/src -w /src localhost/busybox sh` as a user with uid 1001 and
// the subordinate range 100000:65536, then `podman init`; the volatile
// paths are replaced (/ROOTFS, /USERDATA/..., /SRC, /NETNS) and the
// seccomp profile is left out. testdata/busybox-passwd and -group are that
// image's files.

// podmanSpec reads a podman reference spec.
func podmanSpec(t *testing.T, name string) *specs.Spec {
	t.Helper()
	b, err := os.ReadFile("testdata/" + name)
	if err != nil {
		t.Fatal(err)
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		t.Fatal(err)
	}
	return &s
}

func busyboxDB(t *testing.T) UserDB {
	t.Helper()
	p, err := os.ReadFile("testdata/busybox-passwd")
	if err != nil {
		t.Fatal(err)
	}
	g, err := os.ReadFile("testdata/busybox-group")
	if err != nil {
		t.Fatal(err)
	}
	return UserDB{Users: ParsePasswd(string(p)), Groups: ParseGroup(string(g))}
}

// podmanRlimits are the limits podman gave (the test user's hard limits).
var podmanRlimits = []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 20000, Soft: 20000}, {Type: "RLIMIT_NPROC", Hard: 32768, Soft: 32768}}

// applyDifferences turns podman's spec into what sandy deliberately
// generates instead (each step is one difference listed in doc.go).
func applyDifferences(p *specs.Spec) {
	// The files podman binds from its userdata directory are the
	// caller's to write and bind; /dev/shm is a tmpfs of the same size.
	var ms []specs.Mount
	for _, m := range p.Mounts {
		switch {
		case m.Destination == "/dev/shm":
			ms = append(ms, specs.Mount{Destination: "/dev/shm", Type: "tmpfs", Source: "shm", Options: []string{"nosuid", "noexec", "nodev", "mode=1777", "size=65536k"}})
		case strings.HasPrefix(m.Source, "/USERDATA/"):
		default:
			ms = append(ms, m)
		}
	}
	p.Mounts = ms
	// Podman's bookkeeping annotations are the container record's.
	p.Annotations = nil
	// An empty resources object is no resources.
	p.Linux.Resources = nil
	// Podman pre-creates the network namespace; sandy's runtime creates
	// it, and a private cgroup namespace and the user namespace.
	var ns []specs.LinuxNamespace
	hasUser := false
	for _, n := range p.Linux.Namespaces {
		hasUser = hasUser || n.Type == specs.UserNamespace
		if n.Type != specs.UserNamespace {
			ns = append(ns, specs.LinuxNamespace{Type: n.Type})
		}
	}
	p.Linux.Namespaces = append(ns, specs.LinuxNamespace{Type: specs.CgroupNamespace}, specs.LinuxNamespace{Type: specs.UserNamespace})
	p.Version = specs.Version
}

// compareSpecs reports each differing top-level field, as JSON.
func compareSpecs(t *testing.T, got, want *specs.Spec) {
	t.Helper()
	field := func(name string, g, w any) {
		if !reflect.DeepEqual(g, w) {
			gj, _ := json.MarshalIndent(g, "", " ")
			wj, _ := json.MarshalIndent(w, "", " ")
			t.Errorf("%s differs:\n got: %s\nwant: %s", name, gj, wj)
		}
	}
	field("process", got.Process, want.Process)
	field("root", got.Root, want.Root)
	field("hostname", got.Hostname, want.Hostname)
	field("mounts", got.Mounts, want.Mounts)
	field("annotations", len(got.Annotations), len(want.Annotations))
	field("linux", got.Linux, want.Linux)
}

// TestGoldenBusybox: the default spec for a busybox image and no flags is
// podman 4.3.1's, field by field, but for the differences of doc.go.
func TestGoldenBusybox(t *testing.T) {
	want := podmanSpec(t, "podman-4.3.1-busybox.json")
	applyDifferences(want)
	got, x, err := Generate(imagehelper.ImageConfig{}, Options{Command: []string{"sh"}}, busyboxDB(t), Host{
		ContainerID: "a51199d6327e3ab5afa88ed3933752635678a9ed834851989ac1fdb945faf219",
		Rootfs:      "/ROOTFS",
		UID:         1001, GID: 1001,
		SubUIDs: []idmap.SubIDRange{{Start: 100000, Count: 65536}},
		SubGIDs: []idmap.SubIDRange{{Start: 100000, Count: 65536}},
		Rlimits: podmanRlimits,
	})
	if err != nil {
		t.Fatal(err)
	}
	compareSpecs(t, got, want)
	if x.Seccomp != "default" || x.StopSignal != "SIGTERM" || x.Network != "usernet" || x.Hostname != "a51199d6327e" {
		t.Errorf("extra = %+v", x)
	}
	if x.PasswdEntry != "" || x.GroupEntry != "" || len(x.Volumes) != 0 {
		t.Errorf("extra adds entries or volumes: %+v", x)
	}
}

// TestGoldenKeepID: keep-id with a bind mount and -w. Podman's maps are
// relative to its rootless namespace (0 → the caller, k → the k-th
// subordinate id); sandy writes them composed with it, from the host.
func TestGoldenKeepID(t *testing.T) {
	want := podmanSpec(t, "podman-4.3.1-keepid.json")
	applyDifferences(want)
	sub := []idmap.SubIDRange{{Start: 100000, Count: 65536}}
	compose := func(m []specs.LinuxIDMapping) []specs.LinuxIDMapping {
		var out []specs.LinuxIDMapping
		for _, l := range m {
			if l.HostID == 0 {
				out = append(out, specs.LinuxIDMapping{ContainerID: l.ContainerID, HostID: 1001, Size: l.Size})
				continue
			}
			out = append(out, specs.LinuxIDMapping{ContainerID: l.ContainerID, HostID: sub[0].Start + l.HostID - 1, Size: l.Size})
		}
		return out
	}
	want.Linux.UIDMappings = compose(want.Linux.UIDMappings)
	want.Linux.GIDMappings = compose(want.Linux.GIDMappings)
	got, x, err := Generate(imagehelper.ImageConfig{}, Options{Command: []string{"sh"}, Userns: "keep-id", Volumes: []string{"/SRC:/src"}, Workdir: "/src"}, busyboxDB(t), Host{
		ContainerID: "8a4ea6034375" + strings.Repeat("0", 52),
		Rootfs:      "/ROOTFS",
		UID:         1001, GID: 1001, UserName: "sandytest", GroupName: "sandytest", Home: "/home/sandytest",
		SubUIDs: sub, SubGIDs: sub,
		Rlimits: podmanRlimits,
	})
	if err != nil {
		t.Fatal(err)
	}
	compareSpecs(t, got, want)
	if x.PasswdEntry != "sandytest:*:1001:1001::/src:/bin/sh\n" || x.GroupEntry != "sandytest:x:1001:sandytest\n" {
		t.Errorf("passwd %q group %q", x.PasswdEntry, x.GroupEntry)
	}
	if !slices.Equal(got.Process.Capabilities.Effective, nil) {
		t.Errorf("a non-root user got effective caps %v", got.Process.Capabilities.Effective)
	}
}
