//go:build linux

package slirp

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"net"
	"os"
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
