#include "textflag.h"

// func getrlimit(lim *[2]uint64) int64
TEXT ·getrlimit(SB),NOSPLIT,$0-16
	MOVQ	$302, AX // SYS_prlimit64
	XORQ	DI, DI   // pid 0: this process
	MOVQ	$7, SI   // RLIMIT_NOFILE
	XORQ	DX, DX   // new: none
	MOVQ	lim+0(FP), R10
	XORQ	R8, R8
	XORQ	R9, R9
	SYSCALL
	MOVQ	AX, ret+8(FP)
	RET
