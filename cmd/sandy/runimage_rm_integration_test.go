//go:build integration

package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// TestRunRmRemovesBehind: `run --rm IMAGE` returns the exit status once
// the container has exited, without waiting for its layer's removal (here
// held up by the test, which holds the store's own locks as a slow disk
// or a busy store would); the command that follows (a list, a run of the
// same name) waits for that removal and sees the container gone.
func TestRunRmRemovesBehind(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	e.loadImage("localhost/bb:plain", imagefix.Busybox(t))
	mark := filepath.Join(testutil.TempDir(t), "mark")
	e.write(mark, "")
	c := e.cmd("run", "--rm", "--network", "none", "--name", "x", "-v", filepath.Dir(mark)+":/m",
		"localhost/bb:plain", "sh", "-c", "echo up > /m/mark; while [ -s /m/mark ]; do sleep 0.02; done; exit 3")
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 30*time.Second, "the container to run", func() bool {
		b, _ := os.ReadFile(mark)
		return string(b) == "up\n"
	})
	// The store's locks (storage's fcntl locks on its lock files): the
	// removal cannot begin while the test holds them.
	var held []*os.File
	for _, p := range []string{"storage.lock", "overlay-layers/layers.lock", "overlay-containers/containers.lock"} {
		f, err := os.OpenFile(filepath.Join(e.dir, "graph", p), os.O_RDWR, 0)
		if err != nil {
			t.Fatal(err)
		}
		lk := unix.Flock_t{Type: unix.F_WRLCK}
		if err := unix.FcntlFlock(f.Fd(), unix.F_SETLKW, &lk); err != nil {
			t.Fatalf("locking %s: %v", p, err)
		}
		held = append(held, f)
	}
	release := func() {
		for _, f := range held {
			f.Close()
		}
		held = nil
	}
	defer release()
	if err := os.WriteFile(mark, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		if c.ProcessState.ExitCode() != 3 {
			t.Errorf("run --rm: %v, want exit status 3", err)
		}
	case <-time.After(15 * time.Second):
		release()
		<-done
		t.Fatal("run --rm waited for the layer's removal (the store's locks held for 15 s)")
	}
	if ids := e.storageContainersNow(); len(ids) != 1 {
		t.Errorf("while the removal waits for the store: %d storage containers, want the one being removed", len(ids))
	}
	time.Sleep(200 * time.Millisecond)
	release()
	// What follows waits for the removal: the list is empty, the name free.
	if out := e.ok("ps", "-a", "--external", "-q"); strings.TrimSpace(out) != "" {
		t.Errorf("ps -a --external after run --rm: %q", out)
	}
	e.ok("run", "--rm", "--network", "none", "--name", "x", "localhost/bb:plain", "true")
	r := e.run_(nil, "run", "--rm", "--network", "none", "--name", "x", "localhost/bb:plain", "true")
	if r.code != 0 {
		t.Errorf("a second run --rm --name x at once: exit %d: %s", r.code, r.stderr)
	}
	if ids := e.storageContainers(); len(ids) != 0 {
		t.Errorf("storage containers left: %v", ids)
	}
}

// TestRunRmVolatile: a --rm container is volatile for the store, as
// podman makes one: its record goes to volatile-containers.json, written
// without fsync, not to containers.json (a container without --rm stays
// there); and its root, mounted volatile by the store to read the user
// database, mounts again in the init (the kernel refuses a second mount
// of a work directory a volatile mount used until its mark is removed:
// EINVAL).
func TestRunRmVolatile(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	e.loadImage("localhost/bb:plain", imagefix.Busybox(t))
	if out := e.ok("run", "--rm", "--network", "none", "localhost/bb:plain", "echo", "ran"); out != "ran\n" {
		t.Fatalf("run --rm: %q", out)
	}
	rm := strings.TrimSpace(e.ok("run", "-d", "--rm", "--network", "none", "localhost/bb:plain", "sleep", "100"))
	kept := strings.TrimSpace(e.ok("run", "-d", "--network", "none", "localhost/bb:plain", "sleep", "100"))
	defer e.ok("rm", "-f", rm, kept)
	records := func(file string) string {
		matches, _ := filepath.Glob(filepath.Join(e.dir, "graph", "*-containers", file))
		var all string
		for _, m := range matches {
			b, err := os.ReadFile(m)
			if err != nil {
				t.Fatal(err)
			}
			all += string(b)
		}
		return all
	}
	volatile, stable := records("volatile-containers.json"), records("containers.json")
	if !strings.Contains(volatile, rm) || strings.Contains(stable, rm) {
		t.Errorf("the --rm container %s: want its record in volatile-containers.json only", rm)
	}
	if !strings.Contains(stable, kept) || strings.Contains(volatile, kept) {
		t.Errorf("the container without --rm %s: want its record in containers.json only", kept)
	}
}
