package cgroupv2

import (
	"context"
	"encoding/json"
	"fmt"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// Manager kinds, as Kind returns them and Options.Manager accepts them.
const (
	KindSystemd  = "systemd"
	KindCgroupfs = "cgroupfs"
	KindNone     = "none"
	KindAuto     = "auto"
)

// Options says what cgroup a container wants.
type Options struct {
	ID string
	// CgroupsPath is OCI linux.cgroupsPath: "" (sandy picks), runc's systemd
	// form "slice:prefix:name", or a cgroupfs path (absolute: from the cgroup
	// root; relative: under the caller's delegated cgroup).
	CgroupsPath string
	// Manager is "auto" (or ""), "systemd", "cgroupfs" or "none". A forced
	// manager that cannot work here is an error, never a fallback.
	Manager   string
	Resources *specs.LinuxResources
	// AllowUnenforced (--allow-unenforced) turns lost limits into one Warn
	// line each instead of an *UnenforcedError.
	AllowUnenforced bool
	// WarnNone: when auto ends on none and no limit is lost, say so in
	// one Warn line (FallbackNone) instead of a Debug line. sandy run sets
	// it; create does not, since the engines that call it arrange their
	// own cgroups and read a runtime's stderr as an error.
	WarnNone bool
	Warn     func(string) // one line per degraded thing
	Debug    func(string) // which manager was picked and why
}

func (o *Options) warn(s string) {
	if o.Warn != nil {
		o.Warn(s)
	}
}

func (o *Options) debug(format string, args ...any) {
	if o.Debug != nil {
		o.Debug(fmt.Sprintf(format, args...))
	}
}

// Manager is a container's cgroup. Call order on the host side:
// New → Prepare → (start the init, with CgroupFD when ok) → Apply(pid) →
// ... → Destroy, and Close when the process is done with the value. A later
// process rebuilds it with Load(State()).
type Manager interface {
	Kind() string // KindSystemd, KindCgroupfs or KindNone
	// Prepare runs before the init starts: cgroupfs creates the container
	// cgroup and writes the limits, so the init can be cloned into it.
	Prepare(ctx context.Context) error
	// CgroupFD is an O_PATH|O_DIRECTORY fd of the container cgroup for
	// SysProcAttr{UseCgroupFD: true, CgroupFD: fd} (clone3 CLONE_INTO_CGROUP,
	// Linux 5.7+); ok is false until there is one (systemd: after Apply).
	// The Manager owns the fd; Close closes it.
	CgroupFD() (fd int, ok bool)
	// Apply puts pid, the container init (on the host, before it runs any
	// container code), into the container cgroup and makes the limits hold.
	Apply(ctx context.Context, pid int) error
	Path() string           // absolute cgroupfs dir of the container cgroup, "" for none
	State() ([]byte, error) // for Load in a later process
	// Destroy kills what is left in the container cgroup and removes it
	// (systemd: stops the scope). Idempotent.
	Destroy(ctx context.Context) error
	// Close releases the fd and the D-Bus connection; the cgroup stays.
	Close() error

	Pids() ([]int, error)                                      // every pid in the container cgroup and below
	Freeze(ctx context.Context, frozen bool) error             // pause/resume through cgroup.freeze
	Update(ctx context.Context, r *specs.LinuxResources) error // change limits on a live container
	Stats() (*Stats, error)
	Events() (*Events, error) // counters from memory.events and pids.events
	Kill(sig int) error       // signal every process (SIGKILL: cgroup.kill, Linux 5.14+)
	// Watch follows the event counters while the cgroup lives; start it
	// before the init runs to learn about an OOM kill that ends it.
	Watch() (*Watcher, error)
	// Join puts one more process (sandy exec) into the running container's
	// cgroup. systemd: through the user manager (AttachProcessesToUnit,
	// systemd 248+), because the caller may not write the cgroup.procs of the
	// common ancestor the kernel checks (a login session's scope and the
	// user manager's subtree meet in root-owned user-UID.slice).
	Join(ctx context.Context, pid int) error
	// Supervise puts pid, a host-side helper of this container, into the
	// scope's supervisor/ leaf (systemd; a no-op for cgroupfs and none).
	// Destroy kills it. A systemd scope is stopped and its cgroup removed as
	// soon as it is empty, taking the container's counters (memory.events
	// oom_kill, cpu.stat) with it; a sentinel process here keeps the scope
	// until Destroy, so `sandy run` can report an OOM kill after the init died.
	Supervise(ctx context.Context, pid int) error
}

// Stats are the numbers `sandy events --stats` reports. Absent files read as 0.
type Stats struct {
	MemoryCurrent    uint64            `json:"memory_current"`
	MemoryMax        uint64            `json:"memory_max"` // 0: no limit
	MemoryPeak       uint64            `json:"memory_peak,omitempty"`
	SwapCurrent      uint64            `json:"swap_current"`
	MemoryStat       map[string]uint64 `json:"memory_stat,omitempty"`
	CPUUsageUsec     uint64            `json:"cpu_usage_usec"`
	CPUUserUsec      uint64            `json:"cpu_user_usec"`
	CPUSystemUsec    uint64            `json:"cpu_system_usec"`
	CPUNrPeriods     uint64            `json:"cpu_nr_periods"`
	CPUNrThrottled   uint64            `json:"cpu_nr_throttled"`
	CPUThrottledUsec uint64            `json:"cpu_throttled_usec"`
	PidsCurrent      uint64            `json:"pids_current"`
	PidsMax          uint64            `json:"pids_max"` // 0: no limit
	Events           Events            `json:"events"`
}

// Events are the cumulative counters from memory.events and pids.events.
type Events struct {
	OOM       uint64 `json:"oom"`      // times the memory limit was hit and reclaim failed
	OOMKill   uint64 `json:"oom_kill"` // processes the OOM killer killed
	MemMax    uint64 `json:"max"`      // times usage hit memory.max
	MemHigh   uint64 `json:"high"`     // times usage went over memory.high
	PidsMax   uint64 `json:"pids_max"` // forks refused by pids.max
	Populated bool   `json:"populated"`
	Frozen    bool   `json:"frozen"`
}

// state is what State returns and Load reads.
type state struct {
	Kind  string `json:"kind"`
	Path  string `json:"path,omitempty"`  // container cgroup dir
	Unit  string `json:"unit,omitempty"`  // systemd scope name
	Scope string `json:"scope,omitempty"` // systemd scope cgroup dir
	Bus   string `json:"bus,omitempty"`   // user bus address the scope was made on
}

// Load rebuilds a Manager from State in another process: for delete, kill,
// ps, pause, update, also after sandy was killed with SIGKILL. It does not
// touch the bus until a method needs it.
func Load(data []byte) (Manager, error) { return LoadWith(data, Options{}) }

// LoadWith is Load with the Options (AllowUnenforced, Warn, Debug) that
// Update uses.
func LoadWith(data []byte, o Options) (Manager, error) {
	var s state
	if err := json.Unmarshal(data, &s); err != nil {
		return nil, fmt.Errorf("loading cgroup state: %w", err)
	}
	switch s.Kind {
	case KindNone:
		return noneManager{}, nil
	case KindCgroupfs:
		if s.Path == "" {
			return nil, fmt.Errorf("loading cgroup state: cgroupfs state without a path")
		}
		return &fsManager{leaf: leaf{path: s.Path}, fd: -1, opts: &o, plan: &plan{}}, nil
	case KindSystemd:
		if s.Unit == "" || s.Bus == "" {
			return nil, fmt.Errorf("loading cgroup state: systemd state without a unit or bus")
		}
		return &sdManager{leaf: leaf{path: s.Path}, unit: s.Unit, scope: s.Scope, addr: s.Bus, fd: -1, opts: &o, plan: &plan{}}, nil
	}
	return nil, fmt.Errorf("loading cgroup state: unknown manager kind %q", s.Kind)
}
