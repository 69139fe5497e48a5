package idmap

import (
	"fmt"
	"math"
	"slices"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// MaxLines is the most lines the kernel accepts in one uid_map or gid_map
// (user_namespaces(7); 5 before Linux 4.15).
const MaxLines = 340

// interval is a half-open range of ids [lo, hi), in uint64 so that an end
// of 1<<32 cannot wrap.
type interval struct{ lo, hi uint64 }

// subtract returns the parts of iv not covered by any of cover, in order.
func subtract(iv interval, cover []interval) []interval {
	parts := []interval{iv}
	for _, c := range cover {
		var next []interval
		for _, p := range parts {
			if c.hi <= p.lo || c.lo >= p.hi {
				next = append(next, p)
				continue
			}
			if p.lo < c.lo {
				next = append(next, interval{p.lo, c.lo})
			}
			if c.hi < p.hi {
				next = append(next, interval{c.hi, p.hi})
			}
		}
		parts = next
	}
	return parts
}

// buildAuto builds the automatic map: container id 0 to the caller's own
// id, then container ids 1, 2, ... to the subordinate ranges in the order
// given (file order). Parts of a range that repeat an earlier range or the
// own id are dropped, since the kernel rejects overlapping host ranges;
// host-adjacent pieces are merged into one line. The own-id line is never
// merged with its neighbours: newuidmap accepts the own id only as a line of
// its own (size 1).
func buildAuto(own uint32, ranges []SubIDRange) ([]specs.LinuxIDMapping, error) {
	m := []specs.LinuxIDMapping{{ContainerID: 0, HostID: own, Size: 1}}
	covered := []interval{{uint64(own), uint64(own) + 1}}
	next := uint64(1) // next container id
	for _, r := range ranges {
		for _, p := range subtract(interval{uint64(r.Start), r.end()}, covered) {
			covered = append(covered, p)
			// Container ids too must end at or below MaxUint32.
			size := min(p.hi-p.lo, math.MaxUint32-next)
			if size == 0 {
				continue
			}
			last := &m[len(m)-1]
			if len(m) > 1 && uint64(last.HostID)+uint64(last.Size) == p.lo {
				last.Size += uint32(size)
			} else {
				m = append(m, specs.LinuxIDMapping{ContainerID: uint32(next), HostID: uint32(p.lo), Size: uint32(size)})
			}
			next += size
		}
	}
	if len(m) > MaxLines {
		return nil, fmt.Errorf("%d subordinate ranges make %d map lines, more than the kernel's %d: %w", len(ranges), len(m), MaxLines, ErrInvalidMapping)
	}
	return m, nil
}

// singleMapping is the map an unprivileged process may write itself:
// container root is the caller's own id.
func singleMapping(own uint32) []specs.LinuxIDMapping {
	return []specs.LinuxIDMapping{{ContainerID: 0, HostID: own, Size: 1}}
}

// isOwnSingle reports whether m is exactly one line mapping the caller's own
// id, which needs no helper.
func isOwnSingle(m []specs.LinuxIDMapping, own uint32) bool {
	return len(m) == 1 && m[0].HostID == own && m[0].Size == 1
}

func fmtMapping(m specs.LinuxIDMapping) string {
	return fmt.Sprintf("{containerID: %d, hostID: %d, size: %d}", m.ContainerID, m.HostID, m.Size)
}

// formatArgv renders an argv the way errors show it: [a b c].
func formatArgv(a []string) string { return "[" + strings.Join(a, " ") + "]" }

// mapText renders m in the kernel's uid_map/gid_map write format.
func mapText(m []specs.LinuxIDMapping) string {
	var b strings.Builder
	for _, l := range m {
		fmt.Fprintf(&b, "%d %d %d\n", l.ContainerID, l.HostID, l.Size)
	}
	return b.String()
}

// helperArgs renders m as newuidmap/newgidmap arguments after the pid.
func helperArgs(m []specs.LinuxIDMapping) []string {
	var a []string
	for _, l := range m {
		a = append(a, fmt.Sprint(l.ContainerID), fmt.Sprint(l.HostID), fmt.Sprint(l.Size))
	}
	return a
}

// sortedIntervals returns the intervals of m's container (host=false) or
// host (host=true) side, with their index, sorted by start.
func sortedIntervals(m []specs.LinuxIDMapping, host bool) []indexed {
	out := make([]indexed, len(m))
	for i, l := range m {
		lo := uint64(l.ContainerID)
		if host {
			lo = uint64(l.HostID)
		}
		out[i] = indexed{i, interval{lo, lo + uint64(l.Size)}}
	}
	slices.SortFunc(out, func(a, b indexed) int { return cmpU64(a.iv.lo, b.iv.lo) })
	return out
}

type indexed struct {
	i  int
	iv interval
}

func cmpU64(a, b uint64) int {
	switch {
	case a < b:
		return -1
	case a > b:
		return 1
	}
	return 0
}
