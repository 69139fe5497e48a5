//go:build linux

package userns

import (
	"encoding/binary"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"syscall"
	"unsafe"

	"golang.org/x/sys/unix"
)

// The rootless read-only overlay of the binary, made in a user namespace.
//
// A rootless caller cannot mount in the host's namespaces, but since
// Linux 5.11 overlayfs mounts inside a user namespace, and a detached
// mount (fsmount(2)) outlives the namespaces it was made in for as long
// as a file descriptor or a process uses it. userNSOverlay starts one
// short-lived child with raw system calls only (the rules of forkexec.go:
// no Go runtime after the clone), which shares the caller's fd table and,
// on amd64, its memory (as ForkExec's children do):
//
//	caller ── clone(CLONE_NEWUSER|CLONE_NEWNS|CLONE_FILES|CLONE_VFORK
//	   ^            [|CLONE_VM on its own stack]) ──
//	   |      child: /proc/self/setgroups "deny", uid_map "U U 1",
//	   |             gid_map "G G 1" (the caller's own ids: the one
//	   |             mapping an unprivileged process may write),
//	   |             chdir(the binary's directory), mount a tmpfs on
//	   |             "." (the second, empty lowerdir), fsopen overlay,
//	   |             lowerdir=.:DIR, xino=off, create, fsmount
//	   |             read-only/nodev/nosuid, openat(mnt, NAME, O_PATH),
//	   |             writes {step, errno, value} to the status pipe, exits
//	   └── wakes when the child exits (CLONE_VFORK), reaps it, reads the
//	       record: the fd of the binary on the overlay, already in its own
//	       table (CLONE_FILES), or the step that failed and the kernel's
//	       fs_context message
//
// Why each step:
//   - the uid and gid maps: the creator's credentials, which overlayfs
//     uses for every access to its layers, then map to the caller's own
//     ids (setgroups must be denied before an unprivileged gid_map,
//     user_namespaces(7));
//   - the mount namespace is the child's (CLONE_NEWNS: fsopen(2) and
//     fsmount(2) need CAP_SYS_ADMIN over the mount namespace's owner, and
//     overlayfs takes only layers of the mounter's own mount namespace,
//     clone_private_mount); it and everything attached in it go away with
//     the child, and nothing is ever attached in the host's: no mountinfo
//     lists the overlay;
//   - the second lowerdir: overlayfs refuses one lowerdir without an
//     upperdir (a superblock with no upperdir is read-only for good). The
//     child mounts an empty tmpfs on the binary's directory in its own
//     mount namespace: "." (its working directory, taken before the
//     mount) is still the directory beneath, the path now leads to the
//     tmpfs, and two filesystems never overlap (overlayfs refuses a layer
//     inside another). Nothing is created on disk, and the binary's
//     directory is the top layer, so the tmpfs could shadow nothing
//     anyway. The tmpfs does not propagate to the host's mount namespace:
//     a mount namespace copied for a new user namespace turns the shared
//     mounts it copies into slaves (CL_SHARED_TO_SLAVE,
//     mount_namespaces(7)), which receive propagation but send none.
//     (Root's way, readOnlyOverlay, needs no child: it unshares a mount
//     namespace on one thread, whose copy keeps the peers, and makes its
//     mounts private first.);
//   - CLONE_FILES: the child's fds are the caller's, so the O_PATH handle
//     needs no SCM_RIGHTS nor pidfd_getfd(2); every fd the child opens is
//     O_CLOEXEC, and it closes all but the handle before it exits;
//   - no PR_SET_DUMPABLE: the child lives well under a millisecond, as
//     the caller's uid, before the init is started (create) or beside a
//     running container (exec's fallback); a process that could ptrace it
//     could ptrace the caller, and it holds nothing the caller does not
//     (any process of the caller may make a user namespace). It needs the
//     caller dumpable, in fact (its /proc/self files are root's
//     otherwise), which a ForkExec leaves it not: dumpable.go waits for
//     ForkExec's children to stop sharing the memory and makes it
//     dumpable again.
//
// Root's overlay (readOnlyOverlay, exeOptions.Root) is made by the same
// child without CLONE_NEWUSER: root holds CAP_SYS_ADMIN over its own copy
// of the mount namespace already, writes no maps, and makes the copy's
// mounts private (mount(2) MS_REC|MS_PRIVATE of /) in their place, since
// a copy made in the same user namespace keeps the caller's peer groups.
//
// The result is checked in the caller (checkOverlayExe): a read-only
// overlayfs file with the running binary's inode number, size and
// modification time. A child killed (SIGKILL) before its record would
// leave what it had opened in the caller's table, close-on-exec, until the
// caller exits; the caller then copies the binary.

