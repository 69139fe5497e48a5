//go:build integration

package main_test

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// TestContainerDiffRenamePrune: diff lists a container's changes as
// podman's (A, C, D, sorted; JSON by kind), rename keeps the container
// whole under a new name and refuses one in use, prune removes the
// exited containers only.
func TestContainerDiffRenamePrune(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	e.loadImage("localhost/bb:plain", imagefix.Busybox(t))
	e.ok("run", "--network", "none", "--name", "one", "localhost/bb:plain", "sh", "-c", "echo x > /added; rm /bin/ls; echo y >> /etc/passwd")
	out := e.ok("diff", "one")
	for _, want := range []string{"A /added\n", "D /bin/ls\n", "C /etc/passwd\n", "C /etc\n"} {
		if !strings.Contains(out, want) {
			t.Errorf("diff: no %q in\n%s", want, out)
		}
	}
	lines := strings.Split(strings.TrimSpace(out), "\n")
	for i := 1; i < len(lines); i++ {
		if lines[i-1][2:] > lines[i][2:] {
			t.Errorf("diff is not sorted by path: %q before %q", lines[i-1], lines[i])
		}
	}
	var byKind map[string][]string
	if err := json.Unmarshal([]byte(e.ok("container", "diff", "--format", "json", "one")), &byKind); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(byKind["added"], []string{"/added"}) || !reflect.DeepEqual(byKind["deleted"], []string{"/bin/ls"}) {
		t.Errorf("diff --format json: %v", byKind)
	}

	e.ok("run", "--network", "none", "--name", "two", "localhost/bb:plain", "true")
	if msg := e.fails(125, "rename", "one", "two"); !strings.Contains(msg, "already in use") {
		t.Errorf("rename to a name in use: %s", msg)
	}
	e.fails(125, "rename", "one", "bad/name")
	e.ok("rename", "one", "renamed")
	if out := e.ok("diff", "renamed"); !strings.Contains(out, "A /added") {
		t.Errorf("the renamed container lost its layer: %s", out)
	}
	e.fails(125, "diff", "one")

	// prune: exited ones go, a running one stays.
	c := e.cmd("run", "--network", "none", "--name", "live", "localhost/bb:plain", "sh", "-c", "echo up; exec sleep 60")
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = c.Process.Kill(); _ = c.Wait() }()
	buf := make([]byte, 3)
	if _, err := stdout.Read(buf); err != nil {
		t.Fatal(err)
	}
	r := e.run_([]byte("n\n"), "container", "prune")
	if r.code != 0 || !strings.Contains(r.stderr, "Are you sure") || r.stdout != "" {
		t.Errorf("prune answered no: exit %d, %q, %q", r.code, r.stdout, r.stderr)
	}
	pruned := e.ok("container", "prune", "-f")
	if n := len(strings.Fields(pruned)); n != 2 {
		t.Errorf("prune removed %d containers, want 2 (renamed, two): %q", n, pruned)
	}
	names := e.ok("container", "ls", "-a", "--format", "json")
	if !strings.Contains(names, `"live"`) || strings.Contains(names, `"renamed"`) || strings.Contains(names, `"two"`) {
		t.Errorf("after prune: %s", names)
	}
	e.ok("container", "rm", "-f", "live")
}

