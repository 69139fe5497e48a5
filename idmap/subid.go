package idmap

import (
	"bufio"
	"cmp"
	"errors"
	"fmt"
	"io"
	"math"
	"slices"
	"strconv"
	"strings"
)

// SubIDRange is one subordinate id range: ids Start to Start+Count-1.
type SubIDRange struct{ Start, Count uint32 }

// end returns one past the last id, as uint64 so that it cannot wrap.
func (r SubIDRange) end() uint64 { return uint64(r.Start) + uint64(r.Count) }

// subIDEntry is one parsed line of a subuid/subgid file.
type subIDEntry struct {
	owner string // user name or numeric uid, as written
	r     SubIDRange
	line  int
}

// maxLineLen bounds one subuid line; shadow's own limit is far lower.
const maxLineLen = 64 << 10

// ParseSubID parses subuid or subgid text (subuid(5): "owner:start:count"
// per line) and returns, in file order, the ranges whose owner is name or
// the decimal string of id. Blank lines and lines starting with '#' are
// ignored. A malformed line, whoever owns it, is an error that names the
// line number and wraps ErrMalformed: newuidmap reads the same file, and a
// broken file is better reported than half-used.
//
// A range is malformed when it has no owner, a count of 0, or reaches past
// id 4294967294 (the kernel rejects map extents whose end wraps uint32).
func ParseSubID(r io.Reader, name string, id uint32) ([]SubIDRange, error) {
	entries, err := parseSubIDEntries(r)
	if err != nil {
		return nil, err
	}
	num := strconv.FormatUint(uint64(id), 10)
	var out []SubIDRange
	for _, e := range entries {
		if (name != "" && e.owner == name) || e.owner == num {
			out = append(out, e.r)
		}
	}
	return out, nil
}

// parseSubIDEntries parses every line, whoever owns it.
func parseSubIDEntries(r io.Reader) ([]subIDEntry, error) {
	var out []subIDEntry
	br := bufio.NewReader(r)
	for n := 1; ; n++ {
		raw, err := br.ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return nil, fmt.Errorf("reading line %d: %w", n, err)
		}
		if len(raw) > maxLineLen {
			return nil, fmt.Errorf("line %d: longer than %d bytes: %w", n, maxLineLen, ErrMalformed)
		}
		if s := strings.TrimSpace(raw); s != "" && !strings.HasPrefix(s, "#") {
			e, perr := parseSubIDLine(s)
			if perr != nil {
				return nil, fmt.Errorf("line %d %q: %w", n, s, perr)
			}
			e.line = n
			out = append(out, e)
		}
		if err != nil { // io.EOF
			return out, nil
		}
	}
}

func parseSubIDLine(s string) (subIDEntry, error) {
	f := strings.Split(s, ":")
	if len(f) != 3 {
		return subIDEntry{}, fmt.Errorf("want owner:start:count: %w", ErrMalformed)
	}
	if f[0] == "" {
		return subIDEntry{}, fmt.Errorf("empty owner: %w", ErrMalformed)
	}
	start, err := strconv.ParseUint(f[1], 10, 32)
	if err != nil {
		return subIDEntry{}, fmt.Errorf("start %q is not a uint32: %w", f[1], ErrMalformed)
	}
	count, err := strconv.ParseUint(f[2], 10, 32)
	if err != nil {
		return subIDEntry{}, fmt.Errorf("count %q is not a uint32: %w", f[2], ErrMalformed)
	}
	if count == 0 {
		return subIDEntry{}, fmt.Errorf("count is 0: %w", ErrMalformed)
	}
	if start+count > math.MaxUint32 {
		return subIDEntry{}, fmt.Errorf("range %d+%d passes the last id %d: %w", start, count, uint32(math.MaxUint32-1), ErrMalformed)
	}
	return subIDEntry{owner: f[0], r: SubIDRange{Start: uint32(start), Count: uint32(count)}}, nil
}

// parseGetsubids parses the output of getsubids(1) from shadow's uidmap
// package: one "index: owner start count" line per range, in order.
func parseGetsubids(out string) ([]SubIDRange, error) {
	var rs []SubIDRange
	for i, line := range strings.Split(strings.TrimSpace(out), "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		f := strings.Fields(line)
		if len(f) != 4 || !strings.HasSuffix(f[0], ":") {
			return nil, fmt.Errorf("getsubids line %d %q: want \"N: owner start count\": %w", i+1, line, ErrMalformed)
		}
		e, err := parseSubIDLine(f[1] + ":" + f[2] + ":" + f[3])
		if err != nil {
			return nil, fmt.Errorf("getsubids line %d %q: %w", i+1, line, err)
		}
		rs = append(rs, e.r)
	}
	return rs, nil
}

// FirstFreeID is where FreeStart starts looking: useradd's default
// SUB_UID_MIN and SUB_GID_MIN (login.defs(5)).
const FirstFreeID = 100000

// FreeStart returns the lowest start >= FirstFreeID of a range of count ids
// that overlaps none of taken (in any order, overlapping each other or
// not), and whether one fits below the last id 4294967294. `run`'s
// "no range" hint and `sandy doctor --fix-script` offer that range.
func FreeStart(taken []SubIDRange, count uint32) (uint32, bool) {
	rs := slices.Clone(taken)
	slices.SortFunc(rs, func(a, b SubIDRange) int { return cmp.Compare(a.Start, b.Start) })
	s := uint64(FirstFreeID)
	for _, r := range rs {
		if r.end() <= s {
			continue
		}
		if uint64(r.Start) >= s+uint64(count) {
			break // the gap before r holds count ids
		}
		s = r.end()
	}
	if s+uint64(count) > math.MaxUint32 {
		return 0, false
	}
	return uint32(s), true
}

// ranges returns the ranges of every entry, whoever owns it.
func ranges(entries []subIDEntry) []SubIDRange {
	rs := make([]SubIDRange, len(entries))
	for i, e := range entries {
		rs[i] = e.r
	}
	return rs
}
