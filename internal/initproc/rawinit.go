//go:build linux

package initproc

import (
	"errors"
	"fmt"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/cgroupv2"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/seccomp"
	"github.com/sandy-rt/sandy/userns"
)

// The container's init as a raw program (userns.ForkInit): the host plans
// the init's set-up, step for step as the Go init makes it (setupRootfs,
// then pivotRoot, then the process as NewForkPlan plans exec's), into
// system calls that a forked child runs without a Go runtime of its own.
// `sandy run` then costs one Go start, not two: no exec of the sandy
// binary for the init, no handshake over the sync socket, no config to
// send and decode.
//
// RawInit plans only what it can plan exactly: a root the Go init would
// mount with the bind rung (a read-only root whose mountpoints all
// exist, the network's files among them) or with the kernel overlay's
// rung (a writable root, over a layer directory the host has made, its
// missing mountpoint directories and cwd made in it), the mounts of the
// kinds below
// with the options the Go init passes them, no hooks, no terminal, no
// sysctls, no cgroup of sandy's own. Anything else returns the reason, and the Go
// init runs: it remains the one implementation of every case, and the
// raw program is checked against it (TestRawInitMatchesGoInit). A raw
// program that fails at run time (a rootfs that changed since it was
// planned, a kernel that refuses a mount) is not an error either: the
// lifecycle runs the Go init then, which says what is wrong in its own
// words, or succeeds where the plan was too narrow.
//
// Every path in the root is resolved by the kernel, openat2(2)
// RESOLVE_IN_ROOT|RESOLVE_NO_MAGICLINKS from the root's fd, as inroot
// resolves it for the Go init, and mounted onto through the fd's
// /proc/self/fd path.

// RawInput is what the host knows of the container when it plans.
type RawInput struct {
	Spec   *specs.Spec
	Bundle string
	// Rootfs is the bundle's rootfs, bound on itself read-only in the
	// child's mount namespace to be its root (the Go init binds it on its
	// layer directory's merged/: the same mount, seen from inside).
	Rootfs          string
	RootfsMode      string
	Filter          *seccomp.Filter // the compiled profile; nil: none
	SetgroupsDenied bool            // the single-id map: setgroups(2) is denied
	// GIDMapped reports whether a container gid is mapped (devpts gid=).
	GIDMapped func(gid uint32) bool
	// ResolvConf and Hosts are the network's files (Config's), bound
	// read-only on files the rootfs has, or written into a writable root
	// (networkFiles).
	ResolvConf, Hosts string
	// LayerDir is the container's layer directory, which a writable root
	// needs (the kernel overlay's upper, work and merged are made in it:
	// overlay.KernelLayerIn); it must exist when the program runs.
	LayerDir string
	// Layers, when set, is the root of a container made from an image
	// (CreateOptions.Layers): the storage container's layers, mounted as
	// the kernel overlay on merged/ of LayerDir, the image's root written
	// directly (the network's files bound on its own, read-only).
	Layers *overlay.Layers
	// ToContainer maps a host uid and gid into the container (ok: both
	// are mapped), for the owner of a writable root's top directories.
	ToContainer func(uid, gid uint32) (cuid, cgid uint32, ok bool)
	// CgroupOwned: the container has a cgroup sandy made for it and a
	// cgroup namespace of its own (Config.CgroupOwned): its cgroup mount
	// may be writable. The child is cloned in sandy's cgroup and moved
	// into its own before the program runs; the program's first op then
	// makes the cgroup namespace (Config.UnshareCgroupNS), which the
	// clone does not, so that it is rooted at the container's cgroup.
	CgroupOwned bool
	// Tap, when set, has the program make tap0 for sandy's own network
	// and hand its fd to the host (rawtap.go).
	Tap *RawTap
}

// Program slots.
const (
	slotRoot   = 1  // O_PATH on the assembled root
	slotTarget = 2  // the mount being made
	slotDir    = 3  // its parent, to create it in; /dev while it is filled
	slotAgain  = 4  // the mount reopened, for the remount
	slotLower  = 5  // the rootfs, bound on itself
	slotOld    = 6  // pivot_root: the old root
	slotNew    = 7  // pivot_root: the new root
	slotSock   = 8  // lo's socket
	slotFS     = 9  // the network files' tmpfs, or the root's overlay, being made
	slotFiles  = 10 // that tmpfs, or that overlay, mounted detached
	slotTap    = 11 // /dev/net/tun, made tap0 (rawtap.go)
)

// RawInit plans in's init as a raw program, the caller adds the files and
// the parent-death signal. A nil plan comes with the reason the Go init
// is needed; warnings are the ones the Go init would send.
func RawInit(in RawInput) (plan *userns.ForkPlan, why string, warnings []string, err error) {
	if why := rawUnsupported(in); why != "" {
		return nil, why, nil, nil
	}
	b := &rawBuilder{in: in, s: in.Spec, merged: in.Rootfs}
	if in.Layers != nil || !in.Spec.Root.Readonly {
		b.layer = overlay.KernelLayerIn(in.LayerDir)
		b.merged = b.layer.Merged
	}
	steps := []func() string{b.cgroupNS, b.loopback, b.tap, b.rootLayer, b.mountAll, b.dev, b.networkFiles, b.sysctls, b.hostname, b.maskPaths, b.readonlyPaths, b.cwd, b.pivotRoot}
	for _, step := range steps {
		if why := step(); why != "" {
			return nil, why, nil, nil
		}
	}
	// The root for HOME from /etc/passwd: an image's has HOME in
	// process.env (rawUnsupported), its layers are not mounted yet.
	var root *os.File
	if in.Layers == nil {
		if root, err = os.OpenFile(in.Rootfs, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0); err != nil {
			return nil, "", nil, fmt.Errorf("opening the rootfs: %w", err)
		}
		defer root.Close()
	}
	plan, err = NewForkPlan(ForkInput{Process: in.Spec.Process, Filter: in.Filter, Root: root, SetgroupsDenied: in.SetgroupsDenied})
	if err != nil {
		return nil, "", nil, err
	}
	plan.Cloneflags = rawCloneFlags(in.Spec)
	if in.CgroupOwned {
		plan.Cloneflags &^= unix.CLONE_NEWCGROUP // cgroupNS
	}
	plan.Program = b.ops
	if err := userns.CheckProgram(plan.Program); err != nil {
		return nil, "", nil, fmt.Errorf("planning the raw init: %w", err)
	}
	return plan, "", b.warnings, nil
}