// TestContainerInspect: podman's record of a detached container while it
// runs (pid, ports, mounts, env) and once stopped (exit code), and
// --format templates.
func TestContainerInspect(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	e.env = append(e.env, "XDG_DATA_HOME="+filepath.Join(e.dir, "data"))
	e.loadImage("localhost/bb:plain", imagefix.Busybox(t))
	host := filepath.Join(e.dir, "share")
	if err := os.Mkdir(host, 0o755); err != nil {
		t.Fatal(err)
	}
	// The limits are recorded whether or not this host can enforce them
	// (--allow-unenforced: a hybrid host has no cgroup v2 for them).
	id := strings.TrimSpace(e.ok("run", "-d", "--name", "web", "-e", "MODE=test", "-p", "127.0.0.1::80", "-v", "webdata:/data", "-v", host+":/h:ro",
		"--label", "team=ci", "--memory", "64m", "--cpus", "1.5", "--pids-limit", "50", "--allow-unenforced",
		"localhost/bb:plain", "sleep", "600"))
	defer e.run_(nil, "container", "rm", "-f", "web")
	var recs []struct {
		ID    string `json:"Id"`
		Name  string
		Path  string
		Args  []string
		State struct {
			Status   string
			Running  bool
			Pid      int
			ExitCode int
		}
		Mounts []struct {
			Type, Name, Source, Destination string
			RW                              bool
		}
		NetworkSettings struct {
			Ports map[string][]struct{ HostIp, HostPort string }
		}
		Config struct {
			Env    []string
			Image  string
			Labels map[string]string
		}
		HostConfig struct {
			Memory, NanoCpus, PidsLimit int64
		}
	}
	if err := json.Unmarshal([]byte(e.ok("inspect", "web")), &recs); err != nil || len(recs) != 1 {
		t.Fatalf("inspect: %v", err)
	}
	r := recs[0]
	if r.ID != id || r.Name != "web" || r.Path != "sleep" || !reflect.DeepEqual(r.Args, []string{"600"}) || r.Config.Image != "localhost/bb:plain" {
		t.Errorf("inspect: %+v", r)
	}
	if !r.State.Running || r.State.Status != "running" || r.State.Pid <= 0 {
		t.Errorf("state: %+v", r.State)
	} else if _, err := os.Stat(filepath.Join("/proc", strconv.Itoa(r.State.Pid))); err != nil {
		t.Errorf("pid %d: %v", r.State.Pid, err)
	}
	if r.Config.Labels["team"] != "ci" {
		t.Errorf("labels: %v", r.Config.Labels)
	}
	if h := r.HostConfig; h.Memory != 64<<20 || h.NanoCpus != 1_500_000_000 || h.PidsLimit != 50 {
		t.Errorf("limits: %+v", h)
	}
	var listed []struct{ Labels map[string]string }
	if out := e.ok("container", "ls", "--format", "json"); json.Unmarshal([]byte(out), &listed) != nil || len(listed) != 1 || listed[0].Labels["team"] != "ci" {
		t.Errorf("ls --format json has no labels: %s", out)
	}
	if !slices.Contains(r.Config.Env, "MODE=test") {
		t.Errorf("env: %v", r.Config.Env)
	}
	if p := r.NetworkSettings.Ports["80/tcp"]; len(p) != 1 || p[0].HostIp != "127.0.0.1" || p[0].HostPort == "" || p[0].HostPort == "0" {
		t.Errorf("ports: %+v", r.NetworkSettings.Ports)
	}
	var vol, bind bool
	for _, m := range r.Mounts {
		switch {
		case m.Type == "volume" && m.Name == "webdata" && m.Destination == "/data" && m.RW:
			vol = true
		case m.Type == "bind" && m.Source == host && m.Destination == "/h" && !m.RW:
			bind = true
		}
	}
	if !vol || !bind || len(r.Mounts) != 2 {
		t.Errorf("mounts: %+v", r.Mounts)
	}
	if out := e.ok("container", "inspect", "--format", "{{.State.Status}} {{.Name}} {{json .Args}}", id[:12]); out != "running web [\"600\"]\n" {
		t.Errorf("--format: %q", out)
	}
	e.ok("stop", "-t", "1", "web")
	if out := e.ok("inspect", "-f", "{{.State.Status}} {{.State.ExitCode}} {{.State.Running}}", "web"); out != "exited 137 false\n" {
		t.Errorf("after stop: %q", out)
	}
	if msg := e.fails(125, "inspect", "localhost/bb:plain"); !strings.Contains(msg, "sandy image inspect") {
		t.Errorf("inspect of an image: %s", msg)
	}
	e.fails(125, "inspect", "--format", "{{.NoSuchField}}", "web")
}

