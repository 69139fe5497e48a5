//go:build libseccomp && linux && (amd64 || arm64)

package seccomp

// An interpreter for libseccomp's pseudo filter code (seccomp_export_pfc).
// libseccomp prints PFC from its rule database, not from its BPF, so it is
// the meaning libseccomp gives a profile; the differential test holds sandy
// to it. (libseccomp 2.5.4's BPF generator has a bug that PFC does not:
// after a failed sub-level it can compare a stale accumulator, see
// docs/seccomp.md.)

import (
	"fmt"
	"regexp"
	"strconv"
	"strings"
)

type pfcStmt struct {
	kind     string // "if", "else", "action"
	lhs      string // $arch, $syscall, $aN, $aN.hi32, $aN.lo32
	op       string // ==, >=, >, &==
	mask     uint32
	val      uint32
	action   uint32
	children []*pfcStmt
}

var (
	pfcIf     = regexp.MustCompile(`^if \((\$[a-z0-9.]+)( & 0x([0-9a-f]+))? (==|>=|>) ([0-9]+)\)$`)
	pfcAction = regexp.MustCompile(`^action ([A-Z_]+)(\(([0-9]+)\))?;$`)
	pfcRaw    = regexp.MustCompile(`^action 0x([0-9a-f]+);$`)
)

func parsePFC(text string) ([]*pfcStmt, error) {
	root := &pfcStmt{}
	stack := []*pfcStmt{root}
	for _, line := range strings.Split(text, "\n") {
		trimmed := strings.TrimLeft(line, " ")
		if trimmed == "" || strings.HasPrefix(trimmed, "#") {
			continue
		}
		if i := strings.Index(trimmed, " #"); i >= 0 {
			trimmed = trimmed[:i]
		}
		depth := (len(line) - len(strings.TrimLeft(line, " "))) / 2
		if depth+1 > len(stack) {
			return nil, fmt.Errorf("pfc: bad indentation: %q", line)
		}
		stack = stack[:depth+1]
		parent := stack[depth]
		s := &pfcStmt{}
		switch {
		case trimmed == "else":
			s.kind = "else"
		case pfcIf.MatchString(trimmed):
			m := pfcIf.FindStringSubmatch(trimmed)
			s.kind, s.lhs, s.op = "if", m[1], m[4]
			if m[3] != "" {
				mask, _ := strconv.ParseUint(m[3], 16, 32)
				s.mask, s.op = uint32(mask), "&=="
			}
			v, err := strconv.ParseUint(m[5], 10, 32)
			if err != nil {
				return nil, fmt.Errorf("pfc: %q: %w", line, err)
			}
			s.val = uint32(v)
		case pfcAction.MatchString(trimmed):
			m := pfcAction.FindStringSubmatch(trimmed)
			data, _ := strconv.ParseUint(m[3], 10, 16)
			s.kind = "action"
			switch m[1] {
			case "KILL_PROCESS":
				s.action = retKillProcess
			case "KILL":
				s.action = retKillThread
			case "TRAP":
				s.action = retTrap
			case "ERRNO":
				s.action = retErrno | uint32(data)
			case "TRACE":
				s.action = retTrace | uint32(data)
			case "LOG":
				s.action = retLog
			case "ALLOW":
				s.action = retAllow
			default:
				return nil, fmt.Errorf("pfc: unknown action %q", line)
			}
		case pfcRaw.MatchString(trimmed):
			v, _ := strconv.ParseUint(pfcRaw.FindStringSubmatch(trimmed)[1], 16, 32)
			s.kind, s.action = "action", uint32(v)
		default:
			return nil, fmt.Errorf("pfc: cannot parse %q", line)
		}
		parent.children = append(parent.children, s)
		stack = append(stack, s)
	}
	return root.children, nil
}

// pfcEval runs statements; ok is false when they fall through.
func pfcEval(stmts []*pfcStmt, value func(lhs string) uint32) (uint32, bool) {
	for i := 0; i < len(stmts); i++ {
		s := stmts[i]
		switch s.kind {
		case "action":
			return s.action, true
		case "else":
			continue // reached only after its `if`, handled there
		case "if":
			v := value(s.lhs)
			var c bool
			switch s.op {
			case "==":
				c = v == s.val
			case ">=":
				c = v >= s.val
			case ">":
				c = v > s.val
			case "&==":
				c = v&s.mask == s.val
			}
			hasElse := i+1 < len(stmts) && stmts[i+1].kind == "else"
			if c {
				if r, ok := pfcEval(s.children, value); ok {
					return r, true
				}
			} else if hasElse {
				if r, ok := pfcEval(stmts[i+1].children, value); ok {
					return r, true
				}
			}
			if hasElse {
				i++
			}
		}
	}
	return 0, false
}

// pfcProgram evaluates a profile the way libseccomp's database says, with
// the ABI split of x86_64 and x32 that PFC does not print (gen_bpf.c).
type pfcProgram struct {
	blocks  map[uint32][]*pfcStmt // by AUDIT_ARCH; x32 under x32SyscallBit
	badArch uint32
}

func newPFCProgram(text string) (*pfcProgram, error) {
	stmts, err := parsePFC(text)
	if err != nil {
		return nil, err
	}
	p := &pfcProgram{blocks: map[uint32][]*pfcStmt{}}
	// Arch blocks come in libseccomp's order; the first x86_64 block is
	// x86_64's when the filter has it, else x32's.
	seen64 := 0
	for _, s := range stmts {
		switch {
		case s.kind == "if" && s.lhs == "$arch":
			key := s.val
			if s.val == archX86_64.audit {
				seen64++
				key = s.val | uint32(seen64-1) // 0: first block, 1: second
			}
			p.blocks[key] = s.children
		case s.kind == "action":
			p.badArch = s.action
		}
	}
	return p, nil
}

func (p *pfcProgram) eval(d seccompData, archs []*archDef) uint32 {
	block, ok := p.blocks[d.arch]
	if d.arch == archX86_64.audit {
		has64, has32 := containsArch(archs, archX86_64), containsArch(archs, archX32)
		// Blocks are numbered in filter order.
		i64, i32 := 0, 0
		for i, a := range archs {
			if a == archX86_64 {
				i64 = i
			}
			if a == archX32 {
				i32 = i
			}
		}
		first64 := !has32 || (has64 && i64 < i32)
		idx := func(want64 bool) uint32 {
			if want64 == first64 {
				return archX86_64.audit
			}
			return archX86_64.audit | 1
		}
		switch {
		case has64 && has32:
			if d.nr&x32SyscallBit != 0 {
				block = p.blocks[idx(false)]
			} else {
				block = p.blocks[idx(true)]
			}
		case has64:
			if d.nr >= x32SyscallBit && d.nr != 0xffffffff {
				return p.badArch
			}
			block = p.blocks[idx(true)]
		case has32:
			if d.nr < x32SyscallBit {
				return p.badArch
			}
			block = p.blocks[idx(false)]
		}
		ok = block != nil
	}
	if !ok {
		return p.badArch
	}
	r, found := pfcEval(block, func(lhs string) uint32 {
		if lhs == "$syscall" {
			return d.nr
		}
		var n int
		var half string
		fmt.Sscanf(strings.TrimPrefix(lhs, "$a"), "%d", &n)
		if i := strings.Index(lhs, "."); i >= 0 {
			half = lhs[i+1:]
		}
		if half == "hi32" {
			return uint32(d.args[n] >> 32)
		}
		return uint32(d.args[n])
	})
	if !found {
		panic("pfc arch block falls through")
	}
	return r
}
