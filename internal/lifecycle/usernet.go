package lifecycle

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/internal/spare"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/slirp"
)

// NetProgram is sandy's own network's program (--network=usernet,
// internal/cmd/sandy-net), installed beside sandy.
const NetProgram = "sandy-net"

// userNet is sandy's own network for a container (the default, and
// --network=usernet): the init (raw or Go, with the same ops) makes tap0
// in the container's network namespace and sends its fd on a socket
// (initproc.RawTap) to sandy-net, which serves it with the user-mode
// stack (internal/usernet) for as long as this process holds the
// lifeline, or, for a container that outlives this command, until the
// init exits (handOverUserNet). sandy-net is started before the init is
// forked, so that its start overlaps the container's; sandy links no
// network stack itself.
//
// Published ports (-p) are bound here, so that a port in use is this
// command's error before anything starts, and handed to sandy-net,
// which forwards them in the stack (usernet.Forward).
type userNet struct {
	hostLoopback bool
	mtu          int
	ports        []slirp.PortSpec
	published    []*os.File       // the ports' host sockets, until sandy-net has them
	goTap        *initproc.RawTap // the Go init's Config.Tap (userNetGoInit)
	pid          chan int         // sandy-net's, once started (0: it did not)
	// child and placeholder are the init's fds (RawTap), closed here
	// once it is started; host is sandy-net's end, until it starts.
	child, placeholder, host *os.File
	ready                    *bufio.Reader // sandy-net's "ok" or error
	readyF, lifeline         *os.File
}

// planUserNet finds sandy-net, binds the container's published ports
// and starts sandy-net. For an image's container whose bundle is pending
// (CreateOptions.Pending), it runs twice: on the start spec, where it
// only finds sandy-net (the ports are final only with the bundle: -P
// adds the image's), then on the bundle (awaitBundle), which still
// comes before the init is forked.
func (cr *creation) planUserNet(hostLoopback bool, mtu int, ports []slirp.PortSpec) error {
	prog, err := LocateNetProgram()
	if err != nil {
		return err
	}
	first := cr.unet == nil
	if first {
		cr.unet = &userNet{pid: make(chan int, 1)}
		cr.undo.add(cr.closeUserNet)
		if err := cr.unet.open(); err != nil {
			return err
		}
	}
	u := cr.unet
	u.hostLoopback, u.mtu, u.ports = hostLoopback, mtu, ports
	if first && cr.o.Pending != nil && !cr.pendingChecked {
		return nil
	}
	for _, p := range ports {
		f, err := slirp.ListenFile(p)
		if err != nil {
			return err
		}
		u.published = append(u.published, f)
	}
	if err := u.start(prog, cr.g); err != nil {
		return err
	}
	cr.g.Debugf("network: sandy's own (usernet), %s, %d published ports", prog, len(ports))
	return nil
}

// DefaultNetwork is the network `sandy run` gives a container with a new
// network namespace and no --network: sandy's own (usernet) where
// sandy-net is installed beside sandy and /dev/net/tun opens, else
// slirp4netns where it is usable, else none, with why (both reasons:
// the caller's warning line says it falls back to loopback).
func DefaultNetwork() (string, error) {
	uerr := userNetUnusable()
	if uerr == nil {
		return slirp.ModeUsernet, nil
	}
	serr := slirp.Check()
	if serr == nil {
		return slirp.ModeSlirp4netns, nil
	}
	return slirp.ModeNone, NoNetwork(uerr, serr)
}

// NoNetwork is why a container gets no default network: why sandy's own
// cannot run, and slirp4netns's error (which holds the fix a line's
// reader looks for last).
func NoNetwork(userNet, slirp4netns error) error {
	return fmt.Errorf("sandy's own network cannot run: %v; and %w", userNet, slirp4netns)
}

// userNetUnusable says why --network=usernet cannot run here (nil: it
// can): sandy-net beside sandy, and /dev/net/tun that opens.
func userNetUnusable() error {
	if _, err := LocateNetProgram(); err != nil {
		return err
	}
	return slirp.CheckTun("/dev/net/tun")
}