// exeStage is vmEntry's stage for exeChild.
const exeStage = 3

// exeStep is where userNSOverlay's child failed.
type exeStep uint32

const (
	exeStepSetgroups exeStep = iota + 1 // writing /proc/self/setgroups
	exeStepUIDMap                       // writing /proc/self/uid_map
	exeStepGIDMap                       // writing /proc/self/gid_map
	exeStepPrivate                      // root's: making the copied mounts private
	exeStepChdir                        // chdir to the binary's directory
	exeStepTmpfs                        // mounting the empty tmpfs on it
	exeStepFsopen                       // fsopen("overlay")
	exeStepLowerdir                     // fsconfig lowerdir
	exeStepCreate                       // fsconfig FSCONFIG_CMD_CREATE
	exeStepFsmount                      // fsmount
	exeStepOpen                         // openat of the binary in the mount
	exeStepDone                         // the value is the handle's fd
)

var exeStepNames = map[exeStep]string{
	exeStepSetgroups: "writing deny to /proc/self/setgroups",
	exeStepUIDMap:    "writing /proc/self/uid_map",
	exeStepGIDMap:    "writing /proc/self/gid_map",
	exeStepChdir:     "chdir to the binary's directory",
	exeStepTmpfs:     "mounting a tmpfs as the empty lowerdir",
	exeStepFsopen:    "fsopen overlay",
	exeStepLowerdir:  "fsconfig lowerdir",
	exeStepCreate:    "fsconfig create overlay",
	exeStepFsmount:   "fsmount overlay",
	exeStepOpen:      "opening the binary in the overlay",
	exeStepPrivate:   "making the mount namespace's mounts private",
}

// rawBytes is a byte string the child writes: its address and length,
// taken before the clone (the child indexes no slice).
type rawBytes struct {
	p unsafe.Pointer
	n uintptr
}

func newRawBytes(s string) rawBytes {
	b := []byte(s)
	return rawBytes{p: unsafe.Pointer(&b[0]), n: uintptr(len(b))}
}

// exeRaw is what userNSOverlay's child reads: only memory allocated
// before the clone.
type exeRaw struct {
	vm       bool
	root     bool    // no user namespace: make the copied mounts private
	flags    uintptr // clone flags, the exit signal included
	stack    []byte
	stackTop uintptr
	status   uintptr // the status pipe's write end
	// NUL-terminated strings.
	setgroups, uidMapPath, gidMapPath *byte
	dir, dot, tmpfs, overlay, slash   *byte
	lowerKey, lower, xinoKey, xinoOff *byte
	name                              *byte
	deny, uidMap, gidMap              rawBytes
	// Written by the child: its record and the fs_context's message.
	rec [12]byte
	msg [256]byte
}

// exeOptions are the strings userNSOverlay's child uses, computed before
// the clone (a function of its own for the tests).
type exeOptions struct {
	Dir, Name      string // the binary's directory and base name
	Lower          string // fsconfig lowerdir
	UIDMap, GIDMap string // the lines for uid_map and gid_map
	// Root: the caller holds CAP_SYS_ADMIN in the initial user
	// namespace (readOnlyOverlay). The child keeps the caller's user
	// namespace (no maps) and makes the mounts of its copy of the mount
	// namespace private (mount(2) MS_REC|MS_PRIVATE of /) before the
	// tmpfs: a copy made in the same user namespace keeps the caller's
	// peer groups, and a tmpfs on a shared mount would propagate to the
	// host's namespace.
	Root bool
}

func newExeOptions(binary string, uid, gid int) exeOptions {
	dir, name := filepath.Split(binary)
	return exeOptions{
		Dir:    dir,
		Name:   name,
		Lower:  ".:" + escapeLowerDir(dir),
		UIDMap: fmt.Sprintf("%d %d 1\n", uid, uid),
		GIDMap: fmt.Sprintf("%d %d 1\n", gid, gid),
	}
}