// rawUnsupported is why the config needs the Go init ("" if it does not).
func rawUnsupported(in RawInput) string {
	s := in.Spec
	p := s.Process
	switch {
	case p == nil:
		return "no process"
	case p.Terminal:
		return "process.terminal"
	//lint:ignore SA1019 prestart hooks are deprecated, not gone: the Go init runs them
	case s.Hooks != nil && (len(s.Hooks.Prestart)+len(s.Hooks.CreateRuntime)+len(s.Hooks.CreateContainer)+len(s.Hooks.StartContainer)+len(s.Hooks.Poststart)+len(s.Hooks.Poststop)) > 0:
		return "hooks"
	case s.Root == nil:
		return "no root"
	case in.Layers == nil && !s.Root.Readonly && (in.LayerDir == "" || in.ToContainer == nil):
		return "a writable root without a layer directory"
	case in.Layers == nil && s.Root.Readonly && in.RootfsMode != "" && in.RootfsMode != "auto" && in.RootfsMode != "bind":
		return "--rootfs-mode " + in.RootfsMode
	case in.Layers == nil && !s.Root.Readonly && in.RootfsMode != "" && in.RootfsMode != "auto" && in.RootfsMode != "overlay":
		return "--rootfs-mode " + in.RootfsMode + " with a writable root"
	case p.OOMScoreAdj != nil:
		return "process.oomScoreAdj"
	case s.Linux == nil:
		return "no linux section"
	case s.Linux.Personality != nil:
		return "linux.personality"
	case len(s.Linux.Devices) > 0:
		return "linux.devices"
	case s.Linux.RootfsPropagation != "":
		return "linux.rootfsPropagation"
	case s.Linux.Seccomp != nil && s.Linux.Seccomp.ListenerPath != "":
		return "a seccomp listener"
	case in.Filter != nil && in.Filter.NeedsListener():
		return "a seccomp NOTIFY listener"
	}
	if in.Layers != nil {
		if why := layersUnsupported(in); why != "" {
			return why
		}
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Path != "" {
			return "a joined " + string(ns.Type) + " namespace"
		}
	}
	for _, t := range []specs.LinuxNamespaceType{specs.UserNamespace, specs.MountNamespace} {
		if _, ok := namespace(s, t); !ok {
			return "no " + string(t) + " namespace of its own"
		}
	}
	if (s.Hostname != "" || s.Domainname != "") && !hasNamespace(s, specs.UTSNamespace) {
		return "a hostname without a uts namespace"
	}
	if dumpable, err := os.ReadFile("/proc/sys/fs/suid_dumpable"); err != nil || strings.TrimSpace(string(dumpable)) == "1" {
		return "fs.suid_dumpable is 1 (or unreadable): a change of ids would make the process dumpable"
	}
	return ""
}

func hasNamespace(s *specs.Spec, t specs.LinuxNamespaceType) bool {
	_, ok := namespace(s, t)
	return ok
}

// rawCloneFlags are the config's namespaces as clone(2) flags (every one
// is new: rawUnsupported refuses joins).
func rawCloneFlags(s *specs.Spec) uintptr {
	flags := map[specs.LinuxNamespaceType]uintptr{
		specs.PIDNamespace: unix.CLONE_NEWPID, specs.NetworkNamespace: unix.CLONE_NEWNET,
		specs.MountNamespace: unix.CLONE_NEWNS, specs.IPCNamespace: unix.CLONE_NEWIPC,
		specs.UTSNamespace: unix.CLONE_NEWUTS, specs.UserNamespace: unix.CLONE_NEWUSER,
		specs.CgroupNamespace: unix.CLONE_NEWCGROUP, specs.TimeNamespace: unix.CLONE_NEWTIME,
	}
	var f uintptr
	for _, ns := range s.Linux.Namespaces {
		f |= flags[ns.Type]
	}
	return f
}

// rawBuilder assembles the program.
type rawBuilder struct {
	in     RawInput
	s      *specs.Spec
	merged string              // the root's mount point: the rootfs itself, or the layer's merged
	layer  overlay.KernelLayer // a writable root's
	// missing are a writable root's mountpoints (and cwd) that the
	// rootfs lacks, by the index of their first missing component: made
	// in the root before their mount, as the Go init's openDir makes them
	// (inroot.MkdirAll).
	missing map[string]int
	// missingFiles are a writable root's file mountpoints that it lacks,
	// in a directory it has: created empty before their mount
	// (makeMissingFile), as the Go init's openFile creates them.
	missingFiles map[string]bool
	ops          []userns.Op
	warnings     []string
	// fresh are the destinations of the tmpfs mounts made so far: a
	// path below one is made in it (mkdirat), not looked for in the
	// rootfs.
	fresh []string
}

func (b *rawBuilder) op(what string, trap uintptr, args ...userns.Arg) *userns.Op {
	op := userns.Op{What: what, Trap: trap}
	copy(op.Args[:], args)
	b.ops = append(b.ops, op)
	return &b.ops[len(b.ops)-1]
}

// openHow is an open_how for openat2(2) in the root.
func openHow(flags uint64) userns.Arg {
	how := unix.OpenHow{Flags: flags | unix.O_CLOEXEC, Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS}
	return userns.Buf(append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&how)), unsafe.Sizeof(how))...))
}

var openHowSize = userns.Val(unsafe.Sizeof(unix.OpenHow{}))

// openInRoot opens p in the root into slot (inroot.Open's flags: O_PATH,
// or MkdirAll's: O_DIRECTORY).
func (b *rawBuilder) openInRoot(slot int, p string, flags uint64) *userns.Op {
	op := b.op("opening "+p+" in the root", unix.SYS_OPENAT2, userns.Slot(slotRoot), userns.Str(p), openHow(flags), openHowSize)
	op.Out = slot
	return op
}

func (b *rawBuilder) close(slot int) {
	b.op("closing an fd", unix.SYS_CLOSE, userns.Slot(slot)).Tolerate = userns.AnyErrno
}

