//go:build linux

package initproc

import (
	"strings"
	"testing"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/spec"
	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/userns"
)

// rawInput is sandy's rootless example over a busybox rootfs.
func rawInput(t *testing.T, edit func(s *specs.Spec)) RawInput {
	t.Helper()
	dir := t.TempDir()
	rootfs := testutil.MakeRootfs(t, dir)
	s := spec.Example(true)
	s.Process.Args = []string{"true"}
	s.Process.Terminal = false
	if edit != nil {
		edit(s)
	}
	return RawInput{Spec: s, Bundle: dir, Rootfs: rootfs, SetgroupsDenied: true,
		GIDMapped: func(gid uint32) bool { return gid == 0 }}
}

// mustPlan is RawInit(in)'s plan, which the test needs.
func mustPlan(t *testing.T, in RawInput) *userns.ForkPlan {
	t.Helper()
	plan, why, _, err := RawInit(in)
	if err != nil || plan == nil {
		t.Fatalf("RawInit: %v (why %q)", err, why)
	}
	return plan
}

// opIndex is the index of each op of plan's program by its What, the
// first where several say the same.
func opIndex(plan *userns.ForkPlan) map[string]int {
	at := map[string]int{}
	for i, op := range plan.Program {
		if _, ok := at[op.What]; !ok {
			at[op.What] = i
		}
	}
	return at
}

func TestRawInitPlansExample(t *testing.T) {
	in := rawInput(t, nil)
	plan, why, warnings, err := RawInit(in)
	if err != nil || plan == nil {
		t.Fatalf("RawInit: %v (why %q)", err, why)
	}
	if len(warnings) != 0 {
		t.Errorf("warnings %q", warnings)
	}
	if plan.Cloneflags&unix.CLONE_NEWUSER == 0 || plan.Cloneflags&unix.CLONE_NEWNS == 0 || plan.Cloneflags&unix.CLONE_NEWPID == 0 {
		t.Errorf("clone flags %#x", plan.Cloneflags)
	}
	var whats []string
	for _, op := range plan.Program {
		whats = append(whats, op.What)
	}
	all := strings.Join(whats, "\n")
	for _, want := range []string{
		"making / rslave", "binding the rootfs on " + in.Rootfs,
		"mounting proc on /proc", "mounting tmpfs on /dev", "making /dev/pts", "mounting devpts on /dev/pts",
		"mounting sysfs on /sys", "mounting cgroup2 on /sys/fs/cgroup", "binding the host's /dev/null",
		"linking /dev/ptmx", "masking /proc/kcore", "making /proc/sys read-only", "setting the hostname",
		"pivot_root", "detaching the old root", "making / read-only",
	} {
		if !strings.Contains(all, want) {
			t.Errorf("no op %q in the program:\n%s", want, all)
		}
	}
	// The Go init drops devpts's gid=5 where it is not mapped.
	if strings.Contains(all, "gid=") {
		t.Errorf("devpts keeps an unmapped gid:\n%s", all)
	}
	if err := userns.CheckProgram(plan.Program); err != nil {
		t.Errorf("the program: %v", err)
	}
}

// A bind's recursive options and propagation (-v's rprivate) are
// finishMount's: mount_setattr over the bind, then the propagation.
func TestRawInitBindOptions(t *testing.T) {
	in := rawInput(t, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "bind", Source: "/tmp", Options: []string{"rbind", "rro", "rprivate"}})
	})
	plan := mustPlan(t, in)
	at := opIndex(plan)
	bind, attrs, prop := at["binding /tmp on /tmp"], at["setting /tmp's recursive options"], at["setting /tmp's propagation"]
	if bind == 0 || attrs == 0 || prop == 0 || !(bind < attrs && attrs < prop) {
		t.Errorf("bind %d, recursive options %d, propagation %d: want all three, in that order", bind, attrs, prop)
	}
}

