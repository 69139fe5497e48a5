//go:build integration

package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestHooks: each hook kind runs at its moment, in its namespaces, with the
// state on stdin; a failing createRuntime hook aborts the create and leaves
// nothing behind; poststop failures are reported, not fatal.
func TestHooks(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	out := testutil.TempDir(t)
	sh := "/bin/sh"
	host := func(name string) specs.Hook {
		// Runs with the host's /bin/sh: state to a file, plus the mount ns.
		return specs.Hook{Path: sh, Args: []string{"sh", "-c", `cat > ` + out + `/` + name + `.json; readlink /proc/self/ns/mnt > ` + out + `/` + name + `.mnt`}}
	}
	e := newEnv(t).sh(`cat /tmp/started-by-hook`)
	e.spec.Hooks = &specs.Hooks{
		//lint:ignore SA1019 deprecated, not gone: runtimes still run prestart hooks
		Prestart:        []specs.Hook{host("prestart")},
		CreateRuntime:   []specs.Hook{host("createRuntime")},
		CreateContainer: []specs.Hook{host("createContainer")},
		// In the container, after pivot_root: the container's /bin/sh.
		StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "echo yes > /tmp/started-by-hook"}}},
		Poststart:      []specs.Hook{host("poststart")},
		Poststop:       []specs.Hook{host("poststop")},
	}
	e.write()
	r := e.runBundle(0)
	if strings.TrimSpace(r.stdout) != "yes" {
		t.Fatalf("startContainer hook did not run in the container: %q %q", r.stdout, r.stderr)
	}
	hostMnt, _ := os.Readlink("/proc/self/ns/mnt")
	for _, name := range []string{"prestart", "createRuntime", "createContainer", "poststart", "poststop"} {
		data, err := os.ReadFile(filepath.Join(out, name+".json"))
		if err != nil {
			t.Fatalf("%s hook did not run: %v", name, err)
		}
		var st specs.State
		if err := json.Unmarshal(data, &st); err != nil || st.Bundle != e.bundle || st.ID == "" {
			t.Fatalf("%s hook state: %s (%v)", name, data, err)
		}
		mnt, _ := os.ReadFile(filepath.Join(out, name+".mnt"))
		inContainer := strings.TrimSpace(string(mnt)) != hostMnt
		if inContainer != (name == "createContainer") {
			t.Errorf("%s hook ran in the container's mount namespace: %v", name, inContainer)
		}
		want := map[string]specs.ContainerState{"prestart": "creating", "createRuntime": "creating", "createContainer": "creating", "poststart": "running", "poststop": "stopped"}[name]
		if st.Status != want {
			t.Errorf("%s hook saw status %q, want %q", name, st.Status, want)
		}
	}

	e.spec.Hooks = &specs.Hooks{CreateRuntime: []specs.Hook{{Path: sh, Args: []string{"sh", "-c", "echo hook-failed >&2; exit 3"}}}}
	e.write()
	r = e.run("", "run", e.bundle)
	if r.code == 0 || !strings.Contains(r.stderr, "createRuntime") {
		t.Fatalf("failing createRuntime hook: %d %q", r.code, r.stderr)
	}
	assertNothingLeft(t, e)

	e.spec.Hooks = &specs.Hooks{Poststop: []specs.Hook{{Path: sh, Args: []string{"sh", "-c", "exit 4"}}}}
	e.sh("true")
	r = e.runBundle(0)
	if !strings.Contains(r.stderr, "poststop") {
		t.Fatalf("poststop failure not reported: %q", r.stderr)
	}
	assertNothingLeft(t, e)
}

// TestPoststartAfterExec: poststart hooks run after the process is
// executed (runtime spec, lifecycle step 9), not merely after start
// released the init: the hook sees the process's own command line at
// the pid in its state, never sandy's init.
func TestPoststartAfterExec(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	out := testutil.TempDir(t)
	e := newEnv(t, "sleep", "100")
	e.spec.Hooks = &specs.Hooks{
		// Between start's release and the execve: a slow startContainer
		// hook, in the container.
		StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "sleep 0.3"}}},
		Poststart: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c",
			`pid=$(sed 's/.*"pid":\([0-9]*\).*/\1/'); tr '\0' ' ' < /proc/$pid/cmdline > ` + out + `/cmdline`}}},
	}
	e.write()
	for i := range 3 {
		id := uniqueID("poststart")
		if r := e.run("", "create", "--bundle", e.bundle, id); r.code != 0 {
			t.Fatalf("create: %s", r.stderr)
		}
		if r := e.run("", "start", id); r.code != 0 {
			t.Fatalf("start: %s", r.stderr)
		}
		data, err := os.ReadFile(filepath.Join(out, "cmdline"))
		if err != nil || strings.TrimSpace(string(data)) != "sleep 100" {
			t.Fatalf("try %d: the poststart hook saw %q (%v), want the process's command line", i, data, err)
		}
		e.run("", "delete", "--force", id)
	}
}

// TestStartContainerHookFailure: a failing startContainer hook (it runs in
// the init after start released it) makes start fail, with no poststart
// hook, and the container stops.
func TestStartContainerHookFailure(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	out := testutil.TempDir(t)
	e := newEnv(t, "sleep", "100")
	e.spec.Hooks = &specs.Hooks{
		StartContainer: []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "exit 5"}}},
		Poststart:      []specs.Hook{{Path: "/bin/sh", Args: []string{"sh", "-c", "touch " + out + "/poststart"}}},
	}
	e.write()
	id := uniqueID("schook")
	if r := e.run("", "create", "--bundle", e.bundle, id); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	defer e.run("", "delete", "--force", id)
	if r := e.run("", "start", id); r.code == 0 || !strings.Contains(r.stderr, "failed after start") {
		t.Fatalf("start: %d %s", r.code, r.stderr)
	}
	if _, err := os.Stat(out + "/poststart"); err == nil {
		t.Error("poststart hook ran after a failed start")
	}
	waitFor(t, 10*time.Second, "stopped", func() bool { return ociState(t, e, id).Status == "stopped" })
}
