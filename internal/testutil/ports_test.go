package testutil

import (
	"net"
	"strconv"
	"testing"
)

// TestFreePort: ports below the ephemeral range, each handed out once,
// each bindable for TCP and UDP, and a port in use never returned.
func TestFreePort(t *testing.T) {
	busy, err := net.Listen("tcp4", "127.0.0.1:"+strconv.Itoa(portLow))
	if err == nil {
		defer busy.Close()
	}
	seen := map[int]bool{}
	for range 50 {
		p := FreePort(t)
		if p < portLow || p >= portHigh {
			t.Fatalf("port %d outside %d–%d", p, portLow, portHigh)
		}
		if seen[p] {
			t.Fatalf("port %d handed out twice", p)
		}
		seen[p] = true
		if !portFree(p) {
			t.Fatalf("port %d not free", p)
		}
	}
	if err == nil && portFree(portLow) {
		t.Fatalf("portFree(%d) while it is bound", portLow)
	}
}
