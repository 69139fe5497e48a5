package inroot

import (
	"errors"
	"io/fs"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"
)

func TestReadFile(t *testing.T) {
	base := t.TempDir()
	host := filepath.Join(base, "host-secret")
	if err := os.WriteFile(host, []byte("host"), 0o644); err != nil {
		t.Fatal(err)
	}
	root := filepath.Join(base, "root")
	for _, d := range []string{"etc", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	write := func(p, data string) {
		t.Helper()
		if err := os.WriteFile(filepath.Join(root, p), []byte(data), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("etc/passwd", "root:x:0:0::/root:/bin/sh\n")
	write("etc/big", strings.Repeat("x", 101))
	// Symlinks that point out of the root resolve inside it.
	for name, target := range map[string]string{"etc/abs": host, "etc/rel": "../../host-secret", "etc/hop": "/etc/passwd"} {
		if err := os.Symlink(target, filepath.Join(root, name)); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mkfifo(filepath.Join(root, "etc/fifo"), 0o644); err != nil {
		t.Fatal(err)
	}

	if got, err := ReadFile(root, "/etc/passwd", 100); err != nil || !strings.HasPrefix(got, "root:x:0:0") {
		t.Errorf("passwd: %q, %v", got, err)
	}
	if got, err := ReadFile(root, "etc/hop", 100); err != nil || !strings.HasPrefix(got, "root:x:0:0") {
		t.Errorf("an absolute link is the root's: %q, %v", got, err)
	}
	for _, p := range []string{"etc/abs", "etc/rel", "../host-secret", "/../../host-secret"} {
		got, err := ReadFile(root, p, 100)
		if got == "host" {
			t.Errorf("%s read the host's file", p)
		}
		if !errors.Is(err, fs.ErrNotExist) {
			t.Errorf("%s: err = %v, want not found inside the root", p, err)
		}
	}
	if _, err := ReadFile(root, "etc/fifo", 100); err == nil || !strings.Contains(err.Error(), "not a regular file") {
		t.Errorf("fifo: %v", err)
	}
	if _, err := ReadFile(root, "etc/big", 100); err == nil || !strings.Contains(err.Error(), "larger than 100") {
		t.Errorf("big: %v", err)
	}
	if _, err := ReadFile(root, "etc/group", 100); !errors.Is(err, fs.ErrNotExist) {
		t.Errorf("missing: %v", err)
	}
}
