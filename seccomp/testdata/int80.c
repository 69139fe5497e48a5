// int80: makes one 32-bit syscall with `int $0x80` from a 64-bit process.
// The kernel runs it as an i386 syscall, and seccomp sees AUDIT_ARCH_I386
// with i386 syscall numbers, just as for a 32-bit program. It exits with
// the errno of that syscall (0 on success) through the 64-bit exit.
//
// Built by kernel_test.go: gcc -static -nostdlib -no-pie -DOP=<n> ...
//   OP=1: mkdir("/nonexistent-sandy/x", 0700)   (i386 mkdir = 39)
//   OP=2: waitpid(-1, 0, WNOHANG)                (i386 only: 7)
//   OP=3: socketcall(SYS_SOCKET, args)           (i386 socketcall = 102)
static const char path[] = "/nonexistent-sandy/x";
static unsigned int sockargs[3] = {1 /* AF_UNIX */, 1 /* SOCK_STREAM */, 0};

static long int80(long nr, long a, long b, long c)
{
	int ret;
	__asm__ volatile("int $0x80"
			 : "=a"(ret)
			 : "a"(nr), "b"(a), "c"(b), "d"(c)
			 : "memory");
	return ret;
}

void _start(void)
{
	long r;
#if OP == 1
	r = int80(39, (long)path, 0700, 0);
#elif OP == 2
	r = int80(7, -1, 0, 1);
#else
	r = int80(102, 1, (long)sockargs, 0);
#endif
	long code = r < 0 ? -r : 0;
	__asm__ volatile("syscall" : : "a"(60), "D"(code));
	for (;;)
		;
}