// TestPodmanShortForms: ps without an id, rm and start of a name are
// podman's; runc's forms (ps ID, start ID of a created container) stay.
func TestPodmanShortForms(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	e.loadImage("localhost/bb:plain", imagefix.Busybox(t))
	e.ok("run", "--network", "none", "--name", "short", "localhost/bb:plain", "sh", "-c", "echo ran")
	if out := e.ok("ps"); strings.Contains(out, "short") || !strings.Contains(out, "CONTAINER ID") {
		t.Errorf("ps (running only): %q", out)
	}
	if out := e.ok("ps", "-a", "--format", "json"); !strings.Contains(out, `"short"`) {
		t.Errorf("ps -a --format json: %q", out)
	}
	if out := e.ok("start", "-a", "short"); out != "ran\n" {
		t.Errorf("start -a NAME: %q", out)
	}
	e.ok("start", "short")
	e.ok("wait", "short")
	if out := e.ok("ps", "-a", "-q"); len(strings.Fields(out)) != 1 {
		t.Errorf("ps -a -q: %q", out)
	}
	e.ok("rm", "short")
	if out := e.ok("ps", "-a", "-q"); out != "" {
		t.Errorf("after rm: %q", out)
	}
	// port and kill by name: podman's (kill's default is SIGKILL: a shell
	// that traps SIGTERM still dies).
	xdg, err := os.MkdirTemp("/tmp", "sx") // short: the network's sockets live under it
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = os.RemoveAll(xdg) })
	e.env = append(e.env, "XDG_RUNTIME_DIR="+xdg)
	e.ok("run", "-d", "--name", "k", "-p", "127.0.0.1::80", "localhost/bb:plain", "sh", "-c", "trap '' TERM; while :; do sleep 0.1; done")
	if out := e.ok("port", "k"); !strings.HasPrefix(out, "80/tcp -> 127.0.0.1:") {
		t.Errorf("port NAME: %q", out)
	}
	e.ok("kill", "k")
	if out := e.ok("wait", "k"); out != "137\n" {
		t.Errorf("wait after kill NAME: %q, want 137 (SIGKILL)", out)
	}
	e.ok("rm", "k")
	// runc's kill by an id the runtime does not hold: its error.
	if msg := e.fails(1, "kill", "no-such-container"); !strings.Contains(msg, "no-such-container") {
		t.Errorf("kill of an unknown id: %s", msg)
	}
	// runc's start: a created container (a bundle), by id.
	if msg := e.fails(1, "start", "no-such-container"); !strings.Contains(msg, "no-such-container") {
		t.Errorf("start of an unknown id: %s", msg)
	}
}

// TestLatest: podman's -l/--latest names the container made last, for
// the verbs that take one container and those that take several; with
// container arguments it is refused.
func TestLatest(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	e.loadImage("localhost/bb:plain", imagefix.Busybox(t))
	if msg := e.fails(125, "logs", "-l"); !strings.Contains(msg, "no containers to act on") {
		t.Errorf("logs -l with no container: %s", msg)
	}
	e.ok("run", "--network", "none", "--name", "first", "localhost/bb:plain", "echo", "from first")
	e.ok("run", "--network", "none", "--name", "second", "localhost/bb:plain", "echo", "from second")
	if out := e.ok("container", "start", "-a", "--latest"); out != "from second\n" {
		t.Errorf("container start -a --latest: %q, want the second container's", out)
	}
	if out := e.ok("logs", "-l"); out != "from second\n" { // the log of that start
		t.Errorf("logs -l: %q, want the second container's", out)
	}
	if msg := e.fails(125, "stop", "-l", "first"); !strings.Contains(msg, "--latest and containers cannot be used together") {
		t.Errorf("stop -l first: %s", msg)
	}
	e.ok("container", "rm", "-l")
	if out := e.ok("ps", "-a", "--format", "{{.Names}}"); out != "first\n" {
		t.Errorf("after container rm -l: %q, want first only", out)
	}
	if out := e.ok("container", "inspect", "-l", "--format", "{{.Name}}"); out != "first\n" {
		t.Errorf("container inspect -l: %q", out)
	}
}
