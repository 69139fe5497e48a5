package userns

import (
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRootOverlayMakesNothing: root's read-only overlay of the binary
// (readOnlyOverlay) makes no file: with TMPDIR naming a directory that
// does not exist it is made all the same; and its empty lowerdir, a tmpfs
// on the binary's directory in a mount namespace of its own, reaches no
// other namespace even where the binary's mount is shared (a peer group
// whose mounts propagate, as systemd makes /): the host's mountinfo lists
// nothing on the directory (assertReadOnlyOverlay).
func TestRootOverlayMakesNothing(t *testing.T) {
	if !hostAdmin() {
		t.Skip("readOnlyOverlay is root's way: it needs CAP_SYS_ADMIN in the initial user namespace (run the tests as root; TestUserNSOverlay covers everyone else)")
	}
	data, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	shared := t.TempDir()
	if err := unix.Mount("tmpfs", shared, "tmpfs", 0, "mode=0755"); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = unix.Unmount(shared, unix.MNT_DETACH) })
	if err := unix.Mount("", shared, "", unix.MS_SHARED, ""); err != nil {
		t.Fatal(err)
	}
	bin := filepath.Join(shared, "bin")
	if err := os.Mkdir(bin, 0o755); err != nil {
		t.Fatal(err)
	}
	own := filepath.Join(bin, "sandy")
	if err := os.WriteFile(own, data, 0o755); err != nil {
		t.Fatal(err)
	}
	src, err := os.Open(own)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close()
	t.Setenv("TMPDIR", filepath.Join(t.TempDir(), "missing"))
	f, err := readOnlyOverlay(own)
	if err != nil {
		t.Fatalf("readOnlyOverlay with TMPDIR missing: %v", err)
	}
	defer f.Close()
	assertReadOnlyOverlay(t, f, src)
}