// restartUserNet makes the network again for sandy's Go init, after the
// raw init's program failed: the failed child had sent its tap, whose
// network namespace went with it. The first sandy-net is ended and
// waited for, so that the published ports are free to bind again.
func (cr *creation) restartUserNet() error {
	u := cr.unet
	pid := <-u.pid
	cr.closeUserNet()
	if pid != 0 {
		if fd, err := unix.PidfdOpen(pid, 0); err == nil {
			_, _ = unix.Poll([]unix.PollFd{{Fd: int32(fd), Events: unix.POLLIN}}, 2000)
			unix.Close(fd)
		}
	}
	cr.unet = nil
	return cr.planUserNet(u.hostLoopback, u.mtu, u.ports)
}

// LocateNetProgram finds sandy-net beside the running sandy (its real
// path), else in ../libexec/sandy/ from there, as the image helpers; never
// in $PATH.
//
// Once per process: the default network's choice and the network's plan
// both need it (DefaultNetwork, planUserNet).
var LocateNetProgram = sync.OnceValues(locateNetProgram)

func locateNetProgram() (string, error) {
	self, err := os.Executable()
	if err != nil {
		return "", fmt.Errorf("finding the sandy binary: %w", err)
	}
	if real, err := filepath.EvalSymlinks(self); err == nil {
		self = real
	}
	dir := filepath.Dir(self)
	candidates := []string{filepath.Join(dir, NetProgram), filepath.Join(dir, "..", "libexec", "sandy", NetProgram)}
	for _, c := range candidates {
		if unix.Access(c, unix.X_OK) == nil {
			return c, nil
		}
	}
	return "", fmt.Errorf("--network=usernet needs %s, which is not installed beside sandy (looked for %s and %s): build it with `go build -o %s ./internal/cmd/sandy-net` (hack/install.sh does)",
		NetProgram, candidates[0], candidates[1], candidates[0])
}

// open makes the socket the init sends tap0 on, and the placeholder fd
// (RawTap): at the first planning, since a pending bundle's Go init
// starts beside the image helper, before sandy-net, whose socket end
// then holds the message until it reads it.
func (u *userNet) open() error {
	fds, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		return fmt.Errorf("the tap's socket: %w", err)
	}
	u.host = os.NewFile(uintptr(fds[0]), "usernet-host")
	u.child = os.NewFile(uintptr(fds[1]), "usernet-child")
	if u.placeholder, err = os.Open(os.DevNull); err != nil {
		return fmt.Errorf("the tap's placeholder fd: %w", err)
	}
	return nil
}

