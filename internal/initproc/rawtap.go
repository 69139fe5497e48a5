//go:build linux

package initproc

import (
	"encoding/binary"
	"errors"
	"unsafe"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/userns"
)

// The tap of sandy's own network (--network=usernet, internal/usernet),
// made by the raw init (or by sandy's Go init with the same ops:
// makeTap) in the container's network namespace, which its user
// namespace owns: tap0 with slirp4netns --configure's addresses
// (10.0.2.100/24, the default route through 10.0.2.2, the MTU), its fd
// handed to the host over a socket, where the user-mode stack serves
// it. The host end of a tap lives in the container's network namespace
// only as an fd: whoever holds it (the host) reads and writes the
// container's frames, and the namespace needs no process of the host's.
//
// The program does what slirp4netns's child does (tun_alloc and
// configure_network in slirp4netns's main.c), with the same ioctls:
//
//	open /dev/net/tun                  the host's /dev (before pivot_root)
//	TUNSETIFF tap0, IFF_TAP|IFF_NO_PI  Ethernet frames, no packet info
//	SIOCSIFMTU, SIOCSIFADDR, SIOCSIFNETMASK, SIOCSIFFLAGS IFF_UP
//	SIOCADDRT 0.0.0.0/0 via 10.0.2.2
//	dup3 onto RawTap.FD, sendmsg SCM_RIGHTS on RawTap.Socket, close both
//
// RawTap.Socket and RawTap.FD are fds of the child's own (ForkPlan.Files:
// the socket's end, and a placeholder that the tap replaces, so that the
// fd number the message names is known when the program is planned);
// the program closes both, so the container's process has neither.

// RawTap asks the raw init for tap0 (RawInput.Tap), or sandy's Go init
// (Config.Tap: its fds are inherited ones, above SyncFD and FifoFD).
type RawTap struct {
	// Socket is the child's fd of a unix socket to the host; FD an fd of
	// the child's (a placeholder) that becomes the tap's for the send.
	Socket, FD int
	// MTU of tap0.
	MTU int
}

// The addresses slirp4netns --configure gives tap0 (slirp.ContainerIP,
// slirp.GatewayIP; initproc imports no slirp).
var (
	tapAddr    = [4]byte{10, 0, 2, 100}
	tapMask    = [4]byte{255, 255, 255, 0}
	tapGateway = [4]byte{10, 0, 2, 2}
)

const tapName = "tap0"

// ifreq is struct ifreq: a name and a 24-byte union (netdevice(7)).
type ifreq struct {
	name [unix.IFNAMSIZ]byte
	data [24]byte
}

func tapIfreq() ifreq {
	var r ifreq
	copy(r.name[:], tapName)
	return r
}

func (r *ifreq) setShort(v uint16) { binary.NativeEndian.PutUint16(r.data[:], v) }
func (r *ifreq) setInt(v int32)    { binary.NativeEndian.PutUint32(r.data[:], uint32(v)) }
func (r *ifreq) setAddr(a [4]byte) { *(*unix.RawSockaddrInet4)(unsafe.Pointer(&r.data[0])) = inet4(a) }

func (r *ifreq) buf() userns.Arg {
	return userns.Buf(append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(r)), unsafe.Sizeof(*r))...))
}

func inet4(a [4]byte) unix.RawSockaddrInet4 {
	return unix.RawSockaddrInet4{Family: unix.AF_INET, Addr: a}
}

// rtentry is struct rtentry (route(4), SIOCADDRT), 64-bit layout.
type rtentry struct {
	pad1    uint64
	dst     unix.RawSockaddrInet4
	gateway unix.RawSockaddrInet4
	genmask unix.RawSockaddrInet4
	flags   uint16
	pad2    int16
	pad3    uint64
	pad4    uintptr
	metric  int16
	dev     uintptr
	mtu     uint64
	window  uint64
	irtt    uint16
}