// mount adds mount(2) of source onto the fd in slot.
func (b *rawBuilder) mount(what, source string, slot int, fstype string, flags uintptr, data string) *userns.Op {
	args := []userns.Arg{userns.Str(source), userns.FDPath(slot), userns.Str(fstype), userns.Val(flags), userns.Val(0)}
	if data != "" {
		args[4] = userns.Str(data)
	}
	return b.op(what, unix.SYS_MOUNT, args...)
}

func (b *rawBuilder) remount(what string, slot int, flags, clear uintptr) {
	b.op(what, userns.TrapRemount, userns.FDPath(slot), userns.Val(flags), userns.Val(clear))
}

// cgroupNS is the Go init's unshare of its cgroup namespace
// (UnshareCgroupNS), in the cgroup the host has moved the child into.
func (b *rawBuilder) cgroupNS() string {
	if b.in.CgroupOwned {
		b.op("making the cgroup namespace", unix.SYS_UNSHARE, userns.Val(unix.CLONE_NEWCGROUP))
	}
	return ""
}

// loopback is bringUpLoopback: lo up in a new network namespace.
func (b *rawBuilder) loopback() string {
	if !hasNamespace(b.s, specs.NetworkNamespace) {
		return ""
	}
	var req struct {
		name  [unix.IFNAMSIZ]byte
		flags uint16
		_     [22]byte
	}
	copy(req.name[:], "lo")
	// The flags a fresh lo has (SIOCGIFFLAGS: IFF_LOOPBACK), and up.
	req.flags = unix.IFF_LOOPBACK | unix.IFF_UP
	buf := append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&req)), unsafe.Sizeof(req))...)
	b.op("a socket for lo", unix.SYS_SOCKET, userns.Val(unix.AF_INET), userns.Val(unix.SOCK_DGRAM|unix.SOCK_CLOEXEC), userns.Val(0)).Out = slotSock
	b.op("bringing up lo", unix.SYS_IOCTL, userns.Slot(slotSock), userns.Val(unix.SIOCSIFFLAGS), userns.Buf(buf))
	b.close(slotSock)
	return ""
}

// rootLayer is setMountPropagation and overlay's bind rung (a read-only
// root: the rootfs bound read-only on itself) or kernel rung (a writable
// one: kernelOverlay): rslave, the root made private, opened as the root.
func (b *rawBuilder) rootLayer() string {
	if why := b.mountpointsExist(); why != "" {
		return why
	}
	b.op("making / rslave", unix.SYS_MOUNT, userns.Str(""), userns.Str("/"), userns.Str(""), userns.Val(unix.MS_SLAVE|unix.MS_REC), userns.Val(0))
	if b.in.Layers != nil {
		b.storageLayers()
	} else {
		b.op("opening the rootfs", unix.SYS_OPENAT, userns.Val(atFDCWD), userns.Str(b.in.Rootfs), userns.Val(unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)).Out = slotLower
		if b.s.Root.Readonly {
			b.op("binding the rootfs on "+b.merged, unix.SYS_MOUNT, userns.FDPath(slotLower), userns.Str(b.merged), userns.Str(""), userns.Val(unix.MS_BIND|unix.MS_REC), userns.Val(0))
			b.op("remounting "+b.merged+" read-only", userns.TrapRemount, userns.Str(b.merged), userns.Val(unix.MS_RDONLY), userns.Val(0))
		} else if why := b.kernelOverlay(); why != "" {
			return why
		}
		b.close(slotLower)
	}
	b.op("making "+b.merged+" private", unix.SYS_MOUNT, userns.Str(""), userns.Str(b.merged), userns.Str(""), userns.Val(unix.MS_PRIVATE), userns.Val(0))
	b.op("opening the root", unix.SYS_OPENAT, userns.Val(atFDCWD), userns.Str(b.merged), userns.Val(unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC)).Out = slotRoot
	return ""
}

// kernelOverlay is overlay's kernel rung for a writable root (ensureFor,
// then kernelMount): upper, work and merged made in the layer directory,
// upper and merged given the rootfs root's mode and owner (ensure: the
// merged root shows upper's), and the overlay of upper over the rootfs
// (the fd in slotLower), volatile, with userxattr, moved onto merged.
// Where the kernel refuses (no volatile, no overlay in a user namespace,
// a layer directory on a filesystem that cannot be upper), the program
// fails and the Go init walks the ladder.
func (b *rawBuilder) kernelOverlay() string {
	var st unix.Stat_t
	if err := unix.Stat(b.in.Rootfs, &st); err != nil {
		return fmt.Sprintf("the rootfs: %v", err)
	}
	l := b.layer
	for _, d := range []string{l.Upper, l.Work, l.Merged} {
		b.op("making "+d, unix.SYS_MKDIRAT, userns.Val(atFDCWD), userns.Str(d), userns.Val(0o700))
		if d == l.Work {
			continue
		}
		b.op("giving "+d+" the rootfs root's mode", unix.SYS_FCHMODAT, userns.Val(atFDCWD), userns.Str(d), userns.Val(uintptr(st.Mode&0o7777)))
		// ensure's Lchown: an owner outside the maps (EINVAL) leaves it.
		if uid, gid, ok := b.in.ToContainer(st.Uid, st.Gid); ok {
			b.op("giving "+d+" the rootfs root's owner", unix.SYS_FCHOWNAT, userns.Val(atFDCWD), userns.Str(d), userns.Val(uintptr(uid)), userns.Val(uintptr(gid)), userns.Val(unix.AT_SYMLINK_NOFOLLOW)).Tolerate = syscall.EPERM
		}
	}
	b.op("opening overlay", unix.SYS_FSOPEN, userns.Str("overlay"), userns.Val(unix.FSOPEN_CLOEXEC)).Out = slotFS
	b.overlaySet("lowerdir", userns.FDPath(slotLower))
	b.overlaySet("upperdir", userns.Str(l.Upper))
	b.overlaySet("workdir", userns.Str(l.Work))
	b.overlayFlag("volatile")
	b.overlayFlag("userxattr")
	b.overlayOnMerged()
	return ""
}

// overlaySet and overlayFlag set an option of the overlay being made
// (slotFS).
func (b *rawBuilder) overlaySet(key string, val userns.Arg) {
	b.op("setting overlay's "+key, unix.SYS_FSCONFIG, userns.Slot(slotFS), userns.Val(unix.FSCONFIG_SET_STRING), userns.Str(key), val, userns.Val(0))
}