// start starts sandy-net with the socket's host end, the ready pipe,
// the lifeline and the published ports' sockets (see its doc).
func (u *userNet) start(prog string, g *Global) error {
	host := u.host
	u.host = nil // the goroutine's to close now
	readyR, readyW, err := os.Pipe()
	if err != nil {
		host.Close()
		return err
	}
	u.readyF, u.ready = readyR, bufio.NewReader(readyR)
	// The lifeline is a socket: a detached container's hand-over sends
	// the init's pidfd on it (handOverUserNet).
	life, err := unix.Socketpair(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		host.Close()
		readyW.Close()
		return fmt.Errorf("the network's lifeline: %w", err)
	}
	lifeR, lifeW := os.NewFile(uintptr(life[0]), "usernet-lifeline"), os.NewFile(uintptr(life[1]), "usernet-lifeline")
	u.lifeline = lifeW
	args := []string{}
	if u.hostLoopback {
		args = append(args, "--allow-host-loopback")
	}
	if u.mtu != 0 {
		args = append(args, "--mtu="+strconv.Itoa(u.mtu))
	}
	if g.Debug {
		args = append(args, "--debug")
	}
	extra := []*os.File{host, readyW, lifeR} // fds 3, 4, 5
	for i, p := range u.ports {
		args = append(args, fmt.Sprintf("--publish=%d:%d", 3+len(extra), p.ContainerPort))
		extra = append(extra, u.published[i])
	}
	spares := spare.Enabled()
	if spares {
		args = append(args, "--spare="+spare.Dir(), "--linger="+spare.Linger().String())
	}
	published := u.published
	u.published = nil // the goroutine's to close now
	cmd := exec.Command(prog, args...)
	cmd.ExtraFiles = extra
	// Its own session, from "/", PATH only: a ^C meant for the container
	// must not end its network first (as slirp4netns).
	cmd.Stderr = os.Stderr
	// One P: its Go runtime starts fewer threads (0.7 ms less of the
	// CPU the container's start needs on a small machine, measured on
	// two cores: 3.2 → 2.5 ms a run), and the stack runs on one core, as
	// slirp4netns does (a 50 MB download: 0.32–0.38 s either way).
	cmd.Env, cmd.Dir = []string{"PATH=" + os.Getenv("PATH"), "GOMAXPROCS=1"}, "/"
	cmd.SysProcAttr = &syscall.SysProcAttr{Setsid: true}
	// The fork and exec on a goroutine: this process goes on making the
	// container meanwhile (the exec is a millisecond of its wait
	// otherwise). A failed start is sandy-net's EOF on the ready pipe,
	// with the error there too.
	go func() {
		defer host.Close()
		defer readyW.Close()
		defer lifeR.Close()
		defer closeFiles(published)
		if spares {
			pid, why := dialNetSpare(cmd)
			if pid != 0 {
				g.Debugf("network: the spare %s %d took it (no start-up)", NetProgram, pid)
				u.pid <- pid
				return
			}
			g.Debugf("network: no spare %s: %s", NetProgram, why)
		}
		if err := cmd.Start(); err != nil {
			fmt.Fprintf(readyW, "error: starting %s: %v\n", prog, err)
			u.pid <- 0
			return
		}
		u.pid <- cmd.Process.Pid
		go func() { _ = cmd.Wait() }()
	}()
	return nil
}

// dialNetSpare hands cmd (its arguments, environment, cwd, stderr and
// files) to the spare sandy-net made for them, if one listens
// (internal/spare; sandy-net's --spare): the spare's pid, or 0 and why
// not. The spare must be in this process's user namespace (the host's,
// where sandy-net runs), so a process of a container, whose root is this
// user too, can never be one. A spare that does not answer within a
// second is left for a started sandy-net.
func dialNetSpare(cmd *exec.Cmd) (int, string) {
	fi, err := os.Stat(cmd.Path)
	if err != nil {
		return 0, err.Error()
	}
	req := spare.Request{Args: cmd.Args[1:], Env: cmd.Env, Cwd: cmd.Dir, Stdio: []int{2}}
	files := append([]*os.File{os.Stderr}, cmd.ExtraFiles...)
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	p, why, _ := spare.Dial(ctx, spare.Dir(), spare.Key(fi, cmd.Env, cmd.Dir), req, files, spare.SameUserNS("self"))
	if p == nil {
		return 0, why
	}
	// Nothing more to hear from it: the network's "ok" comes on the
	// ready pipe, its end with the lifeline.
	p.Close()
	return p.Pid, ""
}

// handOverUserNet, for a container that outlives this command (`run -d`
// of a bundle, `create`), sends sandy-net a pidfd of the init on the
// lifeline, and closes it: sandy-net then ends when the init exits
// (usernet.Serve). The state records sandy-net, for delete
// (stopUserNet).
func (cr *creation) handOverUserNet() error {
	u := cr.unet
	pid := <-u.pid // sandy-net said "ok": it started
	start, _, err := state.ProcStart(pid)
	if err != nil {
		return fmt.Errorf("%s (pid %d): %w", NetProgram, pid, err)
	}
	pidfd, err := unix.PidfdOpen(cr.c.Pid, 0)
	if err != nil {
		return fmt.Errorf("a pidfd of the init for %s: %w", NetProgram, err)
	}
	defer unix.Close(pidfd)
	if !state.Alive(cr.c.Pid, cr.c.PidStart) {
		return fmt.Errorf("the init (pid %d) exited before its network was handed over", cr.c.Pid)
	}
	if err := unix.Sendmsg(int(u.lifeline.Fd()), []byte{'h'}, unix.UnixRights(pidfd), nil, unix.MSG_NOSIGNAL); err != nil {
		return fmt.Errorf("handing the init's pidfd to %s: %w", NetProgram, err)
	}
	u.lifeline.Close()
	u.lifeline = nil
	cr.c.Network, _ = json.Marshal(networkState{Mode: slirp.ModeUsernet, Pid: pid, PidStart: start})
	cr.g.Debugf("network: %s (pid %d) ends with the init now", NetProgram, pid)
	return nil
}

