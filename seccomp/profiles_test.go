package seccomp

import (
	"github.com/opencontainers/runtime-spec/specs-go"
)

func u(v uint) *uint { return &v }

// runcBatsProfiles are the profiles runc's tests/integration/seccomp.bats
// and personality.bats put in config.json, and the one of runtime-tools'
// validation/linux_seccomp, by test name.
func runcBatsProfiles() map[string]*specs.LinuxSeccomp {
	arches := []specs.Arch{specs.ArchX86, specs.ArchX32, specs.ArchX86_64}
	return map[string]*specs.LinuxSeccomp{
		"runtime-tools-linux-seccomp": {
			DefaultAction: specs.ActAllow,
			Syscalls:      []specs.LinuxSyscall{{Names: []string{"getcwd"}, Action: specs.ActErrno}},
		},
		"runc-errno-mkdir": {
			DefaultAction: specs.ActAllow, Architectures: arches,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno}},
		},
		"runc-errnoret-mkdir": {
			DefaultAction: specs.ActAllow, Architectures: arches,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActErrno, ErrnoRet: u(100)}},
		},
		"runc-kill-process-mkdir": {
			DefaultAction: specs.ActAllow, Architectures: arches,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir", "mkdirat"}, Action: specs.ActKillProcess}},
		},
		"runc-default-errnoret": {
			DefaultAction: specs.ActErrno, DefaultErrnoRet: u(38), Architectures: arches,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"read", "write", "exit_group", "execve", "brk", "mmap", "openat", "close"}, Action: specs.ActAllow}},
		},
		"runc-personality": {
			DefaultAction: specs.ActAllow, Architectures: arches,
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: u(200), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x8, Op: specs.OpEqualTo}}},
				{Names: []string{"personality"}, Action: specs.ActErrno, ErrnoRet: u(201), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0xffffffff, Op: specs.OpEqualTo}}},
			},
		},
		"runc-args-or": {
			DefaultAction: specs.ActAllow, Architectures: arches,
			Syscalls: []specs.LinuxSyscall{{Names: []string{"kill"}, Action: specs.ActErrno, Args: []specs.LinuxSeccompArg{
				{Index: 1, Value: 9, Op: specs.OpEqualTo}, {Index: 1, Value: 15, Op: specs.OpEqualTo}, {Index: 0, Value: 1, Op: specs.OpLessEqual}}}},
		},
		"runc-args-and-64": {
			DefaultAction: specs.ActErrno, Architectures: []specs.Arch{specs.ArchX86_64, specs.ArchAARCH64, specs.ArchARM},
			Syscalls: []specs.LinuxSyscall{
				{Names: []string{"mmap", "mprotect"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{
					{Index: 0, Value: 0x1_0000_0000, Op: specs.OpGreaterEqual}, {Index: 2, Value: 0x4, ValueTwo: 0, Op: specs.OpMaskedEqual}, {Index: 1, Value: 0xffff_ffff_0000_0000, Op: specs.OpLessThan}}},
				{Names: []string{"clone"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 0x7e020000, ValueTwo: 0, Op: specs.OpMaskedEqual}}},
				{Names: []string{"getpid"}, Action: specs.ActTrace, ErrnoRet: u(5)},
				{Names: []string{"getppid"}, Action: specs.ActLog},
				{Names: []string{"gettid"}, Action: specs.ActTrap},
				{Names: []string{"uname"}, Action: specs.ActKill},
				{Names: []string{"ioctl"}, Action: specs.ActNotify},
				{Names: []string{"socket"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: 40, Op: specs.OpNotEqual}}},
				{Names: []string{"socket"}, Action: specs.ActErrno, ErrnoRet: u(97), Args: []specs.LinuxSeccompArg{{Index: 0, Value: 40, Op: specs.OpEqualTo}}},
			},
		},
	}
}
