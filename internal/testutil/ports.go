package testutil

import (
	"fmt"
	"math/rand/v2"
	"net"
	"sync"
	"testing"
)

// Ports a test publishes are drawn from below the kernel's ephemeral
// range (net.ipv4.ip_local_port_range, 32768–60999 by default): a port
// found free there by binding to port 0 is free only until any connect(2)
// on the machine takes it as its local port, which the test packages
// that `go test ./...` runs in parallel do all the time (EADDRINUSE at
// the publish, seen in TestRunDetached/parallel). Below that range only
// an explicit bind takes a port.
const (
	portLow  = 20000
	portHigh = 32000
)

var handedOut sync.Map // ports already returned in this process

// FreePort returns a port on 127.0.0.1 that is free for both TCP and UDP
// now, outside the ephemeral range and never returned before in this
// test process. Another process may still take it; the range is wide
// enough to make that rare.
func FreePort(t testing.TB) int {
	t.Helper()
	for range 200 {
		p := portLow + rand.IntN(portHigh-portLow)
		if _, taken := handedOut.LoadOrStore(p, true); taken {
			continue
		}
		if portFree(p) {
			return p
		}
	}
	t.Fatalf("no free port on 127.0.0.1 in %d–%d after 200 tries", portLow, portHigh)
	return 0
}

func portFree(p int) bool {
	addr := fmt.Sprintf("127.0.0.1:%d", p)
	l, err := net.Listen("tcp4", addr)
	if err != nil {
		return false
	}
	defer l.Close()
	pc, err := net.ListenPacket("udp4", addr)
	if err != nil {
		return false
	}
	pc.Close()
	return true
}