func (b *rawBuilder) overlayFlag(key string) {
	b.op("setting overlay's "+key, unix.SYS_FSCONFIG, userns.Slot(slotFS), userns.Val(unix.FSCONFIG_SET_FLAG), userns.Str(key), userns.Val(0), userns.Val(0))
}

// overlayOnMerged creates the overlay (slotFS) and moves it onto merged.
func (b *rawBuilder) overlayOnMerged() {
	l := b.layer
	b.op("creating the overlay", unix.SYS_FSCONFIG, userns.Slot(slotFS), userns.Val(unix.FSCONFIG_CMD_CREATE), userns.Val(0), userns.Val(0), userns.Val(0))
	b.op("mounting the overlay detached", unix.SYS_FSMOUNT, userns.Slot(slotFS), userns.Val(unix.FSMOUNT_CLOEXEC), userns.Val(0)).Out = slotFiles
	b.close(slotFS)
	b.op("opening "+l.Merged, unix.SYS_OPENAT, userns.Val(atFDCWD), userns.Str(l.Merged), userns.Val(unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC)).Out = slotTarget
	b.op("moving the overlay onto "+l.Merged, unix.SYS_MOVE_MOUNT, userns.Slot(slotFiles), userns.Str(""), userns.Slot(slotTarget), userns.Str(""), userns.Val(unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH))
	b.close(slotTarget)
	b.close(slotFiles)
}

// sysctls is setSysctls: each written through the container's /proc,
// before /proc/sys is made read-only; one the kernel refuses (not
// namespaced) fails the program, and the Go init says so in its words.
func (b *rawBuilder) sysctls() string {
	keys := make([]string, 0, len(b.s.Linux.Sysctl))
	for k := range b.s.Linux.Sysctl {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		v := b.s.Linux.Sysctl[k]
		if strings.ContainsAny(k, "/\x00") || k == "" || strings.Contains(k, "..") {
			return "the sysctl name " + strconv.Quote(k)
		}
		b.openInRoot(slotTarget, "/proc/sys/"+strings.ReplaceAll(k, ".", "/"), unix.O_WRONLY)
		if v != "" {
			b.op("setting "+k+" to "+v, unix.SYS_WRITE, userns.Slot(slotTarget), userns.Buf([]byte(v)), userns.Val(uintptr(len(v))))
		}
		b.close(slotTarget)
	}
	return ""
}

// atFDCWD is AT_FDCWD as a system call argument.
const atFDCWD = ^uintptr(99) // -100

// mountpointsExist is why the raw init cannot hold this root: a
// mountpoint of the Go init's list (rootfs.mountpoints) that is not a
// real directory all the way (a symlink is the Go init's to resolve), or
// that the rootfs lacks: on a read-only root (the bind rung has no stub
// layer), or a file's. A writable root's missing directories are made in
// it (missing). The network's files are not mountpoints in a writable
// root: they are written into it.
func (b *rawBuilder) mountpointsExist() string {
	cfg := &Config{Spec: b.s, Bundle: b.in.Bundle, Rootfs: b.in.Rootfs}
	if b.s.Root.Readonly || b.in.Layers != nil {
		cfg.ResolvConf, cfg.Hosts = b.in.ResolvConf, b.in.Hosts
	}
	r := &rootfs{cfg: cfg, spec: b.s}
	mps := r.mountpoints()
	dirs := map[string]bool{}
	for _, mp := range mps {
		if !mp.File {
			dirs[path.Clean("/"+mp.Path)] = true
		}
	}
	covered := func(p string) bool { // overlay's onRootfs: it lands in that mount
		for d := path.Dir(p); d != "/"; d = path.Dir(d) {
			if dirs[d] {
				return true
			}
		}
		return false
	}
	for _, mp := range mps {
		p := path.Clean("/" + mp.Path)
		if p == "/" || covered(p) {
			continue
		}
		var from int
		var why string
		if b.in.Layers != nil {
			from, why = layeredDir(b.in.Layers, p, mp.File)
		} else {
			from, why = realDir(b.in.Rootfs, p, mp.File)
		}
		if why == "" {
			continue
		}
		// A writable root's missing directories are made in it; a
		// missing file too (empty, 0644: createFile's), where its
		// directory is there.
		if from < 0 || b.s.Root.Readonly || mp.File && from != strings.Count(p, "/")-1 {
			return why
		}
		if mp.File {
			if b.missingFiles == nil {
				b.missingFiles = map[string]bool{}
			}
			b.missingFiles[p] = true
			continue
		}
		if b.missing == nil {
			b.missing = map[string]int{}
		}
		b.missing[p] = from
	}
	return ""
}

// realDir is why the container path p is not an existing real directory
// (a regular file, for file) of rootfs, every component a directory;
// where p is missing, from is its first missing component's index (-1:
// another reason).
func realDir(rootfs, p string, file bool) (from int, why string) {
	return walkMountpoint(p, file, "the rootfs", func(rel string, st *unix.Stat_t) (bool, error) {
		err := unix.Lstat(filepath.Join(rootfs, rel), st)
		if errors.Is(err, unix.ENOENT) {
			return false, nil
		}
		return err == nil, err
	})
}

// walkMountpoint is realDir's and layeredDir's walk: each component of p
// looked up (stat: found, its stat; or an error), a directory but the
// last, which is a regular file for file.
func walkMountpoint(p string, file bool, where string, stat func(rel string, st *unix.Stat_t) (bool, error)) (from int, why string) {
	parts := strings.Split(strings.TrimPrefix(p, "/"), "/")
	rel := ""
	for i, part := range parts {
		rel = filepath.Join(rel, part)
		var st unix.Stat_t
		found, err := stat(rel, &st)
		if err != nil {
			return -1, fmt.Sprintf("mountpoint %s: %v in %s", p, err, where)
		}
		if !found {
			return i, fmt.Sprintf("mountpoint %s: missing from %s", p, where)
		}
		want := uint32(unix.S_IFDIR)
		if i == len(parts)-1 && file {
			want = unix.S_IFREG
		}
		if st.Mode&unix.S_IFMT != want {
			return -1, fmt.Sprintf("mountpoint %s: not a plain directory in %s", p, where)
		}
	}
	return len(parts), ""
}

