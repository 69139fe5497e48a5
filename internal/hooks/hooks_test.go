//go:build linux

package hooks

import (
	"bytes"
	"context"
	"errors"
	"github.com/sandy-rt/sandy/internal/testutil"
	"io"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

var testState = []byte(`{"ociVersion":"1.2.0","id":"c1","status":"creating","pid":42,"bundle":"/b"}`)

// script writes an executable /bin/sh script into dir and returns its path.
func script(t *testing.T, dir, name, body string) string {
	t.Helper()
	p := filepath.Join(dir, name)
	if err := os.WriteFile(p, []byte("#!/bin/sh\n"+body+"\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	return p
}

func intp(i int) *int { return &i }

// gone reports whether pid has exited (no process, or a zombie nobody reaped
// yet), polling for up to 3s.
func gone(pid int) bool {
	for deadline := time.Now().Add(3 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
		st, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/stat")
		if err != nil {
			return true
		}
		if f := strings.Fields(string(st[bytes.LastIndexByte(st, ')')+1:])); len(f) > 0 && f[0] == "Z" {
			return true
		}
	}
	return false
}

func readPid(t *testing.T, path string) int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatalf("hook did not write its child's pid: %v", err)
	}
	pid, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		t.Fatal(err)
	}
	return pid
}

func TestRun(t *testing.T) {
	type result struct {
		err            error
		stdout, stderr string
		took           time.Duration
		dir            string
	}
	tests := []struct {
		name string
		// hook builds the hook; dir is a fresh temp dir.
		hook  func(t *testing.T, dir string) specs.Hook
		check func(t *testing.T, r result)
	}{
		{
			name: "state on stdin",
			hook: func(t *testing.T, dir string) specs.Hook {
				p := script(t, dir, "h", `cat >"$1"`)
				return specs.Hook{Path: p, Args: []string{p, filepath.Join(dir, "out")}}
			},
			check: func(t *testing.T, r result) {
				if r.err != nil {
					t.Fatal(r.err)
				}
				got, _ := os.ReadFile(filepath.Join(r.dir, "out"))
				if !bytes.Equal(got, testState) {
					t.Fatalf("stdin = %q, want %q", got, testState)
				}
			},
		},
		{
			name: "env replaces the environment",
			hook: func(t *testing.T, dir string) specs.Hook {
				return specs.Hook{Path: script(t, dir, "h", `echo "A=$A B=$B LEAK=$SANDY_HOOK_LEAK"`), Env: []string{"A=1", "B=two words"}}
			},
			check: func(t *testing.T, r result) {
				if r.err != nil {
					t.Fatal(r.err)
				}
				if want := "A=1 B=two words LEAK=\n"; r.stdout != want {
					t.Fatalf("stdout = %q, want %q", r.stdout, want)
				}
			},
		},
		{
			name: "no env means an empty environment",
			hook: func(t *testing.T, dir string) specs.Hook {
				return specs.Hook{Path: "/usr/bin/env"}
			},
			check: func(t *testing.T, r result) {
				if r.err != nil || r.stdout != "" {
					t.Fatalf("err = %v, stdout = %q; want nil, empty", r.err, r.stdout)
				}
			},
		},
		{
			name: "args are the whole argv",
			hook: func(t *testing.T, dir string) specs.Hook {
				p := script(t, dir, "h", `echo "$#|$1|$2"`)
				return specs.Hook{Path: p, Args: []string{"ignored-by-sh", "a b", "*"}}
			},
			check: func(t *testing.T, r result) {
				if r.err != nil || r.stdout != "2|a b|*\n" {
					t.Fatalf("err = %v, stdout = %q; want 2|a b|*", r.err, r.stdout)
				}
			},
		},
		{
			name: "argv[0] is Args[0]",
			hook: func(t *testing.T, dir string) specs.Hook {
				// busybox picks its applet from argv[0].
				if _, err := os.Stat("/bin/busybox"); err != nil {
					testutil.Skip(t, "/bin/busybox missing (apt-get install busybox-static)")
				}
				return specs.Hook{Path: "/bin/busybox", Args: []string{"echo", "from", "echo"}}
			},
			check: func(t *testing.T, r result) {
				if r.err != nil || r.stdout != "from echo\n" {
					t.Fatalf("err = %v, stdout = %q; want %q", r.err, r.stdout, "from echo\n")
				}
			},
		},
		{
			name: "stdout and stderr are relayed",
			hook: func(t *testing.T, dir string) specs.Hook {
				return specs.Hook{Path: script(t, dir, "h", `echo out; echo err >&2`)}
			},
			check: func(t *testing.T, r result) {
				if r.err != nil || r.stdout != "out\n" || r.stderr != "err\n" {
					t.Fatalf("err = %v, stdout = %q, stderr = %q", r.err, r.stdout, r.stderr)
				}
			},
		},
		{
			name: "non-zero exit names path, status and stderr",
			hook: func(t *testing.T, dir string) specs.Hook {
				return specs.Hook{Path: script(t, dir, "failing", `echo "no network for you" >&2; exit 3`)}
			},
			check: func(t *testing.T, r result) {
				var he *Error
				if !errors.As(r.err, &he) {
					t.Fatalf("err = %v, want *Error", r.err)
				}
				msg := r.err.Error()
				for _, want := range []string{filepath.Join(r.dir, "failing"), "exit status 3", "no network for you"} {
					if !strings.Contains(msg, want) {
						t.Errorf("error %q lacks %q", msg, want)
					}
				}
			},
		},
		{
			name: "stderr tail is bounded",
			hook: func(t *testing.T, dir string) specs.Hook {
				return specs.Hook{Path: script(t, dir, "h", `i=0; while [ $i -lt 200 ]; do echo "line $i padding padding padding padding padding"; i=$((i+1)); done >&2; echo LAST >&2; exit 1`)}
			},
			check: func(t *testing.T, r result) {
				var he *Error
				if !errors.As(r.err, &he) {
					t.Fatalf("err = %v, want *Error", r.err)
				}
				if len(he.Stderr) > StderrTail+3 || !strings.HasSuffix(he.Stderr, "LAST\n") || !strings.HasPrefix(he.Stderr, "...") {
					t.Fatalf("tail has %d bytes (max %d), ends %q", len(he.Stderr), StderrTail, he.Stderr[max(0, len(he.Stderr)-20):])
				}
				if len(r.stderr) < 9000 {
					t.Fatalf("relayed stderr has %d bytes, want all of it", len(r.stderr))
				}
			},
		},
		{
			name: "timeout kills the hook and its children",
			hook: func(t *testing.T, dir string) specs.Hook {
				p := script(t, dir, "slow", `sleep 100 & echo $! >"$1"; sleep 100`)
				return specs.Hook{Path: p, Args: []string{p, filepath.Join(dir, "child")}, Timeout: intp(1)}
			},
			check: func(t *testing.T, r result) {
				if !errors.Is(r.err, ErrTimeout) {
					t.Fatalf("err = %v, want ErrTimeout", r.err)
				}
				if msg := r.err.Error(); !strings.Contains(msg, filepath.Join(r.dir, "slow")) || !strings.Contains(msg, "1s") {
					t.Errorf("error %q should name the hook and the timeout", msg)
				}
				if r.took > 5*time.Second {
					t.Errorf("took %v", r.took)
				}
				if pid := readPid(t, filepath.Join(r.dir, "child")); !gone(pid) {
					_ = unix.Kill(pid, unix.SIGKILL)
					t.Fatalf("the hook's child %d survived the timeout", pid)
				}
			},
		},
		{
			name: "a hook that finishes within its timeout succeeds",
			hook: func(t *testing.T, dir string) specs.Hook {
				return specs.Hook{Path: script(t, dir, "h", `exit 0`), Timeout: intp(5)}
			},
			check: func(t *testing.T, r result) {
				if r.err != nil {
					t.Fatal(r.err)
				}
			},
		},
		{
			name: "a daemon holding stdout does not hang the runtime",
			hook: func(t *testing.T, dir string) specs.Hook {
				p := script(t, dir, "h", `sleep 30 & echo $! >"$1"; exit 0`)
				return specs.Hook{Path: p, Args: []string{p, filepath.Join(dir, "child")}}
			},
			check: func(t *testing.T, r result) {
				_ = unix.Kill(readPid(t, filepath.Join(r.dir, "child")), unix.SIGKILL)
				if r.err != nil || r.took > 5*time.Second {
					t.Fatalf("err = %v after %v; want nil within %v", r.err, r.took, pipeDrain)
				}
			},
		},
		{
			name: "relative path is refused",
			hook: func(t *testing.T, dir string) specs.Hook {
				return specs.Hook{Path: "bin/true"}
			},
			check: func(t *testing.T, r result) {
				if !errors.Is(r.err, ErrRelativePath) || !strings.Contains(r.err.Error(), "bin/true") {
					t.Fatalf("err = %v, want ErrRelativePath naming bin/true", r.err)
				}
			},
		},
		{
			name: "zero timeout is refused",
			hook: func(t *testing.T, dir string) specs.Hook {
				return specs.Hook{Path: "/bin/true", Timeout: intp(0)}
			},
			check: func(t *testing.T, r result) {
				if !errors.Is(r.err, ErrBadTimeout) {
					t.Fatalf("err = %v, want ErrBadTimeout", r.err)
				}
			},
		},
		{
			name: "missing executable",
			hook: func(t *testing.T, dir string) specs.Hook {
				return specs.Hook{Path: filepath.Join(dir, "nope")}
			},
			check: func(t *testing.T, r result) {
				if !errors.Is(r.err, os.ErrNotExist) || !strings.Contains(r.err.Error(), filepath.Join(r.dir, "nope")) {
					t.Fatalf("err = %v, want ENOENT naming the path", r.err)
				}
			},
		},
		{
			name: "only fds 0-2 are inherited",
			hook: func(t *testing.T, dir string) specs.Hook {
				// An fd opened without O_CLOEXEC, as a careless raw syscall would.
				fd, err := unix.Open(dir, unix.O_RDONLY|unix.O_DIRECTORY, 0)
				if err != nil {
					t.Fatal(err)
				}
				if err := unix.Dup2(fd, 77); err != nil {
					t.Fatal(err)
				}
				unix.Close(fd)
				t.Cleanup(func() { unix.Close(77) })
				// ls is a child of the shell, listing the shell's fds.
				return specs.Hook{Path: script(t, dir, "h", `ls /proc/$$/fd`), Env: []string{"PATH=/usr/bin:/bin"}}
			},
			check: func(t *testing.T, r result) {
				if r.err != nil {
					t.Fatal(r.err)
				}
				for _, fd := range strings.Fields(r.stdout) {
					if fd != "0" && fd != "1" && fd != "2" && fd != "10" {
						// dash keeps its script open at fd 10.
						t.Fatalf("hook sees fds %q; want none above 2 but the shell's own", r.stdout)
					}
				}
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("SANDY_HOOK_LEAK", "leaked")
			dir := t.TempDir()
			h := tt.hook(t, dir)
			var stdout, stderr bytes.Buffer
			start := time.Now()
			err := Run(context.Background(), h, testState, &stdout, &stderr)
			tt.check(t, result{err: err, stdout: stdout.String(), stderr: stderr.String(), took: time.Since(start), dir: dir})
		})
	}
}

