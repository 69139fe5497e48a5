//go:build linux

package slirp

import (
	"os"
	"reflect"
	"testing"
)

// TestPortChildNsenterArgs: -U only for a container in another user
// namespace; nsenter cannot enter its own (root's containers without a
// user namespace failed every -p with "reassociate to namespace 'ns/user'
// failed: Invalid argument").
func TestPortChildNsenterArgs(t *testing.T) {
	if got, want := portChildNsenterArgs(42, false, false), []string{"-t", "42", "-n", "-U", "--preserve-credentials", "--"}; !reflect.DeepEqual(got, want) {
		t.Errorf("another user namespace: %q, want %q", got, want)
	}
	if got, want := portChildNsenterArgs(42, true, false), []string{"-t", "42", "-n", "--"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sandy's own user namespace: %q, want %q", got, want)
	}
	// The raw init's: by the handles, nsenter's fds 4 and 5.
	if got, want := portChildNsenterArgs(42, false, true), []string{"--net=/proc/self/fd/4", "--user=/proc/self/fd/5", "--preserve-credentials", "--"}; !reflect.DeepEqual(got, want) {
		t.Errorf("by handle: %q, want %q", got, want)
	}
	// By handle, the checks stat the handles, not /proc/PID/ns.
	self, err := os.Open("/proc/self/ns/user")
	if err != nil {
		t.Fatal(err)
	}
	defer self.Close()
	if same, err := sharesUserNS(nsOf{pid: 1 << 30, user: self}); err != nil || !same {
		t.Errorf("sharesUserNS(own handle) = %v, %v; want true", same, err)
	}
	same, err := sharesUserNS(nsOf{pid: os.Getpid()})
	if err != nil || !same {
		t.Fatalf("sharesUserNS(self) = %v, %v; want true", same, err)
	}
	if _, err := sharesUserNS(nsOf{pid: 1 << 30}); err == nil {
		t.Fatal("sharesUserNS of no process: no error")
	}
}
