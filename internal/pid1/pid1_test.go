package pid1

import (
	"errors"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
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

func TestParseArgs(t *testing.T) {
	tests := []struct {
		name      string
		args      []string
		wantCmd   []string
		wantReady int
		wantErr   string
	}{
		{name: "plain", args: []string{"sh", "-c", "x"}, wantCmd: []string{"sh", "-c", "x"}, wantReady: -1},
		{name: "dashes", args: []string{"--", "sh"}, wantCmd: []string{"sh"}, wantReady: -1},
		{name: "ready fd", args: []string{"--ready-fd=7", "--", "sh", "--"}, wantCmd: []string{"sh", "--"}, wantReady: 7},
		{name: "ready fd, no dashes", args: []string{"--ready-fd=3", "sh"}, wantCmd: []string{"sh"}, wantReady: 3},
		{name: "the command's own flag", args: []string{"--", "--ready-fd=3"}, wantCmd: []string{"--ready-fd=3"}, wantReady: -1},
		{name: "stdio is no ready fd", args: []string{"--ready-fd=2", "sh"}, wantErr: "want an fd number above 2", wantReady: -1},
		{name: "not a number", args: []string{"--ready-fd=x", "sh"}, wantErr: "want an fd number above 2", wantReady: -1},
		{name: "no command", args: []string{"--ready-fd=4", "--"}, wantErr: "no command", wantReady: 4},
		{name: "nothing", args: nil, wantErr: "no command", wantReady: -1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cmd, ready, err := parseArgs(tt.args)
			if ready != tt.wantReady {
				t.Errorf("ready fd %d, want %d", ready, tt.wantReady)
			}
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Errorf("error %v, want %q", err, tt.wantErr)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(cmd, tt.wantCmd) {
				t.Errorf("parseArgs = %q, %v, want %q", cmd, err, tt.wantCmd)
			}
		})
	}
}

func FuzzParseArgs(f *testing.F) {
	f.Add("--ready-fd=5", "--", "sh")
	f.Add("--", "sh", "-c")
	f.Fuzz(func(t *testing.T, a, b, c string) {
		cmd, ready, err := parseArgs([]string{a, b, c})
		if err == nil && len(cmd) == 0 {
			t.Errorf("no error and no command for %q", []string{a, b, c})
		}
		if ready != -1 && ready < 3 {
			t.Errorf("ready fd %d", ready)
		}
	})
}

// TestMainReady: Main closes the ready fd once its handlers exist, and
// not before, and its command never has it. A SIGTERM sent the moment
// the fd's EOF arrives goes to the command (which traps it: 42, or 143
// before the trap) instead of killing the Go program, which (not a pid 1
// here) would die of it.
func TestMainReady(t *testing.T) {
	if os.Getenv("PID1_TEST_MAIN") == "1" {
		os.Exit(Main(os.Args[len(os.Args)-5:]))
	}
	for i := 0; i < 20; i++ {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		cmd := exec.Command(os.Args[0], "-test.run=^TestMainReady$", "--", "--ready-fd=3", "--", "/bin/sh", "-c",
			`[ -e /proc/$$/fd/3 ] && exit 9; trap "exit 42" TERM; while :; do sleep 0.05; done`)
		cmd.Env = append(os.Environ(), "PID1_TEST_MAIN=1")
		cmd.ExtraFiles = []*os.File{w}
		if err := cmd.Start(); err != nil {
			t.Fatal(err)
		}
		w.Close()
		if _, err := io.ReadAll(r); err != nil {
			t.Fatal(err)
		}
		r.Close()
		if err := cmd.Process.Signal(syscall.SIGTERM); err != nil {
			t.Fatal(err)
		}
		err = cmd.Wait()
		if code := cmd.ProcessState.ExitCode(); code != 42 && code != 143 {
			t.Fatalf("round %d: %v (exit %d), want 42 or 143: the command's status", i, err, code)
		}
	}
}
