//go:build linux

package userns

import (
	"errors"
	"os"
	"testing"

	"golang.org/x/sys/unix"
)

// TestRunProgram: a program run in this process keeps results in slots
// for later ops, tolerates what it is told to, and fails with the op's
// name and errno.
func TestRunProgram(t *testing.T) {
	dir := t.TempDir()
	const slot = 3
	fdcwd := unix.AT_FDCWD
	cwd := uintptr(fdcwd)
	ops := []Op{
		{What: "opening the directory", Trap: unix.SYS_OPENAT, Args: [6]Arg{Val(cwd), Str(dir), Val(unix.O_RDONLY | unix.O_DIRECTORY | unix.O_CLOEXEC)}, Out: slot},
		{What: "making a file in it", Trap: unix.SYS_MKDIRAT, Args: [6]Arg{Slot(slot), Str("made"), Val(0o700)}},
		{What: "making it again", Trap: unix.SYS_MKDIRAT, Args: [6]Arg{Slot(slot), Str("made"), Val(0o700)}, Tolerate: unix.EEXIST},
		{What: "closing the directory", Trap: unix.SYS_CLOSE, Args: [6]Arg{Slot(slot)}},
	}
	if err := RunProgram(ops); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(dir + "/made"); err != nil || !fi.IsDir() {
		t.Fatalf("the program's mkdirat: %v", err)
	}
	err := RunProgram([]Op{{What: "removing what is not there", Trap: unix.SYS_UNLINKAT, Args: [6]Arg{Val(cwd), Str(dir + "/absent"), Val(0)}}})
	var pe *ProgramError
	if !errors.As(err, &pe) || pe.What != "removing what is not there" || !errors.Is(err, unix.ENOENT) {
		t.Errorf("a failing op: %v, want its ProgramError with ENOENT", err)
	}
	if err := RunProgram([]Op{{What: "a bad slot", Trap: unix.SYS_CLOSE, Args: [6]Arg{Slot(MaxSlots)}}}); err == nil {
		t.Error("a slot out of range: no error")
	}
}
