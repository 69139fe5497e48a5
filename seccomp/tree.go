package seccomp

// This file holds the per-architecture rule database. Its job is to give
// every profile exactly the meaning libseccomp (v2.5, the version runc,
// crun and podman link) gives it, including what happens when several rules
// name the same syscall. libseccomp turns each rule into a chain of 32-bit
// comparisons and merges the chains of one syscall into a tree; the merge
// decides which rule wins when they overlap ("the existing unconditional
// rule wins", "a later unconditional rule replaces conditional ones",
// "conflicting actions on the same comparison are EEXIST"). The algorithm
// below follows libseccomp's db.c (_db_rule_gen_64/_32, _db_tree_add,
// db_rule_add) step by step, written afresh in Go; the differential test
// (libseccomp_test.go) holds the two to the same results.
//
// Evaluation of a tree (see program.go): a level is an ordered list of
// alternative nodes. A node compares one 32-bit half of one argument; each
// of its two outcomes either ends in an action, descends into a sub-level,
// or moves on to the next node of its level. When a sub-level runs out of
// nodes, evaluation continues with the node after the one that descended;
// when the top level runs out, the syscall gets the filter's default action.

import (
	"errors"
	"fmt"
)

// cmpOp is a comparison operator, in libseccomp's order.
type cmpOp int

const (
	opNE cmpOp = iota + 1
	opLT
	opLE
	opEQ
	opGE
	opGT
	opMaskedEQ
)

// argCmp is one argument condition of a rule, as libseccomp stores it.
type argCmp struct {
	valid bool
	op    cmpOp
	mask  uint64
	datum uint64
}

// rule is one libseccomp rule: a syscall number on one arch, an action, and
// at most one condition per argument.
type rule struct {
	nr     int64 // negative: not a syscall on this arch (skipped)
	action uint32
	args   [6]argCmp
}

type node struct {
	arg       int
	hi        bool // compares the upper 32 bits
	op        cmpOp
	opOrig    cmpOp
	mask      uint32
	datum     uint32
	datumFull uint64

	nxtT, nxtF     *node
	lvlPrv, lvlNxt *node
	actT, actF     uint32
	actTSet        bool
	actFSet        bool
}

// sysEntry is one syscall's rules on one arch.
type sysEntry struct {
	nr     int64
	chains *node  // nil: unconditional
	action uint32 // when chains is nil
}

// archDB is the rule database of one architecture.
type archDB struct {
	arch     *archDef
	syscalls []*sysEntry // sorted by nr
}

// errRuleConflict is libseccomp's EEXIST: two rules give one set of
// arguments different actions in a way libseccomp refuses to merge.
var errRuleConflict = errors.New("rules for the same syscall conflict (libseccomp: EEXIST)")

func (n *node) leaf() bool { return n.nxtT == nil && n.nxtF == nil }

func argPriority(n *node) int {
	p := n.arg << 1
	if n.hi {
		p++
	}
	return p
}

func opPriority(op cmpOp) int {
	switch op {
	case opMaskedEQ, opEQ, opNE:
		return 3
	case opLE, opLT:
		return 2
	case opGE, opGT:
		return 1
	}
	return 0
}

func chainLess(a, b *node) bool {
	if pa, pb := argPriority(a), argPriority(b); pa != pb {
		return pa < pb
	}
	if pa, pb := opPriority(a.opOrig), opPriority(b.opOrig); pa != pb {
		return pa < pb
	}
	switch a.opOrig {
	case opLE, opLT:
		return a.datum > b.datum
	default:
		return a.datum < b.datum
	}
}

func chainEqual(a, b *node) bool {
	return argPriority(a) == argPriority(b) && a.op == b.op && a.datum == b.datum && a.mask == b.mask
}

// levelStart returns the first node of n's level.
func levelStart(n *node) *node {
	for n.lvlPrv != nil {
		n = n.lvlPrv
	}
	return n
}

// actionsAll reports whether every action in the tree below n (its whole
// level included) is act.
func actionsAll(n *node, act uint32) bool {
	if n == nil {
		return true
	}
	for it := levelStart(n); it != nil; it = it.lvlNxt {
		if it.actTSet && it.actT != act || it.actFSet && it.actF != act {
			return false
		}
		if !actionsAll(it.nxtT, act) || !actionsAll(it.nxtF, act) {
			return false
		}
	}
	return true
}

