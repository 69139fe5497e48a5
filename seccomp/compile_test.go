package seccomp

import (
	"errors"
	"fmt"
	"runtime"
	"testing"
	"time"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

func TestCompileErrors(t *testing.T) {
	allow := func(mod func(p *specs.LinuxSeccomp)) *specs.LinuxSeccomp {
		p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid"}, Action: specs.ActAllow}}}
		mod(p)
		return p
	}
	tests := []struct {
		name string
		p    *specs.LinuxSeccomp
		want error
	}{
		{"nil", nil, ErrNoProfile},
		{"unknown default action", allow(func(p *specs.LinuxSeccomp) { p.DefaultAction = "SCMP_ACT_NOPE" }), ErrAction},
		{"notify default", allow(func(p *specs.LinuxSeccomp) { p.DefaultAction = specs.ActNotify }), ErrNotifyDefault},
		{"notify write", allow(func(p *specs.LinuxSeccomp) {
			p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"read", "write"}, Action: specs.ActNotify})
		}), ErrNotifyWrite},
		{"unsupported arch", allow(func(p *specs.LinuxSeccomp) { p.Architectures = []specs.Arch{specs.ArchRISCV64} }), ErrArch},
		{"unknown flag", allow(func(p *specs.LinuxSeccomp) { p.Flags = []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_NOPE"} }), ErrFlag},
		{"wait killable without notify", allow(func(p *specs.LinuxSeccomp) {
			p.Flags = []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagWaitKillableRecv}
		}), ErrWaitKillableNoNotify},
		{"bad operator", allow(func(p *specs.LinuxSeccomp) {
			p.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 0, Op: "SCMP_CMP_NOPE"}}
		}), ErrOperator},
		{"argument 6", allow(func(p *specs.LinuxSeccomp) {
			p.Syscalls[0].Args = []specs.LinuxSeccompArg{{Index: 6, Op: specs.OpEqualTo}}
		}), ErrArgIndex},
		{"errnoRet too large", allow(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Action, p.Syscalls[0].ErrnoRet = specs.ActErrno, u(70000) }), ErrErrnoRange},
		{"no names", allow(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Names = nil }), ErrNoNames},
		{"all names unknown", allow(func(p *specs.LinuxSeccomp) { p.Syscalls[0].Names = []string{"nosuchcall", "s390_pci_mmio_read"} }), ErrUnknownSyscalls},
		{"conflicting rules", allow(func(p *specs.LinuxSeccomp) {
			arg := []specs.LinuxSeccompArg{{Index: 0, Value: 1, Op: specs.OpEqualTo}}
			p.Syscalls = []specs.LinuxSyscall{{Names: []string{"kill"}, Action: specs.ActAllow, Args: arg}, {Names: []string{"kill"}, Action: specs.ActLog, Args: arg}}
		}), ErrRuleConflict},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			_, err := compile(tc.p, options{native: archX86_64})
			if !errors.Is(err, tc.want) {
				t.Fatalf("error %v, want %v", err, tc.want)
			}
		})
	}
}

func TestCompileFlags(t *testing.T) {
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActAllow,
		Flags:    []specs.LinuxSeccompFlag{"SECCOMP_FILTER_FLAG_TSYNC", specs.LinuxSeccompFlagLog, specs.LinuxSeccompFlagSpecAllow, specs.LinuxSeccompFlagWaitKillableRecv},
		Syscalls: []specs.LinuxSyscall{{Names: []string{"mkdir"}, Action: specs.ActNotify}}}
	f, err := compile(p, options{native: archX86_64})
	if err != nil {
		t.Fatal(err)
	}
	// TSYNC is accepted and not passed (see doc.go).
	want := uintptr(unix.SECCOMP_FILTER_FLAG_LOG | unix.SECCOMP_FILTER_FLAG_SPEC_ALLOW |
		unix.SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV | unix.SECCOMP_FILTER_FLAG_NEW_LISTENER)
	if f.Flags() != want || !f.NeedsListener() {
		t.Errorf("flags %#x listener %v, want %#x true", f.Flags(), f.NeedsListener(), want)
	}
}

