//go:build linux

package slirp

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/lowlevelmsgutil"
	"golang.org/x/sys/unix"
)

// RunPortChild is the hidden PortChildCommand of the sandy binary, the half
// of rootlesskit's builtin port driver that runs inside the container's user
// and network namespaces. Launch starts it as
//
//	nsenter -t PID -n -U --preserve-credentials -- /proc/self/fd/3 slirp-port-child --socket=STATEDIR/.bp.sock --ready-pipe=STATEDIR/.bp-ready.pipe
//
// (-U only when the container has a user namespace other than sandy's: see
// portChildNsenterArgs)
//
// where fd 3 is the sealed sandy binary (Options.Exe): what runs inside the
// container's user namespace is that copy, never a binary the caller, and
// so the container's root, could write (CVE-2019-5736).
//
// with its stdin on a pipe whose other end only the monitor holds; args are
// the arguments after the subcommand name. It exits when stdin reaches EOF,
// which is when the monitor exits, kill -9 included.
//
// It speaks the protocol of rootlesskit's builtin child (package msg;
// portRequest, portReply): for
// each connection the parent accepts on the host, the parent asks over the
// unix socket, this process dials the container-side address in the
// container's network namespace and passes the connected socket back with
// SCM_RIGHTS; the parent then copies bytes between the two sockets (splice).
//
// Unlike rootlesskit's child, it keeps the client's address for TCP clients
// on the host's loopback (127.0.0.0/8, ::1): those addresses are local in
// the container's namespace too, so it binds the container-side socket to
// the client's own address and port before connecting, and the server in
// the container sees the real peer (127.0.0.2:41234, not 127.0.0.1). That
// needs no privilege, no IP_TRANSPARENT and no firewall rules. Other client
// addresses are not local inside; for them the server sees 127.0.0.1.
func RunPortChild(args []string) error {
	fs := flag.NewFlagSet(PortChildCommand, flag.ContinueOnError)
	socketPath := fs.String("socket", "", "unix socket to serve the parent driver on")
	readyPipe := fs.String("ready-pipe", "", "fifo to close once serving")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *socketPath == "" || *readyPipe == "" {
		return errors.New("usage: slirp-port-child --socket=PATH --ready-pipe=PATH")
	}
	// Not dumpable: a process of the container that can see this one must
	// not read its memory or open its /proc/PID/exe through the dumpable
	// check (CVE-2019-5736). See doc.go, Security, for what this does not
	// cover.
	if err := unix.Prctl(unix.PR_SET_DUMPABLE, 0, 0, 0, 0); err != nil {
		return fmt.Errorf("port child: prctl(PR_SET_DUMPABLE): %w", err)
	}
	go func() {
		_, _ = io.Copy(io.Discard, os.Stdin)
		os.Exit(0)
	}()
	ready, err := openReadyPipe(*readyPipe)
	if err != nil {
		return fmt.Errorf("port child: %w", err)
	}
	_ = os.Remove(*socketPath)
	addr, done, err := sockPath(filepath.Dir(*socketPath), filepath.Base(*socketPath))
	if err != nil {
		ready.Close()
		return fmt.Errorf("port child: %w", err)
	}
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Name: addr, Net: "unix"})
	done()
	if err != nil {
		ready.Close()
		return fmt.Errorf("port child: %w", err)
	}
	if err := ready.Close(); err != nil {
		return fmt.Errorf("port child: closing ready pipe: %w", err)
	}
	for {
		c, err := ln.AcceptUnix()
		if err != nil {
			if errors.Is(err, unix.EINTR) || errors.Is(err, unix.ECONNABORTED) {
				continue
			}
			return fmt.Errorf("port child: accepting: %w", err)
		}
		go serveParent(c)
	}
}

// openReadyPipe opens the parent driver's fifo for writing. The child starts
// at the same time as the monitor, which creates the fifo, so it waits for
// the fifo to appear; Launch removed any stale one first. The open itself
// blocks until the parent driver opens the other end (fifo(7)).
func openReadyPipe(path string) (*os.File, error) {
	deadline := time.Now().Add(startTimeout)
	for {
		st, err := os.Lstat(path)
		if err == nil && st.Mode()&os.ModeNamedPipe != 0 {
			break
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("fifo %s did not appear in %s", path, startTimeout)
		}
		time.Sleep(time.Millisecond)
	}
	return os.OpenFile(path, os.O_WRONLY|unix.O_CLOEXEC, 0)
}

func serveParent(c *net.UnixConn) {
	defer c.Close()
	_ = c.SetDeadline(time.Now().Add(10 * time.Second))
	var req portRequest
	if _, err := lowlevelmsgutil.UnmarshalFromReader(c, &req); err != nil {
		fmt.Fprintf(os.Stderr, "port child: reading request: %v\n", err)
		return
	}
	switch req.Type {
	case requestInit:
		_, _ = lowlevelmsgutil.MarshalToWriter(c, &portReply{})
	case requestConnect:
		if err := connect(c, &req); err != nil {
			fmt.Fprintf(os.Stderr, "port child: %v\n", err)
			_, _ = lowlevelmsgutil.MarshalToWriter(c, &portReply{Error: err.Error()})
		}
	default:
		_, _ = lowlevelmsgutil.MarshalToWriter(c, &portReply{Error: fmt.Sprintf("unknown request type %q", req.Type)})
	}
}

// connect dials req's container-side address and sends the socket to the
// parent as SCM_RIGHTS.
func connect(c *net.UnixConn, req *portRequest) error {
	proto := strings.TrimRight(req.Proto, "46")
	if proto != "tcp" && proto != "udp" {
		return fmt.Errorf("unknown proto %q", req.Proto)
	}
	ip := req.IP
	if ip == "" {
		ip = "127.0.0.1"
	}
	target := net.JoinHostPort(ip, strconv.Itoa(req.Port))
	conn, err := dialKeepingSource(proto, target, req.SourceIP, req.SourcePort)
	if err != nil {
		return fmt.Errorf("dialing %s %s: %w", proto, target, err)
	}
	defer conn.Close()
	f, err := conn.(interface{ File() (*os.File, error) }).File()
	if err != nil {
		return err
	}
	defer f.Close()
	_, _, err = c.WriteMsgUnix([]byte("dummy"), unix.UnixRights(int(f.Fd())), nil)
	return err
}

// dialKeepingSource dials target; for a TCP client on the host's loopback it
// first binds the client's address, and port when free, so that the server
// sees the real peer. Any failure there falls back to a plain dial.
func dialKeepingSource(proto, target, srcIP string, srcPort int) (net.Conn, error) {
	d := net.Dialer{Timeout: 5 * time.Second}
	src := net.ParseIP(srcIP)
	dst, _, _ := net.SplitHostPort(target)
	dstIP := net.ParseIP(dst)
	if proto != "tcp" || src == nil || !src.IsLoopback() || dstIP == nil || (src.To4() == nil) != (dstIP.To4() == nil) {
		return d.Dial(proto, target)
	}
	for _, p := range []int{srcPort, 0} {
		d.LocalAddr = &net.TCPAddr{IP: src, Port: p}
		conn, err := d.Dial(proto, target)
		if err == nil {
			return conn, nil
		}
		if !errors.Is(err, unix.EADDRINUSE) && !errors.Is(err, unix.EADDRNOTAVAIL) {
			return nil, err
		}
	}
	d.LocalAddr = nil
	return d.Dial(proto, target)
}
