//go:build integration

package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// TestExternalContainers: storage containers without a record of sandy's
// in the user's store. One a killed sandy run left (sandy's mark in its
// storage metadata, its creator gone) is listed by ps --external in state
// storage and removed by rm (by name or id prefix) and by container
// prune, its layer with it; one a live sandy is making, and buildah's
// working container, are refused without -f and removed with it. They
// are made as the helper makes them (its _create-container verb) and,
// for the real run's mark, by taking a kept container's record away.
func TestExternalContainers(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	e.privateRuntime()
	e.loadImage("localhost/bb:ext", imagefix.Busybox(t))
	helper := filepath.Join(filepath.Dir(e.sandy), "sandy-store")
	layers := len(e.storeLayers())
	// create makes a storage container as sandy run's helper does, the
	// helper its creator, gone once it returns.
	create := func(name string) imagehelper.Prepared {
		t.Helper()
		c := exec.Command(helper, imagehelper.CreateRole, "--name", name, "localhost/bb:ext")
		c.Env = e.env
		out, err := c.Output()
		var p imagehelper.Prepared
		if err == nil {
			err = json.Unmarshal(out, &p)
		}
		if err != nil || len(p.ID) != 64 {
			t.Fatalf("%s %s: %v, %q", helper, imagehelper.CreateRole, err, out)
		}
		return p
	}
	type row struct{ Names, State, Status, Command string }
	ps := func(args ...string) map[string]row {
		t.Helper()
		rows := map[string]row{}
		out := e.ok(append([]string{"ps", "-a", "--format", "{{.Names}}|{{.State}}|{{.Status}}|{{.Command}}"}, args...)...)
		for _, l := range strings.Split(strings.TrimSpace(out), "\n") {
			if f := strings.Split(l, "|"); len(f) == 4 {
				rows[f[0]] = row{f[0], f[1], f[2], f[3]}
			}
		}
		return rows
	}
	gone := func(id string) {
		t.Helper()
		if slices.Contains(e.storageContainersNow(), id) {
			t.Errorf("storage container %s is still in the store", id[:12])
		}
	}

	t.Run("left by a killed run", func(t *testing.T) {
		p := create("orphan1")
		// Its helper killed while the root was mounted (to read the
		// image's /etc/passwd), twice: the store counts mounts that no
		// longer exist (the helper's mount namespace went with it).
		layer := storageLayerOf(t, e, p.ID)
		mounts := filepath.Join(e.dir, "run", "overlay-layers", "mountpoints.json")
		e.write(mounts, fmt.Sprintf(`[{"id":%q,"path":%q,"count":2}]`, layer, filepath.Join(e.dir, "graph", "overlay", layer, "merged")))
		if _, ok := ps()["orphan1"]; ok {
			t.Errorf("ps -a lists orphan1 without --external")
		}
		r := ps("--external")["orphan1"]
		if r.State != "storage" || !strings.HasPrefix(r.Status, "Storage (left by a killed sandy run") || r.Command != "storage" {
			t.Errorf("ps -a --external: %+v, want state storage, status Storage (left by a killed sandy run…), command storage", r)
		}
		if out := e.ok("rm", p.ID[:10]); out != p.ID+"\n" {
			t.Errorf("rm printed %q, want the id", out)
		}
		gone(p.ID)
		if got := len(e.storeLayers()); got != layers {
			t.Errorf("%d layers left", got-layers)
		}
		if b, _ := os.ReadFile(mounts); strings.Contains(string(b), layer) {
			t.Errorf("the store still counts mounts of the removed layer: %s", b)
		}
	})
	t.Run("the verbs say whose it is", func(t *testing.T) {
		// sandy's leftover: sandy rm; an unmarked one (podman's, as
		// podman writes its metadata: no sandy-creator): podman's verb.
		left := create("leftover2")
		unmarked := create("podmans")
		unmarkStorage(t, e, unmarked.ID)
		if r := ps("--external")["podmans"]; r.State != "storage" || r.Status != "Storage" {
			t.Errorf("ps -a --external: %+v, want an unmarked storage container", r)
		}
		for _, verb := range [][]string{{"top"}, {"stop"}, {"logs"}, {"exec", "true"}} {
			with := func(name string) []string { return append([]string{verb[0], name}, verb[1:]...) }
			msg := e.fails(125, with("leftover2")...)
			for _, want := range []string{"is the storage container of a sandy run killed before it wrote its record", "sandy rm " + left.ID[:12]} {
				if !strings.Contains(msg, want) {
					t.Errorf("%s of sandy's leftover: %q lacks %q", verb[0], msg, want)
				}
			}
			msg = e.fails(125, with("podmans")...)
			for _, want := range []string{"no mark of sandy's", "use podman " + verb[0] + " " + unmarked.ID[:12]} {
				if !strings.Contains(msg, want) {
					t.Errorf("%s of an unmarked container: %q lacks %q", verb[0], msg, want)
				}
			}
		}
		e.ok("rm", "leftover2")
		e.ok("rm", "-f", "podmans")
		gone(left.ID)
		gone(unmarked.ID)
	})
	t.Run("a kept run's mark", func(t *testing.T) {
		// The container sandy run made carries the mark, its creator that
		// run (gone): without its record it is a leftover.
		e.ok("run", "--name", "kept", "--network=none", "localhost/bb:ext", "true")
		id := strings.TrimSpace(e.ok("ps", "-a", "-q", "--no-trunc", "--external"))
		if err := os.Remove(filepath.Join(e.dir, "graph", "overlay-containers", id, "userdata", "sandy.json")); err != nil {
			t.Fatal(err)
		}
		if r := ps("--external")["kept"]; r.State != "storage" || !strings.HasPrefix(r.Status, "Storage (left by a killed sandy run") {
			t.Errorf("ps -a --external: %+v, want a leftover", r)
		}
		e.ok("rm", "kept")
		gone(id)
	})
	// hold starts the helper as sandy run starts it (--hold: it keeps the
	// container only once told, or once the record is written) and reads
	// its answer; its creator, a run, is this test, alive.
	hold := func(t *testing.T, name string) (*exec.Cmd, io.WriteCloser, imagehelper.Prepared) {
		t.Helper()
		c := exec.Command(helper, imagehelper.CreateRole, "--hold", "--name", name, "localhost/bb:ext")
		c.Env = e.env
		in, err := c.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		out, err := c.StdoutPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		line, err := bufio.NewReader(out).ReadString('\n')
		var p imagehelper.Prepared
		if err == nil {
			err = json.Unmarshal([]byte(line), &p)
		}
		if err != nil {
			in.Close()
			_ = c.Wait()
			t.Fatalf("the held helper's answer %q: %v", line, err)
		}
		return c, in, p
	}
	t.Run("being made", func(t *testing.T) {
		c, in, p := hold(t, "making")
		if r := ps("--external")["making"]; r.Status != "Storage (being made by sandy)" {
			t.Errorf("ps -a --external: %+v, want being made", r)
		}
		if msg := e.fails(125, "rm", "making"); !strings.Contains(msg, "is being made by sandy") || !strings.Contains(msg, "rm -f") {
			t.Errorf("rm of a container being made: %q", msg)
		}
		if e.ok("container", "prune", "-f") != "" {
			t.Errorf("prune removed something")
		}
		// End of input without a word (its sandy killed) before the
		// record: the helper removes the container it made.
		in.Close()
		if err := c.Wait(); err != nil {
			t.Fatalf("the held helper: %v", err)
		}
		gone(p.ID)
		if out := e.ok("container", "prune", "-f"); out != "" {
			t.Errorf("prune printed %q, want nothing left", out)
		}
	})
	t.Run("held, its record written", func(t *testing.T) {
		// sandy wrote the record, then died without a word: the helper
		// keeps the container, sandy's.
		c, in, p := hold(t, "recorded")
		err := os.WriteFile(filepath.Join(p.Dir, imagehelper.RecordFile), []byte(`{"image":"localhost/bb:ext","command":["true"]}`+"\n"), 0o600)
		in.Close()
		if werr := c.Wait(); err == nil {
			err = werr
		}
		if err != nil {
			t.Fatalf("the held helper (answer %+v): %v", p, err)
		}
		if !slices.Contains(e.storageContainersNow(), p.ID) {
			t.Fatalf("the helper removed a container whose record was written")
		}
		if r := ps()["recorded"]; r.Names != "recorded" {
			t.Errorf("ps -a: %+v, want sandy's container recorded", ps())
		}
		e.ok("rm", "recorded")
		gone(p.ID)
	})
	t.Run("buildah's", func(t *testing.T) {
		p := create("working")
		if err := os.WriteFile(filepath.Join(p.Dir, "buildah.json"), []byte("{}\n"), 0o600); err != nil {
			t.Fatal(err)
		}
		if r := ps("--external")["working"]; r.Status != "Storage (buildah)" || r.Command != "buildah" {
			t.Errorf("ps -a --external: %+v, want status Storage (buildah), command buildah", r)
		}
		if msg := e.fails(125, "rm", "working"); !strings.Contains(msg, "buildah's working container") || !strings.Contains(msg, "buildah rm "+p.ID[:12]) {
			t.Errorf("rm of buildah's container: %q", msg)
		}
		if out := e.ok("container", "prune", "-f"); out != "" {
			t.Errorf("prune removed %q, want buildah's container left alone", out)
		}
		if !slices.Contains(e.storageContainersNow(), p.ID) {
			t.Fatalf("buildah's container is gone")
		}
		if out := e.ok("rm", "-f", "working"); out != p.ID+"\n" {
			t.Errorf("rm -f printed %q", out)
		}
		gone(p.ID)
	})
	if got := len(e.storeLayers()); got != layers {
		t.Errorf("%d layers left", got-layers)
	}
}

