//go:build linux

package userns

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestUserNSOverlay (as the test user): a binary the user owns, seen
// through the overlay a child makes in a user namespace of its own, in
// both of the child's forms (sharing the caller's memory, and a fork): an
// O_PATH handle on a read-only overlayfs that refuses to open for writing
// (EROFS), has the binary's bytes, is listed in no mountinfo, and execs.
// No fd but the handle is left behind.
func TestUserNSOverlay(t *testing.T) {
	testutil.RequireKernel(t, 5, 11, "overlayfs in a user namespace")
	if testutil.AsUser(t) {
		return
	}
	own := ownCopy(t)
	modes := []bool{false}
	if forkVM {
		modes = append(modes, true)
	}
	for _, vm := range modes {
		t.Run(fmt.Sprintf("vm=%v", vm), func(t *testing.T) {
			before := openFDs(t)
			f, err := userNSOverlayVM(own, vm)
			if err != nil {
				t.Fatalf("userNSOverlay(%s): %v", own, err)
			}
			defer f.Close()
			src, err := os.Open(own)
			if err != nil {
				t.Fatal(err)
			}
			defer src.Close()
			assertReadOnlyOverlay(t, f, src)
			out, err := exec.Command(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), "-test.list=^TestUserNSOverlay$").Output()
			if err != nil || strings.TrimSpace(string(out)) != "TestUserNSOverlay" {
				t.Fatalf("exec through the overlay: %q, %v", out, err)
			}
			after := openFDs(t)
			if len(after) != len(before)+2 { // the handle and src
				t.Fatalf("fds before %v, after %v: want only the handle and the source added", before, after)
			}
		})
	}
}

// openFDs lists this process's open fds.
func openFDs(t *testing.T) []string {
	t.Helper()
	ents, err := os.ReadDir("/proc/self/fd")
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, e := range ents {
		l, _ := os.Readlink("/proc/self/fd/" + e.Name())
		fds = append(fds, e.Name()+"→"+l)
	}
	return fds
}

// TestExeOptions: the strings the child uses: the binary's directory
// (escaped for overlayfs' lowerdir list) under its working directory "."
// and the caller's own ids mapped onto themselves.
func TestExeOptions(t *testing.T) {
	for _, tc := range []struct {
		name, binary string
		want         exeOptions
	}{
		{"plain", "/home/u/bin/sandy", exeOptions{Dir: "/home/u/bin/", Name: "sandy", Lower: ".:/home/u/bin/", UIDMap: "1000 1000 1\n", GIDMap: "100 100 1\n"}},
		{"colon and backslash", `/home/u/a:b\c/sandy`, exeOptions{Dir: `/home/u/a:b\c/`, Name: "sandy", Lower: `.:/home/u/a\:b\\c/`, UIDMap: "1000 1000 1\n", GIDMap: "100 100 1\n"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := newExeOptions(tc.binary, 1000, 100); got != tc.want {
				t.Fatalf("newExeOptions(%q) = %+v, want %+v", tc.binary, got, tc.want)
			}
		})
	}
}

