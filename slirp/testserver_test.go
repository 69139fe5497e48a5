//go:build linux

package slirp

import (
	"bufio"
	"errors"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
	"runtime"
	"syscall"

	"golang.org/x/sys/unix"
)

const testServerCommand = "slirp-test-server"

// runTestServer serves, until killed, on -tcp and -udp addresses inside the
// container's namespaces. TCP: it first writes "peer=<remote address>\n",
// then echoes. UDP: it answers each datagram with "peer=<remote> <data>".
// It writes "ready\n" to stdout once both are listening.
func runTestServer(args []string) error {
	fs := flag.NewFlagSet(testServerCommand, flag.ContinueOnError)
	tcpAddr := fs.String("tcp", "", "tcp address")
	udpAddr := fs.String("udp", "", "udp address")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if *tcpAddr != "" {
		ln, err := net.Listen("tcp", *tcpAddr)
		if err != nil {
			return err
		}
		go func() {
			for {
				c, err := ln.Accept()
				if err != nil {
					return
				}
				go func() {
					defer c.Close()
					fmt.Fprintf(c, "peer=%s\n", c.RemoteAddr())
					_, _ = io.Copy(c, bufio.NewReader(c))
				}()
			}
		}()
	}
	if *udpAddr != "" {
		pc, err := net.ListenPacket("udp", *udpAddr)
		if err != nil {
			return err
		}
		go func() {
			buf := make([]byte, 65536)
			for {
				n, addr, err := pc.ReadFrom(buf)
				if err != nil {
					return
				}
				_, _ = pc.WriteTo([]byte(fmt.Sprintf("peer=%s %s", addr, buf[:n])), addr)
			}
		}()
	}
	fmt.Println("ready")
	_, _ = io.Copy(io.Discard, os.Stdin) // until the test closes stdin or kills us
	return nil
}

const testNotifyExecCommand = "slirp-test-notify-exec"

// runTestNotifyExec plays the container's init for the bind bypass:
//
//	slirp-test-notify-exec --connect=SOCKET -- ARGV...
//
// It installs InstallBindNotifier's filter on its thread, sends the listener
// over SOCKET (SCM_RIGHTS), waits for one byte back (the network is ready),
// and execs ARGV from the same thread.
func runTestNotifyExec(args []string) error {
	fs := flag.NewFlagSet(testNotifyExecCommand, flag.ContinueOnError)
	sock := fs.String("connect", "", "unix socket of the supervisor")
	if err := fs.Parse(args); err != nil {
		return err
	}
	argv := fs.Args()
	if len(argv) == 0 {
		return errors.New("no command")
	}
	runtime.LockOSThread()
	conn, err := net.Dial("unix", *sock)
	if err != nil {
		return err
	}
	listener, err := InstallBindNotifier()
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
	return syscall.Exec(argv[0], argv, os.Environ())
}
