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

	// refs counts the pointers to the node (parents, level neighbours,
	// roots, walkers). libseccomp frees a node when its count drops to
	// zero, and its pruning depends on which nodes survive.
	refs int
}

// sysEntry is one syscall's rules on one arch.
type sysEntry struct {
	nr     int64
	chains *node  // nil: unconditional
	action uint32 // when chains is nil
}

// archDB is the rule database of one architecture.
type archDB struct {
	merger
	arch     *archDef
	syscalls []*sysEntry // sorted by nr
}

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

// merger runs libseccomp's merge algorithm with a step budget: some
// profiles make that algorithm link a level into a cycle, and libseccomp
// 2.5 then loops forever. sandy stops and refuses the profile instead.
type merger struct{ steps int }

const mergeBudget = 1 << 22

func (m *merger) tick() {
	if m.steps++; m.steps > mergeBudget {
		panic(ErrMergeLoop) // recovered by archDB.add
	}
}

func (m *merger) levelStart(n *node) *node {
	for n.lvlPrv != nil {
		m.tick()
		n = n.lvlPrv
	}
	return n
}

// actionsAll reports whether every action in the tree below n (its whole
// level included) is act.
func (m *merger) actionsAll(n *node, act uint32) bool {
	if n == nil {
		return true
	}
	for it := m.levelStart(n); it != nil; it = it.lvlNxt {
		m.tick()
		if it.actTSet && it.actT != act || it.actFSet && it.actF != act {
			return false
		}
		if !m.actionsAll(it.nxtT, act) || !m.actionsAll(it.nxtF, act) {
			return false
		}
	}
	return true
}

func get(n *node) *node {
	if n != nil {
		n.refs++
	}
	return n
}

// put drops a reference to *pp; when it was the last, the node leaves its
// level, its sub-trees lose a reference, and *pp moves to a neighbour (or
// nil). It returns the number of nodes freed.
func (m *merger) put(pp **node) int {
	n := *pp
	if n == nil {
		return 0
	}
	m.tick()
	n.refs--
	if n.refs > 0 {
		return 0
	}
	cnt := 0
	lp, ln, nt, nf := n.lvlPrv, n.lvlNxt, n.nxtT, n.nxtF
	if lp != nil {
		lp.lvlNxt = nil
	}
	if ln != nil {
		ln.lvlPrv = nil
	}
	if lp != nil {
		cnt += m.put(&lp)
	}
	if ln != nil {
		cnt += m.put(&ln)
	}
	if lp != nil {
		lp.lvlNxt = get(ln)
	}
	if ln != nil {
		ln.lvlPrv = get(lp)
	}
	switch {
	case lp != nil:
		*pp = lp
	case ln != nil:
		*pp = ln
	default:
		*pp = nil
	}
	cnt += m.treePut(&nt)
	cnt += m.treePut(&nf)
	return cnt + 1
}

// treePut drops a reference to a tree and frees its top level when nothing
// else points into it.
func (m *merger) treePut(pp **node) int {
	cnt := m.put(pp)
	if *pp != nil {
		cnt += m.levelClean(*pp)
	}
	return cnt
}

func (m *merger) levelClean(n *node) int {
	start := m.levelStart(n)
	for it := start; it != nil; it = it.lvlNxt {
		m.tick()
		links := 0
		if it.lvlPrv != nil {
			links++
		}
		if it.lvlNxt != nil {
			links++
		}
		if it.refs > links {
			return 0
		}
	}
	cnt := 0
	for it := start; it != nil; {
		m.tick()
		cnt += m.put(&it)
	}
	return cnt
}

func (n *node) zombie() bool { return n.leaf() && !n.actTSet && !n.actFSet }

