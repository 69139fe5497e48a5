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
	if got, want := portChildNsenterArgs(42, false), []string{"-t", "42", "-n", "-U", "--preserve-credentials", "--"}; !reflect.DeepEqual(got, want) {
		t.Errorf("another user namespace: %q, want %q", got, want)
	}
	if got, want := portChildNsenterArgs(42, true), []string{"-t", "42", "-n", "--"}; !reflect.DeepEqual(got, want) {
		t.Errorf("sandy's own user namespace: %q, want %q", got, want)
	}
	same, err := sharesUserNS(os.Getpid())
	if err != nil || !same {
		t.Fatalf("sharesUserNS(self) = %v, %v; want true", same, err)
	}
	if _, err := sharesUserNS(1 << 30); err == nil {
		t.Fatal("sharesUserNS of no process: no error")
	}
}