// TestSemantics runs compiled programs in the BPF VM on chosen inputs.
func TestSemantics(t *testing.T) {
	i386, x8664, aarch64 := uint32(unix.AUDIT_ARCH_I386), uint32(unix.AUDIT_ARCH_X86_64), uint32(unix.AUDIT_ARCH_AARCH64)
	errno := func(e uint32) uint32 { return retErrno | e }
	x86 := []specs.Arch{specs.ArchX86_64, specs.ArchX86}
	rule := func(names []string, act specs.LinuxSeccompAction, e uint, args ...specs.LinuxSeccompArg) specs.LinuxSyscall {
		return specs.LinuxSyscall{Names: names, Action: act, ErrnoRet: u(e), Args: args}
	}
	type io struct {
		d    seccompData
		want uint32
	}
	tests := []struct {
		name   string
		p      *specs.LinuxSeccomp
		enosys bool
		cases  []io
	}{
		{
			name: "i386 tables and socketcall",
			p:    &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: x86, Syscalls: []specs.LinuxSyscall{rule([]string{"mkdir", "waitpid", "socket"}, specs.ActErrno, 77)}},
			cases: []io{
				{seccompData{arch: i386, nr: 39}, errno(77)},                           // i386 mkdir
				{seccompData{arch: i386, nr: 7}, errno(77)},                            // i386 waitpid
				{seccompData{arch: i386, nr: 359}, errno(77)},                          // i386 socket
				{seccompData{arch: i386, nr: 102, args: [6]uint64{1}}, errno(77)},      // socketcall(SYS_SOCKET)
				{seccompData{arch: i386, nr: 102, args: [6]uint64{2}}, retAllow},       // socketcall(SYS_BIND)
				{seccompData{arch: x8664, nr: 83}, errno(77)},                          // x86_64 mkdir
				{seccompData{arch: x8664, nr: 7}, retAllow},                            // x86_64 poll
				{seccompData{arch: x8664, nr: 39}, retAllow},                           // x86_64 getpid
				{seccompData{arch: x8664, nr: x32SyscallBit | 83}, retKillProcess},     // x32 is not listed
				{seccompData{arch: x8664, nr: 0xffffffff}, retAllow},                   // -1 (tracer skip)
				{seccompData{arch: aarch64, nr: 34}, retKillProcess},                   // arch not listed
				{seccompData{arch: i386, nr: 102, args: [6]uint64{1 << 32}}, retAllow}, // 32-bit: sub-call in the low half
			},
		},
		{
			name: "x32 alone",
			p:    &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Architectures: []specs.Arch{specs.ArchX32}, Syscalls: []specs.LinuxSyscall{rule([]string{"mkdir"}, specs.ActErrno, 5)}},
			cases: []io{
				{seccompData{arch: x8664, nr: 83}, errno(5)}, // native x86_64 is always in
				{seccompData{arch: x8664, nr: x32SyscallBit | 83}, errno(5)},
				{seccompData{arch: x8664, nr: x32SyscallBit | 84}, retAllow},
			},
		},
		{
			name:   "ENOSYS stub",
			p:      &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Architectures: x86, Syscalls: []specs.LinuxSyscall{rule([]string{"getpid", "read"}, specs.ActAllow, 0)}},
			enosys: true,
			cases: []io{
				{seccompData{arch: x8664, nr: 39}, retAllow},
				{seccompData{arch: x8664, nr: 38}, errno(1)},                   // below getpid: default
				{seccompData{arch: x8664, nr: 40}, errno(uint32(unix.ENOSYS))}, // above the highest named
				{seccompData{arch: x8664, nr: 0xffffffff}, errno(1)},           // -1: not a new syscall
				{seccompData{arch: i386, nr: 20}, retAllow},                    // i386 getpid
				{seccompData{arch: i386, nr: 21}, errno(uint32(unix.ENOSYS))},
			},
		},
		{
			name: "OR of repeated argument, AND of different ones",
			p: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				rule([]string{"kill"}, specs.ActErrno, 3, specs.LinuxSeccompArg{Index: 1, Value: 9, Op: specs.OpEqualTo}, specs.LinuxSeccompArg{Index: 1, Value: 15, Op: specs.OpEqualTo}),
				rule([]string{"tkill"}, specs.ActErrno, 4, specs.LinuxSeccompArg{Index: 0, Value: 1, Op: specs.OpEqualTo}, specs.LinuxSeccompArg{Index: 1, Value: 9, Op: specs.OpEqualTo}),
			}},
			cases: []io{
				{seccompData{arch: x8664, nr: 62, args: [6]uint64{5, 9}}, errno(3)},
				{seccompData{arch: x8664, nr: 62, args: [6]uint64{5, 15}}, errno(3)},
				{seccompData{arch: x8664, nr: 62, args: [6]uint64{5, 10}}, retAllow},
				{seccompData{arch: x8664, nr: 200, args: [6]uint64{1, 9}}, errno(4)},
				{seccompData{arch: x8664, nr: 200, args: [6]uint64{2, 9}}, retAllow},
				{seccompData{arch: x8664, nr: 200, args: [6]uint64{1, 9 | 1<<32}}, retAllow},
			},
		},
		{
			name: "64-bit comparisons",
			p: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
				rule([]string{"read"}, specs.ActErrno, 1, specs.LinuxSeccompArg{Index: 2, Value: 0x1_0000_0005, Op: specs.OpGreaterThan}),
				rule([]string{"write"}, specs.ActErrno, 2, specs.LinuxSeccompArg{Index: 2, Value: 0x1_0000_0005, Op: specs.OpLessThan}),
				rule([]string{"open"}, specs.ActErrno, 3, specs.LinuxSeccompArg{Index: 1, Value: 0xf_0000_00f0, ValueTwo: 0x3_0000_0030, Op: specs.OpMaskedEqual}),
			}},
			cases: []io{
				{seccompData{arch: x8664, nr: 0, args: [6]uint64{2: 0x2_0000_0000}}, errno(1)},
				{seccompData{arch: x8664, nr: 0, args: [6]uint64{2: 0x1_0000_0006}}, errno(1)},
				{seccompData{arch: x8664, nr: 0, args: [6]uint64{2: 0x1_0000_0005}}, retAllow},
				{seccompData{arch: x8664, nr: 0, args: [6]uint64{2: 0xffff_ffff}}, retAllow},
				{seccompData{arch: x8664, nr: 1, args: [6]uint64{2: 0xffff_ffff}}, errno(2)},
				{seccompData{arch: x8664, nr: 1, args: [6]uint64{2: 0x1_0000_0004}}, errno(2)},
				{seccompData{arch: x8664, nr: 1, args: [6]uint64{2: 0x1_0000_0005}}, retAllow},
				{seccompData{arch: x8664, nr: 1, args: [6]uint64{2: 0x2_0000_0000}}, retAllow},
				{seccompData{arch: x8664, nr: 2, args: [6]uint64{1: 0x3_1234_5638}}, errno(3)},
				{seccompData{arch: x8664, nr: 2, args: [6]uint64{1: 0x2_1234_5638}}, retAllow},
				{seccompData{arch: x8664, nr: 2, args: [6]uint64{1: 0x3_1234_5648}}, retAllow},
			},
		},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			f, err := compile(tc.p, options{native: archX86_64, enosys: tc.enosys})
			if err != nil {
				t.Fatal(err)
			}
			v := newVM(t, f.Instructions())
			for _, c := range tc.cases {
				if got := v.run(t, c.d); got != c.want {
					t.Errorf("arch %#x nr %#x args %#x: %#x, want %#x", c.d.arch, c.d.nr, c.d.args, got, c.want)
				}
			}
		})
	}
}