// add merges the rule r into the database.
func (db *archDB) add(r *rule) error {
	var chains *node
	if db.arch.bits == 64 {
		chains = gen64(r)
	} else {
		chains = gen32(r)
	}
	i := 0
	for i < len(db.syscalls) && db.syscalls[i].nr < r.nr {
		i++
	}
	if i == len(db.syscalls) || db.syscalls[i].nr != r.nr {
		e := &sysEntry{nr: r.nr, chains: chains, action: r.action}
		db.syscalls = append(db.syscalls, nil)
		copy(db.syscalls[i+1:], db.syscalls[i:])
		db.syscalls[i] = e
		return nil
	}
	e := db.syscalls[i]
	switch {
	case e.chains == nil:
		// An unconditional rule is already there: it covers the new one.
		return nil
	case chains == nil:
		// A new unconditional rule replaces every conditional one.
		e.chains = nil
		e.action = r.action
		return nil
	}
	return treeAdd(&e.chains, chains)
}

// treeAdd merges the single-branch tree n into the level starting at *x.
func treeAdd(existing **node, n *node) error {
	x := *existing
	for x != nil {
		switch {
		case chainEqual(x, n):
			if n.actTSet {
				if !x.actTSet {
					if !actionsAll(x.nxtT, n.actT) {
						return errRuleConflict
					}
					x.nxtT = nil
					x.actT, x.actTSet = n.actT, true
				} else if n.actT != x.actT {
					if n.hi && n.datumFull > x.datumFull {
						x.actT = n.actT
					}
					if x.leaf() || n.leaf() {
						return errRuleConflict
					}
				}
			}
			if n.actFSet {
				if !x.actFSet {
					if !actionsAll(x.nxtF, n.actF) {
						return errRuleConflict
					}
					x.nxtF = nil
					x.actF, x.actFSet = n.actF, true
				} else if n.actF != x.actF {
					// libseccomp 2.5 updates the true action here
					// (db.c, _db_tree_add); kept for equal results.
					if n.hi && n.datumFull < x.datumFull {
						x.actT = n.actT
					}
					if x.leaf() || n.leaf() {
						return errRuleConflict
					}
				}
			}
			if n.nxtT != nil {
				switch {
				case x.nxtT != nil:
					if err := treeAdd(&x.nxtT, n.nxtT); err != nil {
						return err
					}
				case !x.actTSet:
					x.nxtT = n.nxtT
				default:
					return nil // the existing tree is shorter
				}
			}
			if n.nxtF != nil {
				switch {
				case x.nxtF != nil:
					if err := treeAdd(&x.nxtF, n.nxtF); err != nil {
						return err
					}
				case !x.actFSet:
					x.nxtF = n.nxtF
				default:
					return nil
				}
			}
			return nil
		case !chainLess(x, n):
			if x.lvlNxt == nil {
				n.lvlPrv = x
				x.lvlNxt = n
				return nil
			}
			x = x.lvlNxt
		default:
			// Insert n before x.
			if x.lvlPrv != nil {
				x.lvlPrv.lvlNxt = n
				n.lvlPrv = x.lvlPrv
			}
			x.lvlPrv = n
			n.lvlNxt = x
			if *existing == x {
				*existing = n
			}
			return nil
		}
	}
	return nil
}

func needLo(a *argCmp) bool { return !(a.op == opMaskedEQ && uint32(a.mask) == 0) }
func needHi(a *argCmp) bool { return !(a.op == opMaskedEQ && uint32(a.mask>>32) == 0) }

