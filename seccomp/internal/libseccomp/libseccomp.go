//go:build libseccomp && cgo

// Package libseccomp compiles OCI seccomp profiles with the C libseccomp,
// the way runc does (libcontainer/seccomp/seccomp_linux.go), so that tests
// can hold sandy's pure-Go compiler to the same results. It is built only
// with the libseccomp build tag, for tests and CI; the shipped binary never
// links it.
package libseccomp

/*
#cgo pkg-config: libseccomp
#include <stdlib.h>
#include <errno.h>
#include <seccomp.h>
*/
import "C"

import (
	"encoding/binary"
	"errors"
	"fmt"
	"io"
	"os"
	"unsafe"

	"github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Version returns libseccomp's version.
func Version() string {
	v := C.seccomp_version()
	return fmt.Sprintf("%d.%d.%d", v.major, v.minor, v.micro)
}

func action(a specs.LinuxSeccompAction, errnoRet *uint) (C.uint32_t, error) {
	e := C.uint32_t(unix.EPERM)
	if errnoRet != nil {
		e = C.uint32_t(*errnoRet)
	}
	switch a {
	case specs.ActKill, specs.ActKillThread:
		return C.SCMP_ACT_KILL_THREAD, nil
	case specs.ActKillProcess:
		return C.SCMP_ACT_KILL_PROCESS, nil
	case specs.ActTrap:
		return C.SCMP_ACT_TRAP, nil
	case specs.ActErrno:
		return 0x00050000 | (e & 0xffff), nil
	case specs.ActTrace:
		return 0x7ff00000 | (e & 0xffff), nil
	case specs.ActAllow:
		return C.SCMP_ACT_ALLOW, nil
	case specs.ActLog:
		return C.SCMP_ACT_LOG, nil
	case specs.ActNotify:
		return C.SCMP_ACT_NOTIFY, nil
	}
	return 0, fmt.Errorf("unknown action %q", a)
}

var ops = map[specs.LinuxSeccompOperator]C.enum_scmp_compare{
	specs.OpNotEqual: C.SCMP_CMP_NE, specs.OpLessThan: C.SCMP_CMP_LT,
	specs.OpLessEqual: C.SCMP_CMP_LE, specs.OpEqualTo: C.SCMP_CMP_EQ,
	specs.OpGreaterEqual: C.SCMP_CMP_GE, specs.OpGreaterThan: C.SCMP_CMP_GT,
	specs.OpMaskedEqual: C.SCMP_CMP_MASKED_EQ,
}

// ArchToken returns libseccomp's token for an OCI arch name.
func ArchToken(a specs.Arch) uint32 {
	names := map[specs.Arch]string{
		specs.ArchX86: "x86", specs.ArchX86_64: "x86_64", specs.ArchX32: "x32",
		specs.ArchARM: "arm", specs.ArchAARCH64: "aarch64",
	}
	cs := C.CString(names[a])
	defer C.free(unsafe.Pointer(cs))
	return uint32(C.seccomp_arch_resolve_name(cs))
}

// ResolveName returns the number of name on arch, negative when libseccomp
// does not know it there (its pseudo-syscall numbers are negative).
func ResolveName(a specs.Arch, name string) int {
	cs := C.CString(name)
	defer C.free(unsafe.Pointer(cs))
	return int(C.seccomp_syscall_resolve_name_arch(C.uint32_t(ArchToken(a)), cs))
}

// ResolveNum returns the name of nr on arch, "" when unknown.
func ResolveNum(a specs.Arch, nr int) string {
	p := C.seccomp_syscall_resolve_num_arch(C.uint32_t(ArchToken(a)), C.int(nr))
	if p == nil {
		return ""
	}
	defer C.free(unsafe.Pointer(p))
	return C.GoString(p)
}

// Compile builds the profile the way runc does, with the bad-arch action
// set to KILL_PROCESS (sandy's), and returns libseccomp's BPF program.
func Compile(cfg *specs.LinuxSeccomp) ([]unix.SockFilter, error) {
	ctx, err := build(cfg, true)
	if err != nil {
		return nil, err
	}
	defer C.seccomp_release(ctx)
	return export(ctx)
}

// PFC returns libseccomp's pseudo-filter-code listing of the profile,
// printed from its rule database rather than from its BPF: the meaning
// libseccomp gives the profile, independent of its BPF code generator.
func PFC(cfg *specs.LinuxSeccomp) (string, error) {
	ctx, err := build(cfg, false)
	if err != nil {
		return "", err
	}
	defer C.seccomp_release(ctx)
	fd, err := unix.MemfdCreate("pfc", unix.MFD_CLOEXEC)
	if err != nil {
		return "", err
	}
	f := os.NewFile(uintptr(fd), "pfc")
	defer f.Close()
	if rc := C.seccomp_export_pfc(ctx, C.int(fd)); rc != 0 {
		return "", fmt.Errorf("seccomp_export_pfc: %d", rc)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return "", err
	}
	b, err := io.ReadAll(f)
	return string(b), err
}

func build(cfg *specs.LinuxSeccomp, optimize bool) (C.scmp_filter_ctx, error) {
	def, err := action(cfg.DefaultAction, cfg.DefaultErrnoRet)
	if err != nil {
		return nil, err
	}
	ctx := C.seccomp_init(def)
	if ctx == nil {
		return nil, fmt.Errorf("seccomp_init failed")
	}
	ok := false
	defer func() {
		if !ok {
			C.seccomp_release(ctx)
		}
	}()
	if rc := C.seccomp_attr_set(ctx, C.SCMP_FLTATR_ACT_BADARCH, C.SCMP_ACT_KILL_PROCESS); rc != 0 {
		return nil, fmt.Errorf("setting bad-arch action: %d", rc)
	}
	for _, a := range cfg.Architectures {
		if rc := C.seccomp_arch_add(ctx, C.uint32_t(ArchToken(a))); rc != 0 && rc != -C.EEXIST {
			return nil, fmt.Errorf("adding arch %s: %d", a, rc)
		}
	}
	if optimize && len(cfg.Syscalls) > 32 {
		C.seccomp_attr_set(ctx, C.SCMP_FLTATR_CTL_OPTIMIZE, 2)
	}
	for i, sc := range cfg.Syscalls {
		act, err := action(sc.Action, sc.ErrnoRet)
		if err != nil {
			return nil, err
		}
		if act == def {
			continue
		}
		var conds []C.struct_scmp_arg_cmp
		counts := [6]int{}
		for _, a := range sc.Args {
			c := C.struct_scmp_arg_cmp{arg: C.uint(a.Index), op: ops[a.Op], datum_a: C.scmp_datum_t(a.Value), datum_b: C.scmp_datum_t(a.ValueTwo)}
			conds = append(conds, c)
			counts[a.Index]++
		}
		split := false
		for _, n := range counts {
			split = split || n > 1
		}
		for _, name := range sc.Names {
			cs := C.CString(name)
			nr := C.seccomp_syscall_resolve_name(cs)
			C.free(unsafe.Pointer(cs))
			if nr == C.__NR_SCMP_ERROR {
				continue
			}
			var rcs []C.int
			switch {
			case len(conds) == 0:
				rcs = append(rcs, C.seccomp_rule_add_array(ctx, act, nr, 0, nil))
			case split:
				for j := range conds {
					rcs = append(rcs, C.seccomp_rule_add_array(ctx, act, nr, 1, &conds[j]))
				}
			default:
				rcs = append(rcs, C.seccomp_rule_add_array(ctx, act, nr, C.uint(len(conds)), &conds[0]))
			}
			for _, rc := range rcs {
				if rc != 0 {
					return nil, fmt.Errorf("rule %d for %s: %w", i, name, unix.Errno(-rc))
				}
			}
		}
	}
	ok = true
	return ctx, nil
}

func export(ctx C.scmp_filter_ctx) ([]unix.SockFilter, error) {
	fd, err := unix.MemfdCreate("bpf", unix.MFD_CLOEXEC)
	if err != nil {
		return nil, err
	}
	f := os.NewFile(uintptr(fd), "bpf")
	defer f.Close()
	if rc := C.seccomp_export_bpf(ctx, C.int(fd)); rc != 0 {
		return nil, fmt.Errorf("seccomp_export_bpf: %d", rc)
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return nil, err
	}
	var prog []unix.SockFilter
	for {
		var in unix.SockFilter
		if err := binary.Read(f, binary.NativeEndian, &in); err != nil {
			if errors.Is(err, io.EOF) {
				return prog, nil
			}
			return nil, err
		}
		prog = append(prog, in)
	}
}