// TestLongJumps gives one syscall 600 argument values, so that its tree is
// far longer than a conditional jump reaches.
func TestLongJumps(t *testing.T) {
	p := &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"getpid", "gettid", "ioctl"}, Action: specs.ActAllow}}}
	for i := range 600 {
		p.Syscalls = append(p.Syscalls, specs.LinuxSyscall{Names: []string{"personality"}, Action: specs.ActAllow, Args: []specs.LinuxSeccompArg{{Index: 0, Value: uint64(i * 3), Op: specs.OpEqualTo}}})
	}
	f, err := compile(p, options{native: archX86_64})
	if err != nil {
		t.Fatal(err)
	}
	if err := validate(f.Instructions()); err != nil {
		t.Fatal(err)
	}
	v := newVM(t, f.Instructions())
	for i := range 1800 {
		want := retErrno | 1
		if i%3 == 0 {
			want = retAllow
		}
		if got := v.run(t, seccompData{arch: unix.AUDIT_ARCH_X86_64, nr: 135, args: [6]uint64{uint64(i)}}); got != want {
			t.Fatalf("personality(%d): %#x, want %#x", i, got, want)
		}
	}
	for _, nr := range []uint32{39, 186, 16} {
		if got := v.run(t, seccompData{arch: unix.AUDIT_ARCH_X86_64, nr: nr}); got != retAllow {
			t.Errorf("syscall %d: %#x", nr, got)
		}
	}
	t.Logf("%d instructions", len(f.Instructions()))
}

