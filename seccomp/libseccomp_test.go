//go:build libseccomp && linux && (amd64 || arm64)

package seccomp

// Differential test: every profile of the corpus is compiled by sandy and
// by libseccomp (the way runc drives it), and both programs are run in
// golang.org/x/net/bpf's VM over every syscall number of every arch, the
// numbers around the x32 bit, unknown arches, and boundary and random
// argument values. The results must be identical.
//
// Run with: go test -tags libseccomp ./seccomp (needs libseccomp-dev, cgo).

import (
	"encoding/json"
	"errors"
	"fmt"
	"math/rand/v2"
	"os"
	"runtime"
	"slices"
	"sort"
	"strings"
	"testing"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/seccomp/internal/libseccomp"
)

var allArchs = []*archDef{archX86_64, archX86, archX32, archAARCH64, archARM}

// agrees reports whether sandy's tables and libseccomp's give name the same
// meaning on a. libseccomp 2.5.4's tables stop at Linux 5.17; names they do
// not know, or number differently, cannot be compared and are left out.
func agrees(a *archDef, name string) bool {
	lib := libseccomp.ResolveName(a.name, name)
	nr, direct := a.table()[name]
	if a.mux {
		_, s := socketcallSub[name]
		_, i := ipcSub[name]
		if s || i {
			return lib < 0 && (!direct || libseccomp.ResolveNum(a.name, int(nr)) == name)
		}
	}
	if direct {
		return lib == int(nr)
	}
	return lib < 0
}

// harmonize drops the names on which the two tables differ.
func harmonize(cfg *specs.LinuxSeccomp) (*specs.LinuxSeccomp, []string) {
	archs := []*archDef{nativeArch()}
	for _, n := range cfg.Architectures {
		if a := archByName[n]; a != nil && !slices.Contains(archs, a) {
			archs = append(archs, a)
		}
	}
	out := *cfg
	out.Syscalls = nil
	var dropped []string
	for _, sc := range cfg.Syscalls {
		var names []string
		for _, n := range sc.Names {
			ok := true
			for _, a := range archs {
				ok = ok && agrees(a, n)
			}
			if ok {
				names = append(names, n)
			} else {
				dropped = append(dropped, n)
			}
		}
		if len(names) > 0 {
			sc.Names = names
			out.Syscalls = append(out.Syscalls, sc)
		}
	}
	return &out, dropped
}

func loadJSON(t *testing.T, path string) *specs.LinuxSeccomp {
	t.Helper()
	data, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	var p specs.LinuxSeccomp
	if err := json.Unmarshal(data, &p); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return &p
}

func corpus(t *testing.T) map[string]*specs.LinuxSeccomp {
	allCaps := []string{"CAP_SYS_ADMIN", "CAP_SYS_BOOT", "CAP_SYS_CHROOT", "CAP_SYS_MODULE", "CAP_SYS_PACCT", "CAP_SYS_PTRACE", "CAP_SYS_RAWIO", "CAP_SYS_TIME", "CAP_SYS_TTY_CONFIG", "CAP_SYS_NICE", "CAP_SYSLOG", "CAP_SYS_RESOURCE", "CAP_BPF", "CAP_PERFMON", "CAP_DAC_READ_SEARCH", "CAP_NET_ADMIN"}
	c := map[string]*specs.LinuxSeccomp{
		"moby-default":          DefaultProfile(nil),
		"moby-default-all-caps": DefaultProfile(allCaps),
		"runc-test1":            loadJSON(t, "testdata/runc-seccomp_syscall_test1.json"),
		"runc-test2":            loadJSON(t, "testdata/runc-seccomp_syscall_test2.json"),
	}
	arm := *DefaultProfile(nil)
	arm.Architectures = []specs.Arch{specs.ArchAARCH64, specs.ArchARM}
	c["moby-default-arm-arches"] = &arm
	podman, err := os.ReadFile("testdata/podman-seccomp.json")
	if err != nil {
		t.Fatal(err)
	}
	for name, caps := range map[string][]string{"podman-default": nil, "podman-all-caps": allCaps} {
		p, err := LoadProfileFor(podman, caps)
		if err != nil {
			t.Fatalf("loading podman's profile: %v", err)
		}
		c[name] = p
	}
	for name, p := range runcBatsProfiles() {
		c[name] = p
	}
	return c
}

