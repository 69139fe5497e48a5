package slirp

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"runtime"
	"strconv"
	"strings"
	"unsafe"

	"golang.org/x/sys/unix"
)

// Bind bypass (experimental, opt-in through Options.BindNotifier).
//
// A forwarder makes every byte cross two TCP connections. With the bypass,
// the container's listening socket for a published TCP port is itself a
// socket of the host's network namespace, bound to the -p host address:
// clients connect straight to the container's server, at loopback speed, and
// the server sees every client's real address. The mechanism is seccomp's
// user notification (seccomp_unotify(2)), as in
// rootless-containers/bypass4netns:
//
//  1. The container side installs InstallBindNotifier's filter on the thread
//     that will execve(2) the container's process; every bind(2) of that
//     process and its children then waits for the supervisor.
//  2. The listener fd goes to the host side (Options.BindNotifier).
//  3. The monitor reads bind's sockaddr from the process' memory
//     (/proc/PID/mem), re-checks that the notification is still live
//     (SECCOMP_IOCTL_NOTIF_ID_VALID, against pid reuse), and when the port is
//     a published TCP port, creates a socket in the host's namespace with the
//     same domain, type flags and SO_REUSEADDR/IPV6_V6ONLY, binds it to the
//     host address and port, installs it over the container's fd
//     (SECCOMP_IOCTL_NOTIF_ADDFD with SECCOMP_ADDFD_FLAG_SETFD), and answers
//     bind with 0. Any other bind continues unchanged
//     (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
//
// Costs: the container no longer reaches its own published port on its own
// 127.0.0.1 (the socket is not in its namespace), getsockname shows the host
// address, and a host port taken meanwhile makes the container's bind fail
// with EADDRINUSE. Published TCP ports then get no forwarder; UDP keeps it.

// seccompData, seccompNotif, seccompNotifResp and seccompNotifAddfd mirror
// <linux/seccomp.h>.
type seccompData struct {
	Nr                 int32
	Arch               uint32
	InstructionPointer uint64
	Args               [6]uint64
}

type seccompNotif struct {
	ID    uint64
	Pid   uint32
	Flags uint32
	Data  seccompData
}

type seccompNotifResp struct {
	ID    uint64
	Val   int64
	Error int32
	Flags uint32
}

type seccompNotifAddfd struct {
	ID         uint64
	Flags      uint32
	Srcfd      uint32
	Newfd      uint32
	NewfdFlags uint32
}

// nativeAudit is the AUDIT_ARCH of this build; other architectures' bind
// calls (x32, ia32 on amd64) pass unchanged.
func nativeAudit() (uint32, error) {
	switch runtime.GOARCH {
	case "amd64":
		return unix.AUDIT_ARCH_X86_64, nil
	case "arm64":
		return unix.AUDIT_ARCH_AARCH64, nil
	default:
		return 0, fmt.Errorf("bind bypass: architecture %s not supported", runtime.GOARCH)
	}
}

// InstallBindNotifier installs on the calling thread a seccomp filter that
// hands every bind(2) to a supervisor, and returns the supervisor's end, the
// listener fd, for Options.BindNotifier. A seccomp filter belongs to the
// thread that installs it (without SECCOMP_FILTER_FLAG_TSYNC, which cannot
// be combined with a listener here): the caller must hold the thread with
// runtime.LockOSThread and execve(2) the container's process from it. The
// thread needs no_new_privs or CAP_SYS_ADMIN in its user namespace
// (seccomp(2)); root in the container's namespace has it.
func InstallBindNotifier() (*os.File, error) {
	arch, err := nativeAudit()
	if err != nil {
		return nil, err
	}
	const (
		offNr   = 0
		offArch = 4
	)
	prog := []unix.SockFilter{
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offArch},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 3, K: arch},
		{Code: unix.BPF_LD | unix.BPF_W | unix.BPF_ABS, K: offNr},
		{Code: unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, Jt: 0, Jf: 1, K: uint32(unix.SYS_BIND)},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_USER_NOTIF},
		{Code: unix.BPF_RET | unix.BPF_K, K: unix.SECCOMP_RET_ALLOW},
	}
	fprog := unix.SockFprog{Len: uint16(len(prog)), Filter: &prog[0]}
	fd, _, errno := unix.RawSyscall(unix.SYS_SECCOMP, unix.SECCOMP_SET_MODE_FILTER,
		unix.SECCOMP_FILTER_FLAG_NEW_LISTENER, uintptr(unsafe.Pointer(&fprog)))
	runtime.KeepAlive(prog)
	if errno != 0 {
		return nil, fmt.Errorf("installing bind notifier: seccomp(SECCOMP_SET_MODE_FILTER, NEW_LISTENER): %w", errno)
	}
	unix.CloseOnExec(int(fd))
	return os.NewFile(fd, "seccomp-bind-notifier"), nil
}

