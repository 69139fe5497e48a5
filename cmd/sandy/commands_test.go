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

// TestClassifyRun: how `sandy run` reads its first argument. A path or a
// bundle directory is a bundle, --bundle or no argument is runc's form, a
// plain word in a bundle directory stays runc's form (engines and runc's
// tests type `run ID` there) with a note, and anything else is an image.
func TestClassifyRun(t *testing.T) {
	bundles := map[string]bool{"mybundle": true}
	isDir := func(p string) bool { return bundles[p] }
	for _, tc := range []struct {
		arg        string
		bundleFlag bool
		cwdBundle  bool
		want       runForm
		note       bool
	}{
		{"", false, true, formRuncID, false},
		{"ctr1", true, false, formRuncID, false},
		{".", false, false, formBundle, false},
		{"..", false, false, formBundle, false},
		{"./b", false, false, formBundle, false},
		{"/srv/b", false, false, formBundle, false},
		{"../b", false, true, formBundle, false},
		{"mybundle", false, false, formBundle, false},
		{"alpine", false, true, formRuncID, true},
		{"alpine", false, false, formImage, false},
		{"localhost/alpine:3", false, true, formImage, false},
		{"docker.io/library/alpine", false, false, formImage, false},
		{"alpine@sha256:abc", false, true, formImage, false},
		{"alpine:3", false, true, formImage, false},
	} {
		form, note := classifyRun(tc.arg, tc.bundleFlag, func() bool { return tc.cwdBundle }, isDir)
		if form != tc.want || (note != "") != tc.note {
			t.Errorf("classifyRun(%q, bundle flag %v, cwd bundle %v) = %v, note %q; want %v, note %v",
				tc.arg, tc.bundleFlag, tc.cwdBundle, form, note, tc.want, tc.note)
		}
	}
}
