//go:build integration

package main_test

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/spec"
	"github.com/sandy-rt/sandy/internal/testutil"
)

// env is one test's sandy: the binary, a private state root and a bundle.
type env struct {
	t      *testing.T
	sandy  string
	root   string
	bundle string
	spec   *specs.Spec
}

// newEnv makes a busybox bundle running args, with the rootless example
// config (terminal off) and a private --root.
func newEnv(t *testing.T, args ...string) *env {
	t.Helper()
	testutil.RequireBinary(t, "newuidmap", "apt-get install uidmap")
	dir := testutil.TempDir(t)
	testutil.MakeRootfs(t, dir)
	s := spec.Example(true)
	s.Process.Terminal = false
	s.Root.Readonly = false
	if len(args) > 0 {
		s.Process.Args = args
	}
	e := &env{t: t, sandy: testutil.SandyBinary(t), root: filepath.Join(testutil.TempDir(t), "state"), bundle: dir, spec: s}
	e.write()
	t.Cleanup(func() {
		// Whatever a test left running is killed and removed.
		out, _ := exec.Command(e.sandy, "--root", e.root, "list", "-q").Output()
		for _, id := range strings.Fields(string(out)) {
			_ = exec.Command(e.sandy, "--root", e.root, "delete", "--force", id).Run()
		}
	})
	return e
}

func (e *env) write() { testutil.WriteConfig(e.t, e.bundle, e.spec) }

type result struct {
	stdout, stderr string
	code           int
}

// run runs `sandy --root R ARGS...` with stdin, and waits (bounded).
// stdout and stderr are files, not pipes: `create` hands its stdio to the
// container, which keeps them open after sandy exits (runc semantics).
func (e *env) run(stdin string, args ...string) result {
	e.t.Helper()
	cmd := exec.Command(e.sandy, append([]string{"--root", e.root}, args...)...)
	cmd.Stdin = strings.NewReader(stdin)
	outF, err := os.CreateTemp("", "sandy-out-")
	if err != nil {
		e.t.Fatal(err)
	}
	errF, err := os.CreateTemp("", "sandy-err-")
	if err != nil {
		e.t.Fatal(err)
	}
	defer func() {
		outF.Close()
		errF.Close()
		os.Remove(outF.Name())
		os.Remove(errF.Name())
	}()
	cmd.Stdout, cmd.Stderr = outF, errF
	if err := cmd.Start(); err != nil {
		e.t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	timedOut := false
	select {
	case <-done:
	case <-time.After(60 * time.Second):
		_ = cmd.Process.Kill()
		<-done
		timedOut = true
	}
	out, _ := os.ReadFile(outF.Name())
	errb, _ := os.ReadFile(errF.Name())
	if timedOut {
		e.t.Fatalf("sandy %v: timed out\nstdout: %s\nstderr: %s", args, out, errb)
	}
	r := result{stdout: string(out), stderr: string(errb), code: cmd.ProcessState.ExitCode()}
	if ws, ok := cmd.ProcessState.Sys().(syscall.WaitStatus); ok && ws.Signaled() {
		r.code = 128 + int(ws.Signal())
	}
	return r
}

// otherWarnings is stderr without the line that says the cgroup manager
// fell back to none, which `run` prints on a host without a systemd user
// session or delegated cgroup v2 (ours; TestCgroupNoneSaid tests it): what
// a test that counts its own fallback's warnings looks at.
func otherWarnings(stderr string) string {
	var kept []string
	for _, l := range strings.SplitAfter(stderr, "\n") {
		if !strings.HasPrefix(l, "sandy: warning: cgroup manager none: ") {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "")
}

// runBundle is `sandy run BUNDLE` and requires exit code want.
func (e *env) runBundle(want int) result {
	e.t.Helper()
	r := e.run("", "run", e.bundle)
	if r.code != want {
		e.t.Fatalf("sandy run: exit %d, want %d\nstdout: %s\nstderr: %s", r.code, want, r.stdout, r.stderr)
	}
	return r
}

// sh sets the process to `sh -c script`.
func (e *env) sh(script string) *env {
	e.spec.Process.Args = []string{"sh", "-c", script}
	e.write()
	return e
}

// treeHash hashes every path under dir with its type, mode, owner, size,
// link target and content: a change anywhere changes the hash.
func treeHash(t *testing.T, dir string) string {
	t.Helper()
	var lines []string
	err := filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		fi, err := os.Lstat(p)
		if err != nil {
			return err
		}
		st := fi.Sys().(*syscall.Stat_t)
		line := fmt.Sprintf("%s %o %d:%d %d", strings.TrimPrefix(p, dir), fi.Mode(), st.Uid, st.Gid, fi.Size())
		if fi.IsDir() || fi.Mode().IsRegular() {
			line += fmt.Sprintf(" mtime=%d", fi.ModTime().UnixNano())
		}
		switch {
		case fi.Mode()&fs.ModeSymlink != 0:
			l, _ := os.Readlink(p)
			line += " -> " + l
		case fi.Mode().IsRegular():
			f, err := os.Open(p)
			if err != nil {
				return err
			}
			h := sha256.New()
			_, _ = io.Copy(h, f)
			f.Close()
			line += " " + hex.EncodeToString(h.Sum(nil))
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil && !errors.Is(err, fs.ErrPermission) {
		t.Fatal(err)
	}
	sort.Strings(lines)
	h := sha256.Sum256([]byte(strings.Join(lines, "\n")))
	return hex.EncodeToString(h[:])
}

// waitFor polls cond for up to d.
func waitFor(t *testing.T, d time.Duration, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(d)
	for time.Now().Before(deadline) {
		if cond() {
			return
		}
		time.Sleep(20 * time.Millisecond)
	}
	t.Fatalf("timed out waiting for %s", what)
}

// syncBuffer is a bytes.Buffer safe to read while a process writes to it.
type syncBuffer struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}
