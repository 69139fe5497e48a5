package seccomp

// Code generation: from the per-arch rule databases to classic BPF.
//
// Layout of a program:
//
//	ld  seccomp_data.arch
//	jeq AUDIT_ARCH_<native>  → group 0        (native arch first: hot path)
//	jeq AUDIT_ARCH_<other>   → group 1 ...
//	ret KILL_PROCESS                          (an arch the filter does not list)
//	group: ld seccomp_data.nr
//	       binary search over intervals of syscall numbers that share one
//	       outcome (see intervals): the default action, a syscall's action,
//	       a syscall's argument tree (see genTree), the bad-arch action for
//	       the other x86_64/x32 ABI, or ERRNO(ENOSYS) above the profile's
//	       highest syscall. (x86_64 with x32 is one group with both tables,
//	       as in libseccomp.)
//
// Conditional jumps reach 255 instructions; the assembler inserts, right
// after a jump whose target is farther, a copy of the target when it is a
// `ret` or a `ja` (32-bit reach) otherwise, and repeats until all fit.

import (
	"cmp"
	"fmt"
	"slices"
	"sort"

	"golang.org/x/net/bpf"
	"golang.org/x/sys/unix"
)

const (
	offNr   = 0
	offArch = 4
	offArgs = 16
)

type label int32

const noLabel label = -1

// ins is one instruction with symbolic jump targets, or a label marker.
type ins struct {
	code   uint16
	k      uint32
	jt, jf label // conditional jumps; ja uses jt
	mark   label // >= 0: this entry marks the position of a label
}

type asm struct {
	ins    []ins
	labels int
}

func (a *asm) newLabel() label { a.labels++; return label(a.labels - 1) }
func (a *asm) bind(l label)    { a.ins = append(a.ins, ins{mark: l}) }
func (a *asm) emit(code uint16, k uint32, jt, jf label) {
	a.ins = append(a.ins, ins{code: code, k: k, jt: jt, jf: jf, mark: noLabel})
}
func (a *asm) ld(off uint32) { a.emit(unix.BPF_LD|unix.BPF_W|unix.BPF_ABS, off, noLabel, noLabel) }
func (a *asm) and(k uint32)  { a.emit(unix.BPF_ALU|unix.BPF_AND|unix.BPF_K, k, noLabel, noLabel) }
func (a *asm) ret(k uint32)  { a.emit(unix.BPF_RET|unix.BPF_K, k, noLabel, noLabel) }
func (a *asm) jmp(cond uint16, k uint32, jt, jf label) {
	a.emit(unix.BPF_JMP|cond|unix.BPF_K, k, jt, jf)
}

func isCond(code uint16) bool {
	return code&0x07 == unix.BPF_JMP && code&0xf0 != unix.BPF_JA
}

