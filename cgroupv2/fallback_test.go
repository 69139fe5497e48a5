package cgroupv2

import "testing"

// TestUnenforcedLine: the --allow-unenforced line reads as docs/cgroups.md
// shows it, one per limit.
func TestUnenforcedLine(t *testing.T) {
	var lines []string
	o := &Options{AllowUnenforced: true, Warn: func(s string) { lines = append(lines, s) }}
	lost := []limit{{What: "memory limit", Field: "linux.resources.memory.limit=67108864"}, {What: "pids limit", Field: "linux.resources.pids.limit=20"}}
	if err := o.lose(lost, nil, "why", "fix"); err != nil {
		t.Fatal(err)
	}
	want := []string{
		"memory limit (linux.resources.memory.limit=67108864) not enforced: why (--allow-unenforced)",
		"pids limit (linux.resources.pids.limit=20) not enforced: why (--allow-unenforced)",
	}
	if len(lines) != len(want) || lines[0] != want[0] || lines[1] != want[1] {
		t.Errorf("Warn lines = %q, want %q", lines, want)
	}
}
