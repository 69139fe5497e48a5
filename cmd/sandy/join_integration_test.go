//go:build integration

package main_test

import (
	"fmt"
	"os"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestJoinNamespacesByPath: a container joins another's user, network, ipc
// and uts namespaces by path (as podman does for pods) and still gets its
// own mount and pid namespaces; both see the same ids, hostname and network.
func TestJoinNamespacesByPath(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	a := newEnv(t, "sleep", "100")
	a.spec.Hostname = "pod-a"
	a.write()
	id := fmt.Sprintf("pod-%d", time.Now().UnixNano())
	if r := a.run("", "create", "--bundle", a.bundle, id); r.code != 0 {
		t.Fatalf("create a: %s", r.stderr)
	}
	if r := a.run("", "start", id); r.code != 0 {
		t.Fatalf("start a: %s", r.stderr)
	}
	pid := statePid(t, a, id)
	nsOf := func(typ string) string {
		l, err := os.Readlink(fmt.Sprintf("/proc/%d/ns/%s", pid, typ))
		if err != nil {
			t.Fatal(err)
		}
		return l
	}

	b := newEnv(t).sh(`hostname; for n in user net ipc uts; do readlink /proc/self/ns/$n; done; echo "pid=$$"; id -u`)
	b.root = a.root
	b.spec.Hostname = ""
	var ns []specs.LinuxNamespace
	for _, n := range b.spec.Linux.Namespaces {
		switch n.Type {
		case specs.UserNamespace, specs.NetworkNamespace, specs.IPCNamespace, specs.UTSNamespace:
			n.Path = fmt.Sprintf("/proc/%d/ns/%s", pid, map[specs.LinuxNamespaceType]string{
				specs.UserNamespace: "user", specs.NetworkNamespace: "net", specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts"}[n.Type])
		}
		ns = append(ns, n)
	}
	b.spec.Linux.Namespaces = ns
	b.write()
	r := b.runBundle(0)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if len(lines) != 7 {
		t.Fatalf("output %q (stderr %q)", r.stdout, r.stderr)
	}
	if lines[0] != "pod-a" {
		t.Errorf("hostname %q, want pod-a (joined uts)", lines[0])
	}
	for i, typ := range []string{"user", "net", "ipc", "uts"} {
		if lines[1+i] != nsOf(typ) {
			t.Errorf("%s namespace %s, want %s", typ, lines[1+i], nsOf(typ))
		}
	}
	if lines[5] != "pid=1" || lines[6] != "0" {
		t.Errorf("own pid namespace / root in the joined userns: %q %q", lines[5], lines[6])
	}
	if r := a.run("", "delete", "--force", id); r.code != 0 {
		t.Fatalf("delete a: %s", r.stderr)
	}
}