// stopUserNet waits for a detached container's sandy-net, which exits
// with the init (delete killed it first), and kills one still there
// after two seconds.
func stopUserNet(pid int, start uint64) {
	for deadline := time.Now().Add(2 * time.Second); state.Alive(pid, start); time.Sleep(5 * time.Millisecond) {
		if time.Now().After(deadline) {
			if fd, err := unix.PidfdOpen(pid, 0); err == nil {
				if state.Alive(pid, start) {
					_ = unix.PidfdSendSignal(fd, unix.SIGKILL, nil, 0)
				}
				unix.Close(fd)
			}
			return
		}
	}
}

// userNetTap adds the init's socket end and the placeholder to the raw
// init's files and returns what the program needs (rawPlan).
func (cr *creation) userNetTap(files []*os.File) ([]*os.File, *initproc.RawTap) {
	u := cr.unet
	files = append(files, u.child, u.placeholder)
	return files, u.tap(len(files) - 2)
}

// userNetGoInit adds the same two fds to sandy's Go init's files (after
// its SyncFD and FifoFD) and keeps its Config.Tap: it makes tap0 with
// the raw init's ops.
func (cr *creation) userNetGoInit(files []*os.File) []*os.File {
	u := cr.unet
	u.goTap = u.tap(3 + len(files))
	return append(files, u.child, u.placeholder)
}

// tap is the init's RawTap with the socket at fd socket and the
// placeholder after it.
func (u *userNet) tap(socket int) *initproc.RawTap {
	mtu := u.mtu
	if mtu == 0 {
		mtu = slirp.DefaultMTU // usernet's default too (sandy links no usernet)
	}
	return &initproc.RawTap{Socket: socket, FD: socket + 1, MTU: mtu}
}

// startUserNet, once the init is started, closes this process's copies
// of its fds: with them closed, the init's exit is sandy-net's EOF.
func (cr *creation) startUserNet() {
	u := cr.unet
	u.child.Close()
	u.placeholder.Close()
	u.child, u.placeholder = nil, nil
}

// userNetReady waits until sandy-net serves tap0.
func (cr *creation) userNetReady(ctx context.Context) error {
	u := cr.unet
	line := make(chan string, 1)
	go func() {
		l, _ := u.ready.ReadString('\n')
		line <- strings.TrimSpace(l)
	}()
	select {
	case l := <-line:
		switch {
		case l == "ok" && cr.o.owned:
			return nil
		case l == "ok":
			return cr.handOverUserNet()
		case strings.HasPrefix(l, "error: "):
			return fmt.Errorf("%s: %s", NetProgram, strings.TrimPrefix(l, "error: "))
		}
		return fmt.Errorf("%s ended without serving tap0 (its error is above)", NetProgram)
	case <-ctx.Done():
		return context.Cause(ctx)
	case <-time.After(30 * time.Second):
		return fmt.Errorf("%s: not serving tap0 after 30 s", NetProgram)
	}
}

// closeUserNet ends the network: the lifeline's end tells sandy-net to
// close its flows and exit; nobody waits for it.
func (cr *creation) closeUserNet() {
	u := cr.unet
	if u == nil {
		return
	}
	for _, f := range []*os.File{u.child, u.placeholder, u.host, u.lifeline, u.readyF} {
		if f != nil {
			f.Close()
		}
	}
	closeFiles(u.published)
	u.child, u.placeholder, u.host, u.lifeline, u.readyF, u.published = nil, nil, nil, nil, nil, nil
}

func closeFiles(files []*os.File) {
	for _, f := range files {
		f.Close()
	}
}