// valuePool collects the argument values around every condition.
func valuePool(cfg *specs.LinuxSeccomp) []uint64 {
	pool := []uint64{0, 1, 2, 0xffffffff, 1 << 32, 0xffffffff_ffffffff, 1 << 63, 0x7fffffff, 0x80000000}
	for _, sc := range cfg.Syscalls {
		for _, a := range sc.Args {
			for _, v := range []uint64{a.Value, a.ValueTwo, a.Value & a.ValueTwo, a.ValueTwo | ^a.Value} {
				pool = append(pool, v, v+1, v-1, v^(1<<32), v&0xffffffff, v|0xffffffff_00000000, v+(1<<32), v-(1<<32))
			}
		}
	}
	return pool
}

// inputs enumerates the seccomp_data the two programs are compared on.
func inputs(cfg *specs.LinuxSeccomp, rng *rand.Rand) []seccompData {
	pool := valuePool(cfg)
	withArgs := map[string]bool{}
	for _, sc := range cfg.Syscalls {
		if len(sc.Args) > 0 {
			for _, n := range sc.Names {
				withArgs[n] = true
			}
		}
	}
	var out []seccompData
	audits := map[uint32][]*archDef{}
	for _, a := range allArchs {
		audits[a.audit] = append(audits[a.audit], a)
	}
	audits[unix.AUDIT_ARCH_PPC64LE] = nil
	audits[0] = nil
	auditKeys := make([]uint32, 0, len(audits))
	for k := range audits {
		auditKeys = append(auditKeys, k)
	}
	slices.Sort(auditKeys)
	for _, audit := range auditKeys {
		archs := audits[audit]
		nrs := map[uint32]bool{0xffffffff: true, x32SyscallBit - 1: true, x32SyscallBit: true, 0x7fffffff: true, 0x80000000: true}
		heavy := map[uint32]bool{}
		for nr := uint32(0); nr < 600; nr++ {
			nrs[nr] = true
			nrs[nr|x32SyscallBit] = true
		}
		for nr := uint32(0xf0000); nr < 0xf0010; nr++ {
			nrs[nr] = true
		}
		for _, a := range archs {
			for name, nr := range a.table() {
				nrs[nr] = true
				if withArgs[name] {
					heavy[nr] = true
				}
			}
			if a.mux {
				heavy[a.table()["socketcall"]] = true
				heavy[a.table()["ipc"]] = true
			}
		}
		for i := 0; i < 20; i++ {
			nrs[rng.Uint32()] = true
		}
		nrList := make([]uint32, 0, len(nrs))
		for nr := range nrs {
			nrList = append(nrList, nr)
		}
		slices.Sort(nrList)
		for _, nr := range nrList {
			n := 2
			if heavy[nr] {
				n = 300
			}
			for i := 0; i < n; i++ {
				d := seccompData{nr: nr, arch: audit}
				if i > 0 {
					for j := range d.args {
						if rng.IntN(4) == 0 {
							d.args[j] = rng.Uint64()
						} else {
							d.args[j] = pool[rng.IntN(len(pool))]
						}
					}
				}
				out = append(out, d)
			}
		}
	}
	sort.Slice(out, func(i, j int) bool {
		return out[i].arch < out[j].arch || out[i].arch == out[j].arch && out[i].nr < out[j].nr
	})
	return out
}