// makeMissing makes the missing directories of the mountpoint d in a
// writable root (missing), once: each in its parent, opened in the root.
func (b *rawBuilder) makeMissing(d string) {
	from, ok := b.missing[d]
	if !ok {
		return
	}
	delete(b.missing, d)
	parts := strings.Split(strings.TrimPrefix(d, "/"), "/")
	for i := from; i < len(parts); i++ {
		parent := "/" + strings.Join(parts[:i], "/")
		b.openInRoot(slotDir, parent, unix.O_DIRECTORY)
		b.op("making "+path.Join(parent, parts[i]), unix.SYS_MKDIRAT, userns.Slot(slotDir), userns.Str(parts[i]), userns.Val(0o755)).Tolerate = syscall.EEXIST
		b.close(slotDir)
	}
}

// makeMissingFile creates the missing file mountpoint d (missingFiles),
// once: empty, 0644, in its directory opened in the root; one made
// meanwhile (EEXIST) is left as it is.
func (b *rawBuilder) makeMissingFile(d string) {
	if !b.missingFiles[d] {
		return
	}
	delete(b.missingFiles, d)
	// slotOld and slotNew: pivot_root's, free until then, and free of
	// the slots the callers hold (networkFiles: /dev and a clone).
	dir, base := path.Split(d)
	b.openInRoot(slotOld, dir, unix.O_DIRECTORY)
	op := b.op("creating "+d, unix.SYS_OPENAT, userns.Slot(slotOld), userns.Str(base), userns.Val(unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC), userns.Val(0o644))
	op.Out, op.Tolerate, op.SkipErr = slotNew, syscall.EEXIST, 1
	b.close(slotNew)
	b.close(slotOld)
}

// target opens a mount's destination into slotTarget: made in the tmpfs
// it is below (one level), else found in the rootfs.
func (b *rawBuilder) target(dest string, flags uint64) string {
	d := path.Clean("/" + dest)
	if b.belowFresh(d) {
		parent, base := path.Split(d)
		if !b.isFresh(path.Clean(parent)) {
			return "a mountpoint two levels below a tmpfs: " + d
		}
		b.openInRoot(slotDir, parent, unix.O_DIRECTORY)
		b.op("making "+d, unix.SYS_MKDIRAT, userns.Slot(slotDir), userns.Str(base), userns.Val(0o755)).Tolerate = syscall.EEXIST
		b.close(slotDir)
	}
	b.makeMissing(d)
	b.makeMissingFile(d)
	b.openInRoot(slotTarget, d, flags)
	return ""
}

func (b *rawBuilder) belowFresh(p string) bool {
	for _, f := range b.fresh {
		if strings.HasPrefix(p, f+"/") {
			return true
		}
	}
	return false
}

func (b *rawBuilder) isFresh(p string) bool {
	for _, f := range b.fresh {
		if p == f {
			return true
		}
	}
	return false
}

// mountAll is mountAll and mountOne, for the kinds planned here.
func (b *rawBuilder) mountAll() string {
	for i, m := range b.s.Mounts {
		if why := b.mountOne(m); why != "" {
			return fmt.Sprintf("mounts[%d] (%s on %s): %s", i, m.Type, m.Destination, why)
		}
	}
	return ""
}

func (b *rawBuilder) mountOne(m specs.Mount) string {
	o := parseMountOptions(m.Type, m.Options)
	switch {
	case o.idmap != "" || o.tmpcopyup || o.copyup || o.chownup || o.rchown:
		return "an option the Go init handles"
	case m.Source == SelfBinary:
		return "sandy's pid 1"
	}
	dest := path.Clean("/" + m.Destination)
	if o.bind {
		return b.bindMount(m, dest, o)
	}
	if dest == "/dev" && m.Type == "tmpfs" && o.flags&unix.MS_RDONLY != 0 {
		return "a read-only /dev"
	}
	data := strings.Join(o.data, ",")
	flags := uint64(unix.O_DIRECTORY)
	switch m.Type {
	case "sysfs":
		if !hasNamespace(b.s, specs.NetworkNamespace) {
			// A fresh sysfs needs a network namespace of the user
			// namespace's (EPERM in the host's): the Go init binds the
			// host's /sys read-only then.
			return b.sysfsHost(m, dest, o)
		}
		flags |= unix.O_NOFOLLOW // checkOrdinaryDir: never a symlink at the end
	case "proc":
		flags |= unix.O_NOFOLLOW
	case "tmpfs", "mqueue":
	case "devpts":
		if strings.Contains(data, "gid=") && !b.devptsGIDMapped(o.data) {
			// The Go init retries without it (EINVAL): gid=5 (tty) is
			// not mapped under a single-id map.
			data = dropOption(o.data, "gid=")
		}
	case "cgroup", "cgroup2":
		return b.cgroup(m, dest, o)
	default:
		return "a " + m.Type + " mount"
	}
	if why := b.target(dest, flags); why != "" {
		return why
	}
	what := "mounting " + m.Type + " on " + dest
	if data != "" {
		what += " (" + data + ")"
	}
	b.mount(what, m.Source, slotTarget, m.Type, o.flags, data)
	b.close(slotTarget)
	if m.Type == "tmpfs" {
		b.fresh = append(b.fresh, dest)
	}
	b.finishMount(dest, o)
	return ""
}

// devptsGIDMapped reports whether the gid= of devpts options is mapped.
func (b *rawBuilder) devptsGIDMapped(data []string) bool {
	for _, d := range data {
		if v, ok := strings.CutPrefix(d, "gid="); ok {
			var gid uint32
			if _, err := fmt.Sscan(v, &gid); err != nil || b.in.GIDMapped == nil || !b.in.GIDMapped(gid) {
				return false
			}
		}
	}
	return true
}

// bindMount is bindMount for a host directory with plain flags.
func (b *rawBuilder) bindMount(m specs.Mount, dest string, o mountOpts) string {
	src := m.Source
	if !filepath.IsAbs(src) {
		src = filepath.Join(b.in.Bundle, src)
	}
	fi, err := os.Stat(src)
	if err != nil || !fi.IsDir() && !fi.Mode().IsRegular() {
		return "a bind of something other than a directory or a regular file"
	}
	flags := uint64(unix.O_DIRECTORY)
	if !fi.IsDir() {
		flags = unix.O_PATH // a file, which mountpointsExist found (or makes) as one
	}
	if why := b.target(dest, flags); why != "" {
		return why
	}
	mflags := uintptr(unix.MS_BIND)
	if o.recursive {
		mflags |= unix.MS_REC
	}
	b.mount("binding "+src+" on "+dest, src, slotTarget, "", mflags, "")
	b.close(slotTarget)
	if o.flags != 0 || o.clear != 0 {
		b.openInRoot(slotAgain, dest, 0|unix.O_PATH)
		b.remount("remounting "+dest, slotAgain, o.flags, o.clear)
		b.close(slotAgain)
	}
	b.finishMount(dest, o)
	return ""
}