// assemble resolves labels, inserting trampolines where needed.
func (a *asm) assemble() ([]unix.SockFilter, error) {
	prog := a.ins
	for {
		// Every round only adds instructions; far beyond the kernel's
		// limit there is no point in going on.
		if len(prog) > 16*4096 {
			return nil, fmt.Errorf("compiling seccomp profile to more than %d instructions: %w", 16*4096, ErrTooLarge)
		}
		// Positions of labels and instructions.
		pos := make([]int, a.labels)
		for i := range pos {
			pos[i] = -1
		}
		at := make([]int, len(prog)) // instruction index of each entry
		n := 0
		for i, in := range prog {
			at[i] = n
			if in.mark >= 0 {
				pos[in.mark] = n
			} else {
				n++
			}
		}
		// The instruction each label points at, to copy a `ret`.
		first := make([]int, a.labels) // entry index of that instruction
		for i := len(prog) - 1; i >= 0; i-- {
			if prog[i].mark < 0 {
				n = i
			} else {
				first[prog[i].mark] = n
			}
		}
		// Out of reach: too far, or behind (a `ret` shared by code above).
		far := func(pc int, l label) bool { d := pos[l] - (pc + 1); return d > 255 || d < 0 }
		if !anyFar(prog, at, far) {
			return encode(prog, at, pos)
		}
		out := make([]ins, 0, len(prog)+len(prog)/8)
		for i, in := range prog {
			out = append(out, in)
			if in.mark >= 0 || !isCond(in.code) {
				continue
			}
			pc := at[i]
			ft, ff := far(pc, in.jt), far(pc, in.jf)
			if !ft && !ff {
				continue
			}
			var tramp []ins
			for _, f := range []struct {
				far bool
				l   *label
			}{{ft, &out[len(out)-1].jt}, {ff, &out[len(out)-1].jf}} {
				if !f.far {
					continue
				}
				target := *f.l
				nl := a.newLabel()
				*f.l = nl
				tramp = append(tramp, ins{mark: nl})
				if t := prog[first[target]]; t.code&0x07 == unix.BPF_RET {
					tramp = append(tramp, ins{code: t.code, k: t.k, jt: noLabel, jf: noLabel, mark: noLabel})
				} else if pos[target] < pc+1 {
					return nil, fmt.Errorf("assembling seccomp filter: backward jump at %d", pc)
				} else {
					tramp = append(tramp, ins{code: unix.BPF_JMP | unix.BPF_JA, jt: target, jf: noLabel, mark: noLabel})
				}
			}
			out = append(out, tramp...)
		}
		prog = out
	}
}

// anyFar reports whether a conditional jump of prog cannot reach a target.
func anyFar(prog []ins, at []int, far func(pc int, l label) bool) bool {
	for i, in := range prog {
		if in.mark < 0 && isCond(in.code) && (far(at[i], in.jt) || far(at[i], in.jf)) {
			return true
		}
	}
	return false
}

// encode turns prog, its labels in reach, into the instructions: at is
// each entry's instruction index, pos each label's.
func encode(prog []ins, at, pos []int) ([]unix.SockFilter, error) {
	n := 0
	for _, in := range prog {
		if in.mark < 0 {
			n++
		}
	}
	if n > 4096 {
		return nil, fmt.Errorf("compiling seccomp profile to %d instructions: %w", n, ErrTooLarge)
	}
	res := make([]unix.SockFilter, 0, n)
	for i, in := range prog {
		if in.mark >= 0 {
			continue
		}
		pc := at[i]
		f := unix.SockFilter{Code: in.code, K: in.k}
		switch {
		case in.code == unix.BPF_JMP|unix.BPF_JA:
			f.K = uint32(pos[in.jt] - (pc + 1))
		case isCond(in.code):
			f.Jt = uint8(pos[in.jt] - (pc + 1))
			f.Jf = uint8(pos[in.jf] - (pc + 1))
		}
		res = append(res, f)
	}
	return res, nil
}

// group is the code of one AUDIT_ARCH value: one arch, or x86_64 with x32.
type group struct {
	audit    uint32
	archs    []*archDB
	syscalls []*sysEntry
}

func generate(dbs []*archDB, def uint32, stub map[*archDef]uint32) ([]unix.SockFilter, error) {
	var groups []*group
	for _, db := range dbs {
		var g *group
		for _, x := range groups {
			if x.audit == db.arch.audit {
				g = x
			}
		}
		if g == nil {
			g = &group{audit: db.arch.audit}
			groups = append(groups, g)
		}
		g.archs = append(g.archs, db)
		for _, s := range db.syscalls {
			if s.nr >= 0 {
				g.syscalls = append(g.syscalls, s)
			}
		}
	}
	// Room for the entries (instructions and labels) at once, not the
	// doubling appends' copies: Docker's default profile takes about 1.6
	// per syscall (1534 for 972).
	n := 64
	for _, g := range groups {
		n += 2 * len(g.syscalls)
	}
	a := &asm{ins: make([]ins, 0, n)}
	a.ld(offArch)
	starts := make([]label, len(groups))
	for i, g := range groups {
		starts[i] = a.newLabel()
		next := a.newLabel()
		a.jmp(unix.BPF_JEQ, g.audit, starts[i], next)
		a.bind(next)
	}
	a.ret(badArchAction)
	for i, g := range groups {
		a.bind(starts[i])
		a.ld(offNr)
		genRanges(a, intervals(g, def, stub), def)
	}
	return a.assemble()
}