func prepareExe(o exeOptions, vm bool) (*exeRaw, error) {
	r := &exeRaw{
		vm:     vm,
		root:   o.Root,
		flags:  unix.CLONE_NEWUSER | unix.CLONE_NEWNS | unix.CLONE_FILES | unix.CLONE_VFORK | uintptr(syscall.SIGCHLD),
		deny:   newRawBytes("deny"),
		uidMap: newRawBytes(o.UIDMap),
		gidMap: newRawBytes(o.GIDMap),
	}
	var err error
	str := func(s string) *byte {
		if err != nil {
			return nil
		}
		var p *byte
		p, err = syscall.BytePtrFromString(s)
		return p
	}
	r.setgroups, r.uidMapPath, r.gidMapPath = str("/proc/self/setgroups"), str("/proc/self/uid_map"), str("/proc/self/gid_map")
	r.dir, r.dot, r.tmpfs, r.overlay, r.slash = str(o.Dir), str("."), str("tmpfs"), str("overlay"), str("/")
	r.lowerKey, r.lower, r.xinoKey, r.xinoOff = str("lowerdir"), str(o.Lower), str("xino"), str("off")
	r.name = str(o.Name)
	if err != nil {
		return nil, err
	}
	if o.Root {
		r.flags &^= unix.CLONE_NEWUSER
	}
	if vm {
		r.flags |= unix.CLONE_VM
		r.stack = make([]byte, forkStack)
		r.stackTop = stackTop(r.stack)
	}
	return r, nil
}

// userNSOverlay is readOnlyOverlay for a caller without CAP_SYS_ADMIN in
// the initial user namespace: the overlay is made by a child in a user
// and mount namespace of its own (see the top of this file).
func userNSOverlay(path string) (*os.File, error) {
	return userNSOverlayVM(path, forkVM)
}

// userNSOverlayVM is userNSOverlay with the child sharing the caller's
// memory (vm) or a fork of it.
func userNSOverlayVM(path string, vm bool) (*os.File, error) {
	real, self, err := runningBinary(path)
	if err != nil {
		return nil, err
	}
	f, err := exeInChild(newExeOptions(real, os.Geteuid(), os.Getegid()), vm)
	if err != nil {
		return nil, fmt.Errorf("in a user namespace of its own: %w", err)
	}
	if err := checkOverlayExe(f, &self); err != nil {
		f.Close()
		return nil, err
	}
	return f, nil
}

// exeInChild runs the child for o and returns the handle it opened.
func exeInChild(o exeOptions, vm bool) (*os.File, error) {
	r, err := prepareExe(o, vm)
	if err != nil {
		return nil, err
	}
	statusR, statusW, err := os.Pipe()
	if err != nil {
		return nil, err
	}
	defer statusR.Close()
	r.status = statusW.Fd()

	unlock := dumpableForOverlay() // it writes its own maps (dumpable.go)
	syscall.ForkLock.Lock()
	pid, errno := forkExeChild(r)
	syscall.ForkLock.Unlock()
	unlock()
	runtime.KeepAlive(r)
	if errno != 0 {
		statusW.Close()
		if o.Root {
			return nil, fmt.Errorf("clone with a mount namespace: %w", errno)
		}
		err := fmt.Errorf("clone with a user and mount namespace: %w", errno)
		if hint := cloneHint(errno, unix.CLONE_NEWUSER|unix.CLONE_NEWNS); hint != "" {
			err = fmt.Errorf("%w: %s", err, hint)
		}
		return nil, err
	}
	var ws unix.WaitStatus
	_, _ = unix.Wait4(pid, &ws, 0, nil)
	statusW.Close()
	var rec [12]byte
	if _, err := io.ReadFull(statusR, rec[:]); err != nil {
		return nil, fmt.Errorf("the child making the overlay ended (%v) without a word: %w", ws, err)
	}
	step := exeStep(binary.LittleEndian.Uint32(rec[0:4]))
	e := syscall.Errno(binary.LittleEndian.Uint32(rec[4:8]))
	value := int(binary.LittleEndian.Uint32(rec[8:12]))
	if step != exeStepDone {
		err := fmt.Errorf("%s: %w", exeStepNames[step], e)
		if value > 0 && value <= len(r.msg) {
			msg := make([]byte, value)
			if _, rerr := io.ReadFull(statusR, msg); rerr == nil {
				err = fmt.Errorf("%s: %w (%s)", exeStepNames[step], e, trimFSMessage(msg))
			}
		}
		if step == exeStepLowerdir || step == exeStepCreate {
			err = fmt.Errorf("%w (lowerdir=%s)", err, o.Lower)
		}
		return nil, err
	}
	return os.NewFile(uintptr(value), o.Dir+o.Name), nil
}

// trimFSMessage is a message read from an fs_context fd ("e overlayfs:
// ...") without its severity letter and newline.
func trimFSMessage(b []byte) string {
	s := string(b)
	if len(s) > 2 && s[1] == ' ' {
		s = s[2:]
	}
	for len(s) > 0 && (s[len(s)-1] == '\n' || s[len(s)-1] == 0) {
		s = s[:len(s)-1]
	}
	return s
}

