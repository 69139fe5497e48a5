//go:build linux

package cgroupv2

import (
	"context"
	"errors"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// These run on any host, CI included: they prove the "none" rung never loses
// a limit silently. The managers that do enforce limits are proven in the
// VM (vm_test.go, build tag vmcgroup).

var limited = &specs.LinuxResources{
	Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20)},
	Pids:   &specs.LinuxPids{Limit: ptr[int64](20)},
	CPU:    &specs.LinuxCPU{Quota: ptr[int64](50000), Period: ptr[uint64](100000)},
}

type lines []string

func (l *lines) add(s string) { *l = append(*l, s) }

func TestNoneForcedRefusesLimits(t *testing.T) {
	m, err := New(Options{ID: "c1", Manager: KindNone, Resources: limited})
	var ue *UnenforcedError
	if !errors.As(err, &ue) {
		t.Fatalf("New = %v, %v; want *UnenforcedError", m, err)
	}
	msg := err.Error()
	for _, want := range []string{
		"cannot enforce memory limit (linux.resources.memory.limit=67108864), cpu quota (linux.resources.cpu.quota=50000 period=100000), pids limit (linux.resources.pids.limit=20)",
		"--cgroup-manager=none",
		"\nhint: drop --cgroup-manager=none; or pass --allow-unenforced to run without them",
	} {
		if !strings.Contains(msg, want) {
			t.Errorf("error lacks %q:\n%s", want, msg)
		}
	}
}

func TestNoneAllowUnenforcedWarnsOncePerLimit(t *testing.T) {
	var warn, debug lines
	m, err := New(Options{ID: "c1", Manager: KindNone, Resources: limited, AllowUnenforced: true, Warn: warn.add, Debug: debug.add})
	if err != nil {
		t.Fatal(err)
	}
	if m.Kind() != KindNone || m.Path() != "" {
		t.Fatalf("Kind %q Path %q, want none and no path", m.Kind(), m.Path())
	}
	if len(warn) != 3 {
		t.Fatalf("want 3 warning lines, one per limit, got %d:\n%s", len(warn), strings.Join(warn, "\n"))
	}
	for _, w := range warn {
		if strings.Contains(w, "\n") || !strings.Contains(w, "not enforced") || !strings.HasSuffix(w, "(--allow-unenforced)") {
			t.Errorf("warning line %q: want one line saying what is not enforced and why", w)
		}
	}
	if len(debug) != 0 {
		t.Errorf("debug lines %q: the lost limits were warned about already", debug)
	}
	checkNoneVerbs(t, m)
}

// TestNoneWithoutLimitsIsQuiet: a none asked for (--cgroup-manager=none)
// is no fallback: no warning, even from sandy run (WarnNone).
func TestNoneWithoutLimitsIsQuiet(t *testing.T) {
	var warn, debug lines
	r := &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}
	m, err := New(Options{ID: "c1", Manager: KindNone, Resources: r, WarnNone: true, Warn: warn.add, Debug: debug.add})
	if err != nil {
		t.Fatal(err)
	}
	if len(warn) != 0 || len(debug) != 1 || !strings.Contains(debug[0], "cgroup manager: none") {
		t.Errorf("want no warning and one debug line, got warn %q debug %q", warn, debug)
	}
	st, err := m.State()
	if err != nil {
		t.Fatal(err)
	}
	l, err := Load(st)
	if err != nil || l.Kind() != KindNone {
		t.Fatalf("Load(%s) = %v, %v", st, l, err)
	}
}

func TestIgnoredSettingsWarn(t *testing.T) {
	var warn lines
	//lint:ignore SA1019 the deprecated field is what this test feeds in
	r := &specs.LinuxResources{Memory: &specs.LinuxMemory{Kernel: ptr[int64](1 << 20)}}
	if _, err := New(Options{ID: "c1", Manager: KindNone, Resources: r, Warn: warn.add}); err != nil {
		t.Fatal(err)
	}
	if len(warn) != 1 || !strings.Contains(warn[0], "kernel memory limit ignored") {
		t.Errorf("warn = %q, want one line about the kernel memory limit", warn)
	}
}

func TestRealtimeIsUnenforcedEverywhere(t *testing.T) {
	r := &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr[int64](1000)}}
	_, err := New(Options{ID: "c1", Manager: KindNone, Resources: r})
	var ue *UnenforcedError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "realtime cpu") {
		t.Fatalf("New = %v, want an *UnenforcedError about realtime cpu", err)
	}
}

func TestNewRejects(t *testing.T) {
	for _, tc := range []struct {
		name string
		o    Options
		want string
	}{
		{"empty id", Options{}, "empty container id"},
		{"unknown manager", Options{ID: "c", Manager: "cgroupfs2"}, `unknown cgroup manager "cgroupfs2"`},
		{"bad resources", Options{ID: "c", Resources: &specs.LinuxResources{Unified: map[string]string{"a/b.c": "1"}}}, "invalid key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if _, err := New(tc.o); err == nil || !strings.Contains(err.Error(), tc.want) {
				t.Fatalf("New = %v, want error with %q", err, tc.want)
			}
		})
	}
}

