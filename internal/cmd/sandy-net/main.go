// Command sandy-net is sandy's own network for one container
// (--network=usernet, internal/usernet): a user-mode TCP/IP stack on the
// host end of the container's tap0, in a program of its own so that
// sandy itself does not link the stack (its package inits and 2 MB of
// memory at start would be every sandy process's: docs/design.md, "A
// network without slirp4netns"). sandy starts it, installed beside
// itself, before it forks the container's init, and it starts while the
// container is made:
//
//	sandy-net [--mtu=N] [--allow-host-loopback] [--debug] [--publish=FD:PORT]...
//	          [--spare=DIR [--linger=DURATION]]
//	  fd 3  a unix socket: the init sends tap0's fd on it
//	  fd 4  a pipe: "ok" once the network serves tap0, or "error: …"
//	  fd 5  a pipe: its end (sandy closed it, or died) ends the network
//	  FD    a published port (-p): a host socket sandy bound (a TCP
//	        listener or a UDP socket), forwarded to the container's PORT
//
// It runs on the host, as the user, in a session of its own; it enters
// no namespace of the container's. With --spare, once its network ended
// with the lifeline (a foreground run's end), it stays in DIR as the
// spare of the next run (internal/spare), which sends it the same
// command line and fds instead of starting a sandy-net: its start (2 ms
// of CPU beside the container's) is then no run's.
package main

import (
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/sandy-rt/sandy/internal/spare"
	"github.com/sandy-rt/sandy/internal/usernet"
)

// firstFD is the number of the first fd sandy hands over (3: the tap's
// socket, then the ready pipe and the lifeline).
const firstFD = 3

// maxServed bounds the networks one process serves: each leaves an
// eventfd open (usernet.Network.Close), so a spare exits after this
// many instead of waiting for another.
const maxServed = 256

func main() {
	inherited := func(fd int) *os.File { return os.NewFile(uintptr(fd), "fd "+strconv.Itoa(fd)) }
	code, o := run(os.Args[1:], inherited, os.Stderr)
	if code == 0 && o.place != nil {
		linger(o)
	}
	os.Exit(code)
}

// options are a command line's, and how its network ended.
type options struct {
	spare  string        // --spare: where to wait as a spare after the network
	linger time.Duration // --linger
	// place is the spare's, taken as the lifeline ended (not after a
	// hand-over: a detached container's delete waits for this process's
	// exit), before the network closed; nil: no spare.
	place *spare.Listener
}

// run is one container's network: the command line args, the fds it
// names (file(N): fd N as inherited, or as a spare's request carried
// it). Its exit status, and its options.
func run(args []string, file func(fd int) *os.File, stderr io.Writer) (int, options) {
	cfg := usernet.Config{}
	o := options{linger: spare.DefaultLinger}
	var published []usernet.Forward
	fail := func(format string, a ...any) (int, options) {
		fmt.Fprintf(stderr, "sandy-net: "+format+"\n", a...)
		for _, fw := range published {
			fw.Close()
		}
		return 2, o
	}
	for _, a := range args {
		switch {
		case strings.HasPrefix(a, "--publish="):
			fw, err := publishArg(strings.TrimPrefix(a, "--publish="), file)
			if err != nil {
				return fail("%s: %v", a, err)
			}
			published = append(published, fw)
		case a == "--allow-host-loopback":
			cfg.HostLoopback = true
		case a == "--debug":
			cfg.Logf = func(format string, args ...any) { fmt.Fprintf(stderr, "sandy-net: "+format+"\n", args...) }
		case strings.HasPrefix(a, "--mtu="):
			n, err := strconv.Atoi(strings.TrimPrefix(a, "--mtu="))
			if err != nil {
				return fail("%s: not a number", a)
			}
			cfg.MTU = n
		case strings.HasPrefix(a, "--spare="):
			o.spare = strings.TrimPrefix(a, "--spare=")
		case strings.HasPrefix(a, "--linger="):
			o.linger = spare.ParseLinger(strings.TrimPrefix(a, "--linger="))
		default:
			return fail("unknown argument %q (sandy starts this program: see --network=usernet)", a)
		}
	}
	sock, ready, lifeline := file(firstFD), file(firstFD+1), file(firstFD+2)
	if sock == nil || ready == nil || lifeline == nil {
		return fail("fds %d-%d were not handed over", firstFD, firstFD+2)
	}
	// Serve's errors go to sandy on the ready pipe, and sandy says them
	// once. The spare's place is taken as the lifeline ends: the next
	// run, which may start as soon as this one's sandy returns, finds it
	// and waits for the network's close.
	takePlace := func() {
		if me, err := spare.Me(); err == nil && o.spare != "" && o.linger > 0 {
			o.place, _ = spare.Listen(o.spare, me.Key)
		}
	}
	if _, err := usernet.Serve(sock, ready, lifeline, cfg, published, takePlace); err != nil {
		return 1, o
	}
	return 0, o
}

// publishArg reads FD:PORT: the socket at fd FD (above the three
// fixed ones) forwarded to the container's PORT. The forward has a copy
// of the socket: fd FD is closed.
func publishArg(v string, file func(fd int) *os.File) (usernet.Forward, error) {
	fdS, portS, ok := strings.Cut(v, ":")
	fd, err1 := strconv.Atoi(fdS)
	port, err2 := strconv.ParseUint(portS, 10, 16)
	if !ok || err1 != nil || err2 != nil || fd < firstFD+3 || port == 0 {
		return usernet.Forward{}, fmt.Errorf("want FD:PORT, an fd above 5 and a port 1-65535")
	}
	f := file(fd)
	if f == nil {
		return usernet.Forward{}, fmt.Errorf("fd %d was not handed over", fd)
	}
	defer f.Close()
	return usernet.ForwardFile(f, uint16(port))
}

// linger is the spare's life: it waits in its place (o.place) for the
// next run's request, runs it as if started with its command line and
// fds, and waits again, until o.linger passes without one, another
// sandy-net held the place as a network ended, a request says quit, a
// network ends with a hand-over (its container's delete waits for this
// process's exit), or it has served maxServed.
func linger(o options) {
	me, err := spare.Me()
	if err != nil {
		return
	}
	for served := 1; served < maxServed && o.place != nil; served++ {
		if spare.QuietStdio() != nil {
			return
		}
		conn, ok := o.place.Accept(o.linger)
		if !ok {
			return
		}
		s, quit := spare.Take(conn, me.Cwd)
		if quit {
			return
		}
		if s == nil {
			// Declined (or its sender gone): the place again.
			o.place, _ = spare.Listen(o.spare, me.Key)
			continue
		}
		files := s.Files
		code, next := run(s.Args, func(fd int) *os.File {
			if i := fd - firstFD; i >= 0 && i < len(files) {
				f := files[i]
				files[i] = nil // run owns it now
				return f
			}
			return nil
		}, os.Stderr)
		for _, f := range files {
			if f != nil {
				f.Close()
			}
		}
		s.Done("exit " + strconv.Itoa(code))
		if code != 0 {
			os.Exit(code)
		}
		o = next
	}
}