// interval is a run of syscall numbers, from lo up to the next interval's
// lo, that all get action act, or, when sys is set, the one syscall whose
// argument tree decides.
type interval struct {
	lo  uint32
	act uint32
	sys *sysEntry
}

// intervals partitions the 32-bit syscall numbers of a group. Besides the
// syscalls with rules and the default action in between, it encodes:
//   - the x86_64/x32 split of AUDIT_ARCH_X86_64 (bit 30 of the number): a
//     filter with only one of the two ABIs gives the other the bad-arch
//     action; -1 (0xffffffff) is left to the default, as tracers use it to
//     skip a syscall and the filter runs again after them (seccomp(2));
//   - the ENOSYS stub (see enosysLimits): numbers above the highest
//     syscall the profile names, per ABI.
func intervals(g *group, def uint32, stub map[*archDef]uint32) []interval {
	var has64, has32 bool
	var lim64, lim32 *uint32
	for _, db := range g.archs {
		l, ok := stub[db.arch]
		if db.arch == archX32 {
			has32 = true
			if ok {
				lim32 = &l
			}
		} else {
			has64 = true
			if ok {
				lim64 = &l
			}
		}
	}
	x86 := g.audit == unix.AUDIT_ARCH_X86_64
	base := func(n uint32) uint32 {
		x32 := x86 && n&x32SyscallBit != 0
		switch {
		case n == 0xffffffff:
			return def
		case x86 && x32 && !has32, x86 && !x32 && !has64:
			return badArchAction
		case !x32 && lim64 != nil && n > *lim64, x32 && lim32 != nil && n > *lim32:
			return retErrno | uint32(unix.ENOSYS)
		}
		return def
	}
	// The points where an interval may start, sorted, each once; and the
	// syscalls by number beside them.
	los := make([]uint32, 0, 2*len(g.syscalls)+5)
	los = append(los, 0, x32SyscallBit, 0xffffffff)
	for _, l := range []*uint32{lim64, lim32} {
		if l != nil && *l < 0xfffffffe {
			los = append(los, *l+1)
		}
	}
	sys := slices.Clone(g.syscalls)
	slices.SortStableFunc(sys, func(a, b *sysEntry) int { return cmp.Compare(uint32(a.nr), uint32(b.nr)) })
	for _, s := range sys {
		nr := uint32(s.nr)
		los = append(los, nr)
		if nr < 0xffffffff {
			los = append(los, nr+1)
		}
	}
	slices.Sort(los)
	los = slices.Compact(los)
	// bynr: the last rule of a number wins, as the map this replaces did.
	bynr := func(lo uint32) (*sysEntry, bool) {
		i, found := slices.BinarySearchFunc(sys, lo, func(e *sysEntry, n uint32) int { return cmp.Compare(uint32(e.nr), n) })
		if !found {
			return nil, false
		}
		for i+1 < len(sys) && uint32(sys[i+1].nr) == lo {
			i++
		}
		return sys[i], true
	}
	out := make([]interval, 0, len(los))
	for _, lo := range los {
		iv := interval{lo: lo, act: base(lo)}
		if s, ok := bynr(lo); ok {
			if s.chains == nil {
				iv.act = s.action
			} else {
				iv.sys = s
			}
		}
		if n := len(out); n > 0 && iv.sys == nil && out[n-1].sys == nil && out[n-1].act == iv.act {
			continue // same outcome as the run before: extend it
		}
		out = append(out, iv)
	}
	return out
}

