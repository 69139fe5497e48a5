//go:build linux

package userns

import (
	"fmt"
	"os/exec"
	"runtime"
	"strings"

	"golang.org/x/sys/unix"
)

// Joining network, IPC, UTS and pid namespaces without nsenter.
//
// setns(2) refuses a multi-threaded caller only for a user, mount or time
// namespace (EINVAL, EUSERS); a network, IPC or UTS namespace, and the pid
// namespace for children (pid_namespaces(7)), are the calling thread's own
// (its nsproxy), and a child cloned from that thread starts in them. When
// those are all the joins and no user namespace is made, which is every
// container of a rootful Kubernetes pod (the sandbox joins the network
// namespace the CRI made; its containers the sandbox's network, IPC, UTS
// and, sharing the pod's processes, pid namespaces), Start joins them on a
// thread of its own and forks the child from it: no nsenter and no spawn
// helper (the helper is a start of the whole sandy binary), and the child
// is the caller's from the start (Child.Spawned is false). In the systemd
// + cgroup v2 VM (QEMU TCG) the nsenter → helper chain cost 130-200 ms per
// container, two of them per pod (docs/kubernetes.md, "Numbers").
//
// The thread is locked (runtime.LockOSThread) while it is in the joined
// namespaces, and the runtime never clones a new thread from a locked one
// (it asks its template thread): so no other goroutine runs there, and no
// thread is cloned from a thread whose pid namespace for children is not
// its own (clone(2) refuses CLONE_THREAD then, EINVAL); the child is forked
// without CLONE_THREAD. After the fork the thread goes back to its own
// namespaces (opened before the joins; a pid namespace may always be set
// back to the active one) and is unlocked; should that fail it stays
// locked, and the runtime ends it with its goroutine (the main thread it
// cannot end, only park: /proc/self/ns would then show the joined
// namespaces, which is why the thread is not simply left to end). Left to
// nsenter: a cgroup or time namespace, a new user namespace (its maps are
// written for the pid the chain reports), a parent-death signal (prctl(2):
// it is tied to the thread that forked the child, which here is only
// borrowed), and a path under /proc/self/ (it would name nsenter's file
// descriptors, not the caller's).

// threadNamespace is the clone flag of a namespace that a thread of a
// multi-threaded process may join, by nsenter's option name.
func threadNamespace(flag string) (int, bool) {
	switch flag {
	case "net":
		return unix.CLONE_NEWNET, true
	case "ipc":
		return unix.CLONE_NEWIPC, true
	case "uts":
		return unix.CLONE_NEWUTS, true
	case "pid":
		return unix.CLONE_NEWPID, true
	}
	return 0, false
}

// joinInProcess reports whether cfg's joins can be made by Start itself
// (startJoined) instead of through nsenter.
func joinInProcess(cfg Config) bool {
	if len(cfg.Join) == 0 || cfg.Cloneflags&unix.CLONE_NEWUSER != 0 || cfg.Pdeathsig != 0 {
		return false
	}
	for _, j := range cfg.Join {
		if _, ok := threadNamespace(j.Flag); !ok || strings.HasPrefix(j.Path, "/proc/self/") || strings.HasPrefix(j.Path, "/proc/thread-self/") {
			return false
		}
	}
	return true
}

// startJoined starts cmd from a locked thread that has joined the
// namespaces of joins (joinInProcess said they may be), and takes the
// thread back to its own namespaces afterwards. joinErr is a failure to
// join, startErr cmd.Start's.
func startJoined(cmd *exec.Cmd, joins []Join) (joinErr, startErr error) {
	type result struct{ join, start error }
	done := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		back, err := openOwnNamespaces(joins)
		if err != nil {
			runtime.UnlockOSThread()
			done <- result{join: err}
			return
		}
		defer closeNamespaces(back)
		r := result{join: setnsAll(joins)}
		if r.join == nil {
			r.start = cmd.Start()
		}
		if setnsFDs(back) == nil {
			runtime.UnlockOSThread()
		} // else the thread stays locked and ends with this goroutine
		done <- r
	}()
	r := <-done
	return r.join, r.start
}

// nsFD is an open namespace file and its clone flag.
type nsFD struct{ fd, flag int }

// openOwnNamespaces opens the calling thread's namespaces of the types of
// joins, to go back to.
func openOwnNamespaces(joins []Join) ([]nsFD, error) {
	var back []nsFD
	for _, j := range joins {
		flag, _ := threadNamespace(j.Flag)
		fd, err := unix.Open("/proc/thread-self/ns/"+j.Flag, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			closeNamespaces(back)
			return nil, fmt.Errorf("opening this thread's %s namespace: %w", j.Flag, err)
		}
		back = append(back, nsFD{fd: fd, flag: flag})
	}
	return back, nil
}

func closeNamespaces(fds []nsFD) {
	for _, n := range fds {
		unix.Close(n.fd)
	}
}

// setnsFDs joins each of fds on the calling thread.
func setnsFDs(fds []nsFD) error {
	for _, n := range fds {
		if err := unix.Setns(n.fd, n.flag); err != nil {
			return err
		}
	}
	return nil
}

// setnsAll joins each namespace of joins on the calling thread.
func setnsAll(joins []Join) error {
	for _, j := range joins {
		flag, _ := threadNamespace(j.Flag)
		fd, err := unix.Open(j.Path, unix.O_RDONLY|unix.O_CLOEXEC, 0)
		if err != nil {
			return fmt.Errorf("opening the %s namespace %s: %w", j.Flag, j.Path, err)
		}
		err = unix.Setns(fd, flag)
		unix.Close(fd)
		if err != nil {
			return fmt.Errorf("joining the %s namespace %s: setns: %w", j.Flag, j.Path, err)
		}
	}
	return nil
}
