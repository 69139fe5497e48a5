package seccomp

import (
	"reflect"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
)

// TestFilterBinaryRoundTrip: the binary form gives back the program, the
// flags and the listener need exactly, for the default profile and for a
// notifying, logging one; damaged forms are refused.
func TestFilterBinaryRoundTrip(t *testing.T) {
	def, err := DefaultProfileFor(nil)
	if err != nil {
		t.Fatal(err)
	}
	notify := &specs.LinuxSeccomp{
		DefaultAction: specs.ActAllow,
		Flags:         []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
		ListenerPath:  "/run/agent.sock",
		Syscalls:      []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}},
	}
	for name, p := range map[string]*specs.LinuxSeccomp{"default": def, "notify": notify} {
		f, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		b, err := f.MarshalBinary()
		if err != nil {
			t.Fatal(err)
		}
		var g Filter
		if err := g.UnmarshalBinary(b); err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if !reflect.DeepEqual(g.Instructions(), f.Instructions()) || g.Flags() != f.Flags() || g.NeedsListener() != f.NeedsListener() {
			t.Errorf("%s: round trip changed the filter (flags %#x→%#x, listener %v→%v, %d→%d instructions)",
				name, f.Flags(), g.Flags(), f.NeedsListener(), g.NeedsListener(), len(f.Instructions()), len(g.Instructions()))
		}
		if name == "notify" && (!g.NeedsListener() || g.Flags() == 0) {
			t.Errorf("notify: listener %v, flags %#x", g.NeedsListener(), g.Flags())
		}
		for _, bad := range [][]byte{nil, b[:len(b)-3], b[:len(binaryMagic)+9], append([]byte("XBPF1"), b[5:]...)} {
			if err := new(Filter).UnmarshalBinary(bad); err == nil {
				t.Errorf("%s: a damaged form of %d bytes was taken", name, len(bad))
			}
		}
	}
	huge := append([]byte(binaryMagic), make([]byte, 9+8*4097)...)
	if err := new(Filter).UnmarshalBinary(huge); err == nil || !strings.Contains(err.Error(), "4097") {
		t.Errorf("4097 instructions: %v", err)
	}
	if _, err := new(Filter).MarshalBinary(); err == nil {
		t.Error("an empty filter was encoded")
	}
}