// differ compiles cfg with sandy and with libseccomp and returns a
// description of the first inputs on which sandy's program disagrees with
// libseccomp's rule database (its PFC listing), "" when there are none.
// Inputs on which libseccomp's own BPF disagrees with its database are
// counted in *libBugs.
func differ(t *testing.T, cfg *specs.LinuxSeccomp, rng *rand.Rand, libBugs *int) string {
	t.Helper()
	ours, err := compile(cfg, options{native: nativeArch()})
	if errors.Is(err, ErrMergeLoop) {
		t.Logf("sandy refuses a profile on which libseccomp would hang: %v", err)
		return "" // do not hand it to libseccomp
	}
	lib, libErr := libseccomp.Compile(cfg)
	if errors.Is(err, ErrUnknownSyscalls) && libErr == nil {
		return "" // sandy's deliberate refusal (issue 8); runc skips the rule
	}
	if (libErr != nil) != (err != nil) {
		return fmt.Sprintf("libseccomp error %v, sandy error %v", libErr, err)
	}
	if err != nil {
		return ""
	}
	text, err := libseccomp.PFC(cfg)
	if err != nil {
		t.Fatal(err)
	}
	ref, err := newPFCProgram(text)
	if err != nil {
		t.Fatal(err)
	}
	lv, ov := newVM(t, lib), newVM(t, ours.Instructions())
	var diffs []string
	for _, d := range inputs(cfg, rng) {
		l, o, r := lv.run(t, d), ov.run(t, d), ref.eval(d, ours.archs)
		if l != r {
			*libBugs++
		}
		if o != r {
			diffs = append(diffs, fmt.Sprintf("arch %#x nr %#x args %#x: libseccomp database %#x (its BPF %#x), sandy %#x", d.arch, d.nr, d.args, r, l, o))
			if len(diffs) == 8 {
				diffs = append(diffs, text)
				break
			}
		}
	}
	return strings.Join(diffs, "\n")
}

func TestDifferentialCorpus(t *testing.T) {
	t.Logf("libseccomp %s", libseccomp.Version())
	for name, cfg := range corpus(t) {
		t.Run(name, func(t *testing.T) {
			h, dropped := harmonize(cfg)
			if len(dropped) > 0 {
				t.Logf("left out (tables differ): %v", dropped)
			}
			bugs := 0
			if d := differ(t, h, rand.New(rand.NewPCG(1, 2)), &bugs); d != "" {
				t.Errorf("%s: programs differ:\n%s", name, d)
			}
			if bugs > 0 {
				t.Logf("%d inputs where libseccomp's BPF disagrees with its own database", bugs)
			}
		})
	}
}

// randomProfile makes a profile with few syscall names, so that rules
// overlap and libseccomp's merging is exercised.
func randomProfile(rng *rand.Rand, names []string) *specs.LinuxSeccomp {
	acts := []specs.LinuxSeccompAction{specs.ActErrno, specs.ActKill, specs.ActKillProcess, specs.ActTrap, specs.ActAllow, specs.ActLog, specs.ActTrace, specs.ActErrno, specs.ActNotify}
	ops := []specs.LinuxSeccompOperator{specs.OpNotEqual, specs.OpLessThan, specs.OpLessEqual, specs.OpEqualTo, specs.OpGreaterEqual, specs.OpGreaterThan, specs.OpMaskedEqual}
	vals := []uint64{0, 1, 2, 3, 0xff, 0x7fffffff, 0x80000000, 0xffffffff, 1 << 32, 1<<32 | 1, 0xffffffff_ffffffff, 1 << 63, 5 << 32}
	val := func() uint64 {
		if rng.IntN(5) == 0 {
			return rng.Uint64() >> (rng.IntN(4) * 16)
		}
		return vals[rng.IntN(len(vals))]
	}
	errno := func() *uint {
		if rng.IntN(3) == 0 {
			return nil
		}
		e := uint(rng.IntN(200))
		return &e
	}
	p := &specs.LinuxSeccomp{DefaultAction: acts[rng.IntN(len(acts)-1)], DefaultErrnoRet: errno()}
	for _, a := range allArchs {
		if rng.IntN(3) == 0 {
			p.Architectures = append(p.Architectures, a.name)
		}
	}
	pick := make([]string, 2+rng.IntN(4))
	for i := range pick {
		pick[i] = names[rng.IntN(len(names))]
	}
	for range 1 + rng.IntN(10) {
		sc := specs.LinuxSyscall{Action: acts[rng.IntN(len(acts))], ErrnoRet: errno()}
		for range 1 + rng.IntN(2) {
			sc.Names = append(sc.Names, pick[rng.IntN(len(pick))])
		}
		for range rng.IntN(4) {
			sc.Args = append(sc.Args, specs.LinuxSeccompArg{Index: uint(rng.IntN(3)), Value: val(), ValueTwo: val(), Op: ops[rng.IntN(len(ops))]})
		}
		p.Syscalls = append(p.Syscalls, sc)
	}
	return p
}

