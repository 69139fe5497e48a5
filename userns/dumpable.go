//go:build linux

package userns

import (
	"sync"
	"time"

	"golang.org/x/sys/unix"
)

// This process's dumpability, which two kinds of raw children need
// opposite ways. Dumpability belongs to the memory (the mm), which
// children cloned with CLONE_VM share with this process (forkvm_amd64.go):
//
//   - ForkExec's child 1 makes it not dumpable, so that child 2, which
//     lives in the container's user namespace on this process's memory
//     until it execs, cannot be ptraced nor have its /proc files opened
//     by the container; this process is then not dumpable either;
//   - userNSOverlay's child writes its own /proc/self/setgroups, uid_map
//     and gid_map, which a process that is not dumpable cannot open: its
//     /proc files are the initial namespace's root's then.
//
// So a `sandy run IMAGE`, whose image helper joins the store's user
// namespace through ForkExec beside create's overlay of the binary, lost
// the overlay whenever the join came first (9 of 12 runs), and the init
// ran from a sealed memfd copy of the binary (some 5 ms more). vmShares
// counts the ForkExec children that share this memory. The overlay's
// child waits until none does (a child shares it from the fork to its
// exec: a few milliseconds; at most shareWait), and
// then may have this process dumpable again, as it was before the first
// ForkExec: nothing shares its memory from another user namespace then,
// and a process of the caller's that could ptrace the child could ptrace
// this process anyway. The count's lock is held across the overlay's
// child, so that no ForkExec starts while it runs.
var vmShares struct {
	sync.Mutex
	live int
	// idle is closed when live falls to 0 (made when it rises from 0).
	idle chan struct{}
	// undumped: a ForkExec made this process not dumpable (and nothing
	// has made it dumpable again since).
	undumped bool
}

// shareWait bounds the overlay's wait for the ForkExec children to stop
// sharing this process's memory: past it (a child not released), the
// overlay's child tries as it is, and fails to write its maps. A child
// shares it for a few milliseconds (its fork, its release, its exec);
// 50 ms was once too short at load 6 with compilers running, and the
// copy it then falls back to costs some 5 ms (a var for the tests).
var shareWait = time.Second

// vmShare counts a ForkExec whose children will share this process's
// memory, and returns the function that ends the count once they do not
// (child 2 exec'd, exited, or never started): idempotent, and a no-op
// where the children fork (forkvm_other.go).
func vmShare() func() {
	if !forkVM {
		return func() {}
	}
	vmShares.Lock()
	defer vmShares.Unlock()
	return vmShareLocked()
}

// vmShareLocked is vmShare with vmShares locked by the caller (ForkInit,
// between dumpableForOverlay and its unlock).
func vmShareLocked() func() {
	if vmShares.live == 0 {
		vmShares.idle = make(chan struct{})
	}
	vmShares.live++
	vmShares.undumped = true
	var once sync.Once
	return func() {
		once.Do(func() {
			vmShares.Lock()
			vmShares.live--
			if vmShares.live == 0 {
				close(vmShares.idle)
			}
			vmShares.Unlock()
		})
	}
}

// Redumpable makes this process dumpable again once no raw child shares
// its memory (the wait of dumpableForOverlay), where one made it not
// dumpable: for the Go init that the lifecycle starts after a raw init's
// program failed. A child forked from a process that is not dumpable is
// not dumpable either until its execve, and the Go init's exec of
// /proc/self/fd/N then fails with EACCES.
func Redumpable() { dumpableForOverlay()() }

// dumpableForOverlay waits, up to shareWait, until no ForkExec child
// shares this process's memory, then makes this process dumpable again
// for the overlay's child if a ForkExec left it not dumpable. It returns
// with vmShares locked, and the caller unlocks it once the child is gone.
// Where a child still shares the memory, nothing changes: the overlay's
// child fails to write its maps, and the binary is copied into a sealed
// memfd instead.
func dumpableForOverlay() (unlock func()) {
	timer := time.NewTimer(shareWait)
	defer timer.Stop()
	vmShares.Lock()
	for vmShares.live > 0 {
		idle := vmShares.idle
		vmShares.Unlock()
		select {
		case <-idle:
		case <-timer.C:
			vmShares.Lock()
			return vmShares.Unlock
		}
		vmShares.Lock()
	}
	if vmShares.undumped {
		if d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0); err == nil && d == 0 {
			_ = unix.Prctl(unix.PR_SET_DUMPABLE, 1, 0, 0, 0)
		}
		vmShares.undumped = false
	}
	return vmShares.Unlock
}