// runningBinary is the path path (/proc/self/exe) links to, checked to be
// the running binary (same device and inode), and its stat.
func runningBinary(path string) (string, unix.Stat_t, error) {
	real := binaryPath(path)
	var self, there unix.Stat_t
	if err := unix.Stat(path, &self); err != nil {
		return "", self, fmt.Errorf("stat %s: %w", path, err)
	}
	if err := unix.Stat(real, &there); err != nil || self.Dev != there.Dev || self.Ino != there.Ino {
		return "", self, fmt.Errorf("%s is not the running binary (replaced, deleted or not in this mount namespace)", real)
	}
	return real, self, nil
}

// checkOverlayExe checks the handle opened through an overlay: a file on a
// read-only overlayfs superblock with self's inode number, size and
// modification time. (Not its device: overlayfs reports its own, or a
// pseudo device per layer's filesystem, ovl_map_dev_ino; with xino=off
// the inode number is the layer's own.) A binary replaced between the
// path's check and the mount fails here.
func checkOverlayExe(f *os.File, self *unix.Stat_t) error {
	var fs unix.Statfs_t
	if err := unix.Fstatfs(int(f.Fd()), &fs); err != nil {
		return fmt.Errorf("fstatfs of %s in the overlay: %w", f.Name(), err)
	}
	if fs.Type != unix.OVERLAYFS_SUPER_MAGIC || fs.Flags&unix.ST_RDONLY == 0 {
		return fmt.Errorf("%s in the overlay: filesystem type %#x flags %#x, not a read-only overlayfs", f.Name(), fs.Type, fs.Flags)
	}
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return fmt.Errorf("fstat of %s in the overlay: %w", f.Name(), err)
	}
	if st.Ino != self.Ino || st.Size != self.Size || st.Mtim != self.Mtim || st.Mode&unix.S_IFMT != unix.S_IFREG {
		return fmt.Errorf("%s in the overlay is not the running binary (inode %d, %d bytes; want %d, %d bytes)", f.Name(), st.Ino, st.Size, self.Ino, self.Size)
	}
	return nil
}

// forkExeChild starts exeChild, sharing the caller's memory (r.vm) or in
// a fork, and returns its pid once it has exited (CLONE_VFORK). It runs
// with syscall.ForkLock held; everything after the clone follows
// forkexec.go's rules.
//
//go:noinline
//go:norace
//go:nocheckptr
func forkExeChild(r *exeRaw) (pid int, err syscall.Errno) {
	var (
		p uintptr
		e syscall.Errno
	)
	runtimeBeforeFork()
	if r.vm {
		p, e = cloneOnStack(r.flags, r.stackTop, unsafe.Pointer(r), exeStage)
		runtimeAfterFork()
		return int(p), e
	}
	p, e = rawClone(r.flags &^ uintptr(syscall.SIGCHLD))
	if e != 0 || p != 0 {
		runtimeAfterFork()
		return int(p), e
	}
	runtimeAfterForkInChild()
	exeChild(r)
	return 0, 0
}

