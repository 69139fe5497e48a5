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
//	  fd 3  a unix socket: the init sends tap0's fd on it
//	  fd 4  a pipe: "ok" once the network serves tap0, or "error: …"
//	  fd 5  a pipe: its end (sandy closed it, or died) ends the network
//	  FD    a published port (-p): a host socket sandy bound (a TCP
//	        listener or a UDP socket), forwarded to the container's PORT
//
// It runs on the host, as the user, in a session of its own; it enters
// no namespace of the container's.
package main

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/sandy-rt/sandy/internal/usernet"
)

func main() {
	cfg := usernet.Config{}
	var published []usernet.Forward
	for _, a := range os.Args[1:] {
		switch {
		case strings.HasPrefix(a, "--publish="):
			fw, err := publishArg(strings.TrimPrefix(a, "--publish="))
			if err != nil {
				fmt.Fprintf(os.Stderr, "sandy-net: %s: %v\n", a, err)
				os.Exit(2)
			}
			published = append(published, fw)
		case a == "--allow-host-loopback":
			cfg.HostLoopback = true
		case a == "--debug":
			cfg.Logf = func(format string, args ...any) { fmt.Fprintf(os.Stderr, "sandy-net: "+format+"\n", args...) }
		case strings.HasPrefix(a, "--mtu="):
			n, err := strconv.Atoi(strings.TrimPrefix(a, "--mtu="))
			if err != nil {
				fmt.Fprintf(os.Stderr, "sandy-net: %s: not a number\n", a)
				os.Exit(2)
			}
			cfg.MTU = n
		default:
			fmt.Fprintf(os.Stderr, "sandy-net: unknown argument %q (sandy starts this program: see --network=usernet)\n", a)
			os.Exit(2)
		}
	}
	// Serve's errors go to sandy on the ready pipe, and sandy says them
	// once.
	if err := usernet.Serve(os.NewFile(3, "tap-socket"), os.NewFile(4, "ready"), os.NewFile(5, "lifeline"), cfg, published); err != nil {
		os.Exit(1)
	}
}

// publishArg reads FD:PORT: the socket at fd FD (above the three
// fixed ones) forwarded to the container's PORT.
func publishArg(v string) (usernet.Forward, error) {
	fdS, portS, ok := strings.Cut(v, ":")
	fd, err1 := strconv.Atoi(fdS)
	port, err2 := strconv.ParseUint(portS, 10, 16)
	if !ok || err1 != nil || err2 != nil || fd < 6 || port == 0 {
		return usernet.Forward{}, fmt.Errorf("want FD:PORT, an fd above 5 and a port 1-65535")
	}
	return usernet.ForwardFile(os.NewFile(uintptr(fd), "published"), uint16(port))
}
