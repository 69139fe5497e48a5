//go:build linux

package cgroupv2

import (
	"context"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRemoved: a cgroup file read while systemd removes the scope fails
// with ENODEV (kernfs's deactivated node); Destroy's wait must take that
// as the cgroup's end, as it takes ENOENT, and nothing else.
func TestRemoved(t *testing.T) {
	for _, c := range []struct {
		err  error
		want bool
	}{
		{&fs.PathError{Op: "open", Path: "cgroup.events", Err: unix.ENODEV}, true},
		{&fs.PathError{Op: "open", Path: "cgroup.events", Err: unix.ENOENT}, true},
		{fmt.Errorf("reading events of x: %w", &fs.PathError{Op: "read", Err: unix.ENODEV}), true},
		{&fs.PathError{Op: "rmdir", Err: unix.EBUSY}, false},
		{&fs.PathError{Op: "open", Err: unix.EACCES}, false},
	} {
		if got := removed(c.err); got != c.want {
			t.Errorf("removed(%v) = %v, want %v", c.err, got, c.want)
		}
	}
}

// TestRemoveUnreadable: remove fails when the cgroup still exists but its
// events cannot be read for another reason (here: a directory where the
// file should be), rather than calling an unknown state removed.
func TestRemoveUnreadable(t *testing.T) {
	dir := t.TempDir()
	if err := os.WriteFile(filepath.Join(dir, "cgroup.kill"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(dir, "cgroup.events"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := (leaf{path: dir}).remove(context.Background()); err == nil {
		t.Fatal("remove of a cgroup with unreadable events succeeded")
	}
	if err := (leaf{path: filepath.Join(dir, "gone")}).remove(context.Background()); err != nil {
		t.Fatalf("remove of a missing cgroup: %v", err)
	}
}
