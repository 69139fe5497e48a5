package pid1

import (
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"testing"
)

func TestCandidates(t *testing.T) {
	t.Setenv("PATH", "/a:/b::/c")
	if got, want := candidates("sh"), []string{"/a/sh", "/b/sh", "./sh", "/c/sh"}; !reflect.DeepEqual(got, want) {
		t.Errorf("candidates = %q, want %q", got, want)
	}
	if got := candidates("./x/sh"); !reflect.DeepEqual(got, []string{"./x/sh"}) {
		t.Errorf("a path: %q", got)
	}
}

func TestLookPath(t *testing.T) {
	dir := t.TempDir()
	exe, plain := filepath.Join(dir, "exe"), filepath.Join(dir, "plain")
	if err := os.WriteFile(exe, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(plain, []byte("x"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	if p, err := lookPath("exe"); err != nil || p != exe {
		t.Errorf("lookPath(exe) = %q, %v", p, err)
	}
	if os.Geteuid() != 0 { // root may execute anything with an x bit set anywhere
		if _, err := lookPath("plain"); !errors.Is(err, os.ErrPermission) {
			t.Errorf("lookPath(plain) = %v, want a permission error (126)", err)
		}
	}
	if _, err := lookPath("missing"); err == nil || errors.Is(err, os.ErrPermission) {
		t.Errorf("lookPath(missing) = %v, want not found (127)", err)
	}
}

// TestMainStatus runs Main as a child process (it is a pid 1 loop) and
// checks the exit statuses it passes on.
func TestMainStatus(t *testing.T) {
	if os.Getenv("PID1_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[len(os.Args)-3:]))
	}
	for _, tc := range []struct {
		script string
		want   int
	}{
		{"exit 7", 7},
		{"kill -TERM $$", 143},
		{"(sleep 0.1; exit 3) & wait", 0},
	} {
		cmd := exec.Command(os.Args[0], "-test.run=TestMainStatus", "--", "/bin/sh", "-c", tc.script)
		cmd.Env = append(os.Environ(), "PID1_TEST_MAIN=1")
		err := cmd.Run()
		code := 0
		var ee *exec.ExitError
		if errors.As(err, &ee) {
			code = ee.ExitCode()
		} else if err != nil {
			t.Fatal(err)
		}
		if code != tc.want {
			t.Errorf("%q: exit %d, want %d", tc.script, code, tc.want)
		}
	}
}
