package main

import (
	"io"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/lifecycle"
)

// TestRootfsModeDefault: create (the engine's verb) defaults to direct, run
// (the person's verb) to auto; the global --rootfs-mode or
// $SANDY_ROOTFS_MODE (g.RootfsMode) and the verb's own flag override that.
func TestRootfsModeDefault(t *testing.T) {
	tests := []struct {
		verb, global string
		args         []string
		want         string
	}{
		{"create", "", nil, "direct"},
		{"run", "", nil, "auto"},
		{"create", "overlay", nil, "overlay"},
		{"run", "direct", nil, "direct"},
		{"create", "", []string{"--rootfs-mode=auto"}, "auto"},
		{"run", "", []string{"--rootfs-mode=direct"}, "direct"},
		{"create", "bind", []string{"--rootfs-mode=copy"}, "copy"},
	}
	for _, tt := range tests {
		g := &lifecycle.Global{Stderr: io.Discard, RootfsMode: tt.global}
		o := &lifecycle.CreateOptions{}
		fs := createFlags(tt.verb, tt.verb, g, o)
		if err := fs.Parse(tt.args); err != nil {
			t.Fatal(err)
		}
		if o.RootfsMode != tt.want {
			t.Errorf("%s with global %q and %v: --rootfs-mode %q, want %q", tt.verb, tt.global, tt.args, o.RootfsMode, tt.want)
		}
	}
}

// TestParseSignal: kill's SIGNAL as runc reads it: names with or without
// SIG in any case, numbers, and 0 (check only, as kill(2)).
func TestParseSignal(t *testing.T) {
	tests := []struct {
		in   string
		want unix.Signal
		err  bool
	}{
		{"0", 0, false},
		{"9", unix.SIGKILL, false},
		{"KILL", unix.SIGKILL, false},
		{"sigterm", unix.SIGTERM, false},
		{"SIGHUP", unix.SIGHUP, false},
		{"64", 64, false},
		{"-1", 0, true},
		{"65", 0, true},
		{"NOPE", 0, true},
	}
	for _, tt := range tests {
		got, err := parseSignal(tt.in)
		if (err != nil) != tt.err || got != tt.want {
			t.Errorf("parseSignal(%q) = %d, %v; want %d, error %v", tt.in, got, err, tt.want, tt.err)
		}
	}
}