// gen64 builds the chain of a rule on a 64-bit arch: every condition
// compares both 32-bit halves (upper first), as in libseccomp's diagrams:
//
//	GT/GE:  hi > R.hi → match; hi == R.hi && lo >(=) R.lo → match
//	LT/LE:  hi > R.hi → no;    hi == R.hi && lo >=(>) R.lo → no; else match
//	EQ:     hi == R.hi && lo == R.lo;  NE: the same with the outcomes swapped
func gen64(r *rule) *node {
	var head *node
	var prev [3]*node
	var prevOp cmpOp
	var cur [3]*node
	for arg := range r.args {
		a := &r.args[arg]
		if !a.valid || !needHi(a) && !needLo(a) {
			continue
		}
		mk := func(hi bool) *node {
			n := &node{arg: arg, hi: hi, opOrig: a.op, datumFull: a.datum}
			if hi {
				n.mask, n.datum = uint32(a.mask>>32), uint32(a.datum>>32)
			} else {
				n.mask, n.datum = uint32(a.mask), uint32(a.datum)
			}
			n.datum &= n.mask
			return n
		}
		cur = [3]*node{}
		switch a.op {
		case opGT, opGE, opLE, opLT:
			cur[0], cur[1], cur[2] = mk(true), mk(true), mk(false)
			cur[0].op, cur[1].op = opGT, opEQ
			if a.op == opGT || a.op == opLE {
				cur[2].op = opGT
			} else {
				cur[2].op = opGE
			}
			cur[0].nxtF = cur[1]
			cur[1].nxtT = cur[2]
		default: // EQ, MASKED_EQ, NE
			cur[0], cur[1] = mk(true), mk(false)
			if a.op == opMaskedEQ {
				cur[0].op, cur[1].op = opMaskedEQ, opMaskedEQ
			} else {
				cur[0].op, cur[1].op = opEQ, opEQ
			}
			cur[0].nxtT = cur[1]
		}
		if prev[0] != nil {
			switch prevOp {
			case opGT, opGE:
				prev[0].nxtT = cur[0]
				prev[2].nxtT = cur[0]
			case opEQ, opMaskedEQ:
				prev[1].nxtT = cur[0]
			case opLE, opLT:
				prev[1].nxtF = cur[0]
				prev[2].nxtF = cur[0]
			case opNE:
				prev[0].nxtF = cur[0]
				prev[1].nxtF = cur[0]
			}
		} else {
			head = cur[0]
		}
		prev, prevOp = cur, a.op
	}
	if head == nil {
		return nil
	}
	act := r.action
	switch prevOp {
	case opGT, opGE:
		cur[0].actT, cur[0].actTSet = act, true
		cur[2].actT, cur[2].actTSet = act, true
	case opLE, opLT:
		cur[1].actF, cur[1].actFSet = act, true
		cur[2].actF, cur[2].actFSet = act, true
	case opEQ, opMaskedEQ:
		cur[1].actT, cur[1].actTSet = act, true
	case opNE:
		cur[0].actF, cur[0].actFSet = act, true
		cur[1].actF, cur[1].actFSet = act, true
	}
	return head
}

// gen32 builds the chain of a rule on a 32-bit arch (x86, x32, arm): only
// the lower 32 bits of each argument and value are compared. NE, LT and LE
// become EQ, GE and GT with the outcomes swapped.
func gen32(r *rule) *node {
	var head, prev *node
	var tf bool
	for arg := range r.args {
		a := &r.args[arg]
		if !a.valid || !needLo(a) {
			continue
		}
		n := &node{arg: arg, op: a.op, opOrig: a.op, mask: uint32(a.mask), datum: uint32(a.datum), datumFull: a.datum}
		if prev != nil {
			if tf {
				prev.nxtT = n
			} else {
				prev.nxtF = n
			}
		} else {
			head = n
		}
		switch n.op {
		case opNE:
			n.op, tf = opEQ, false
		case opLT:
			n.op, tf = opGE, false
		case opLE:
			n.op, tf = opGT, false
		default:
			tf = true
		}
		n.datum &= n.mask
		prev = n
	}
	if prev == nil {
		return nil
	}
	if tf {
		prev.actT, prev.actTSet = r.action, true
	} else {
		prev.actF, prev.actFSet = r.action, true
	}
	return head
}

func (o cmpOp) String() string {
	if s, ok := map[cmpOp]string{opNE: "!=", opLT: "<", opLE: "<=", opEQ: "==", opGE: ">=", opGT: ">", opMaskedEQ: "&=="}[o]; ok {
		return s
	}
	return fmt.Sprintf("op(%d)", int(o))
}