func TestRawInitRefuses(t *testing.T) {
	for _, tc := range []struct {
		name string
		edit func(s *specs.Spec)
		why  string
	}{
		{"terminal", func(s *specs.Spec) { s.Process.Terminal = true }, "process.terminal"},
		{"hooks", func(s *specs.Spec) { s.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: "/bin/true"}}} }, "hooks"},
		{"writable root without a layer directory", func(s *specs.Spec) { s.Root.Readonly = false }, "a writable root without a layer directory"},
		{"a sysctl name with a slash", func(s *specs.Spec) { s.Linux.Sysctl = map[string]string{"net/ipv4": "1"} }, "the sysctl name"},
		{"devices", func(s *specs.Spec) {
			s.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/fuse", Type: "c", Major: 10, Minor: 229}}
		}, "linux.devices"},
		{"joined namespace", func(s *specs.Spec) {
			for i := range s.Linux.Namespaces {
				if s.Linux.Namespaces[i].Type == specs.NetworkNamespace {
					s.Linux.Namespaces[i].Path = "/proc/1/ns/net"
				}
			}
		}, "a joined network namespace"},
		{"missing mountpoint", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data", Type: "tmpfs", Source: "tmpfs"})
		}, "mountpoint /data"},
		{"missing cwd", func(s *specs.Spec) { s.Process.Cwd = "/work" }, "mountpoint /work"},
		{"a bind of a file onto a missing file in a read-only root", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/not-here", Type: "bind", Source: "/etc/hosts", Options: []string{"bind"}})
		}, "mountpoint /etc/not-here"},
		{"a bind of a device", func(s *specs.Spec) {
			s.Mounts = append(s.Mounts, specs.Mount{Destination: "/dev/null", Type: "bind", Source: "/dev/null", Options: []string{"bind"}})
		}, "a bind of something other than a directory or a regular file"},
		{"recursive options on a cgroup mount", func(s *specs.Spec) {
			for i := range s.Mounts {
				if s.Mounts[i].Type == "cgroup" {
					s.Mounts[i].Options = append(s.Mounts[i].Options, "rnoatime")
				}
			}
		}, "recursive options on a cgroup mount"},
		{"rootfs propagation", func(s *specs.Spec) { s.Linux.RootfsPropagation = "rshared" }, "linux.rootfsPropagation"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			plan, why, _, err := RawInit(rawInput(t, tc.edit))
			if err != nil {
				t.Fatal(err)
			}
			if plan != nil || !strings.Contains(why, tc.why) {
				t.Errorf("plan %v, why %q; want none, because %q", plan != nil, why, tc.why)
			}
		})
	}
}

