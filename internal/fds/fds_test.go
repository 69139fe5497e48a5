package fds

import (
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

func TestCloexecFrom(t *testing.T) {
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	// A fd inherited without the flag, as a caller's would be.
	dup, err := unix.Dup(int(w.Fd()))
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(dup)
	flags := func(fd int) int {
		f, err := unix.FcntlInt(uintptr(fd), unix.F_GETFD, 0)
		if err != nil {
			t.Fatal(err)
		}
		return f
	}
	if flags(dup)&unix.FD_CLOEXEC != 0 {
		t.Fatal("dup(2) set FD_CLOEXEC")
	}
	if err := CloexecFrom(dup); err != nil {
		t.Fatal(err)
	}
	if flags(dup)&unix.FD_CLOEXEC == 0 {
		t.Errorf("fd %d has no FD_CLOEXEC after CloexecFrom", dup)
	}
	if _, err := unix.FcntlInt(uintptr(dup), unix.F_GETFD, 0); err != nil {
		t.Errorf("fd %d was closed: %v", dup, err)
	}
}