// tap adds the ops that make tap0 and hand its fd to the host (see the
// top of this file); none without RawInput.Tap.
func (b *rawBuilder) tap() string {
	t := b.in.Tap
	if t == nil {
		return ""
	}
	if !hasNamespace(b.s, specs.NetworkNamespace) {
		return "a tap for sandy's network without a network namespace of the container's own"
	}
	b.op("opening /dev/net/tun", unix.SYS_OPENAT, userns.Val(atFDCWD), userns.Str("/dev/net/tun"), userns.Val(unix.O_RDWR|unix.O_CLOEXEC), userns.Val(0)).Out = slotTap
	r := tapIfreq()
	r.setShort(unix.IFF_TAP | unix.IFF_NO_PI)
	b.op("making "+tapName+" (TUNSETIFF)", unix.SYS_IOCTL, userns.Slot(slotTap), userns.Val(unix.TUNSETIFF), r.buf())
	// Persistent: the host's close of the fd, at the run's end, then
	// only detaches it; the device goes with the network namespace,
	// which the kernel ends in a worker. Unregistering it in the close
	// cost the run's wait 12 ms (synchronize_net in the last close).
	b.op("making "+tapName+" outlive its fd (TUNSETPERSIST)", unix.SYS_IOCTL, userns.Slot(slotTap), userns.Val(unix.TUNSETPERSIST), userns.Val(1))
	b.op("a socket for "+tapName, unix.SYS_SOCKET, userns.Val(unix.AF_INET), userns.Val(unix.SOCK_DGRAM|unix.SOCK_CLOEXEC), userns.Val(0)).Out = slotSock
	r = tapIfreq()
	r.setInt(int32(t.MTU))
	b.op("setting "+tapName+"'s MTU", unix.SYS_IOCTL, userns.Slot(slotSock), userns.Val(unix.SIOCSIFMTU), r.buf())
	r = tapIfreq()
	r.setAddr(tapAddr)
	b.op("setting "+tapName+"'s address", unix.SYS_IOCTL, userns.Slot(slotSock), userns.Val(unix.SIOCSIFADDR), r.buf())
	r = tapIfreq()
	r.setAddr(tapMask)
	b.op("setting "+tapName+"'s netmask", unix.SYS_IOCTL, userns.Slot(slotSock), userns.Val(unix.SIOCSIFNETMASK), r.buf())
	r = tapIfreq()
	r.setShort(unix.IFF_UP)
	b.op("bringing up "+tapName, unix.SYS_IOCTL, userns.Slot(slotSock), userns.Val(unix.SIOCSIFFLAGS), r.buf())
	rt := rtentry{dst: inet4([4]byte{}), gateway: inet4(tapGateway), genmask: inet4([4]byte{}), flags: unix.RTF_UP | unix.RTF_GATEWAY}
	b.op("adding the default route through 10.0.2.2", unix.SYS_IOCTL, userns.Slot(slotSock), userns.Val(unix.SIOCADDRT),
		userns.Buf(append([]byte(nil), unsafe.Slice((*byte)(unsafe.Pointer(&rt)), unsafe.Sizeof(rt))...)))
	b.close(slotSock)
	b.op("putting "+tapName+" on its fd for the host", unix.SYS_DUP3, userns.Slot(slotTap), userns.Val(uintptr(t.FD)), userns.Val(unix.O_CLOEXEC))
	b.close(slotTap)
	msg, iov, data, control := tapMessage(t.FD)
	// sendmsg takes three arguments; the other three keep the buffers
	// that msg points to alive with the plan (the kernel ignores them).
	b.op("handing "+tapName+" to the host", unix.SYS_SENDMSG, userns.Val(uintptr(t.Socket)), userns.Buf(msg), userns.Val(unix.MSG_NOSIGNAL),
		userns.Buf(iov), userns.Buf(data), userns.Buf(control))
	b.op("closing the tap's fd", unix.SYS_CLOSE, userns.Val(uintptr(t.FD)))
	b.op("closing the socket to the host", unix.SYS_CLOSE, userns.Val(uintptr(t.Socket)))
	return ""
}

// makeTap is tap for sandy's Go init (Config.Tap): the same ops, run in
// its own process (userns.RunProgram) once it has its capabilities in
// the container's user namespace, before its root filesystem.
func makeTap(s *specs.Spec, t *RawTap) error {
	b := &rawBuilder{in: RawInput{Tap: t}, s: s}
	if why := b.tap(); why != "" {
		return errors.New(why)
	}
	return userns.RunProgram(b.ops)
}

// tapMessage is a msghdr with one byte of data and fd as SCM_RIGHTS.
// msg and iov are views of typed values (their pointer fields are the
// garbage collector's to trace, and a view keeps its value alive); the
// plan holds all four until the child has sent it (Go's heap does not
// move).
func tapMessage(fd int) (msg, iov, data, control []byte) {
	data = []byte{'t'}
	control = unix.UnixRights(fd)
	v := &unix.Iovec{Base: &data[0]}
	v.SetLen(len(data))
	m := &unix.Msghdr{Iov: v, Control: &control[0]}
	m.SetIovlen(1)
	m.SetControllen(len(control))
	msg = unsafe.Slice((*byte)(unsafe.Pointer(m)), unsafe.Sizeof(*m))
	iov = unsafe.Slice((*byte)(unsafe.Pointer(v)), unsafe.Sizeof(*v))
	return msg, iov, data, control
}