// A writable root is overlay's kernel rung over the layer directory: its
// directories made with the rootfs root's mode and owner (where mapped),
// the overlay's options as kernelMount sets them, moved onto merged; the
// network's files are written into the root, not bound; / stays
// writable. Another rung forced, or no layer directory, is the Go init's.
func TestRawInitWritableRoot(t *testing.T) {
	writable := func(s *specs.Spec) { s.Root.Readonly = false }
	in := rawInput(t, writable)
	in.LayerDir = t.TempDir() + "/layer"
	in.ResolvConf, in.Hosts = "nameserver 10.0.2.3\n", "127.0.0.1 localhost\n"
	for _, mapped := range []bool{true, false} {
		in.ToContainer = func(uid, gid uint32) (uint32, uint32, bool) { return 0, 0, mapped }
		plan, why, _, err := RawInit(in)
		if err != nil || plan == nil {
			t.Fatalf("RawInit: %v (why %q)", err, why)
		}
		var whats []string
		for _, op := range plan.Program {
			whats = append(whats, op.What)
		}
		all := strings.Join(whats, "\n")
		l := overlay.KernelLayerIn(in.LayerDir)
		want := []string{
			"making / rslave", "making " + l.Upper, "making " + l.Work, "making " + l.Merged,
			"giving " + l.Upper + " the rootfs root's mode", "giving " + l.Merged + " the rootfs root's mode",
			"opening overlay", "setting overlay's lowerdir", "setting overlay's upperdir", "setting overlay's workdir",
			"setting overlay's volatile", "setting overlay's userxattr", "creating the overlay",
			"moving the overlay onto " + l.Merged, "making " + l.Merged + " private",
			"replacing /etc/resolv.conf", "writing /etc/resolv.conf", "writing /etc/hosts", "writing /etc/hostname",
			"pivot_root",
		}
		if mapped {
			want = append(want, "giving "+l.Upper+" the rootfs root's owner", "giving "+l.Merged+" the rootfs root's owner")
		}
		for _, w := range want {
			if !strings.Contains(all, w) {
				t.Errorf("mapped %v: no op %q in the program:\n%s", mapped, w, all)
			}
		}
		for _, not := range []string{"binding the rootfs", "making / read-only", "a tmpfs for the network's files", "giving " + l.Work} {
			if strings.Contains(all, not) {
				t.Errorf("mapped %v: op %q in the program:\n%s", mapped, not, all)
			}
		}
		if !mapped && strings.Contains(all, "owner") {
			t.Errorf("an owner outside the maps is given:\n%s", all)
		}
		if err := userns.CheckProgram(plan.Program); err != nil {
			t.Errorf("the program: %v", err)
		}
	}
	for _, mode := range []string{"fuse", "bind", "copy", "direct"} {
		in.RootfsMode = mode
		if plan, why, _, _ := RawInit(in); plan != nil || !strings.Contains(why, "--rootfs-mode "+mode) {
			t.Errorf("--rootfs-mode %s: plan %v, why %q", mode, plan != nil, why)
		}
	}
	in.RootfsMode = "overlay"
	if plan, why, _, _ := RawInit(in); plan == nil {
		t.Errorf("--rootfs-mode overlay: no plan (%s)", why)
	}
	// Mountpoints and a cwd the rootfs lacks are made in the root, each
	// directory before the mount that needs it; a missing file's is not.
	missing := rawInput(t, func(s *specs.Spec) {
		writable(s)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/data/x", Type: "tmpfs", Source: "tmpfs"})
		s.Process.Cwd = "/work"
	})
	missing.LayerDir, missing.ToContainer = in.LayerDir, in.ToContainer
	plan, why, _, err := RawInit(missing)
	if err != nil || plan == nil {
		t.Fatalf("missing mountpoints in a writable root: %v (why %q)", err, why)
	}
	at := opIndex(plan)
	for _, w := range []string{"making /data", "making /data/x", "mounting tmpfs on /data/x", "making /work", "opening /work in the root"} {
		if _, ok := at[w]; !ok {
			t.Errorf("no op %q", w)
		}
	}
	if !(at["making /data"] < at["making /data/x"] && at["making /data/x"] < at["mounting tmpfs on /data/x"] && at["making /work"] < at["opening /work in the root"]) {
		t.Errorf("the directories are not made before their use: %v", at)
	}
	fileMount := rawInput(t, func(s *specs.Spec) {
		writable(s)
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/etc/missing.conf", Type: "bind", Source: "/etc/hostname", Options: []string{"bind"}})
	})
	fileMount.LayerDir, fileMount.ToContainer = in.LayerDir, in.ToContainer
	if plan, why, _, _ := RawInit(fileMount); plan == nil {
		t.Errorf("a bind of a file onto a missing file: no plan (%s)", why)
	}
	fileMount.Spec.Mounts[len(fileMount.Spec.Mounts)-1].Destination = "/opt/x/file"
	if plan, why, _, _ := RawInit(fileMount); plan != nil || !strings.Contains(why, "mountpoint /opt/x/file") {
		t.Errorf("a bind of a file onto a file in a missing directory: plan %v, why %q; want the Go init", plan != nil, why)
	}
}

// The runc rootless config's cgroup mount, without a cgroup namespace,
// is the host's tree bound read-only, and an "rw" asked for it warns.
func TestRawInitCgroupBind(t *testing.T) {
	in := rawInput(t, func(s *specs.Spec) {
		var ns []specs.LinuxNamespace
		for _, n := range s.Linux.Namespaces {
			if n.Type != specs.CgroupNamespace {
				ns = append(ns, n)
			}
		}
		s.Linux.Namespaces = ns
		for i := range s.Mounts {
			if s.Mounts[i].Type == "cgroup" {
				s.Mounts[i].Options = append(s.Mounts[i].Options, "rw")
			}
		}
	})
	plan, why, warnings, err := RawInit(in)
	if err != nil || plan == nil {
		t.Fatalf("RawInit: %v (why %q)", err, why)
	}
	if len(warnings) != 1 || !strings.Contains(warnings[0], "no cgroup namespace") {
		t.Errorf("warnings %q", warnings)
	}
	var bind, fresh bool
	for _, op := range plan.Program {
		bind = bind || op.What == "binding the host's /sys/fs/cgroup on /sys/fs/cgroup"
		fresh = fresh || op.What == "mounting cgroup2 on /sys/fs/cgroup"
	}
	if !bind || fresh {
		t.Errorf("bind %v, fresh cgroup2 %v: want the host's tree bound, no fresh mount", bind, fresh)
	}
}

