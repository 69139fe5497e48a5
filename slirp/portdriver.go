//go:build linux

package slirp

import (
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/rootless-containers/rootlesskit/v3/pkg/lowlevelmsgutil"
	"github.com/rootless-containers/rootlesskit/v3/pkg/port/builtin/parent/udp/udpproxy"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/fds"
)

// The host halves of the two port drivers, which the monitor runs.
//
// Why not rootlesskit's (pkg/port/builtin/parent, pkg/port/slirp4netns):
// every one of its port packages imports pkg/port, whose
// VirtualNetworkProvider names *http.ServeMux, so using them linked
// net/http, crypto/tls, crypto/x509 and compress/flate into sandy, whose
// package inits cost every sandy process about 3 ms (the container's init
// and exec's included; docs/design.md, Performance; TestRuntimeDeps keeps
// them out). What is left is small and speaks the same protocols: the
// builtin driver's framing (lowlevelmsgutil) and its UDP proxy (udpproxy)
// are still rootlesskit's, only the TCP accept-and-copy loop, the request
// for a socket from the port child and slirp4netns' two API calls are
// here, as rootlesskit v3.3.0 wrote them.

// portDriver forwards host ports into the container.
type portDriver interface {
	// add starts forwarding spec and returns the function that stops it.
	add(spec forwardSpec) (stop func(), err error)
}

// forwardSpec is one forward as the drivers see it (rootlesskit's
// port.Spec).
type forwardSpec struct {
	Proto      string // tcp, tcp4, tcp6, udp, udp4 or udp6
	ParentIP   string // "" listens on every address
	ParentPort int
	ChildIP    string // "" means the driver's default
	ChildPort  int
}

// The builtin driver's protocol between the monitor (parent) and the port
// child, rootlesskit's pkg/port/builtin/msg: one request per connection on
// STATEDIR/.bp.sock, JSON with a uint32le length (lowlevelmsgutil). An
// "init" request is answered with a portReply; a "connect" request with a
// socket connected inside the container, as SCM_RIGHTS, or with a
// portReply that holds the error.
const (
	requestInit    = "init"
	requestConnect = "connect"
)

// portRequest keeps msg.Request's field names, the protocol's JSON keys.
type portRequest struct {
	Type       string // requestInit or requestConnect
	Proto      string // tcp, tcp4, tcp6, udp, udp4, udp6
	IP         string // the address to dial inside; "" is 127.0.0.1
	Port       int
	ParentIP   string
	SourceIP   string `json:",omitempty"` // a TCP client's address on the host
	SourcePort int    `json:",omitempty"`
}

type portReply struct {
	Error string
}

// builtinDriver is the parent half of the builtin driver: it listens on
// the host and, for each connection, asks the port child (RunPortChild)
// for a socket connected inside the container and copies between the two.
type builtinDriver struct {
	socketPath string // the child's socket, STATEDIR/.bp.sock
	readyPipe  string // the fifo the child closes once it serves
	logw       io.Writer
}

// newBuiltinDriver makes the ready fifo in dir (the state directory as
// socketDir gives it), which the port child waits for.
func newBuiltinDriver(logw io.Writer, dir string) (*builtinDriver, error) {
	d := &builtinDriver{
		socketPath: filepath.Join(dir, ".bp.sock"),
		readyPipe:  filepath.Join(dir, ".bp-ready.pipe"),
		logw:       logw,
	}
	if err := os.Remove(d.readyPipe); err != nil && !errors.Is(err, os.ErrNotExist) {
		return nil, fmt.Errorf("removing stale %s: %w", d.readyPipe, err)
	}
	if err := unix.Mkfifo(d.readyPipe, 0o600); err != nil {
		return nil, fmt.Errorf("making fifo %s: %w", d.readyPipe, err)
	}
	return d, nil
}

// waitChild returns once the port child serves: it has closed the ready
// fifo (the open blocks until the child opens the other end, fifo(7)), and
// answers an init request.
func (d *builtinDriver) waitChild() error {
	r, err := os.OpenFile(d.readyPipe, os.O_RDONLY|unix.O_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("opening %s: %w", d.readyPipe, err)
	}
	_, err = io.Copy(io.Discard, r)
	r.Close()
	if err != nil {
		return fmt.Errorf("reading %s: %w", d.readyPipe, err)
	}
	c, err := net.Dial("unix", d.socketPath)
	if err != nil {
		return fmt.Errorf("dialing the port child: %w", err)
	}
	defer c.Close()
	if _, err := lowlevelmsgutil.MarshalToWriter(c, &portRequest{Type: requestInit}); err != nil {
		return fmt.Errorf("asking the port child: %w", err)
	}
	var rep portReply
	if _, err := lowlevelmsgutil.UnmarshalFromReader(c, &rep); err != nil {
		return fmt.Errorf("reading the port child's answer: %w", err)
	}
	if rep.Error != "" {
		return fmt.Errorf("port child: %s", rep.Error)
	}
	return nil
}

