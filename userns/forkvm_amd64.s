//go:build linux && !race

#include "textflag.h"

// func cloneOnStack(flags, stack uintptr, r unsafe.Pointer, stage uintptr) (pid uintptr, errno syscall.Errno)
//
// clone(flags, stack, 0, 0, 0). The parent returns the result; the child,
// on the new stack, calls vmEntry(r, stage), which never returns (and
// exits if it did).
TEXT ·cloneOnStack(SB),NOSPLIT,$0-48
	MOVQ	flags+0(FP), DI
	MOVQ	stack+8(FP), SI
	MOVQ	r+16(FP), R12
	MOVQ	stage+24(FP), R13
	XORQ	DX, DX
	XORQ	R10, R10
	XORQ	R8, R8
	MOVQ	$56, AX // SYS_clone
	SYSCALL
	CMPQ	AX, $0
	JEQ	child
	CMPQ	AX, $0xfffffffffffff001
	JLS	ok
	NEGQ	AX
	MOVQ	$0, pid+32(FP)
	MOVQ	AX, errno+40(FP)
	RET
ok:
	MOVQ	AX, pid+32(FP)
	MOVQ	$0, errno+40(FP)
	RET
child:
	// The new stack: room for vmEntry's two arguments (ABI0).
	SUBQ	$16, SP
	MOVQ	R12, 0(SP)
	MOVQ	R13, 8(SP)
	// Called through a register: the linker's nosplit check would
	// otherwise add this new stack to the caller's.
	LEAQ	·vmEntry(SB), AX
	CALL	AX
	MOVL	$60, AX // SYS_exit
	MOVQ	$1, DI
	SYSCALL
	INT	$3