// A cgroup of sandy's own (CgroupOwned): the clone makes no cgroup
// namespace, the program's first op does (in the cgroup the host moved
// the child into), and a cgroup mount asked "rw" is a writable cgroup2,
// with no warning; without it, the same config warns and mounts it
// read-only.
func TestRawInitOwnCgroup(t *testing.T) {
	rw := func(s *specs.Spec) {
		for i := range s.Mounts {
			if s.Mounts[i].Type == "cgroup" {
				s.Mounts[i].Options = append(s.Mounts[i].Options, "rw")
			}
		}
	}
	for _, owned := range []bool{true, false} {
		in := rawInput(t, rw)
		in.CgroupOwned = owned
		plan, why, warnings, err := RawInit(in)
		if err != nil || plan == nil {
			t.Fatalf("owned %v: RawInit: %v (why %q)", owned, err, why)
		}
		first := plan.Program[0].What == "making the cgroup namespace"
		cloned := plan.Cloneflags&unix.CLONE_NEWCGROUP != 0
		var writable bool
		for _, op := range plan.Program {
			writable = writable || op.What == "mounting cgroup2 on /sys/fs/cgroup (writable)"
		}
		if first != owned || cloned == owned || writable != owned || (len(warnings) == 0) != owned {
			t.Errorf("owned %v: unshare first %v, cloned %v, writable %v, warnings %q", owned, first, cloned, writable, warnings)
		}
	}
}

// Sysctls are written through the container's /proc, in the root,
// after /proc is mounted and before /proc/sys is made read-only, as
// setSysctls writes them; an empty value opens the file and writes
// nothing.
func TestRawInitSysctls(t *testing.T) {
	in := rawInput(t, func(s *specs.Spec) {
		s.Linux.Sysctl = map[string]string{"net.ipv4.ping_group_range": "0 0", "kernel.msgmax": ""}
	})
	plan := mustPlan(t, in)
	at := opIndex(plan)
	open := "opening /proc/sys/net/ipv4/ping_group_range in the root"
	set := "setting net.ipv4.ping_group_range to 0 0"
	for _, w := range []string{"mounting proc on /proc", open, set, "opening /proc/sys/kernel/msgmax in the root", "making /proc/sys read-only"} {
		if _, ok := at[w]; !ok {
			t.Fatalf("no op %q", w)
		}
	}
	if !(at["mounting proc on /proc"] < at[open] && at[open] < at[set] && at[set] < at["making /proc/sys read-only"]) {
		t.Errorf("the sysctl is not written between /proc's mount and its read-only remount: %v", at)
	}
	if _, ok := at["setting kernel.msgmax to "]; ok {
		t.Error("an empty value is written")
	}
}

// A mount other than a bind gets its propagation and recursive options
// after it, as the Go init's finishMount gives them (podman's specs put
// rprivate on every mount, the cgroup mount among them).
func TestRawInitMountPropagation(t *testing.T) {
	in := rawInput(t, func(s *specs.Spec) {
		s.Mounts = append(s.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"rprivate", "rnosuid"}})
		for i := range s.Mounts {
			if s.Mounts[i].Type == "cgroup" {
				s.Mounts[i].Options = append(s.Mounts[i].Options, "rprivate")
			}
		}
	})
	plan := mustPlan(t, in)
	at := opIndex(plan)
	for _, pair := range [][2]string{
		{"mounting tmpfs on /tmp", "setting /tmp's recursive options"},
		{"setting /tmp's recursive options", "setting /tmp's propagation"},
		{"binding the host's /sys/fs/cgroup on /sys/fs/cgroup", "setting /sys/fs/cgroup's propagation"},
	} {
		a, aok := at[pair[0]]
		b, bok := at[pair[1]]
		if !aok || !bok || a >= b {
			t.Errorf("want %q before %q (%v, %v)", pair[0], pair[1], aok, bok)
		}
	}
}