// TestUserNSOverlayFailure (as the test user): a step of the child that
// fails is named with its errno and the kernel's message (overlayfs logs
// one for a lowerdir that is not a directory), and leaves
// no fd behind; a file in the overlay that is not the running binary is
// refused (checkOverlayExe).
func TestUserNSOverlayFailure(t *testing.T) {
	testutil.RequireKernel(t, 5, 11, "overlayfs in a user namespace")
	if testutil.AsUser(t) {
		return
	}
	dir := t.TempDir()
	bin := filepath.Join(dir, "sandy")
	if err := os.WriteFile(bin, []byte("#!/bin/sh\n"), 0o755); err != nil {
		t.Fatal(err)
	}
	before := openFDs(t)
	o := newExeOptions(bin, os.Geteuid(), os.Getegid())
	o.Lower = ".:" + filepath.Join(dir, "missing")
	if _, err := exeInChild(o, forkVM); err == nil || !strings.Contains(err.Error(), "fsconfig") || !strings.Contains(err.Error(), "no such file or directory") {
		t.Fatalf("a missing lowerdir: %v, want fsconfig's ENOENT", err)
	}
	file := filepath.Join(t.TempDir(), "file") // outside dir, which the child's tmpfs covers
	if err := os.WriteFile(file, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	o.Lower = ".:" + file
	if _, err := exeInChild(o, forkVM); err == nil || !strings.Contains(err.Error(), "fsconfig") || !strings.Contains(err.Error(), "not a directory)") {
		t.Fatalf("a file as lowerdir: %v, want fsconfig's error with overlayfs' message", err)
	} else {
		t.Log(err)
	}
	o = newExeOptions(bin, os.Geteuid(), os.Getegid())
	o.Name = "absent"
	if _, err := exeInChild(o, forkVM); err == nil || !strings.Contains(err.Error(), "opening the binary in the overlay: no such file") {
		t.Fatalf("a missing binary: %v, want openat's ENOENT", err)
	}
	if after := openFDs(t); len(after) != len(before) {
		t.Fatalf("fds before %v, after %v", before, after)
	}
	f, err := exeInChild(newExeOptions(bin, os.Geteuid(), os.Getegid()), forkVM)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var other unix.Stat_t
	if err := unix.Stat("/proc/self/exe", &other); err != nil {
		t.Fatal(err)
	}
	if err := checkOverlayExe(f, &other); err == nil || !strings.Contains(err.Error(), "not the running binary") {
		t.Fatalf("checkOverlayExe of another file: %v", err)
	}
	plain, err := os.Open(bin)
	if err != nil {
		t.Fatal(err)
	}
	defer plain.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(plain.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	if err := checkOverlayExe(plain, &st); err == nil || !strings.Contains(err.Error(), "not a read-only overlayfs") {
		t.Fatalf("checkOverlayExe of the file itself: %v", err)
	}
	if err := checkOverlayExe(f, &st); err != nil {
		t.Fatalf("checkOverlayExe of the overlay's file: %v", err)
	}
}

// TestUserNSOverlayAfterForkExec (as the test user): a ForkExec leaves
// this process not dumpable (its child 1 makes the shared memory so); the
// overlay's child, which writes its own maps, then works once no ForkExec
// child shares the memory (this process dumpable again), and fails while
// one does, which is left not dumpable: the order of `sandy run IMAGE`'s
// image helper join and create's overlay of the binary.
func TestUserNSOverlayAfterForkExec(t *testing.T) {
	testutil.RequireKernel(t, 5, 11, "overlayfs in a user namespace")
	if !forkVM {
		t.Skip("ForkExec's children fork on this build (forkvm_other.go): this process's dumpability is not theirs")
	}
	if testutil.AsUser(t) {
		return
	}
	own := ownCopy(t)
	dumpable := func() int {
		d, err := unix.PrctlRetInt(unix.PR_GET_DUMPABLE, 0, 0, 0, 0)
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	start := func() *Forked {
		r, w, err := os.Pipe()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { r.Close() })
		f, err := ForkExec(selfPlan(t, w, "true"))
		w.Close()
		if err != nil {
			t.Fatal(err)
		}
		return f
	}

	// A child still shares the memory and is not released: not dumpable,
	// and the overlay's child, after shareWait, cannot write its maps.
	defer func(w time.Duration) { shareWait = w }(shareWait)
	shareWait = 50 * time.Millisecond
	f := start()
	if d := dumpable(); d != 0 {
		t.Fatalf("dumpable %d while a ForkExec child shares the memory, want 0", d)
	}
	t0 := time.Now()
	if h, err := userNSOverlayVM(own, true); err == nil {
		h.Close()
		t.Fatal("the overlay was made while a ForkExec child shares the memory: this process was made dumpable")
	} else if !strings.Contains(err.Error(), "setgroups") {
		t.Fatalf("overlay while shared: %v, want the setgroups write refused", err)
	}
	if waited := time.Since(t0); waited < shareWait {
		t.Errorf("the overlay tried after %v, want it to wait %v for the child's exec", waited, shareWait)
	}
	if d := dumpable(); d != 0 {
		t.Fatalf("dumpable %d after the overlay's try while shared, want 0", d)
	}
	release := func(f *Forked) {
		if err := f.Release(); err != nil {
			t.Error(err)
		}
		var ws unix.WaitStatus
		_, _ = unix.Wait4(f.Pid, &ws, 0, nil)
	}
	release(f)

	// Child 2 exec'd: the overlay works, and this process is dumpable again.
	h, err := userNSOverlayVM(own, true)
	if err != nil {
		t.Fatalf("overlay after the ForkExec child exec'd: %v", err)
	}
	h.Close()
	if d := dumpable(); d != 1 {
		t.Fatalf("dumpable %d after the overlay, want 1", d)
	}

	// A child released while the overlay waits for it (`sandy run
	// IMAGE`'s join beside create's overlay): the overlay waits and works.
	f = start()
	go func() {
		time.Sleep(5 * time.Millisecond)
		release(f)
	}()
	h, err = userNSOverlayVM(own, true)
	if err != nil {
		t.Fatalf("overlay beside a ForkExec child released meanwhile: %v", err)
	}
	h.Close()
}

// ownCopy is a copy of this test binary that the test's user owns (and
// so could write): the binary the overlay is made of.
func ownCopy(t *testing.T) string {
	t.Helper()
	own := filepath.Join(t.TempDir(), "sandy")
	data, err := os.ReadFile("/proc/self/exe")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(own, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return own
}
