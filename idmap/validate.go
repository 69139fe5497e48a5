package idmap

import (
	"fmt"
	"math"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// ValidateMappings checks what the kernel checks when a map is written
// (user_namespaces(7), kernel/user_namespace.c map_write): at least one
// and at most MaxLines lines, no zero size, no range whose end wraps past
// uint32 on either side, and no two lines overlapping on either side. kind
// ("uidMappings" or "gidMappings") names the field in errors. Errors wrap
// ErrInvalidMapping and name the offending line by index.
func ValidateMappings(kind string, m []specs.LinuxIDMapping) error {
	if len(m) == 0 {
		return fmt.Errorf("%s is empty: %w", kind, ErrInvalidMapping)
	}
	if len(m) > MaxLines {
		return fmt.Errorf("%s has %d lines, more than the kernel's %d: %w", kind, len(m), MaxLines, ErrInvalidMapping)
	}
	for i, l := range m {
		switch {
		case l.Size == 0:
			return fmt.Errorf("%s[%d] %s: size is 0: %w", kind, i, fmtMapping(l), ErrInvalidMapping)
		case uint64(l.ContainerID)+uint64(l.Size) > math.MaxUint32:
			return fmt.Errorf("%s[%d] %s: container ids pass the last id %d: %w", kind, i, fmtMapping(l), uint32(math.MaxUint32-1), ErrInvalidMapping)
		case uint64(l.HostID)+uint64(l.Size) > math.MaxUint32:
			return fmt.Errorf("%s[%d] %s: host ids pass the last id %d: %w", kind, i, fmtMapping(l), uint32(math.MaxUint32-1), ErrInvalidMapping)
		}
	}
	for _, side := range []struct {
		name string
		host bool
	}{{"container", false}, {"host", true}} {
		s := sortedIntervals(m, side.host)
		for j := 1; j < len(s); j++ {
			if s[j].iv.lo < s[j-1].iv.hi {
				a, b := min(s[j-1].i, s[j].i), max(s[j-1].i, s[j].i)
				return fmt.Errorf("%s[%d] %s and %s[%d] %s: %s ids overlap: %w",
					kind, a, fmtMapping(m[a]), kind, b, fmtMapping(m[b]), side.name, ErrInvalidMapping)
			}
		}
	}
	return nil
}

// checkOwned checks that newuidmap/newgidmap would accept every line of m
// for a caller with id own and subordinate ranges owned: a line is allowed
// when it is the own id alone (size 1), or when its host ids lie inside the
// union of owned ranges (shadow's have_range lets one line span adjacent
// ranges). src names where owned came from, for the error; hint is the fix.
func checkOwned(kind string, m []specs.LinuxIDMapping, own uint32, owned []SubIDRange, idName, src, hint string) error {
	cover := make([]interval, len(owned))
	for i, r := range owned {
		cover[i] = interval{uint64(r.Start), r.end()}
	}
	for i, l := range m {
		if l.HostID == own && l.Size == 1 {
			continue
		}
		iv := interval{uint64(l.HostID), uint64(l.HostID) + uint64(l.Size)}
		left := subtract(iv, cover)
		if len(left) == 0 {
			continue
		}
		why := fmt.Sprintf("host %ss %d-%d are not yours: only %s %d alone and the ranges in %s (%s) can be mapped",
			idName, left[0].lo, left[0].hi-1, idName, own, src, fmtRanges(owned))
		if l.HostID <= own && uint64(own) < iv.hi && l.Size > 1 {
			why += fmt.Sprintf("; your own %s %d must be a line of its own with size 1", idName, own)
		}
		return fmt.Errorf("%s[%d] %s: %s: %w\nhint: %s", kind, i, fmtMapping(l), why, ErrNotOwned, hint)
	}
	return nil
}

func fmtRanges(rs []SubIDRange) string {
	if len(rs) == 0 {
		return "none"
	}
	s := make([]string, len(rs))
	for i, r := range rs {
		s[i] = fmt.Sprintf("%d-%d", r.Start, r.end()-1)
	}
	return strings.Join(s, ", ")
}