func (d *builtinDriver) add(spec forwardSpec) (func(), error) {
	addr := net.JoinHostPort(spec.ParentIP, strconv.Itoa(spec.ParentPort))
	switch spec.Proto {
	case "tcp", "tcp4", "tcp6":
		ln, err := net.Listen(spec.Proto, addr)
		if err != nil {
			return nil, err
		}
		f := &tcpForward{ln: ln, spec: spec, d: d, quit: make(chan struct{})}
		go f.serve()
		return f.stop, nil
	case "udp", "udp4", "udp6":
		ua, err := net.ResolveUDPAddr(spec.Proto, addr)
		if err != nil {
			return nil, err
		}
		ln, err := net.ListenUDP(spec.Proto, ua)
		if err != nil {
			return nil, err
		}
		p := &udpproxy.UDPProxy{LogWriter: d.logw, Listener: ln, BackendDial: func() (*net.UDPConn, error) {
			c, err := d.connect(spec, nil)
			if err != nil {
				return nil, err
			}
			uc, ok := c.(*net.UDPConn)
			if !ok {
				c.Close()
				return nil, fmt.Errorf("port child sent a %T for udp", c)
			}
			return uc, nil
		}}
		go p.Run()
		var once sync.Once
		return func() { once.Do(func() { p.Close() }) }, nil // Close closes ln too
	}
	return nil, fmt.Errorf("unsupported protocol %q", spec.Proto)
}

// connect asks the port child for a socket connected to spec's container
// side; client is the host client's address (nil for UDP). The child may
// not serve yet for a connection that comes right after start-up, so a
// failed request is retried, 10 times over about 0.2 s, as rootlesskit
// does.
func (d *builtinDriver) connect(spec forwardSpec, client *net.TCPAddr) (net.Conn, error) {
	req := portRequest{Type: requestConnect, Proto: spec.Proto, IP: spec.ChildIP, Port: spec.ChildPort, ParentIP: spec.ParentIP}
	if client != nil {
		req.SourceIP, req.SourcePort = client.IP.String(), client.Port
	}
	var err error
	for i := range 10 {
		var c net.Conn
		if c, err = d.connectOnce(&req); err == nil {
			return c, nil
		}
		time.Sleep(time.Duration(i*5) * time.Millisecond)
	}
	return nil, err
}

func (d *builtinDriver) connectOnce(req *portRequest) (net.Conn, error) {
	conn, err := net.Dial("unix", d.socketPath)
	if err != nil {
		return nil, fmt.Errorf("dialing the port child: %w", err)
	}
	defer conn.Close()
	c := conn.(*net.UnixConn)
	if _, err := lowlevelmsgutil.MarshalToWriter(c, req); err != nil {
		return nil, fmt.Errorf("asking the port child: %w", err)
	}
	if err := c.CloseWrite(); err != nil {
		return nil, fmt.Errorf("asking the port child: %w", err)
	}
	buf := make([]byte, 4096)
	oob := make([]byte, unix.CmsgSpace(4))
	n, oobn, _, _, err := c.ReadMsgUnix(buf, oob)
	if err != nil {
		return nil, fmt.Errorf("reading the port child's answer: %w", err)
	}
	if oobn == 0 {
		// No socket: the answer is a reply with the child's error.
		var rep portReply
		if err := lowlevelmsgutil.Unmarshal(buf[:n], &rep); err != nil || rep.Error == "" {
			return nil, fmt.Errorf("port child answered %q without a socket", buf[:n])
		}
		return nil, fmt.Errorf("port child: %s", rep.Error)
	}
	fd, err := fds.FromRights(oob[:oobn])
	if err != nil {
		return nil, fmt.Errorf("reading the port child's socket: %w", err)
	}
	f := os.NewFile(uintptr(fd), "port-child-socket")
	defer f.Close()
	return net.FileConn(f)
}

// tcpForward is one TCP forward of the builtin driver.
type tcpForward struct {
	ln       net.Listener
	spec     forwardSpec
	d        *builtinDriver
	quit     chan struct{} // closed by stop: ends every copy
	stopOnce sync.Once
}