// treeRemove unlinks target (or zombie nodes met on the way) from the
// tree at *tree.
func (m *merger) treeRemove(tree **node, target *node) int {
	if tree == nil || *tree == nil || target == nil {
		return 0
	}
	cnt := 0
	c := m.levelStart(*tree)
	found := false
	for {
		m.tick()
		if c == target {
			found = true
			break
		}
		cnt += m.treeRemove(&c.nxtT, target)
		cnt += m.treeRemove(&c.nxtF, target)
		if c.zombie() {
			found = true
			break
		}
		c = c.lvlNxt
		if c == nil || cnt != 0 {
			break
		}
	}
	if !found {
		return cnt
	}
	if c == *tree {
		if c.lvlPrv != nil {
			*tree = c.lvlPrv
		} else {
			*tree = c.lvlNxt
		}
	}
	if c.lvlPrv != nil {
		c.lvlPrv.lvlNxt = c.lvlNxt
	}
	if c.lvlNxt != nil {
		c.lvlNxt.lvlPrv = c.lvlPrv
	}
	c.lvlPrv, c.lvlNxt = nil, nil
	return cnt + m.put(&c)
}

// Flags of a pruning walk (libseccomp's db_iter_state).
const (
	istMatch     = 0x01
	istMatchOnce = 0x02
	istXFinished = 0x10
	istNFinished = 0x20
	istXPrefix   = 0x100
	istNPrefix   = 0x200
	istMatchSet  = istMatch | istMatchOnce
	istRedundant = istMatch | istXFinished | istNPrefix
)

type iterState struct {
	flags  int
	action uint32
	sx     *sysEntry
}

// treePrune compares the new single-branch tree with the existing one
// before it is merged: it removes existing sub-trees the new rule makes
// redundant, and flags the new rule as redundant when an existing, shorter
// rule covers it (libseccomp's _db_tree_prune, whose verdicts decide which
// of two overlapping rules survives).
func (m *merger) treePrune(existing **node, nw *node, state *iterState) int {
	cnt := 0
	stateNew := *state
	finish := func() int {
		if stateNew.flags&istMatch != 0 {
			state.flags |= stateNew.flags
		} else {
			state.flags &^= istMatch
		}
		return cnt
	}
	x, n := *existing, nw
	if n == nil || x == nil {
		return finish()
	}
	if state.flags&istMatchSet == istMatchOnce {
		return finish()
	}
	x = m.levelStart(x)
	// descend runs a pruning walk one level down, holding a reference to
	// x meanwhile; it reports whether x was freed.
	descend := func(ex **node, nn *node, set, clear int) (sub iterState, gone bool) {
		get(x)
		sub = *state
		sub.flags &^= clear
		sub.flags |= set
		cnt += m.treePrune(ex, nn, &sub)
		cnt += m.put(&x)
		return sub, x == nil
	}
	for x != nil {
		m.tick()
		xNext := x.lvlNxt
		switch {
		case chainEqual(x, n):
			stateNew.flags |= istMatchSet
			if n.leaf() {
				stateNew.flags |= istNFinished
			}
			if x.leaf() {
				stateNew.flags |= istXFinished
			}
			if (x.actTSet || x.nxtT != nil) && !(n.actTSet || n.nxtT != nil) {
				return finish()
			}
			if (x.actFSet || x.nxtF != nil) && !(n.actFSet || n.nxtF != nil) {
				return finish()
			}
			if stateNew.flags&istNFinished != 0 && stateNew.flags&istXFinished != 0 {
				if n.actTSet != x.actTSet || n.actT != x.actT || n.actFSet != x.actFSet || n.actF != x.actF {
					return finish()
				}
			}
			if n.nxtT != nil {
				sub, gone := descend(&x.nxtT, n.nxtT, istMatchSet, 0)
				if sub.flags&istMatch != 0 {
					stateNew.flags |= sub.flags
				}
				if gone {
					x = xNext
					continue
				}
			}
			if n.nxtF != nil {
				sub, gone := descend(&x.nxtF, n.nxtF, istMatchSet, 0)
				if sub.flags&istMatch != 0 {
					stateNew.flags |= sub.flags
				}
				if gone {
					x = xNext
					continue
				}
			}
			same := m.actionsAll(x, stateNew.action)
			if same && stateNew.flags&istMatch != 0 && stateNew.flags&istNFinished != 0 && stateNew.flags&istXPrefix != 0 {
				// The new tree is shorter: drop the existing branch.
				cnt += m.treeRemove(&state.sx.chains, x)
				if state.sx.chains == nil {
					return finish()
				}
			} else if same && stateNew.flags&istMatch != 0 && stateNew.flags&istXFinished != 0 && stateNew.flags&istNPrefix != 0 {
				return finish() // the new tree is longer
			}
		case chainLess(x, n):
			if state.flags&istNPrefix != 0 {
				return finish()
			}
			if x.nxtT != nil {
				sub, gone := descend(&x.nxtT, n, istXPrefix, istMatch)
				if sub.flags&istMatch != 0 {
					stateNew.flags |= sub.flags
					return finish()
				}
				if gone {
					x = xNext
					continue
				}
			}
			if x.nxtF != nil {
				sub, gone := descend(&x.nxtF, n, istXPrefix, istMatch)
				if sub.flags&istMatch != 0 {
					stateNew.flags |= sub.flags
					return finish()
				}
				if gone {
					x = xNext
					continue
				}
			}
		default:
			if state.flags&istXPrefix != 0 {
				return finish()
			}
			if n.nxtT != nil {
				sub, gone := descend(&x, n.nxtT, istNPrefix, istMatch)
				if sub.flags&istMatch != 0 {
					stateNew.flags |= sub.flags
					return finish()
				}
				if gone {
					x = xNext
					continue
				}
			}
			if n.nxtF != nil {
				sub, gone := descend(&x, n.nxtF, istNPrefix, istMatch)
				if sub.flags&istMatch != 0 {
					stateNew.flags |= sub.flags
					return finish()
				}
				if gone {
					x = xNext
					continue
				}
			}
		}
		x = xNext
	}
	stateNew.flags &^= istMatch
	return finish()
}

