//go:build integration

package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
	"github.com/sandy-rt/sandy/internal/volumes"
)

// withoutHelper is e with a sandy whose image helper is a stand-in that
// records each start in a file and fails: a verb that resolves a name
// without the helper succeeds, one that starts it fails and leaves a line.
func (e *imgEnv) withoutHelper() (*imgEnv, func() []string) {
	e.t.Helper()
	dir := filepath.Dir(ownSandy(e.t, e.sandy))
	starts := filepath.Join(dir, "starts")
	script := "#!/bin/sh\necho \"$*\" >>" + starts + "\necho 'sandy-image: the stand-in was started' >&2\nexit 125\n"
	if err := os.WriteFile(filepath.Join(dir, "sandy-image"), []byte(script), 0o755); err != nil {
		e.t.Fatal(err)
	}
	f := *e
	f.sandy = filepath.Join(dir, "sandy")
	return &f, func() []string {
		b, _ := os.ReadFile(starts)
		return strings.Fields(strings.TrimSpace(string(b)))
	}
}

// TestNameIndex: the verbs that take a container (exec, cp, top, port,
// inspect, logs, kill, wait, stop, start) find it by name, whole id and
// unique id prefix without starting the image helper; rename, rm and a
// name taken again are seen at once; an ambiguous prefix and a lost
// runtime directory (a reboot) go to the helper's list, as before; and of
// two concurrent `run --name x` exactly one wins.
func TestNameIndex(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	e.loadImage("localhost/bb:plain", imagefix.Busybox(t))
	web := e.runD("--network", "none", "--name", "web", "localhost/bb:plain", "sleep", "600")
	t.Cleanup(func() { _ = e.cmd("rm", "-f", web).Run() })
	e.ok("run", "--network", "none", "--name", "done", "localhost/bb:plain", "true")
	f, starts := e.withoutHelper()

	if out := f.ok("exec", "web", "echo", "hi"); out != "hi\n" {
		t.Errorf("exec web: %q", out)
	}
	f.ok("exec", web[:12], "true")
	f.ok("container", "exec", web, "true")
	host := testutil.TempDir(t)
	e.write(filepath.Join(host, "f.txt"), "data\n")
	f.ok("cp", filepath.Join(host, "f.txt"), "web:/tmp/f.txt")
	f.ok("cp", web[:5]+":/tmp/f.txt", filepath.Join(host, "back.txt"))
	if b, err := os.ReadFile(filepath.Join(host, "back.txt")); err != nil || string(b) != "data\n" {
		t.Errorf("cp back: %q, %v", b, err)
	}
	if out := f.ok("top", "web"); !strings.Contains(out, "sleep") {
		t.Errorf("top web: %s", out)
	}
	f.ok("port", "web")
	if in := f.ok("inspect", "web"); !strings.Contains(in, web) {
		t.Errorf("inspect web: %s", in)
	}
	f.ok("inspect", "done")
	f.ok("logs", "web")
	f.ok("kill", "-s", "0", "web")
	if s := starts(); len(s) != 0 {
		t.Fatalf("the verbs started the image helper: %q", s)
	}

	// rename: the new name at once, the old one gone.
	e.ok("rename", "web", "web2")
	f.ok("exec", "web2", "true")
	if r := e.run_(nil, "inspect", "web"); r.code == 0 || !strings.Contains(r.stderr, `no container with name or id "web"`) {
		t.Errorf("inspect by the old name: exit %d: %s", r.code, r.stderr)
	}
	// rm, then the name taken again: the new container's.
	e.ok("rm", "done")
	again := e.runD("--network", "none", "--name", "done", "localhost/bb:plain", "sleep", "600")
	t.Cleanup(func() { _ = e.cmd("rm", "-f", again).Run() })
	if in := f.ok("inspect", "done"); !strings.Contains(in, again) {
		t.Errorf("inspect done after rm and run --name done: %s", in)
	}
	f.ok("stop", "-t", "0", "done")
	f.ok("wait", "done")
	f.ok("start", "done")
	if s := starts(); len(s) != 0 {
		t.Fatalf("the verbs started the image helper: %q", s)
	}

	// An ambiguous prefix (both ids start with one of 16 digits only
	// by chance: the shortest common prefix) is the list's to refuse.
	if web[0] == again[0] {
		n := 0
		for n < 64 && web[n] == again[n] {
			n++
		}
		if n >= 3 {
			if msg := e.fails(125, "exec", web[:n], "true"); !strings.Contains(msg, "give more of the id") {
				t.Errorf("exec by an ambiguous prefix: %s", msg)
			}
		}
	}

	// After a reboot (the runtime directory gone) nothing changes: the
	// records and the memory of the store are persistent.
	f.ok("--root", filepath.Join(testutil.TempDir(t), "fresh"), "inspect", "web2")
	// The memory of the store lost: the stand-in shows the list is asked,
	// the real helper answers and the store is remembered again.
	vols, err := volumes.DefaultRoot()
	if err != nil {
		t.Fatal(err)
	}
	mem, _ := filepath.Glob(filepath.Join(filepath.Dir(vols), "image-stores", "*"))
	for _, p := range mem {
		if b, err := os.ReadFile(p); err == nil && strings.HasPrefix(string(b), e.dir+"/") {
			if err := os.Remove(p); err != nil {
				t.Fatal(err)
			}
		}
	}
	if r := f.run_(nil, "exec", "web2", "true"); r.code == 0 {
		t.Errorf("exec web2 with the stand-in and no remembered store succeeded")
	}
	if s := starts(); len(s) == 0 {
		t.Errorf("without the store's directory the helper was not asked")
	}
	e.ok("exec", "web2", "true")
	before := len(starts())
	f.ok("exec", "web2", "true")
	if len(starts()) != before {
		t.Errorf("the index was not remembered again after the list")
	}

	// Two concurrent run --name x: one wins, the other names x.
	var wg sync.WaitGroup
	res := make([]result, 2)
	for i := range res {
		wg.Add(1)
		go func() {
			defer wg.Done()
			res[i] = e.run_(nil, "run", "-d", "--network", "none", "--name", "x", "localhost/bb:plain", "sleep", "600")
		}()
	}
	wg.Wait()
	won := 0
	for _, r := range res {
		switch {
		case r.code == 0:
			won++
			id := strings.TrimSpace(r.stdout)
			t.Cleanup(func() { _ = e.cmd("rm", "-f", id).Run() })
			if in := f.ok("inspect", "x"); !strings.Contains(in, id) {
				t.Errorf("inspect x names another container than the winner %s: %s", id, in)
			}
		case !strings.Contains(r.stderr, `"x" is already in use`):
			t.Errorf("the loser of run --name x: exit %d: %s", r.code, r.stderr)
		}
	}
	if won != 1 {
		t.Errorf("%d of two concurrent run --name x won", won)
	}
}