func (f *tcpForward) serve() {
	for {
		c, err := f.ln.Accept()
		if err != nil {
			select {
			case <-f.quit:
			default:
				fmt.Fprintf(f.d.logw, "accept on %s: %v\n", f.ln.Addr(), err)
			}
			return
		}
		go func() {
			if err := f.copyToChild(c); err != nil {
				fmt.Fprintf(f.d.logw, "forwarding %s from %s: %v\n", f.ln.Addr(), c.RemoteAddr(), err)
			}
		}()
	}
}

// stop closes the listener and every connection it accepted.
func (f *tcpForward) stop() {
	f.stopOnce.Do(func() {
		close(f.quit)
		f.ln.Close()
	})
}

func (f *tcpForward) copyToChild(c net.Conn) error {
	defer c.Close()
	client, _ := c.RemoteAddr().(*net.TCPAddr)
	inside, err := f.d.connect(f.spec, client)
	if err != nil {
		return err
	}
	defer inside.Close()
	bicopy(c, inside, f.quit)
	return nil
}

// bicopy copies both ways between x and y until both directions end or
// quit closes; an end of one direction is passed on as a half close.
// Between two TCP sockets io.Copy splices (net.TCPConn.ReadFrom).
func bicopy(x, y net.Conn, quit <-chan struct{}) {
	var wg sync.WaitGroup
	broker := func(to, from net.Conn) {
		defer wg.Done()
		_, _ = io.Copy(to, from)
		if c, ok := from.(*net.TCPConn); ok {
			_ = c.CloseRead()
		}
		if c, ok := to.(*net.TCPConn); ok {
			_ = c.CloseWrite()
		}
	}
	wg.Add(2)
	go broker(x, y)
	go broker(y, x)
	finished := make(chan struct{})
	go func() {
		wg.Wait()
		close(finished)
	}()
	select {
	case <-quit:
	case <-finished:
	}
	x.Close()
	y.Close()
	<-finished
}

// slirpDriver is the slirp4netns port driver: slirp4netns itself listens on
// the host and forwards to the container's address on tap0, set up through
// its API socket (slirp4netns(1), API SOCKET).
type slirpDriver struct {
	apiSocket string
	childIP   string // the container's address, for a spec without ChildIP
}

func (d *slirpDriver) add(spec forwardSpec) (func(), error) {
	if strings.HasSuffix(spec.Proto, "6") {
		return nil, fmt.Errorf("unsupported protocol %q: slirp4netns forwards IPv4 only", spec.Proto)
	}
	ip := spec.ChildIP
	if ip == "" {
		ip = d.childIP
	}
	args := map[string]any{
		"proto":      strings.TrimSuffix(spec.Proto, "4"),
		"host_addr":  spec.ParentIP,
		"host_port":  spec.ParentPort,
		"guest_addr": ip,
		"guest_port": spec.ChildPort,
	}
	ret, err := d.call("add_hostfwd", args)
	if err != nil {
		return nil, err
	}
	var id struct {
		ID *int `json:"id"`
	}
	if err := json.Unmarshal(ret, &id); err != nil || id.ID == nil {
		return nil, fmt.Errorf("slirp4netns add_hostfwd: unexpected reply %s", ret)
	}
	var once sync.Once
	return func() {
		once.Do(func() { _, _ = d.call("remove_hostfwd", map[string]any{"id": *id.ID}) })
	}, nil
}

// call runs one command of slirp4netns' API: one JSON request per
// connection, the reply read to EOF.
func (d *slirpDriver) call(cmd string, args any) (json.RawMessage, error) {
	c, err := net.DialUnix("unix", nil, &net.UnixAddr{Net: "unix", Name: d.apiSocket})
	if err != nil {
		return nil, fmt.Errorf("slirp4netns %s: %w", cmd, err)
	}
	defer c.Close()
	if err := json.NewEncoder(c).Encode(map[string]any{"execute": cmd, "arguments": args}); err != nil {
		return nil, fmt.Errorf("slirp4netns %s: %w", cmd, err)
	}
	if err := c.CloseWrite(); err != nil {
		return nil, fmt.Errorf("slirp4netns %s: %w", cmd, err)
	}
	b, err := io.ReadAll(c)
	if err != nil {
		return nil, fmt.Errorf("slirp4netns %s: %w", cmd, err)
	}
	var rep struct {
		Return json.RawMessage `json:"return"`
		Error  *struct {
			Desc string `json:"desc"`
		} `json:"error"`
	}
	if err := json.Unmarshal(b, &rep); err != nil {
		return nil, fmt.Errorf("slirp4netns %s: reply %q: %w", cmd, b, err)
	}
	if rep.Error != nil {
		return nil, fmt.Errorf("slirp4netns %s: %s", cmd, rep.Error.Desc)
	}
	return rep.Return, nil
}
