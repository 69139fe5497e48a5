//go:build integration

package main_test

import (
	"encoding/json"
	"reflect"
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
