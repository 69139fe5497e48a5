package main

import (
	"io"
	"testing"

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