// TestAutoOnThisHost runs New as sandy run would. On a host without cgroup
// v2 (ours: hybrid, no systemd) the answer must be the loud refusal that
// names the hierarchy and the fix; on a unified host it must not claim so.
func TestAutoOnThisHost(t *testing.T) {
	h := hierarchy()
	t.Logf("hierarchy: %s, features: %v", h, Features())
	_, err := New(Options{ID: "c1", Resources: limited})
	if h != "unified" {
		var ue *UnenforcedError
		if !errors.As(err, &ue) {
			t.Fatalf("New on a %s host = %v, want *UnenforcedError", h, err)
		}
		for _, want := range []string{"cgroup v1", "systemd.unified_cgroup_hierarchy=1", "loginctl enable-linger", "--allow-unenforced"} {
			if !strings.Contains(err.Error(), want) {
				t.Errorf("error lacks %q:\n%s", want, err)
			}
		}
		t.Logf("error as printed:\n%v", err)
		for _, forced := range []string{KindSystemd, KindCgroupfs} {
			_, err := New(Options{ID: "c1", Manager: forced})
			if err == nil || !strings.Contains(err.Error(), "unified_cgroup_hierarchy") {
				t.Errorf("forced %s on a %s host: %v, want an error with the fix", forced, h, err)
			}
		}
		var warn lines
		m, err := New(Options{ID: "c1", Resources: limited, AllowUnenforced: true, Warn: warn.add})
		if err != nil || m.Kind() != KindNone || len(warn) != 3 {
			t.Fatalf("with --allow-unenforced: %v, %v, warnings %q; want none and 3 warnings", m, err, warn)
		}
		t.Logf("warnings as printed:\n%s", strings.Join(warn, "\n"))
		testNoneFallback(t, h)
		return
	}
	if err != nil && strings.Contains(err.Error(), "cgroup v1") {
		t.Fatalf("unified host, but: %v", err)
	}
}

// testNoneFallback: with no limit asked for, auto ending on none is said
// in exactly one line, doctor's words (Probe), by sandy run (WarnNone);
// create (no WarnNone) leaves it to --debug.
func testNoneFallback(t *testing.T, h string) {
	var warn, debug lines
	m, err := New(Options{ID: "c1", WarnNone: true, Warn: warn.add, Debug: debug.add})
	if err != nil || m.Kind() != KindNone {
		t.Fatalf("auto with no limits on a %s host: %v, %v; want none", h, m, err)
	}
	ch := Probe()
	spawn := func() (int, func(), error) {
		t.Fatal("ProbeScope started a process on a host without cgroup v2")
		return 0, nil, nil
	}
	if sc := ProbeScope(context.Background(), spawn); sc.Reason != ch.Reason || sc.Fix != ch.Fix || sc.Manager != KindNone {
		t.Errorf("ProbeScope on a %s host = %+v, want Probe's %+v", h, sc, ch)
	}
	if len(warn) != 1 || warn[0] != ch.Warning() || len(debug) != 0 {
		t.Fatalf("auto on a %s host, WarnNone: warn %q debug %q; want the one line %q", h, warn, debug, ch.Warning())
	}
	for _, want := range []string{"cgroup manager none: " + ch.Reason + ": ", "no memory, pids or cpu limits", "; fix: " + ch.Fix, "systemd.unified_cgroup_hierarchy=1", "(docs/troubleshooting.md#cgroup-manager-none)"} {
		if !strings.Contains(warn[0], want) {
			t.Errorf("line lacks %q:\n%s", want, warn[0])
		}
	}
	t.Logf("the line as printed:\n%s", warn[0])
	warn, debug = nil, nil
	if _, err := New(Options{ID: "c1", Warn: warn.add, Debug: debug.add}); err != nil || len(warn) != 0 || len(debug) != 1 {
		t.Errorf("auto without WarnNone (create): %v, warn %q debug %q; want one debug line", err, warn, debug)
	}
}

func checkNoneVerbs(t *testing.T, m Manager) {
	t.Helper()
	ctx := context.Background()
	if err := m.Prepare(ctx); err != nil {
		t.Error(err)
	}
	if _, ok := m.CgroupFD(); ok {
		t.Error("CgroupFD ok for none")
	}
	if err := m.Apply(ctx, 1); err != nil {
		t.Error(err)
	}
	if _, err := m.Pids(); !errors.Is(err, ErrNoCgroup) {
		t.Errorf("Pids: %v, want ErrNoCgroup", err)
	}
	if err := m.Freeze(ctx, true); !errors.Is(err, ErrNoCgroup) {
		t.Errorf("Freeze: %v, want ErrNoCgroup", err)
	}
	if err := m.Destroy(ctx); err != nil {
		t.Error(err)
	}
}