// exeChild makes the overlay and opens the binary in it (see the top of
// this file); it never returns.
//
//go:nosplit
//go:norace
//go:nocheckptr
func exeChild(r *exeRaw) {
	var (
		ctx, mnt, fd uintptr
		e            syscall.Errno
	)
	if r.root {
		_, _, e = syscall.RawSyscall6(syscall.SYS_MOUNT, 0, uintptr(unsafe.Pointer(r.slash)), 0, unix.MS_REC|unix.MS_PRIVATE, 0, 0)
		if e != 0 {
			exeReport(r, exeStepPrivate, e, 0, noCtx)
		}
	} else {
		if e = writeProc(r.setgroups, r.deny); e != 0 {
			exeReport(r, exeStepSetgroups, e, 0, noCtx)
		}
		if e = writeProc(r.uidMapPath, r.uidMap); e != 0 {
			exeReport(r, exeStepUIDMap, e, 0, noCtx)
		}
		if e = writeProc(r.gidMapPath, r.gidMap); e != 0 {
			exeReport(r, exeStepGIDMap, e, 0, noCtx)
		}
	}
	if _, _, e = syscall.RawSyscall(syscall.SYS_CHDIR, uintptr(unsafe.Pointer(r.dir)), 0, 0); e != 0 {
		exeReport(r, exeStepChdir, e, 0, noCtx)
	}
	_, _, e = syscall.RawSyscall6(syscall.SYS_MOUNT, uintptr(unsafe.Pointer(r.tmpfs)), uintptr(unsafe.Pointer(r.dot)), uintptr(unsafe.Pointer(r.tmpfs)),
		unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, 0, 0)
	if e != 0 {
		exeReport(r, exeStepTmpfs, e, 0, noCtx)
	}
	ctx, _, e = syscall.RawSyscall(unix.SYS_FSOPEN, uintptr(unsafe.Pointer(r.overlay)), unix.FSOPEN_CLOEXEC, 0)
	if e != 0 {
		exeReport(r, exeStepFsopen, e, 0, noCtx)
	}
	_, _, e = syscall.RawSyscall6(unix.SYS_FSCONFIG, ctx, unix.FSCONFIG_SET_STRING, uintptr(unsafe.Pointer(r.lowerKey)), uintptr(unsafe.Pointer(r.lower)), 0, 0)
	if e != 0 {
		exeReport(r, exeStepLowerdir, e, 0, ctx)
	}
	// xino is of no use here (and keeps the layers' inode numbers, which
	// checkOverlayExe compares); a kernel without the option is fine.
	syscall.RawSyscall6(unix.SYS_FSCONFIG, ctx, unix.FSCONFIG_SET_STRING, uintptr(unsafe.Pointer(r.xinoKey)), uintptr(unsafe.Pointer(r.xinoOff)), 0, 0)
	if _, _, e = syscall.RawSyscall6(unix.SYS_FSCONFIG, ctx, unix.FSCONFIG_CMD_CREATE, 0, 0, 0, 0); e != 0 {
		exeReport(r, exeStepCreate, e, 0, ctx)
	}
	mnt, _, e = syscall.RawSyscall(unix.SYS_FSMOUNT, ctx, unix.FSMOUNT_CLOEXEC, unix.MOUNT_ATTR_RDONLY|unix.MOUNT_ATTR_NODEV|unix.MOUNT_ATTR_NOSUID)
	if e != 0 {
		exeReport(r, exeStepFsmount, e, 0, ctx)
	}
	syscall.RawSyscall(syscall.SYS_CLOSE, ctx, 0, 0)
	fd, _, e = syscall.RawSyscall6(syscall.SYS_OPENAT, mnt, uintptr(unsafe.Pointer(r.name)), unix.O_PATH|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0, 0, 0)
	syscall.RawSyscall(syscall.SYS_CLOSE, mnt, 0, 0)
	if e != 0 {
		exeReport(r, exeStepOpen, e, 0, noCtx)
	}
	exeReport(r, exeStepDone, 0, fd, noCtx)
}

// noCtx: no fs_context to read a message from.
const noCtx = ^uintptr(0)

// writeProc writes b to the file at path (a /proc/self file).
//
//go:nosplit
//go:norace
//go:nocheckptr
func writeProc(path *byte, b rawBytes) syscall.Errno {
	var (
		fd, n uintptr
		e     syscall.Errno
	)
	fd, _, e = syscall.RawSyscall6(syscall.SYS_OPENAT, atFDCWD, uintptr(unsafe.Pointer(path)), syscall.O_WRONLY|syscall.O_CLOEXEC, 0, 0, 0)
	if e != 0 {
		return e
	}
	n, _, e = syscall.RawSyscall(syscall.SYS_WRITE, fd, uintptr(b.p), b.n)
	syscall.RawSyscall(syscall.SYS_CLOSE, fd, 0, 0)
	if e == 0 && n != b.n {
		e = syscall.EIO
	}
	return e
}

// exeReport writes the child's record {step, errno, value} to the status
// pipe and exits; on a failure with an fs_context (ctx), the value is the
// length of the kernel's message, read from ctx and written after the
// record, and ctx is closed.
//
//go:nosplit
//go:norace
//go:nocheckptr
func exeReport(r *exeRaw, step exeStep, errno syscall.Errno, value uintptr, ctx uintptr) {
	var (
		n uintptr
		e syscall.Errno
	)
	if ctx != noCtx {
		n, _, e = syscall.RawSyscall(syscall.SYS_READ, ctx, uintptr(unsafe.Pointer(&r.msg[0])), uintptr(len(r.msg)))
		if e != 0 {
			n = 0
		}
		syscall.RawSyscall(syscall.SYS_CLOSE, ctx, 0, 0)
		value = n
	}
	putU32(&r.rec, 0, uint32(step))
	putU32(&r.rec, 4, uint32(errno))
	putU32(&r.rec, 8, uint32(value))
	syscall.RawSyscall(syscall.SYS_WRITE, r.status, uintptr(unsafe.Pointer(&r.rec[0])), uintptr(len(r.rec)))
	if n > 0 {
		syscall.RawSyscall(syscall.SYS_WRITE, r.status, uintptr(unsafe.Pointer(&r.msg[0])), n)
	}
	for {
		syscall.RawSyscall(syscall.SYS_EXIT, 0, 0, 0)
	}
}