// errNoTarget: every process under the filter has exited.
var errNoTarget = errors.New("no process left under the bind notifier")

// bypass answers bind notifications for the published TCP ports.
type bypass struct {
	listener *os.File
	ports    []PortSpec
	log      *slog.Logger
}

// serve answers notifications until the listener is closed (teardown) or
// the filter has no process left.
func (b *bypass) serve() {
	rc, err := b.listener.SyscallConn()
	if err != nil {
		b.log.Error("bind bypass", "err", err)
		return
	}
	for {
		var n seccompNotif
		var recvErr error
		err := rc.Read(func(fd uintptr) bool {
			// RECV blocks whatever O_NONBLOCK says, and a thread blocked
			// in it would also block the listener's Close at teardown: ask
			// only when poll(2) reports a pending notification.
			pfds := []unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}
			ready, perr := unix.Poll(pfds, 0)
			switch {
			case perr != nil && errors.Is(perr, unix.EINTR), perr == nil && ready == 0:
				return false
			case perr != nil:
				recvErr = perr
				return true
			case pfds[0].Revents&unix.POLLIN == 0:
				recvErr = errNoTarget // POLLHUP: no process has the filter any more
				return true
			}
			n = seccompNotif{}
			recvErr = ioctlPtr(fd, unix.SECCOMP_IOCTL_NOTIF_RECV, unsafe.Pointer(&n))
			return true
		})
		if err != nil || errors.Is(recvErr, errNoTarget) {
			return // listener closed, or nothing left to serve
		}
		if recvErr != nil {
			if errors.Is(recvErr, unix.ENOENT) || errors.Is(recvErr, unix.EINTR) {
				continue // the process died or the call was interrupted
			}
			b.log.Error("bind bypass: receiving notification", "err", recvErr)
			return
		}
		_ = rc.Control(func(fd uintptr) { b.handle(fd, &n) })
	}
}

func ioctlPtr(fd uintptr, req uint, arg unsafe.Pointer) error {
	_, _, errno := unix.Syscall(unix.SYS_IOCTL, fd, uintptr(req), uintptr(arg))
	if errno != 0 {
		return errno
	}
	return nil
}

// handle answers one notification: swap, fail, or continue.
func (b *bypass) handle(lfd uintptr, n *seccompNotif) {
	resp := seccompNotifResp{ID: n.ID, Flags: unix.SECCOMP_USER_NOTIF_FLAG_CONTINUE}
	switch swapped, errno := b.swap(lfd, n); {
	case errno != 0:
		resp = seccompNotifResp{ID: n.ID, Error: -int32(errno)}
	case swapped:
		resp = seccompNotifResp{ID: n.ID}
	}
	if err := ioctlPtr(lfd, unix.SECCOMP_IOCTL_NOTIF_SEND, unsafe.Pointer(&resp)); err != nil && !errors.Is(err, unix.ENOENT) {
		b.log.Error("bind bypass: answering bind", "pid", n.Pid, "err", err)
	}
}

