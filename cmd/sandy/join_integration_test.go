//go:build integration

package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

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

// TestJoinOwnNamespace: a config may name, as a namespace to join, one
// sandy is in already; the container then shares it, as setns(2) into it
// would have given. sandy does not call setns for it: the kernel refuses
// it where sandy lacks CAP_SYS_ADMIN over the namespace's owner, as for
// the test user and the host's UTS namespace here, or for a containerd in
// rootlesskit (root in its user namespace) whose CRI gives a host-network
// pod's containers the path of the host's UTS namespace
// (TestCRIPodRootless/host-network). Before, nsenter failed: "reassociate
// to namespace 'ns/uts' failed: Operation not permitted".
func TestJoinOwnNamespace(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	own, err := os.Readlink("/proc/self/ns/uts")
	if err != nil {
		t.Fatal(err)
	}
	host, _ := os.Hostname()
	e := newEnv(t).sh("readlink /proc/self/ns/uts; hostname")
	e.spec.Hostname = "" // the host's: not the container's to set
	joinNamespacesOf(e, os.Getpid(), specs.UTSNamespace)
	r := e.runBundle(0)
	if got := strings.Fields(r.stdout); len(got) != 2 || got[0] != own || got[1] != host {
		t.Fatalf("uts namespace and hostname in the container %q, want %s and %s (the test's own); stderr: %s", got, own, host, r.stderr)
	}
}

// joinNamespacesOf makes e's config join pid's namespaces of the given types.
func joinNamespacesOf(e *env, pid int, types ...specs.LinuxNamespaceType) {
	files := map[specs.LinuxNamespaceType]string{specs.UserNamespace: "user", specs.NetworkNamespace: "net",
		specs.IPCNamespace: "ipc", specs.UTSNamespace: "uts", specs.PIDNamespace: "pid", specs.CgroupNamespace: "cgroup"}
	for i, n := range e.spec.Linux.Namespaces {
		for _, typ := range types {
			if n.Type == typ {
				e.spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/%s", pid, files[typ])
			}
		}
	}
	e.write()
}

// TestJoinedContainerReapedBySubreaper: an engine (conmon, a containerd
// shim) is a child subreaper and learns a container's exit status by
// reaping its pid once `sandy create` has exited. That must hold when the
// container joins namespaces by path (podman always passes a netns path):
// no helper may stay between the engine and the container process.
func TestJoinedContainerReapedBySubreaper(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	if err := unix.Prctl(unix.PR_SET_CHILD_SUBREAPER, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name  string
		types []specs.LinuxNamespaceType
	}{
		{"user and net", []specs.LinuxNamespaceType{specs.UserNamespace, specs.NetworkNamespace}},
		// A joined pid namespace: nsenter forks, and the init is reparented.
		{"user, net and pid", []specs.LinuxNamespaceType{specs.UserNamespace, specs.NetworkNamespace, specs.PIDNamespace}},
	} {
		t.Run(tc.name, func(t *testing.T) { reapedBySubreaper(t, tc.types) })
	}
}

func reapedBySubreaper(t *testing.T, types []specs.LinuxNamespaceType) {
	a := newEnv(t, "sleep", "100")
	idA := fmt.Sprintf("infra-%d", time.Now().UnixNano())
	if r := a.run("", "create", "--bundle", a.bundle, idA); r.code != 0 {
		t.Fatalf("create infra: %s", r.stderr)
	}
	defer a.run("", "delete", "--force", idA)
	infra := statePid(t, a, idA)

	b := newEnv(t).sh("exit 7")
	b.root = a.root
	joinNamespacesOf(b, infra, types...)
	idB := idA + "-b"
	if r := b.run("", "create", "--bundle", b.bundle, idB); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	defer b.run("", "delete", "--force", idB)
	pid := statePid(t, b, idB)
	ppid := func() string {
		data, _ := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		for _, l := range strings.Split(string(data), "\n") {
			if strings.HasPrefix(l, "PPid:") {
				return strings.TrimSpace(strings.TrimPrefix(l, "PPid:"))
			}
		}
		return "?"
	}
	if got, want := ppid(), fmt.Sprint(os.Getpid()); got != want {
		t.Fatalf("the container's parent is pid %s, want the subreaper %s (a helper stayed in between)", got, want)
	}
	if r := b.run("", "start", idB); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	done := make(chan unix.WaitStatus, 1)
	go func() {
		var ws unix.WaitStatus
		_, _ = unix.Wait4(pid, &ws, 0, nil)
		done <- ws
	}()
	select {
	case ws := <-done:
		if !ws.Exited() || ws.ExitStatus() != 7 {
			t.Fatalf("reaped status %v, want exit 7", ws)
		}
	case <-time.After(20 * time.Second):
		t.Fatal("the container never exited to its subreaper")
	}
}

// TestJoinMountNamespaceByPath: a config may name a mount namespace to
// build the container in (as runc allows): the init joins it itself and
// builds the root there.
func TestJoinMountNamespaceByPath(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	unshare := testutil.RequireBinary(t, "unshare", "apt-get install util-linux")
	holder := exec.Command(unshare, "--user", "--map-root-user", "--mount", "--propagation", "private", "sleep", "100")
	if err := holder.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = holder.Process.Kill(); _ = holder.Wait() }()
	pid := holder.Process.Pid
	var want string
	waitFor(t, 5*time.Second, "the holder's namespaces", func() bool {
		mine, _ := os.Readlink("/proc/self/ns/mnt")
		want, _ = os.Readlink(fmt.Sprintf("/proc/%d/ns/mnt", pid))
		return want != "" && want != mine
	})
	e := newEnv(t).sh("readlink /proc/self/ns/mnt; cat /proc/self/uid_map")
	for i, n := range e.spec.Linux.Namespaces {
		switch n.Type {
		case specs.UserNamespace:
			e.spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/user", pid)
		case specs.MountNamespace:
			e.spec.Linux.Namespaces[i].Path = fmt.Sprintf("/proc/%d/ns/mnt", pid)
		}
	}
	e.spec.Linux.UIDMappings, e.spec.Linux.GIDMappings = nil, nil
	e.write()
	r := e.run("", "run", "--network=none", e.bundle)
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	if r.code != 0 || len(lines) < 1 || lines[0] != want {
		t.Fatalf("exit %d, mount namespace %q, want %q; stderr %s", r.code, r.stdout, want, r.stderr)
	}
}
