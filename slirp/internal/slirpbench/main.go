//go:build linux

// Command slirpbench stands in for the sandy binary in hack/bench-net.sh,
// so that the network can be measured before the lifecycle wires the slirp
// package in. It has sandy's two hidden subcommands (slirp-monitor,
// slirp-port-child) and two of its own:
//
//	slirpbench up --pid=PID --state=DIR [--mtu=N] [--driver=D] [--host-loopback] [--in-process] [-p SPEC]...
//	    starts the network for PID, prints "ready MS", and closes it when
//	    stdin reaches EOF or on SIGTERM.
//	slirpbench notify-exec --connect=SOCKET -- ARGV...
//	    (run inside the container's namespaces) installs the bind notifier
//	    on its thread, sends it to `up --bind-notifier=SOCKET`, waits until
//	    the network is up and execs ARGV: what sandy's init would do.
//	slirpbench starttime [--runs=N] [--mtu=N] [--driver=D] [--in-process] [-p SPEC]...
//	    creates a user+network+pid namespace N times (unshare --user
//	    --map-root-user --net --pid --fork), with and without the network,
//	    and prints the median time until each is ready.
//
// Like sandy, it hands slirp a sealed copy of itself (userns.SelfExe) for
// the helpers to run.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"runtime"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sandy-rt/sandy/slirp"
	"github.com/sandy-rt/sandy/userns"
	"golang.org/x/sys/unix"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: slirpbench up|starttime ...")
		os.Exit(2)
	}
	var err error
	switch cmd, args := os.Args[1], os.Args[2:]; cmd {
	case slirp.MonitorCommand:
		err = slirp.RunMonitor(args)
	case slirp.PortChildCommand:
		err = slirp.RunPortChild(args)
	case "up":
		err = up(args)
	case "starttime":
		err = startTime(args)
	case "notify-exec":
		err = notifyExec(args)
	default:
		err = fmt.Errorf("unknown command %q", cmd)
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "slirpbench %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

type portsFlag []slirp.PortSpec

func (p *portsFlag) String() string { return fmt.Sprint(*p) }
func (p *portsFlag) Set(s string) error {
	ps, err := slirp.ParsePort(s)
	if err == nil {
		*p = append(*p, ps)
	}
	return err
}

func optionFlags(fs *flag.FlagSet) (*slirp.Options, error) {
	exe, err := userns.SelfExe()
	if err != nil {
		return nil, err
	}
	o := &slirp.Options{Exe: exe}
	fs.IntVar(&o.MTU, "mtu", 0, "MTU (0: 65520)")
	fs.StringVar(&o.Driver, "driver", "", "port driver: builtin or slirp4netns")
	fs.BoolVar(&o.HostLoopback, "host-loopback", false, "let 10.0.2.2 reach the host's loopback")
	fs.Var((*portsFlag)(&o.Ports), "p", "port forward, repeatable")
	fs.BoolVar(&o.InProcess, "in-process", false, "own the network in this process (sandy run in the foreground)")
	return o, nil
}

func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	o, err := optionFlags(fs)
	if err != nil {
		return err
	}
	fs.IntVar(&o.PID, "pid", 0, "process in the container's namespaces")
	fs.StringVar(&o.StateDir, "state", "", "state directory")
	notifySock := fs.String("bind-notifier", "", "unix socket on which to receive a bind notifier from notify-exec (experimental bypass)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	var helper *net.UnixConn
	if *notifySock != "" {
		var err error
		if helper, o.BindNotifier, err = receiveNotifier(*notifySock); err != nil {
			return err
		}
		defer helper.Close()
	}
	begin := time.Now()
	n, err := slirp.Start(context.Background(), *o)
	if err != nil {
		return err
	}
	if helper != nil {
		if _, err := helper.Write([]byte{1}); err != nil {
			return err
		}
	}
	fmt.Printf("ready %.1f\n", float64(time.Since(begin).Microseconds())/1000)
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	eof := make(chan struct{})
	go func() { _, _ = io.Copy(io.Discard, os.Stdin); close(eof) }()
	select {
	case <-sigs:
	case <-eof:
	}
	return n.Close()
}

func startTime(args []string) error {
	fs := flag.NewFlagSet("starttime", flag.ContinueOnError)
	o, err := optionFlags(fs)
	if err != nil {
		return err
	}
	runs := fs.Int("runs", 15, "runs of each")
	if err := fs.Parse(args); err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "slirpbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	var none, withNet, startOnly []time.Duration
	for i := 0; i < *runs; i++ {
		for _, network := range []bool{false, true} {
			begin := time.Now()
			ns, err := newNamespace()
			if err != nil {
				return err
			}
			if !network {
				none = append(none, time.Since(begin))
				ns.end()
				continue
			}
			o.PID, o.StateDir = ns.pid, filepath.Join(dir, strconv.Itoa(i))
			startBegin := time.Now()
			n, err := slirp.Start(context.Background(), *o)
			if err != nil {
				ns.end()
				return err
			}
			withNet = append(withNet, time.Since(begin))
			startOnly = append(startOnly, time.Since(startBegin))
			_ = n.Close()
			ns.end()
		}
	}
	fmt.Printf("runs=%d none_ms=%.1f slirp_ms=%.1f added_ms=%.1f start_only_ms=%.1f\n", *runs,
		ms(median(none)), ms(median(withNet)), ms(median(withNet)-median(none)), ms(median(startOnly)))
	return nil
}

type namespace struct {
	pid int
	cmd *exec.Cmd
}

// newNamespace starts sleep as pid 1 of a new user (own uid as root),
// network and pid namespace, as sandy's init is (slirp refuses the builtin
// driver for a container in the caller's pid namespace), and returns once
// it is in them; pid is its pid here.
func newNamespace() (*namespace, error) {
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--net", "--pid", "--fork", "--kill-child", "sleep", "60")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ns := &namespace{cmd: cmd}
	self, _ := os.Readlink("/proc/self/ns/pid")
	for deadline := time.Now().Add(5 * time.Second); ; {
		kids, _ := os.ReadFile(fmt.Sprintf("/proc/%d/task/%d/children", cmd.Process.Pid, cmd.Process.Pid))
		if f := strings.Fields(string(kids)); len(f) == 1 {
			pid, _ := strconv.Atoi(f[0])
			got, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/pid", pid))
			exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", pid))
			if got != "" && got != self && strings.HasSuffix(exe, "/sleep") {
				ns.pid = pid
				return ns, nil
			}
		}
		if time.Now().After(deadline) {
			ns.end()
			return nil, fmt.Errorf("unshare: no sleep in new namespaces under pid %d after 5s", cmd.Process.Pid)
		}
		time.Sleep(500 * time.Microsecond)
	}
}

func (ns *namespace) end() { _ = ns.cmd.Process.Kill(); _ = ns.cmd.Wait() }

func median(d []time.Duration) time.Duration {
	s := slices.Clone(d)
	slices.Sort(s)
	return s[len(s)/2]
}

func ms(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }

// receiveNotifier listens on path for notify-exec and returns its
// connection and the listener fd it sent.
func receiveNotifier(path string) (*net.UnixConn, *os.File, error) {
	l, err := net.ListenUnix("unix", &net.UnixAddr{Name: path, Net: "unix"})
	if err != nil {
		return nil, nil, err
	}
	defer l.Close()
	_ = l.SetDeadline(time.Now().Add(30 * time.Second))
	c, err := l.AcceptUnix()
	if err != nil {
		return nil, nil, fmt.Errorf("waiting for notify-exec: %w", err)
	}
	oob := make([]byte, unix.CmsgSpace(4))
	_, oobn, _, _, err := c.ReadMsgUnix(make([]byte, 1), oob)
	if err != nil {
		c.Close()
		return nil, nil, err
	}
	msgs, err := unix.ParseSocketControlMessage(oob[:oobn])
	if err != nil || len(msgs) != 1 {
		c.Close()
		return nil, nil, fmt.Errorf("no fd from notify-exec: %v", err)
	}
	fds, err := unix.ParseUnixRights(&msgs[0])
	if err != nil || len(fds) != 1 {
		c.Close()
		return nil, nil, fmt.Errorf("no fd from notify-exec: %v", err)
	}
	return c, os.NewFile(uintptr(fds[0]), "bind-notifier"), nil
}

func notifyExec(args []string) error {
	fs := flag.NewFlagSet("notify-exec", flag.ContinueOnError)
	sock := fs.String("connect", "", "unix socket of `slirpbench up --bind-notifier`")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return fmt.Errorf("no command")
	}
	path, err := exec.LookPath(argv[0])
	if err != nil {
		return err
	}
	// The filter is per thread: install it on the one that execs.
	runtime.LockOSThread()
	conn, err := net.Dial("unix", *sock)
	if err != nil {
		return err
	}
	listener, err := slirp.InstallBindNotifier()
	if err != nil {
		return err
	}
	if _, _, err := conn.(*net.UnixConn).WriteMsgUnix([]byte{0}, unix.UnixRights(int(listener.Fd())), nil); err != nil {
		return err
	}
	listener.Close()
	if _, err := conn.Read(make([]byte, 1)); err != nil {
		return fmt.Errorf("waiting for the network: %w", err)
	}
	conn.Close()
	return syscall.Exec(path, argv, os.Environ())
}
