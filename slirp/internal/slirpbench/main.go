//go:build linux

// Command slirpbench stands in for the sandy binary in hack/bench-net.sh,
// so that the network can be measured before the lifecycle wires the slirp
// package in. It has sandy's two hidden subcommands (slirp-monitor,
// slirp-port-child) and two of its own:
//
//	slirpbench up --pid=PID --state=DIR [--mtu=N] [--driver=D] [--host-loopback] [--in-process] [-p SPEC]...
//	    starts the network for PID, prints "ready MS", and closes it when
//	    stdin reaches EOF or on SIGTERM.
//	slirpbench starttime [--runs=N] [--mtu=N] [--driver=D] [--in-process] [-p SPEC]...
//	    creates a user+network namespace N times (unshare --user
//	    --map-root-user --net), with and without the network, and prints
//	    the median time until each is ready.
package main

import (
	"context"
	"flag"
	"fmt"
	"io"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"time"

	"github.com/sandy-rt/sandy/slirp"
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

func optionFlags(fs *flag.FlagSet) *slirp.Options {
	o := &slirp.Options{}
	fs.IntVar(&o.MTU, "mtu", 0, "MTU (0: 65520)")
	fs.StringVar(&o.Driver, "driver", "", "port driver: builtin or slirp4netns")
	fs.BoolVar(&o.HostLoopback, "host-loopback", false, "let 10.0.2.2 reach the host's loopback")
	fs.Var((*portsFlag)(&o.Ports), "p", "port forward, repeatable")
	fs.BoolVar(&o.InProcess, "in-process", false, "own the network in this process (sandy run in the foreground)")
	return o
}

func up(args []string) error {
	fs := flag.NewFlagSet("up", flag.ContinueOnError)
	o := optionFlags(fs)
	fs.IntVar(&o.PID, "pid", 0, "process in the container's namespaces")
	fs.StringVar(&o.StateDir, "state", "", "state directory")
	if err := fs.Parse(args); err != nil {
		return err
	}
	begin := time.Now()
	n, err := slirp.Start(context.Background(), *o)
	if err != nil {
		return err
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
	o := optionFlags(fs)
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

// newNamespace starts sleep in a new user (own uid as root) and network
// namespace and returns once it is in them.
func newNamespace() (*namespace, error) {
	cmd := exec.Command("unshare", "--user", "--map-root-user", "--net", "sleep", "60")
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	ns := &namespace{pid: cmd.Process.Pid, cmd: cmd}
	self, _ := os.Readlink("/proc/self/ns/net")
	for deadline := time.Now().Add(5 * time.Second); ; {
		got, _ := os.Readlink(fmt.Sprintf("/proc/%d/ns/net", ns.pid))
		exe, _ := os.Readlink(fmt.Sprintf("/proc/%d/exe", ns.pid))
		if got != "" && got != self && strings.HasSuffix(exe, "/sleep") {
			return ns, nil
		}
		if time.Now().After(deadline) {
			ns.end()
			return nil, fmt.Errorf("unshare: pid %d not in a new network namespace after 5s", ns.pid)
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