func TestDefaultProfileSize(t *testing.T) {
	if nativeArch() == nil {
		t.Skipf("no native arch for %s", runtime.GOARCH)
	}
	for _, caps := range [][]string{nil, {"CAP_SYS_ADMIN", "CAP_SYS_PTRACE", "CAP_SYS_BOOT"}} {
		p := DefaultProfile(caps)
		t0 := time.Now()
		f, err := Compile(p)
		if err != nil {
			t.Fatal(err)
		}
		d := time.Since(t0)
		if err := validate(f.Instructions()); err != nil {
			t.Fatal(err)
		}
		if n := len(f.Instructions()); n > 4096 {
			t.Fatalf("%d instructions", n)
		}
		names := 0
		for _, sc := range p.Syscalls {
			names += len(sc.Names)
		}
		t.Logf("caps %v: %d rules, %d names, arches %v: %d instructions, compiled in %v", caps, len(p.Syscalls), names, p.Architectures, len(f.Instructions()), d)
	}
}

// validate applies the kernel's checks for a seccomp program
// (bpf_check_classic and seccomp_check_filter): at most 4096
// instructions, only the opcodes seccomp allows, aligned loads inside
// struct seccomp_data, jumps forward inside the program, a return last.
func validate(prog []unix.SockFilter) error {
	if len(prog) == 0 || len(prog) > 4096 {
		return fmt.Errorf("%d instructions", len(prog))
	}
	for pc, in := range prog {
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			if in.K >= 64 || in.K%4 != 0 {
				return fmt.Errorf("%d: load at %d", pc, in.K)
			}
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K, unix.BPF_RET | unix.BPF_K:
		case unix.BPF_JMP | unix.BPF_JA:
			if uint64(pc)+1+uint64(in.K) >= uint64(len(prog)) {
				return fmt.Errorf("%d: ja out of the program", pc)
			}
		case unix.BPF_JMP | unix.BPF_JEQ | unix.BPF_K, unix.BPF_JMP | unix.BPF_JGT | unix.BPF_K,
			unix.BPF_JMP | unix.BPF_JGE | unix.BPF_K, unix.BPF_JMP | unix.BPF_JSET | unix.BPF_K:
			if pc+1+int(in.Jt) >= len(prog) || pc+1+int(in.Jf) >= len(prog) {
				return fmt.Errorf("%d: jump out of the program", pc)
			}
		default:
			return fmt.Errorf("%d: opcode %#x", pc, in.Code)
		}
	}
	if last := prog[len(prog)-1]; last.Code != unix.BPF_RET|unix.BPF_K {
		return fmt.Errorf("last instruction %#x is not a return", last.Code)
	}
	return nil
}