// add merges the rule r into the database (libseccomp's db_rule_add).
func (db *archDB) add(r *rule) (err error) {
	defer func() {
		if p := recover(); p != nil {
			if e, ok := p.(error); !ok || !errors.Is(e, ErrMergeLoop) {
				panic(p)
			}
			err = ErrMergeLoop
		}
	}()
	m := &db.merger
	m.steps = 0 // the budget is per rule: legitimate merges walk the tree a few times
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
	pruned := false
	for {
		switch {
		case e.chains == nil && pruned:
			// Pruning removed every existing branch: the new rule is it.
			e.chains, e.action = chains, r.action
			return nil
		case e.chains == nil:
			// An unconditional rule is already there: it covers the new one.
			m.treePut(&chains)
			return nil
		case chains == nil:
			// A new unconditional rule replaces every conditional one.
			m.treePut(&e.chains)
			e.chains, e.action = nil, r.action
			return nil
		}
		state := iterState{sx: e, action: r.action}
		if m.treePrune(&e.chains, chains, &state) > 0 {
			pruned = true
			if e.chains == nil {
				continue
			}
		} else if state.flags&istRedundant == istRedundant {
			// An existing, shorter rule covers the new one.
			m.treePut(&chains)
			return nil
		}
		break
	}
	err = m.treeAdd(&e.chains, chains)
	m.treePut(&chains)
	return err
}