func TestRunCancel(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "h", `sleep 100 & echo $! >"$1"; sleep 100`)
	ctx, cancel := context.WithTimeout(context.Background(), 300*time.Millisecond)
	defer cancel()
	err := Run(ctx, specs.Hook{Path: p, Args: []string{p, filepath.Join(dir, "child")}, Timeout: intp(60)}, testState, nil, nil)
	if !errors.Is(err, context.DeadlineExceeded) || errors.Is(err, ErrTimeout) {
		t.Fatalf("err = %v, want the caller's deadline, not the hook's timeout", err)
	}
	if pid := readPid(t, filepath.Join(dir, "child")); !gone(pid) {
		_ = unix.Kill(pid, unix.SIGKILL)
		t.Fatalf("child %d survived cancellation", pid)
	}
}

func TestRunAll(t *testing.T) {
	dir := t.TempDir()
	mark := script(t, dir, "mark", `echo "$1" >>"$2"`)
	log := filepath.Join(dir, "log")
	ok := func(name string) specs.Hook { return specs.Hook{Path: mark, Args: []string{mark, name, log}} }
	fail := specs.Hook{Path: script(t, dir, "fail", `echo broken >&2; exit 7`)}

	tests := []struct {
		name    string
		run     func(context.Context, string, []specs.Hook, []byte, io.Writer, io.Writer) error
		hooks   []specs.Hook
		wantLog string
		wantErr []string // substrings; nil means no error
	}{
		{"all succeed", RunAll, []specs.Hook{ok("a"), ok("b")}, "a\nb\n", nil},
		{"empty", RunAll, nil, "", nil},
		{"stops at the first failure", RunAll, []specs.Hook{ok("a"), fail, ok("c")}, "a\n", []string{"prestart hook 1", "exit status 7", "broken"}},
		{"report runs them all", RunAllReport, []specs.Hook{fail, ok("b"), fail}, "b\n", []string{"poststop hook 0", "poststop hook 2", "exit status 7"}},
		{"report with no failure", RunAllReport, []specs.Hook{ok("a")}, "a\n", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			os.Remove(log)
			kind := "prestart"
			if tt.wantErr != nil && strings.HasPrefix(tt.wantErr[0], "poststop") {
				kind = "poststop"
			}
			err := tt.run(context.Background(), kind, tt.hooks, testState, nil, nil)
			got, _ := os.ReadFile(log)
			if string(got) != tt.wantLog {
				t.Errorf("ran %q, want %q", got, tt.wantLog)
			}
			if tt.wantErr == nil {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil {
				t.Fatal("no error")
			}
			for _, w := range tt.wantErr {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
			if !errors.As(err, new(*Error)) {
				t.Errorf("error %v is not an *Error", err)
			}
		})
	}
}

// TestRunCancelCause: a hook with no timeout runs until the caller cancels
// ctx; the error carries the cause (why the caller gave up), still matches
// context.Canceled, and the hook's process group is gone. RunAll starts no
// further hook once ctx is done.
func TestRunCancelCause(t *testing.T) {
	dir := t.TempDir()
	p := script(t, dir, "h", `sleep 100 & echo $! >"$1"; sleep 100`)
	ctx, cancel := context.WithCancelCause(context.Background())
	cause := errors.New("interrupted by SIGTERM")
	time.AfterFunc(300*time.Millisecond, func() { cancel(cause) })
	mark := filepath.Join(dir, "second-ran")
	hs := []specs.Hook{
		{Path: p, Args: []string{p, filepath.Join(dir, "child")}},
		{Path: script(t, dir, "second", `touch "$1"`), Args: []string{"second", mark}},
	}
	t0 := time.Now()
	err := RunAll(ctx, "prestart", hs, testState, nil, nil)
	if !errors.Is(err, cause) || !errors.Is(err, context.Canceled) || !strings.Contains(err.Error(), "interrupted by SIGTERM") {
		t.Fatalf("err = %v, want the cause and context.Canceled", err)
	}
	if took := time.Since(t0); took > 5*time.Second {
		t.Errorf("took %v", took)
	}
	if pid := readPid(t, filepath.Join(dir, "child")); !gone(pid) {
		_ = unix.Kill(pid, unix.SIGKILL)
		t.Fatalf("child %d survived cancellation", pid)
	}
	if err := RunAll(ctx, "prestart", hs[1:], testState, nil, nil); !errors.Is(err, cause) {
		t.Fatalf("RunAll after cancel: %v, want the cause", err)
	}
	if _, err := os.Stat(mark); err == nil {
		t.Fatal("a hook started after ctx was cancelled")
	}
}
