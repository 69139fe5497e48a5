// Package nofile keeps the soft RLIMIT_NOFILE this process was started
// with, before the Go runtime raises it.
//
// The syscall package's init raises the soft limit of open files to the
// hard limit (go.dev/issue/46279) and puts the original back for the
// processes it starts (os/exec, syscall.Exec). sandy's raw children
// (userns.ForkExec, ForkInit) are not started by it: without this
// package they would hand the raised limit to the container's process,
// where the Go init, an os/exec child, hands the caller's.
//
// This package imports nothing, so it is initialized before syscall:
// among packages whose imports are initialized, Go initializes them in
// the order of their import paths (the Go spec, "Package
// initialization"), and "github.com/..." sorts before "syscall". Its init
// reads the limit with its own system call (getrlimit, in assembly).
// TestOriginal checks the order.
package nofile

// Soft and Hard are the RLIMIT_NOFILE this process started with; OK is
// false where they could not be read (another architecture, an error).
var (
	Soft, Hard uint64
	OK         bool
)

func init() {
	var lim [2]uint64
	if getrlimit(&lim) == 0 {
		Soft, Hard, OK = lim[0], lim[1], true
	}
}
