package lifecycle

import (
	"bytes"
	"fmt"
	"os"
	"testing"
)

// TestExeCopy: the copy made on the side is this binary; it is handed
// over once, and close leaves a handle that was taken open and closes one
// that was not.
func TestExeCopy(t *testing.T) {
	want, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	c := copySelfExe()
	f, _, err := c.take()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, _, err := c.take(); err == nil {
		t.Error("a second take succeeded")
	}
	c.close()
	// Through /proc/self/fd: root's handle is O_PATH (a read-only
	// overlay), which reads nothing itself.
	got, err := os.ReadFile(fmt.Sprintf("/proc/self/fd/%d", f.Fd()))
	if err != nil {
		t.Fatalf("reading the handle after close: %v", err)
	}
	if !bytes.Equal(got, want) {
		t.Errorf("the handle has %d bytes, not the binary's %d (or other bytes)", len(got), len(want))
	}
	unused := copySelfExe()
	unused.close()
	if unused.f != nil {
		t.Error("close kept the handle nobody took")
	}
}
