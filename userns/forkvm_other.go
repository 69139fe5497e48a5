//go:build linux && (!amd64 || race)

package userns

import (
	"syscall"
	"unsafe"
)

// The children are forks here: no cloneOnStack (forkvm_amd64.go), or a
// race build, whose hooks must not run in children that share memory.
const forkVM = false

func cloneOnStack(flags, stack uintptr, r unsafe.Pointer, stage uintptr) (uintptr, syscall.Errno) {
	return 0, syscall.ENOSYS
}

func forkChildrenVM(r *forkRaw) (int, syscall.Errno) { return 0, syscall.ENOSYS }