// finishMount is finishMount: the recursive options (mount_setattr over
// the mount and its submounts), then the propagation (-v's rprivate).
func (b *rawBuilder) finishMount(dest string, o mountOpts) {
	if o.attrSet != 0 || o.attrClr != 0 {
		attr := unix.MountAttr{Attr_set: o.attrSet, Attr_clr: o.attrClr}
		b.openInRoot(slotAgain, dest, unix.O_PATH)
		b.op("setting "+dest+"'s recursive options", unix.SYS_MOUNT_SETATTR, userns.Slot(slotAgain), userns.Str(""), userns.Val(unix.AT_EMPTY_PATH|unix.AT_RECURSIVE),
			userns.Buf(append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))...)), userns.Val(unsafe.Sizeof(attr)))
		b.close(slotAgain)
	}
	if o.propagation != 0 {
		b.openInRoot(slotAgain, dest, unix.O_PATH)
		b.op("setting "+dest+"'s propagation", unix.SYS_MOUNT, userns.Str(""), userns.FDPath(slotAgain), userns.Str(""), userns.Val(o.propagation), userns.Val(0))
		b.close(slotAgain)
	}
}

// cgroup is mountCgroup: a fresh cgroup2 in a cgroup namespace, writable
// only where asked and rooted at a cgroup sandy made (CgroupOwned), else
// read-only, and where a fresh one is refused, the host's tree bound
// read-only.
//
// Its propagation is set after it (finishMount), as the Go init sets it;
// recursive options, which the Go init changes by what the kernel gives
// (a fresh cgroup2, or the host's tree), are the Go init's.
func (b *rawBuilder) cgroup(m specs.Mount, dest string, o mountOpts) string {
	if o.attrSet != 0 || o.attrClr != 0 {
		return "recursive options on a cgroup mount"
	}
	defer b.finishMount(dest, o)
	cgroupNS := hasNamespace(b.s, specs.CgroupNamespace)
	askedRW := o.clear&unix.MS_RDONLY != 0
	if askedRW && cgroupNS && b.in.CgroupOwned {
		if why := b.target(dest, unix.O_DIRECTORY); why != "" {
			return why
		}
		b.mount("mounting cgroup2 on "+dest+" (writable)", "cgroup2", slotTarget, "cgroup2", o.flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "")
		b.close(slotTarget)
		return ""
	}
	if askedRW {
		why := "it has no cgroup namespace"
		if cgroupNS {
			why = "its cgroup namespace is not rooted at a cgroup sandy made for it (the cgroup manager is none, or the namespace is joined)"
		}
		b.warnings = append(b.warnings, cgroupv2.FallbackMountRO.Line(m.Destination, why))
	}
	if why := b.target(dest, unix.O_DIRECTORY); why != "" {
		return why
	}
	if cgroupNS {
		op := b.mount("mounting cgroup2 on "+dest, "cgroup2", slotTarget, "cgroup2", o.flags|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC|unix.MS_RDONLY, "")
		op.Tolerate, op.SkipOK = userns.AnyErrno, bindHostOps
	}
	b.bindHostReadonly(dest, "/sys/fs/cgroup", o.flags)
	b.close(slotTarget)
	return ""
}

// sysfsHost is mountOne's sysfs where a fresh one is refused: the host's
// /sys bound read-only (bindHostReadonly).
func (b *rawBuilder) sysfsHost(m specs.Mount, dest string, o mountOpts) string {
	if why := b.target(dest, unix.O_DIRECTORY|unix.O_NOFOLLOW); why != "" {
		return why
	}
	b.bindHostReadonly(dest, "/sys", o.flags)
	b.close(slotTarget)
	// Recursive options may add to that, never undo it ("rrw").
	o.attrClr &^= readonlyAttrs
	b.finishMount(dest, o)
	return ""
}

// bindHostOps is how many ops bindHostReadonly adds.
const bindHostOps = 7

// bindHostReadonly is bindHostReadonly onto the target in slotTarget:
// the host's tree src with its submounts, the top mount remounted with
// flags and read-only, then every mount of it read-only and inert.
func (b *rawBuilder) bindHostReadonly(dest, src string, flags uintptr) {
	start := len(b.ops)
	b.mount("binding the host's "+src+" on "+dest, src, slotTarget, "", unix.MS_BIND|unix.MS_REC, "")
	b.openInRoot(slotAgain, dest, unix.O_PATH)
	b.remount("remounting "+dest+" read-only", slotAgain, flags|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, 0)
	b.close(slotAgain)
	b.openInRoot(slotAgain, dest, unix.O_PATH)
	attr := unix.MountAttr{Attr_set: readonlyAttrs}
	b.op("making "+dest+" read-only throughout", unix.SYS_MOUNT_SETATTR, userns.Slot(slotAgain), userns.Str(""), userns.Val(unix.AT_EMPTY_PATH|unix.AT_RECURSIVE),
		userns.Buf(append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))...)), userns.Val(unsafe.Sizeof(attr)))
	b.close(slotAgain)
	if n := len(b.ops) - start; n != bindHostOps {
		panic(fmt.Sprintf("rawinit: the host tree's bind is %d ops, not %d", n, bindHostOps))
	}
}

