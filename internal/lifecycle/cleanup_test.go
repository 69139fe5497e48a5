package lifecycle

import (
	"bytes"
	"io"
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
	f, err := c.take()
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	if _, err := c.take(); err == nil {
		t.Error("a second take succeeded")
	}
	c.close()
	got, err := io.ReadAll(io.NewSectionReader(f, 0, 1<<40))
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