// storageLayerOf is the layer of the storage container id, from the
// store's containers.json.
func storageLayerOf(t *testing.T, e *imgEnv, id string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(e.dir, "graph", "overlay-containers", "containers.json"))
	if err != nil {
		t.Fatal(err)
	}
	var cs []struct{ ID, Layer string }
	if err := json.Unmarshal(b, &cs); err != nil {
		t.Fatal(err)
	}
	for _, c := range cs {
		if c.ID == id {
			return c.Layer
		}
	}
	t.Fatalf("no storage container %s in containers.json", id)
	return ""
}

// unmarkStorage takes sandy's mark (sandy-creator) out of the storage
// metadata of container id, in the store's containers.json, as podman's
// containers have none.
func unmarkStorage(t *testing.T, e *imgEnv, id string) {
	t.Helper()
	p := filepath.Join(e.dir, "graph", "overlay-containers", "containers.json")
	b, err := os.ReadFile(p)
	if err != nil {
		t.Fatal(err)
	}
	var cs []map[string]json.RawMessage
	if err := json.Unmarshal(b, &cs); err != nil {
		t.Fatal(err)
	}
	found := false
	for _, c := range cs {
		var cid, meta string
		if json.Unmarshal(c["id"], &cid) != nil || cid != id || json.Unmarshal(c["metadata"], &meta) != nil {
			continue
		}
		var m map[string]json.RawMessage
		if err := json.Unmarshal([]byte(meta), &m); err != nil {
			t.Fatal(err)
		}
		if _, ok := m["sandy-creator"]; !ok {
			t.Fatalf("container %s has no sandy-creator in its metadata: %s", id, meta)
		}
		delete(m, "sandy-creator")
		mb, _ := json.Marshal(m)
		c["metadata"], _ = json.Marshal(string(mb))
		found = true
	}
	if !found {
		t.Fatalf("no storage container %s in containers.json", id)
	}
	out, _ := json.Marshal(cs)
	if err := os.WriteFile(p, out, 0o600); err != nil {
		t.Fatal(err)
	}
}
