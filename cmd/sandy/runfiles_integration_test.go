//go:build integration

package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestRunFilesOnDisk: a foreground `sandy run` makes only the files it
// needs in the state root, each of which costs a file creation on the
// state root's filesystem (0.7-1 ms on this project's machines' /tmp):
// no exec fifo (run releases its init through a socket pair), and in the
// layer directory only what the root's rung uses (a read-only bind root:
// merged alone; an overlay: upper, work, merged). While the container
// runs, its state says running with its pid, and its saved config is
// there for exec.
func TestRunFilesOnDisk(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	for _, tc := range []struct {
		name     string
		readonly bool
	}{{"read-only root", true}, {"writable root", false}} {
		t.Run(tc.name, func(t *testing.T) {
			e := newEnv(t, "sleep", "30")
			e.spec.Root.Readonly = tc.readonly
			id := "files-" + strconv.Itoa(os.Getpid())
			dir := filepath.Join(e.root, id)
			// What the state directory holds during create, before the
			// init is released (where an exec fifo would be).
			during := filepath.Join(testutil.TempDir(t), "during")
			e.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{
				Path: "/bin/sh", Args: []string{"sh", "-c", "ls -a " + dir + " > " + during},
			}}}
			e.write()
			cmd := exec.Command(e.sandy, "--root", e.root, "run", "--network=none", "--bundle", e.bundle, id)
			if err := cmd.Start(); err != nil {
				t.Fatal(err)
			}
			done := make(chan error, 1)
			go func() { done <- cmd.Wait() }()
			defer func() {
				_ = exec.Command(e.sandy, "--root", e.root, "kill", id, "KILL").Run()
				select {
				case <-done:
				case <-time.After(20 * time.Second):
					_ = cmd.Process.Kill()
					t.Errorf("sandy run did not end after kill")
				}
			}()
			var st struct {
				Status     string `json:"status"`
				Pid        int    `json:"pid"`
				RootfsMode string `json:"rootfsMode"`
			}
			waitFor(t, 20*time.Second, "the container to run", func() bool {
				out, err := exec.Command(e.sandy, "--root", e.root, "state", id).Output()
				return err == nil && json.Unmarshal(out, &st) == nil && st.Status == "running" && st.Pid > 0
			})
			var saved struct {
				RootfsMode string `json:"rootfsMode"`
			}
			data, err := os.ReadFile(filepath.Join(dir, "state.json"))
			if err != nil || json.Unmarshal(data, &saved) != nil {
				t.Fatalf("state.json: %v\n%s", err, data)
			}
			seen, err := os.ReadFile(during)
			if err != nil {
				t.Fatalf("the createRuntime hook's listing: %v", err)
			}
			if strings.Contains(string(seen), "exec.fifo") {
				t.Errorf("during create, the state directory held an exec fifo (run releases its init itself):\n%s", seen)
			}
			for _, n := range names(t, dir) {
				if n == "exec.fifo" || strings.HasPrefix(n, ".tmp-") {
					t.Errorf("state directory holds %s: %v (run makes no exec fifo, and leaves no temporary file)", n, names(t, dir))
				}
			}
			for _, f := range []string{"config.json", "state.json"} {
				if _, err := os.Stat(filepath.Join(dir, f)); err != nil {
					t.Errorf("the running container's %s: %v", f, err)
				}
			}
			mode := saved.RootfsMode
			unused := map[string]bool{"fuse": mode != "fuse", "upper": tc.readonly, "work": tc.readonly}
			if mode == "bind" {
				unused["stubs"] = true
			}
			layer := names(t, filepath.Join(dir, "layer"))
			if !slices.Contains(layer, "merged") {
				t.Errorf("layer directory (rung %s) holds %v: no merged", mode, layer)
			}
			for _, n := range layer {
				if unused[n] {
					t.Errorf("layer directory (rung %s, read-only %v) holds %v: %s is not used by that rung", mode, tc.readonly, layer, n)
				}
			}
		})
	}
}

// names lists dir's entries, sorted.
func names(t *testing.T, dir string) []string {
	t.Helper()
	ents, err := os.ReadDir(dir)
	if err != nil {
		t.Fatal(err)
	}
	var out []string
	for _, e := range ents {
		out = append(out, e.Name())
	}
	slices.Sort(out)
	return out
}

// TestRunIDInUse: `sandy run` makes its state directory beside the init's
// start (createState's claim on a goroutine): a run whose id is taken by a
// running container fails with "already exists", leaves that container
// running, untouched (its state, its process), and leaves no process of
// its own behind.
func TestRunIDInUse(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sleep", "30")
	id := "inuse-" + strconv.Itoa(os.Getpid())
	if r := e.run("", "run", "-d", "--network=none", "--bundle", e.bundle, id); r.code != 0 {
		t.Fatalf("run -d: exit %d\n%s", r.code, r.stderr)
	}
	before := ociState(t, e, id)
	if before.Status != "running" {
		t.Fatalf("first container: %+v", before)
	}
	initsBefore := sandyInits()
	for _, args := range [][]string{
		{"run", "--network=none", "--bundle", e.bundle, id},
		{"run", "-d", "--network=none", "--bundle", e.bundle, id},
		{"create", "--bundle", e.bundle, id},
	} {
		r := e.run("", args...)
		if r.code == 0 || !strings.Contains(r.stderr, "creating the state: ") || !strings.Contains(r.stderr, "already exists") {
			t.Errorf("sandy %v with the id of a running container: exit %d, want an error at \"creating the state: ... already exists\"\n%s", args, r.code, r.stderr)
		}
		after := ociState(t, e, id)
		if after.Status != "running" || after.Pid != before.Pid {
			t.Fatalf("after sandy %v: the first container is %+v, was %+v", args, after, before)
		}
	}
	waitFor(t, 10*time.Second, "no init of the refused runs left", func() bool {
		for _, p := range sandyInits() {
			if !slices.Contains(initsBefore, p) {
				return false
			}
		}
		return len(helpersOf(e)) == 0
	})
	if r := e.run("", "delete", "--force", id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
}

// sandyInits lists the processes that run sandy's container init (argv
// "sandy init", before its execve of the process): an init of a set-up
// that failed must not outlive it.
func sandyInits() []string {
	var out []string
	ents, _ := os.ReadDir("/proc")
	for _, ent := range ents {
		if _, err := strconv.Atoi(ent.Name()); err != nil {
			continue
		}
		cmdline, err := os.ReadFile(filepath.Join("/proc", ent.Name(), "cmdline"))
		args := strings.Split(string(cmdline), "\x00")
		if err == nil && len(args) > 1 && args[1] == "init" && strings.Contains(filepath.Base(args[0]), "sandy") {
			out = append(out, ent.Name()+" "+strings.Join(args, " "))
		}
	}
	return out
}
