package initproc

import (
	"bufio"
	"bytes"
	"fmt"
	"strconv"
	"strings"
)

// mountEntry is what the init reads of one line of
// /proc/PID/mountinfo (proc_pid_mountinfo(5)).
type mountEntry struct {
	id         uint64
	mountPoint string // relative to the reader's root, unescaped
	shared     bool   // a "shared:N" optional field: in a peer group
}

// mountByID finds the mount whose mount ID is id (statx(2)'s
// stx_mnt_id) in the text of a mountinfo file. Its fields are: mount ID,
// parent ID, major:minor, root, mount point, options, optional fields up
// to "-", then filesystem type, source and super options; the mount point
// escapes space, tab, newline and backslash as \ooo octal.
func mountByID(mountinfo []byte, id uint64) (mountEntry, error) {
	sc := bufio.NewScanner(bytes.NewReader(mountinfo))
	sc.Buffer(make([]byte, 0, 64*1024), 1<<20)
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 7 {
			continue
		}
		mid, err := strconv.ParseUint(f[0], 10, 64)
		if err != nil || mid != id {
			continue
		}
		e := mountEntry{id: mid, mountPoint: unescapeMountinfo(f[4])}
		for _, opt := range f[6:] {
			if opt == "-" {
				break
			}
			if strings.HasPrefix(opt, "shared:") {
				e.shared = true
			}
		}
		return e, nil
	}
	if err := sc.Err(); err != nil {
		return mountEntry{}, fmt.Errorf("reading mountinfo: %w", err)
	}
	return mountEntry{}, fmt.Errorf("mount ID %d not in mountinfo", id)
}

// unescapeMountinfo undoes the kernel's \ooo escapes (seq_file's
// mangle: space, tab, newline, backslash).
func unescapeMountinfo(s string) string {
	if !strings.Contains(s, `\`) {
		return s
	}
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		if s[i] == '\\' && i+4 <= len(s) {
			if v, err := strconv.ParseUint(s[i+1:i+4], 8, 8); err == nil {
				b.WriteByte(byte(v))
				i += 3
				continue
			}
		}
		b.WriteByte(s[i])
	}
	return b.String()
}