// treeAdd merges the single-branch tree n into the level at *existing
// (libseccomp's _db_tree_add).
func (m *merger) treeAdd(existing **node, n *node) error {
	x := *existing
	for x != nil {
		m.tick()
		switch {
		case chainEqual(x, n):
			if n.actTSet {
				if !x.actTSet {
					if !m.actionsAll(x.nxtT, n.actT) {
						return ErrRuleConflict
					}
					m.put(&x.nxtT)
					x.nxtT = nil
					x.actT, x.actTSet = n.actT, true
				} else if n.actT != x.actT {
					if n.hi && n.datumFull > x.datumFull {
						x.actT = n.actT
					}
					if x.leaf() || n.leaf() {
						return ErrRuleConflict
					}
				}
			}
			if n.actFSet {
				if !x.actFSet {
					if !m.actionsAll(x.nxtF, n.actF) {
						return ErrRuleConflict
					}
					m.put(&x.nxtF)
					x.nxtF = nil
					x.actF, x.actFSet = n.actF, true
				} else if n.actF != x.actF {
					// libseccomp 2.5 updates the true action here
					// (db.c, _db_tree_add); kept for equal results.
					if n.hi && n.datumFull < x.datumFull {
						x.actT = n.actT
					}
					if x.leaf() || n.leaf() {
						return ErrRuleConflict
					}
				}
			}
			if n.nxtT != nil {
				switch {
				case x.nxtT != nil:
					if err := m.treeAdd(&x.nxtT, n.nxtT); err != nil {
						return err
					}
				case !x.actTSet:
					x.nxtT = get(n.nxtT)
				default:
					return nil // the existing tree is shorter
				}
			}
			if n.nxtF != nil {
				switch {
				case x.nxtF != nil:
					if err := m.treeAdd(&x.nxtF, n.nxtF); err != nil {
						return err
					}
				case !x.actFSet:
					x.nxtF = get(n.nxtF)
				default:
					return nil
				}
			}
			return nil
		case !chainLess(x, n):
			if x.lvlNxt == nil {
				n.lvlPrv = get(x)
				x.lvlNxt = get(n)
				return nil
			}
			x = x.lvlNxt
		default:
			// Insert n before x.
			if x.lvlPrv != nil {
				x.lvlPrv.lvlNxt = get(n)
				n.lvlPrv = x.lvlPrv
				x.lvlPrv = get(n)
				n.lvlNxt = x
			} else {
				x.lvlPrv = get(n)
				n.lvlNxt = get(x)
			}
			if *existing == x {
				*existing = get(n)
				m.put(&x)
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
			cur[0].nxtF = get(cur[1])
			cur[1].nxtT = get(cur[2])
		default: // EQ, MASKED_EQ, NE
			cur[0], cur[1] = mk(true), mk(false)
			if a.op == opMaskedEQ {
				cur[0].op, cur[1].op = opMaskedEQ, opMaskedEQ
			} else {
				cur[0].op, cur[1].op = opEQ, opEQ
			}
			cur[0].nxtT = get(cur[1])
		}
		if prev[0] != nil {
			switch prevOp {
			case opGT, opGE:
				prev[0].nxtT = get(cur[0])
				prev[2].nxtT = get(cur[0])
			case opEQ, opMaskedEQ:
				prev[1].nxtT = get(cur[0])
			case opLE, opLT:
				prev[1].nxtF = get(cur[0])
				prev[2].nxtF = get(cur[0])
			case opNE:
				prev[0].nxtF = get(cur[0])
				prev[1].nxtF = get(cur[0])
			}
		} else {
			head = get(cur[0])
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
				prev.nxtT = get(n)
			} else {
				prev.nxtF = get(n)
			}
		} else {
			head = get(n)
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

// checkTree makes sure a merged tree is finite and acyclic before code is
// generated from it (the merge can corrupt a tree without looping itself).
func checkTree(root *node) error {
	const limit = 1 << 20
	state := map[*node]int{} // 1: on the DFS stack, 2: done
	var visit func(n *node) error
	visit = func(n *node) error {
		steps := 0
		for n.lvlPrv != nil {
			n = n.lvlPrv
			if steps++; steps > limit {
				return ErrMergeLoop
			}
		}
		seen := map[*node]bool{}
		for it := n; it != nil; it = it.lvlNxt {
			if seen[it] {
				return ErrMergeLoop
			}
			seen[it] = true
			switch state[it] {
			case 1:
				return ErrMergeLoop
			case 2:
				continue
			}
			state[it] = 1
			for _, sub := range []*node{it.nxtT, it.nxtF} {
				if sub != nil {
					if err := visit(sub); err != nil {
						return err
					}
				}
			}
			state[it] = 2
		}
		return nil
	}
	if root == nil {
		return nil
	}
	return visit(root)
}