// dev is setupDev: the default devices bound from the host, the links.
func (b *rawBuilder) dev() string {
	m, ok := b.hasMount("/dev")
	if ok && parseMountOptions(m.Type, m.Options).bind {
		return ""
	}
	if !ok {
		if why := b.target("/dev", unix.O_DIRECTORY); why != "" {
			return why
		}
		b.mount("mounting a tmpfs on /dev", "tmpfs", slotTarget, "tmpfs", unix.MS_NOSUID|unix.MS_STRICTATIME, "mode=755,size=65536k")
		b.close(slotTarget)
		b.fresh = append(b.fresh, "/dev")
	}
	if !b.isFresh("/dev") {
		return "/dev is not a tmpfs"
	}
	b.openInRoot(slotDir, "/dev", unix.O_DIRECTORY)
	for _, d := range defaultDevices {
		name := path.Base(d)
		op := b.op("creating "+d, unix.SYS_OPENAT, userns.Slot(slotDir), userns.Str(name), userns.Val(unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_WRONLY|unix.O_CLOEXEC), userns.Val(0o644))
		op.Out = slotTarget
		b.mount("binding the host's "+d, d, slotTarget, "", unix.MS_BIND, "")
		b.close(slotTarget)
	}
	for _, l := range (&rootfs{spec: b.s}).devLinks() {
		name := path.Base(l[1])
		if name == "ptmx" {
			b.op("removing /dev/ptmx", unix.SYS_UNLINKAT, userns.Slot(slotDir), userns.Str(name), userns.Val(0)).Tolerate = userns.AnyErrno
		}
		b.op("linking "+l[1], unix.SYS_SYMLINKAT, userns.Str(l[0]), userns.Slot(slotDir), userns.Str(name)).Tolerate = syscall.EEXIST
	}
	b.close(slotDir)
	return ""
}

// networkFiles is writeResolvConf. In a writable root the files are
// written into it (writeInRoot). On a read-only root the Go init
// writes each file into the layer directory and binds it read-only over
// the rootfs's own (provideFile). The raw init writes them into a tmpfs
// of its own (fsopen, fsmount), attaches it in the container's /dev
// only while it moves a read-only clone of each onto the rootfs's file
// (Linux 6.1 clones nothing of a detached mount): the same
// content, owner and mode, read-only, nosuid, nodev and noexec, with no
// file on the host and nothing to wait for before the fork (the layer
// directory is made with the state directory, 2.5-3.5 ms of file
// creations here).
func (b *rawBuilder) networkFiles() string {
	files := [][2]string{}
	if b.in.ResolvConf != "" {
		files = append(files, [2]string{"/etc/resolv.conf", b.in.ResolvConf})
	}
	if b.in.Hosts != "" {
		files = append(files, [2]string{"/etc/hosts", b.in.Hosts})
		if b.s.Hostname != "" {
			files = append(files, [2]string{"/etc/hostname", b.s.Hostname + "\n"})
		}
	}
	if len(files) == 0 {
		return ""
	}
	if !b.s.Root.Readonly && b.in.Layers == nil {
		b.writeInRoot(files)
		return ""
	}
	if !b.isFresh("/dev") {
		return "the network's files on a read-only or image root without a /dev tmpfs to stage them in"
	}
	b.op("a tmpfs for the network's files", unix.SYS_FSOPEN, userns.Str("tmpfs"), userns.Val(unix.FSOPEN_CLOEXEC)).Out = slotFS
	b.op("naming it", unix.SYS_FSCONFIG, userns.Slot(slotFS), userns.Val(unix.FSCONFIG_SET_STRING), userns.Str("source"), userns.Str("tmpfs"), userns.Val(0))
	b.op("sizing it", unix.SYS_FSCONFIG, userns.Slot(slotFS), userns.Val(unix.FSCONFIG_SET_STRING), userns.Str("size"), userns.Str("64k"), userns.Val(0))
	b.op("creating it", unix.SYS_FSCONFIG, userns.Slot(slotFS), userns.Val(unix.FSCONFIG_CMD_CREATE), userns.Val(0), userns.Val(0), userns.Val(0))
	b.op("mounting it detached", unix.SYS_FSMOUNT, userns.Slot(slotFS), userns.Val(unix.FSMOUNT_CLOEXEC), userns.Val(unix.MOUNT_ATTR_NOSUID|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOEXEC)).Out = slotFiles
	b.close(slotFS)
	attr := unix.MountAttr{Attr_set: unix.MOUNT_ATTR_RDONLY | unix.MOUNT_ATTR_NOSUID | unix.MOUNT_ATTR_NODEV | unix.MOUNT_ATTR_NOEXEC}
	attrBuf := append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&attr)), unsafe.Sizeof(attr))...)
	for _, f := range files {
		dest, name := f[0], path.Base(f[0])
		b.op("creating "+dest, unix.SYS_OPENAT, userns.Slot(slotFiles), userns.Str(name), userns.Val(unix.O_CREAT|unix.O_EXCL|unix.O_WRONLY|unix.O_CLOEXEC), userns.Val(0o644)).Out = slotTarget
		if f[1] != "" {
			b.op("writing "+dest, unix.SYS_WRITE, userns.Slot(slotTarget), userns.Buf([]byte(f[1])), userns.Val(uintptr(len(f[1]))))
		}
		b.close(slotTarget)
	}
	// Linux 6.1 (Debian 12's) clones no file of a detached mount
	// (open_tree: EINVAL; newer kernels do): the tmpfs is attached in the
	// container's /dev tmpfs while its files are cloned, then taken off
	// again, the directory with it.
	b.openInRoot(slotDir, "/dev", unix.O_DIRECTORY)
	b.op("making /dev/"+netStage, unix.SYS_MKDIRAT, userns.Slot(slotDir), userns.Str(netStage), userns.Val(0o700))
	b.op("opening /dev/"+netStage, unix.SYS_OPENAT, userns.Slot(slotDir), userns.Str(netStage), userns.Val(unix.O_PATH|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC)).Out = slotOld
	b.op("attaching the network's files on /dev/"+netStage, unix.SYS_MOVE_MOUNT, userns.Slot(slotFiles), userns.Str(""), userns.Slot(slotOld), userns.Str(""), userns.Val(unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH))
	b.close(slotOld)
	for _, f := range files {
		dest, name := f[0], path.Base(f[0])
		b.op("cloning "+dest, unix.SYS_OPEN_TREE, userns.Slot(slotFiles), userns.Str(name), userns.Val(unix.OPEN_TREE_CLONE|unix.OPEN_TREE_CLOEXEC)).Out = slotAgain
		b.op("making "+dest+" read-only", unix.SYS_MOUNT_SETATTR, userns.Slot(slotAgain), userns.Str(""), userns.Val(unix.AT_EMPTY_PATH), userns.Buf(attrBuf), userns.Val(uintptr(len(attrBuf))))
		b.makeMissingFile(dest)
		b.openInRoot(slotTarget, dest, unix.O_PATH)
		b.op("binding "+dest, unix.SYS_MOVE_MOUNT, userns.Slot(slotAgain), userns.Str(""), userns.Slot(slotTarget), userns.Str(""), userns.Val(unix.MOVE_MOUNT_F_EMPTY_PATH|unix.MOVE_MOUNT_T_EMPTY_PATH))
		b.close(slotTarget)
		b.close(slotAgain)
	}
	b.op("detaching the network's files from /dev/"+netStage, unix.SYS_UMOUNT2, userns.FDPath(slotFiles), userns.Val(unix.MNT_DETACH))
	b.close(slotFiles)
	b.op("removing /dev/"+netStage, unix.SYS_UNLINKAT, userns.Slot(slotDir), userns.Str(netStage), userns.Val(unix.AT_REMOVEDIR))
	b.close(slotDir)
	return ""
}