// swap reports whether it installed a host socket over the container's, or
// the errno that bind must fail with; (false, 0) lets bind continue.
func (b *bypass) swap(lfd uintptr, n *seccompNotif) (bool, unix.Errno) {
	if n.Data.Nr != int32(unix.SYS_BIND) {
		return false, 0
	}
	pid, fd, addrLen := int(n.Pid), int(n.Data.Args[0]), n.Data.Args[2]
	if addrLen < 4 || addrLen > 128 {
		return false, 0
	}
	buf := make([]byte, addrLen)
	mem, err := os.Open("/proc/" + strconv.Itoa(pid) + "/mem")
	if err != nil {
		b.log.Error("bind bypass: reading bind's address", "pid", pid, "err", err)
		return false, 0
	}
	_, err = mem.ReadAt(buf, int64(n.Data.Args[1]))
	mem.Close()
	if err != nil {
		return false, 0
	}
	// The notification still being live proves that pid was not reused
	// between RECV and the open of its memory.
	id := n.ID
	if err := ioctlPtr(lfd, unix.SECCOMP_IOCTL_NOTIF_ID_VALID, unsafe.Pointer(&id)); err != nil {
		return false, 0
	}
	family := int(binary.NativeEndian.Uint16(buf[0:2]))
	var port int
	switch {
	case family == unix.AF_INET && len(buf) >= 16, family == unix.AF_INET6 && len(buf) >= 24:
		port = int(binary.BigEndian.Uint16(buf[2:4]))
	default:
		return false, 0
	}
	spec, ok := b.published(port)
	if !ok {
		return false, 0
	}
	pidfd, err := unix.PidfdOpen(pid, 0)
	if err != nil {
		return false, 0
	}
	sfd, err := unix.PidfdGetfd(pidfd, fd, 0)
	unix.Close(pidfd)
	if err != nil {
		b.log.Error("bind bypass: pidfd_getfd", "pid", pid, "fd", fd, "err", err)
		return false, 0
	}
	defer unix.Close(sfd)
	if typ, _ := unix.GetsockoptInt(sfd, unix.SOL_SOCKET, unix.SO_TYPE); typ != unix.SOCK_STREAM {
		return false, 0
	}
	if domain, _ := unix.GetsockoptInt(sfd, unix.SOL_SOCKET, unix.SO_DOMAIN); domain != family {
		return false, 0
	}
	reuse, _ := unix.GetsockoptInt(sfd, unix.SOL_SOCKET, unix.SO_REUSEADDR)
	v6only := 0
	if family == unix.AF_INET6 {
		v6only, _ = unix.GetsockoptInt(sfd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY)
	}
	sa, ok := hostSockaddr(family, v6only == 1, spec)
	if !ok {
		b.log.Warn("bind bypass: host address does not fit the container's socket family; bind continues inside", "port", spec.String())
		return false, 0
	}
	flags := unix.SOCK_STREAM | unix.SOCK_CLOEXEC
	if fl, err := unix.FcntlInt(uintptr(sfd), unix.F_GETFL, 0); err == nil && fl&unix.O_NONBLOCK != 0 {
		flags |= unix.SOCK_NONBLOCK
	}
	hfd, err := unix.Socket(family, flags, 0)
	if err != nil {
		return false, 0
	}
	defer unix.Close(hfd)
	_ = unix.SetsockoptInt(hfd, unix.SOL_SOCKET, unix.SO_REUSEADDR, reuse)
	if family == unix.AF_INET6 {
		_ = unix.SetsockoptInt(hfd, unix.IPPROTO_IPV6, unix.IPV6_V6ONLY, v6only)
	}
	if err := unix.Bind(hfd, sa); err != nil {
		var errno unix.Errno
		if errors.As(err, &errno) {
			b.log.Warn("bind bypass: binding the host address", "port", spec.String(), "err", err)
			return false, errno
		}
		return false, 0
	}
	add := seccompNotifAddfd{ID: n.ID, Flags: unix.SECCOMP_ADDFD_FLAG_SETFD, Srcfd: uint32(hfd), Newfd: uint32(fd)}
	if cloexec(pid, fd) {
		add.NewfdFlags = unix.O_CLOEXEC
	}
	if err := ioctlPtr(lfd, unix.SECCOMP_IOCTL_NOTIF_ADDFD, unsafe.Pointer(&add)); err != nil {
		b.log.Error("bind bypass: installing the host socket", "pid", pid, "fd", fd, "err", err)
		return false, 0
	}
	b.log.Info("bind bypassed", "pid", pid, "fd", fd, "port", spec.String())
	return true, 0
}

// published returns the TCP forward for a container port.
func (b *bypass) published(port int) (PortSpec, bool) {
	for _, p := range b.ports {
		if p.Proto == "tcp" && p.ContainerPort == port {
			return p, true
		}
	}
	return PortSpec{}, false
}

// hostSockaddr is p's host address in a socket of family: an IPv4 host
// address in an IPv6 socket becomes v4-mapped, unless the socket is
// v6-only.
func hostSockaddr(family int, v6only bool, p PortSpec) (unix.Sockaddr, bool) {
	var ip netip.Addr
	if p.HostIP != "" {
		var err error
		if ip, err = netip.ParseAddr(p.HostIP); err != nil {
			return nil, false
		}
	}
	switch family {
	case unix.AF_INET:
		if !ip.IsValid() {
			ip = netip.IPv4Unspecified()
		}
		if !ip.Is4() {
			return nil, false
		}
		return &unix.SockaddrInet4{Port: p.HostPort, Addr: ip.As4()}, true
	default:
		if !ip.IsValid() {
			ip = netip.IPv6Unspecified()
		}
		if ip.Is4() && v6only {
			return nil, false
		}
		return &unix.SockaddrInet6{Port: p.HostPort, Addr: ip.As16()}, true
	}
}

// cloexec reports whether pid's fd is close-on-exec, from
// /proc/PID/fdinfo/FD's octal "flags:" line (proc(5)).
func cloexec(pid, fd int) bool {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/fdinfo/" + strconv.Itoa(fd))
	if err != nil {
		return false
	}
	for _, line := range bytes.Split(data, []byte("\n")) {
		if v, ok := strings.CutPrefix(string(line), "flags:"); ok {
			fl, err := strconv.ParseUint(strings.TrimSpace(v), 8, 64)
			return err == nil && fl&unix.O_CLOEXEC != 0
		}
	}
	return false
}