// A bind of a regular file goes onto the file in the root, as the Go
// init's bindMount puts it; in a writable root, a file the rootfs lacks
// is created empty first (the Go init's createFile), in its directory.
func TestRawInitFileBind(t *testing.T) {
	in := rawInput(t, func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Mounts = append(s.Mounts,
			specs.Mount{Destination: "/etc/passwd", Type: "bind", Source: "/etc/hostname", Options: []string{"bind", "ro"}},
			specs.Mount{Destination: "/etc/new-file", Type: "bind", Source: "/etc/hostname", Options: []string{"bind"}})
	})
	in.LayerDir = t.TempDir() + "/layer"
	in.ToContainer = func(uid, gid uint32) (uint32, uint32, bool) { return 0, 0, true }
	plan := mustPlan(t, in)
	at := opIndex(plan)
	for _, w := range []string{"binding /etc/hostname on /etc/passwd", "remounting /etc/passwd", "creating /etc/new-file", "binding /etc/hostname on /etc/new-file"} {
		if _, ok := at[w]; !ok {
			t.Errorf("no op %q", w)
		}
	}
	if _, ok := at["creating /etc/passwd"]; ok {
		t.Error("an existing file is created")
	}
	if at["creating /etc/new-file"] > at["binding /etc/hostname on /etc/new-file"] {
		t.Error("the file is created after its mount")
	}
	if err := userns.CheckProgram(plan.Program); err != nil {
		t.Error(err)
	}
}

// TestRawInitTap: with RawInput.Tap the program makes tap0 right after
// lo, before anything of the root (the host's /dev/net/tun), configures
// it as slirp4netns --configure does, sends its fd on the socket and
// closes both fds the plan gave it; without a network namespace of its
// own the raw init is refused.
func TestRawInitTap(t *testing.T) {
	in := rawInput(t, nil)
	in.Tap = &RawTap{Socket: 3, FD: 4, MTU: 65520}
	plan := mustPlan(t, in)
	at := opIndex(plan)
	order := []string{
		"bringing up lo", "opening /dev/net/tun", "making tap0 (TUNSETIFF)", "making tap0 outlive its fd (TUNSETPERSIST)",
		"setting tap0's MTU", "setting tap0's address", "setting tap0's netmask", "bringing up tap0",
		"adding the default route through 10.0.2.2", "putting tap0 on its fd for the host", "handing tap0 to the host",
		"closing the tap's fd", "closing the socket to the host", "making / rslave",
	}
	for i, w := range order {
		k, ok := at[w]
		if !ok {
			t.Fatalf("no op %q", w)
		}
		if i > 0 && k <= at[order[i-1]] {
			t.Errorf("op %q (%d) before %q (%d)", w, k, order[i-1], at[order[i-1]])
		}
	}
	send := plan.Program[at["handing tap0 to the host"]]
	if send.Trap != unix.SYS_SENDMSG || send.Tolerate != 0 {
		t.Errorf("the send: trap %d, tolerates %v", send.Trap, send.Tolerate)
	}
	for _, w := range []string{"closing the tap's fd", "closing the socket to the host"} {
		if op := plan.Program[at[w]]; op.Trap != unix.SYS_CLOSE || op.Tolerate != 0 {
			t.Errorf("%s: trap %d, tolerates %v: the container's process must not get the fd", w, op.Trap, op.Tolerate)
		}
	}
	if err := userns.CheckProgram(plan.Program); err != nil {
		t.Errorf("the program: %v", err)
	}

	noNet := rawInput(t, func(s *specs.Spec) {
		var kept []specs.LinuxNamespace
		for _, ns := range s.Linux.Namespaces {
			if ns.Type != specs.NetworkNamespace {
				kept = append(kept, ns)
			}
		}
		s.Linux.Namespaces = kept
	})
	noNet.Tap = in.Tap
	if plan, why, _, err := RawInit(noNet); err != nil || plan != nil || !strings.Contains(why, "network namespace") {
		t.Errorf("RawInit of a tap without a network namespace: plan %v, why %q, err %v", plan != nil, why, err)
	}
}

// TestTapMessage: the msghdr names one byte of data and the fd as
// SCM_RIGHTS, through pointers into the buffers the op keeps.
func TestTapMessage(t *testing.T) {
	msg, iov, data, control := tapMessage(4)
	m := (*unix.Msghdr)(unsafe.Pointer(&msg[0]))
	v := (*unix.Iovec)(unsafe.Pointer(&iov[0]))
	if m.Iov != v || m.Iovlen != 1 || v.Base != &data[0] || v.Len != 1 || m.Control != &control[0] || int(m.Controllen) != len(control) {
		t.Fatalf("msghdr %+v, iovec %+v", *m, *v)
	}
	cms, err := unix.ParseSocketControlMessage(control)
	if err != nil || len(cms) != 1 {
		t.Fatalf("control: %v, %d messages", err, len(cms))
	}
	fds, err := unix.ParseUnixRights(&cms[0])
	if err != nil || len(fds) != 1 || fds[0] != 4 {
		t.Fatalf("rights %v, %v", fds, err)
	}
}