// genRanges emits a binary search over the intervals; the accumulator
// holds the syscall number.
func genRanges(a *asm, ivs []interval, def uint32) {
	if len(ivs) == 1 {
		iv := ivs[0]
		if iv.sys == nil {
			a.ret(iv.act)
			return
		}
		rets := map[uint32]label{}
		genTree(a, iv.sys.chains, def, func(act uint32) label {
			if l, ok := rets[act]; ok {
				return l
			}
			l := a.newLabel()
			rets[act] = l
			return l
		})
		acts := make([]uint32, 0, len(rets))
		for act := range rets {
			acts = append(acts, act)
		}
		sort.Slice(acts, func(i, j int) bool { return acts[i] < acts[j] })
		for _, act := range acts {
			a.bind(rets[act])
			a.ret(act)
		}
		return
	}
	mid := len(ivs) / 2
	left, right := a.newLabel(), a.newLabel()
	a.jmp(unix.BPF_JGE, ivs[mid].lo, right, left)
	a.bind(left)
	genRanges(a, ivs[:mid], def)
	a.bind(right)
	genRanges(a, ivs[mid:], def)
}

// genTree emits the argument tree of one syscall; when no branch decides,
// the syscall gets the default action.
//
// The code unit of a node depends on where its level goes when it runs out
// (its fail target), so units are keyed by (node, fail). Units form a DAG
// (a sub-level fails to a later sibling of its parent; libseccomp shares
// sub-levels between the two upper-half nodes of a 64-bit range check), and
// are emitted in topological order so that every jump goes forward.
func genTree(a *asm, chains *node, def uint32, retLabel func(uint32) label) {
	type unit struct {
		n          *node
		at, jt, jf label
		succ       []*unit
	}
	type key struct {
		n    *node
		fail label
	}
	units := map[key]*unit{}
	byLabel := map[label]*unit{}
	var unitFor func(n *node, fail label) label
	unitFor = func(n *node, fail label) label {
		k := key{n, fail}
		if u, ok := units[k]; ok {
			return u.at
		}
		u := &unit{n: n, at: a.newLabel()}
		units[k] = u
		byLabel[u.at] = u
		next := fail
		if n.lvlNxt != nil {
			next = unitFor(n.lvlNxt, fail)
		}
		branch := func(sub *node, set bool, act uint32) label {
			switch {
			case sub != nil:
				return unitFor(levelStart(sub), next)
			case set:
				return retLabel(act)
			}
			return next
		}
		u.jt = branch(n.nxtT, n.actTSet, n.actT)
		u.jf = branch(n.nxtF, n.actFSet, n.actF)
		for _, l := range []label{u.jt, u.jf} {
			if s, ok := byLabel[l]; ok {
				u.succ = append(u.succ, s)
			}
		}
		return u.at
	}
	root := byLabel[unitFor(levelStart(chains), retLabel(def))]
	var order []*unit
	seen := map[*unit]bool{}
	var visit func(u *unit)
	visit = func(u *unit) {
		seen[u] = true
		for _, s := range u.succ {
			if !seen[s] {
				visit(s)
			}
		}
		order = append(order, u)
	}
	visit(root)
	for i := len(order) - 1; i >= 0; i-- {
		u := order[i]
		n := u.n
		a.bind(u.at)
		off := uint32(offArgs + 8*n.arg)
		if n.hi {
			off += 4 // little-endian: the upper half follows
		}
		a.ld(off)
		if n.mask != 0xffffffff {
			a.and(n.mask)
		}
		var cond uint16
		switch n.op {
		case opEQ, opMaskedEQ:
			cond = unix.BPF_JEQ
		case opGT:
			cond = unix.BPF_JGT
		case opGE:
			cond = unix.BPF_JGE
		}
		a.jmp(cond, n.datum, u.jt, u.jf)
	}
}

// Disassemble returns the program as golang.org/x/net/bpf instructions,
// for listings and the bpf.VM.
func (f *Filter) Disassemble() []bpf.Instruction {
	raw := make([]bpf.RawInstruction, len(f.prog))
	for i, in := range f.prog {
		raw[i] = bpf.RawInstruction{Op: in.Code, Jt: in.Jt, Jf: in.Jf, K: in.K}
	}
	out, _ := bpf.Disassemble(raw)
	return out
}
