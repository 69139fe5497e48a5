//go:build linux

package userns

import (
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
)

const joinChildEnv = "SANDY_TEST_JOIN_CHILD"

// TestStartJoinsWithoutNsenter starts children as a rootful Kubernetes
// pod's containers are started (setns.go): joining the network, IPC and
// UTS namespaces of another process by path, and its pid namespace (a pod
// that shares its processes) or a new one, with a new mount namespace.
// Start must join them itself: a PATH whose nsenter only records that it
// ran, and the child must be this process's own (not Spawned), in the
// joined namespaces (a new pid namespace when that was not joined), while
// every thread of this process stays in its own namespaces.
func TestStartJoinsWithoutNsenter(t *testing.T) {
	for _, joinPid := range []bool{false, true} {
		t.Run(fmt.Sprintf("pid joined %v", joinPid), func(t *testing.T) { testStartJoins(t, joinPid) })
	}
}

func testStartJoins(t *testing.T, joinPid bool) {
	if os.Getenv(joinChildEnv) != "" {
		for _, ns := range []string{"net", "ipc", "uts", "pid"} {
			l, _ := os.Readlink("/proc/self/ns/" + ns)
			fmt.Println(l)
		}
		os.Exit(0)
	}
	if os.Getuid() != 0 {
		testutil.Skip(t, "needs root: joins the namespaces of a process of another user namespace's making (run the unit tests as root, as hack/test.sh does)")
	}
	target := exec.Command("sleep", "60")
	target.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNET | unix.CLONE_NEWIPC | unix.CLONE_NEWUTS | unix.CLONE_NEWPID}
	if err := target.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = target.Process.Kill(); _ = target.Wait() })

	bin := t.TempDir()
	ran := filepath.Join(bin, "nsenter-ran")
	if err := os.WriteFile(filepath.Join(bin, "nsenter"), []byte("#!/bin/sh\ntouch "+ran+"\nexit 1\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", bin+":"+os.Getenv("PATH"))

	exe, err := os.Open("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	defer exe.Close()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	own := threadNamespaces(t)
	nsPath := func(ns string) string { return fmt.Sprintf("/proc/%d/ns/%s", target.Process.Pid, ns) }
	joins := []Join{{Flag: "net", Path: nsPath("net")}, {Flag: "ipc", Path: nsPath("ipc")}, {Flag: "uts", Path: nsPath("uts")}}
	var flags uintptr = unix.CLONE_NEWNS
	if joinPid {
		joins = append(joins, Join{Flag: "pid", Path: nsPath("pid")})
	} else {
		flags |= unix.CLONE_NEWPID
	}
	c, err := Start(Config{
		Exe:        exe,
		Args:       []string{"-test.run=^TestStartJoinsWithoutNsenter$"},
		Env:        append(os.Environ(), joinChildEnv+"=1"),
		Cloneflags: flags,
		Stdout:     w,
		Stderr:     os.Stderr,
		CgroupFD:   -1,
		Join:       joins,
	})
	w.Close()
	if err != nil {
		t.Fatalf("Start: %v", err)
	}
	data, _ := io.ReadAll(r)
	out := string(data)
	if _, err := c.Wait(c.Cmd.Process.Pid); err != nil {
		t.Fatalf("the child: %v (its output: %q)", err, out)
	}
	if _, err := os.Stat(ran); err == nil {
		t.Error("Start ran nsenter for network, IPC and UTS joins")
	}
	if c.Spawned() {
		t.Error("Spawned() = true: the child came through a chain")
	}
	got := strings.Fields(out)
	if len(got) != 4 {
		t.Fatalf("the child printed %q, want its net, ipc, uts and pid namespaces", out)
	}
	for i, ns := range []string{"net", "ipc", "uts"} {
		want, _ := os.Readlink(nsPath(ns))
		if got[i] != want {
			t.Errorf("the child's %s namespace is %s, want the joined %s", ns, got[i], want)
		}
	}
	ownPid, _ := os.Readlink("/proc/self/ns/pid")
	targetPid, _ := os.Readlink(nsPath("pid"))
	switch {
	case joinPid && got[3] != targetPid:
		t.Errorf("the child's pid namespace is %s, want the joined %s", got[3], targetPid)
	case !joinPid && (got[3] == ownPid || got[3] == targetPid):
		t.Errorf("the child's pid namespace is %s (this process's: %s, the joined ones': %s), want a new one", got[3], ownPid, targetPid)
	}
	if after := threadNamespaces(t); after != own {
		t.Errorf("this process's threads were in %s before Start and are in %s after", own, after)
	}
}

// threadNamespaces lists the net, ipc, uts and pid (for children)
// namespaces of every thread of this process, each once.
func threadNamespaces(t *testing.T) string {
	t.Helper()
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	var all []string
	for _, task := range tasks {
		for _, ns := range []string{"net", "ipc", "uts", "pid_for_children"} {
			l, err := os.Readlink(filepath.Join("/proc/self/task", task.Name(), "ns", ns))
			if err == nil && !seen[l] {
				seen[l] = true
				all = append(all, l)
			}
		}
	}
	return strings.Join(all, " ")
}