func TestDifferentialRandom(t *testing.T) {
	var names []string
	for n := range syscallsX86_64() {
		names = append(names, n)
	}
	names = append(names, "socketcall", "ipc", "socket", "send", "recv", "semget", "_llseek", "arm_fadvise64_64", "chown32")
	var usable []string
	for _, n := range names {
		ok := true
		for _, a := range allArchs {
			ok = ok && agrees(a, n)
		}
		if ok && n != "write" {
			usable = append(usable, n)
		}
	}
	sort.Strings(usable)
	n := 400
	if s := os.Getenv("SANDY_SECCOMP_RANDOM_PROFILES"); s != "" {
		fmt.Sscan(s, &n)
	}
	if testing.Short() {
		n = 50
	}
	failures, bugs, buggy := 0, 0, 0
	defer func() {
		t.Logf("%d random profiles; libseccomp's BPF disagreed with its own database on %d inputs of %d profiles", n, bugs, buggy)
	}()
	for i := range n {
		rng := rand.New(rand.NewPCG(uint64(i), 42))
		p := randomProfile(rng, usable)
		before := bugs
		d := differ(t, p, rng, &bugs)
		if bugs > before {
			buggy++
		}
		if d != "" {
			js, _ := json.Marshal(p)
			t.Errorf("profile %d %s\n%s", i, js, d)
			if failures++; failures == 5 {
				t.FailNow()
			}
		}
	}
}

func BenchmarkCompileMobyDefaultLibseccomp(b *testing.B) {
	p := DefaultProfile(nil)
	var prog []unix.SockFilter
	for b.Loop() {
		var err error
		if prog, err = libseccomp.Compile(p); err != nil {
			b.Fatal(err)
		}
	}
	b.ReportMetric(float64(len(prog)), "insns")
}

func BenchmarkGetpidLibseccomp(b *testing.B) {
	prog, err := libseccomp.Compile(DefaultProfile(nil))
	if err != nil {
		b.Fatal(err)
	}
	benchGetpid(b, victimRequest{Program: prog})
}

// steps runs prog on d and returns the number of instructions executed.
func steps(prog []unix.SockFilter, d seccompData) int {
	var a uint32
	word := func(off uint32) uint32 {
		switch {
		case off == 0:
			return d.nr
		case off == 4:
			return d.arch
		case off >= 16:
			v := d.args[(off-16)/8]
			if (off-16)%8 == 4 {
				return uint32(v >> 32)
			}
			return uint32(v)
		}
		return 0
	}
	for pc, n := 0, 1; ; n++ {
		in := prog[pc]
		pc++
		switch in.Code {
		case unix.BPF_LD | unix.BPF_W | unix.BPF_ABS:
			a = word(in.K)
		case unix.BPF_ALU | unix.BPF_AND | unix.BPF_K:
			a &= in.K
		case unix.BPF_RET | unix.BPF_K:
			return n
		case unix.BPF_JMP | unix.BPF_JA:
			pc += int(in.K)
		default:
			var c bool
			switch in.Code &^ (unix.BPF_JMP | unix.BPF_K) {
			case unix.BPF_JEQ:
				c = a == in.K
			case unix.BPF_JGT:
				c = a > in.K
			case unix.BPF_JGE:
				c = a >= in.K
			case unix.BPF_JSET:
				c = a&in.K != 0
			}
			if c {
				pc += int(in.Jt)
			} else {
				pc += int(in.Jf)
			}
		}
	}
}