// netStage is where the network files' tmpfs is attached while they are
// cloned (networkFiles), in the container's /dev, gone before the process.
const netStage = ".sandy-net"

// writeInRoot is provideFile's writeInRoot, in a writable root: each
// file replaces what its path holds (a symlink too, never followed) with
// a new file of its content.
func (b *rawBuilder) writeInRoot(files [][2]string) {
	for _, f := range files {
		dir, base := path.Split(f[0])
		b.openInRoot(slotDir, dir, unix.O_RDONLY|unix.O_DIRECTORY)
		b.op("replacing "+f[0], unix.SYS_UNLINKAT, userns.Slot(slotDir), userns.Str(base), userns.Val(0)).Tolerate = syscall.ENOENT
		b.op("creating "+f[0], unix.SYS_OPENAT, userns.Slot(slotDir), userns.Str(base), userns.Val(unix.O_WRONLY|unix.O_CREAT|unix.O_EXCL|unix.O_NOFOLLOW|unix.O_CLOEXEC), userns.Val(0o644)).Out = slotTarget
		if f[1] != "" {
			b.op("writing "+f[0], unix.SYS_WRITE, userns.Slot(slotTarget), userns.Buf([]byte(f[1])), userns.Val(uintptr(len(f[1]))))
		}
		b.close(slotTarget)
		b.close(slotDir)
	}
}

func (b *rawBuilder) hasMount(dest string) (specs.Mount, bool) {
	r := &rootfs{spec: b.s}
	return r.hasMount(dest)
}

// hostname is setHostname.
func (b *rawBuilder) hostname() string {
	if h := b.s.Hostname; h != "" {
		b.op("setting the hostname", unix.SYS_SETHOSTNAME, userns.Str(h), userns.Val(uintptr(len(h))))
	}
	if d := b.s.Domainname; d != "" {
		b.op("setting the domain name", unix.SYS_SETDOMAINNAME, userns.Str(d), userns.Val(uintptr(len(d))))
	}
	return ""
}

// maskPaths is maskPaths: a read-only tmpfs over a directory (a file
// refuses it: ENOTDIR), /dev/null over anything else; absent: nothing.
func (b *rawBuilder) maskPaths() string {
	for _, p := range b.s.Linux.MaskedPaths {
		op := b.openInRoot(slotTarget, p, unix.O_PATH)
		op.Tolerate, op.SkipErr = syscall.ENOENT, 3
		op = b.mount("masking "+p, "tmpfs", slotTarget, "tmpfs", unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, "size=0k,mode=0555")
		op.Tolerate, op.SkipOK = syscall.ENOTDIR, 1
		b.mount("masking "+p+" with /dev/null", "/dev/null", slotTarget, "", unix.MS_BIND, "")
		b.close(slotTarget)
	}
	return ""
}

// readonlyPaths is readonlyPaths: each bound on itself, remounted
// read-only; absent: nothing.
func (b *rawBuilder) readonlyPaths() string {
	for _, p := range b.s.Linux.ReadonlyPaths {
		op := b.openInRoot(slotTarget, p, unix.O_PATH)
		op.Tolerate, op.SkipErr = syscall.ENOENT, 5
		b.op("binding "+p+" on itself", unix.SYS_MOUNT, userns.FDPath(slotTarget), userns.FDPath(slotTarget), userns.Str(""), userns.Val(unix.MS_BIND|unix.MS_REC), userns.Val(0))
		b.close(slotTarget)
		b.openInRoot(slotAgain, p, unix.O_PATH)
		b.remount("making "+p+" read-only", slotAgain, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, 0)
		b.close(slotAgain)
	}
	return ""
}

// cwd is createCwd: the directory checked, made first in a writable root
// that lacks it.
func (b *rawBuilder) cwd() string {
	b.makeMissing(path.Clean("/" + b.s.Process.Cwd))
	b.openInRoot(slotTarget, b.s.Process.Cwd, unix.O_DIRECTORY)
	b.close(slotTarget)
	return ""
}

// pivotRoot is pivotRoot, then the read-only remount of /.
func (b *rawBuilder) pivotRoot() string {
	b.op("opening /", unix.SYS_OPENAT, userns.Val(atFDCWD), userns.Str("/"), userns.Val(unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC)).Out = slotOld
	b.op("opening the new root", unix.SYS_OPENAT, userns.Val(atFDCWD), userns.Str(b.merged), userns.Val(unix.O_DIRECTORY|unix.O_RDONLY|unix.O_CLOEXEC)).Out = slotNew
	b.op("entering the new root", unix.SYS_FCHDIR, userns.Slot(slotNew))
	b.op("pivot_root", unix.SYS_PIVOT_ROOT, userns.Str("."), userns.Str("."))
	b.op("entering the old root", unix.SYS_FCHDIR, userns.Slot(slotOld))
	b.op("making the old root rslave", unix.SYS_MOUNT, userns.Str(""), userns.Str("."), userns.Str(""), userns.Val(unix.MS_SLAVE|unix.MS_REC), userns.Val(0))
	b.op("detaching the old root", unix.SYS_UMOUNT2, userns.Str("."), userns.Val(unix.MNT_DETACH))
	b.op("entering /", unix.SYS_CHDIR, userns.Str("/"))
	b.close(slotOld)
	b.close(slotNew)
	b.close(slotRoot)
	if b.s.Root.Readonly {
		b.op("making / read-only", userns.TrapRemount, userns.Str("/"), userns.Val(unix.MS_RDONLY), userns.Val(0))
	}
	return ""
}