// TestPathLength reports how many BPF instructions moby's default profile
// executes per syscall under each compiler: the per-syscall cost of a
// filter, free of the noise of timing syscalls on a shared machine.
func TestPathLength(t *testing.T) {
	if runtime.GOARCH != "amd64" {
		t.Skip("the syscalls listed are x86_64's")
	}
	p := DefaultProfile(nil)
	lib, err := libseccomp.Compile(p)
	if err != nil {
		t.Fatal(err)
	}
	ours, err := compile(p, options{native: archX86_64, enosys: true})
	if err != nil {
		t.Fatal(err)
	}
	t.Logf("moby default: sandy %d instructions, libseccomp %s %d", len(ours.Instructions()), libseccomp.Version(), len(lib))
	x := uint32(unix.AUDIT_ARCH_X86_64)
	for _, name := range []string{"read", "write", "futex", "getpid", "epoll_pwait", "openat", "mmap", "clone"} {
		d := seccompData{arch: x, nr: syscallsX86_64()[name]}
		t.Logf("%-12s sandy %2d  libseccomp %2d", name, steps(ours.Instructions(), d), steps(lib, d))
	}
	var so, sl, n int
	for _, nr := range syscallsX86_64() {
		d := seccompData{arch: x, nr: nr}
		so += steps(ours.Instructions(), d)
		sl += steps(lib, d)
		n++
	}
	t.Logf("mean over the %d x86_64 syscalls: sandy %.1f, libseccomp %.1f", n, float64(so)/float64(n), float64(sl)/float64(n))
	d := seccompData{arch: unix.AUDIT_ARCH_I386, nr: 20}
	t.Logf("i386 getpid: sandy %d, libseccomp %d", steps(ours.Instructions(), d), steps(lib, d))
}

// TestGetpidOverhead times getpid(2) with no filter, an allow-all filter,
// and moby's default compiled by sandy and by libseccomp, interleaving the
// four in rounds and keeping each one's best, so that the drift of a
// shared machine hits all alike. Set SANDY_SECCOMP_BENCH=1 to run it
// (hack/seccomp-bench.sh does).
func TestGetpidOverhead(t *testing.T) {
	if os.Getenv("SANDY_SECCOMP_BENCH") == "" {
		t.Skip("set SANDY_SECCOMP_BENCH=1 (hack/seccomp-bench.sh)")
	}
	lib, err := libseccomp.Compile(DefaultProfile(nil))
	if err != nil {
		t.Fatal(err)
	}
	variants := []struct {
		name string
		req  victimRequest
	}{
		{"no filter", victimRequest{}},
		{"allow-all filter", victimRequest{Profile: &specs.LinuxSeccomp{DefaultAction: specs.ActAllow}}},
		{"moby default, sandy", victimRequest{Profile: DefaultProfile(nil)}},
		{"moby default, libseccomp", victimRequest{Program: lib}},
	}
	best := make([]int, len(variants))
	for round := range 8 {
		for i, v := range variants {
			v.req.Loops = getpidLoops
			got, sig := runVictim(t, v.req)
			if sig != 0 || len(got) != 1 {
				t.Fatalf("%s: %v %v", v.name, got, sig)
			}
			if round == 0 || got[0] < best[i] {
				best[i] = got[0]
			}
		}
	}
	for i, v := range variants {
		t.Logf("getpid %-26s %6.1f ns", v.name, float64(best[i])/10)
	}
}

// TestKernelLibseccompCodegenBug loads libseccomp's own program for
// overlapProfile in the kernel: mkdirat with arguments that match no rule
// is let through (the kernel then fails it with EFAULT or EBADF) instead of
// getting the default ERRNO(109) that libseccomp's rule database, and
// sandy, give it (TestKernelLoad/overlapping_rules).
func TestKernelLibseccompCodegenBug(t *testing.T) {
	prog, err := libseccomp.Compile(overlapProfile())
	if err != nil {
		t.Fatal(err)
	}
	got, sig := runVictim(t, victimRequest{Program: prog, Calls: []victimCall{overlapCall}})
	if sig != 0 || len(got) != 1 {
		t.Fatalf("victim: %v %v", got, sig)
	}
	if got[0] == 109 {
		t.Skipf("libseccomp %s gives the default action: its code generator is fixed", libseccomp.Version())
	}
	t.Logf("libseccomp %s's program lets mkdirat through: errno %d (%v); sandy's gives 109", libseccomp.Version(), got[0], unix.Errno(got[0]))
}
