package cgroupv2

import (
	"errors"
	"fmt"
	"math"
	"sort"
	"strconv"
	"strings"

	"github.com/godbus/dbus/v5"
	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// This file turns OCI linux.resources (written for cgroup v1) into cgroup v2
// files and systemd unit properties. It is pure: no I/O, so every conversion
// is table-tested. The conversions follow runc (opencontainers/cgroups
// fs2 and systemd/v2) and crun, so a config.json means the same limits
// under sandy as under them.

// file is one cgroup v2 interface file to write in the container's cgroup.
type file struct {
	Name  string // e.g. "memory.max"
	Value string
}

// property is one systemd unit property as D-Bus marshals it: (sv).
type property struct {
	Name  string
	Value dbus.Variant
}

func prop(name string, v any) property { return property{Name: name, Value: dbus.MakeVariant(v)} }

// limit is one thing config.json asks the cgroup to enforce, named for
// humans: "memory limit (linux.resources.memory.limit=67108864)".
type limit struct {
	What       string // "memory limit"
	Field      string // "linux.resources.memory.limit=67108864"
	Controller string // "memory"; "" when cgroup v2 has no controller for it
}

func (l limit) String() string { return l.What + " (" + l.Field + ")" }

// plan is what a LinuxResources asks of a cgroup v2 hierarchy.
type plan struct {
	Files   []file     // written to the container cgroup, in order
	fileFor []limit    // fileFor[i] is the limit Files[i] enforces
	Props   []property // systemd properties for the scope
	Limits  []limit    // each requested limit; the "none" manager refuses or warns per entry
	// Unsupported are limits no cgroup v2 manager can enforce (realtime CPU,
	// net_cls/net_prio): lost limits, an error unless AllowUnenforced.
	Unsupported []limit
	// Ignored are settings cgroup v2 has no knob for and that runc and crun
	// ignore there too (kernel memory, swappiness): one warning line each.
	Ignored []limit
}

// Controllers returns the controllers the plan's limits need, sorted.
func (p *plan) Controllers() []string {
	seen := map[string]bool{}
	var out []string
	for _, l := range p.Limits {
		if l.Controller != "" && !seen[l.Controller] {
			seen[l.Controller] = true
			out = append(out, l.Controller)
		}
	}
	sort.Strings(out)
	return out
}

// CPUSharesToWeight converts a cgroup v1 cpu.shares value [2, 262144] to a
// cgroup v2 cpu.weight [1, 10000] with the quadratic runc (opencontainers/cgroups
// since 2025) and crun (1.23+) use: it maps the v1 default 1024 to the v2
// default 100, 2 to 1 and 262144 to 10000. The older linear formula
// 1 + (shares-2)*9999/262142 sent the default 1024 to 39, starving containers
// that asked for "default" shares (kubernetes/kubernetes#131216). 0 means unset.
func CPUSharesToWeight(shares uint64) uint64 {
	switch {
	case shares == 0:
		return 0
	case shares <= 2:
		return 1
	case shares >= 262144:
		return 10000
	}
	l := math.Log2(float64(shares))
	exp := (l*l+125*l)/612.0 - 7.0/34.0
	return uint64(math.Ceil(math.Pow(10, exp)))
}

// BlkioWeightToIOWeight converts a cgroup v1 blkio.weight [10, 1000] to a v2
// io.weight [1, 10000] (runc and crun: linear). 0 means unset.
func BlkioWeightToIOWeight(w uint16) uint64 {
	if w == 0 {
		return 0
	}
	if w < 10 {
		w = 10
	}
	return 1 + (uint64(w)-10)*9999/990
}

// SwapToV2 converts OCI memory.swap, which is memory+swap as in cgroup v1's
// memory.memsw.limit_in_bytes, to cgroup v2's memory.swap.max, which counts
// swap alone. -1 means unlimited and 0 unset, as in runc.
func SwapToV2(swap, memory int64) (int64, error) {
	switch {
	case memory == -1 && swap == 0:
		// v1 compatibility: unlimited memory with swap unset means both unlimited.
		return -1, nil
	case swap == -1 || swap == 0:
		return swap, nil
	case memory == 0 || memory == -1:
		return 0, errors.New("memory+swap limit (linux.resources.memory.swap) needs a memory limit (linux.resources.memory.limit)")
	case memory < 0:
		return 0, fmt.Errorf("invalid memory limit %d", memory)
	case swap < memory:
		return 0, fmt.Errorf("memory+swap limit %d is below the memory limit %d (linux.resources.memory.swap counts memory plus swap)", swap, memory)
	}
	return swap - memory, nil
}

// quotaPerSec is systemd's CPUQuotaPerSecUSec for an OCI quota/period.
// systemd keeps CPUQuota= as a percentage with 1% granularity, so the value is
// rounded up to a multiple of 10 ms per second (runc does the same; rounding
// down would make the limit stricter than asked). A period of 0 means the
// kernel default 100 ms.
func quotaPerSec(quota int64, period uint64) uint64 {
	if quota <= 0 {
		return math.MaxUint64 // "infinity"
	}
	if period == 0 {
		period = 100000
	}
	v := uint64(quota) * 1000000 / period
	if v%10000 != 0 {
		v = (v/10000 + 1) * 10000
	}
	return v
}

// cpuMax is cpu.max for an OCI quota/period: "max" for a quota of -1 (or 0
// with a period), and no period part when the period is unset, so the kernel
// keeps its current period (runc fs2).
func cpuMax(quota int64, period uint64) string {
	s := "max"
	if quota > 0 {
		s = strconv.FormatInt(quota, 10)
	}
	if period != 0 {
		s += " " + strconv.FormatUint(period, 10)
	}
	return s
}

func maxOr(v int64) string {
	if v < 0 {
		return "max"
	}
	return strconv.FormatInt(v, 10)
}

// infinityOr is a systemd uint64 limit: -1 means "infinity" (MaxUint64).
func infinityOr(v int64) uint64 {
	if v < 0 {
		return math.MaxUint64
	}
	return uint64(v)
}

// listToMask turns a cpuset list ("0-3,7") into the little-endian byte mask
// systemd's AllowedCPUs/AllowedMemoryNodes take.
func listToMask(list string) ([]byte, error) {
	var mask []byte
	for _, part := range strings.Split(strings.TrimSpace(list), ",") {
		if part == "" {
			continue
		}
		lo, hi, isRange := strings.Cut(part, "-")
		a, err := strconv.ParseUint(strings.TrimSpace(lo), 10, 16)
		if err != nil {
			return nil, fmt.Errorf("parsing cpuset list %q: %w", list, err)
		}
		b := a
		if isRange {
			if b, err = strconv.ParseUint(strings.TrimSpace(hi), 10, 16); err != nil {
				return nil, fmt.Errorf("parsing cpuset list %q: %w", list, err)
			}
		}
		if b < a {
			return nil, fmt.Errorf("parsing cpuset list %q: range %d-%d ends before it starts", list, a, b)
		}
		for i := a; i <= b; i++ {
			for uint64(len(mask)) <= i/8 {
				mask = append(mask, 0)
			}
			mask[i/8] |= 1 << (i % 8)
		}
	}
	if len(mask) == 0 {
		return nil, fmt.Errorf("parsing cpuset list %q: empty", list)
	}
	return mask, nil
}

// planFor computes what r asks for. A nil r asks for nothing. Errors are
// invalid configurations (a swap limit without a memory limit, a bad cpuset
// list, a unified key naming a path), never environment problems.
func planFor(r *specs.LinuxResources) (*plan, error) {
	p := &plan{}
	if r == nil {
		return p, nil
	}
	if err := p.memory(r.Memory); err != nil {
		return nil, err
	}
	if err := p.cpu(r.CPU); err != nil {
		return nil, err
	}
	p.pids(r.Pids)
	p.blockIO(r.BlockIO)
	for _, h := range r.HugepageLimits {
		p.add(limit{"hugepage limit", fmt.Sprintf("linux.resources.hugepageLimits[%s]=%d", h.Pagesize, h.Limit), "hugetlb"},
			file{"hugetlb." + h.Pagesize + ".max", strconv.FormatUint(h.Limit, 10)})
	}
	if len(r.Rdma) > 0 {
		devs := make([]string, 0, len(r.Rdma))
		for d := range r.Rdma {
			devs = append(devs, d)
		}
		sort.Strings(devs)
		for _, d := range devs {
			v := r.Rdma[d]
			line := d
			if v.HcaHandles != nil {
				line += " hca_handle=" + strconv.FormatUint(uint64(*v.HcaHandles), 10)
			}
			if v.HcaObjects != nil {
				line += " hca_object=" + strconv.FormatUint(uint64(*v.HcaObjects), 10)
			}
			if line == d {
				continue
			}
			p.add(limit{"rdma limit", "linux.resources.rdma[" + d + "]", "rdma"}, file{"rdma.max", line})
		}
	}
	if n := r.Network; n != nil && (n.ClassID != nil || len(n.Priorities) > 0) {
		p.Unsupported = append(p.Unsupported, limit{"network class/priority", "linux.resources.network; net_cls/net_prio exist only in cgroup v1", ""})
	}
	if err := p.unified(r.Unified); err != nil {
		return nil, err
	}
	return p, nil
}

func (p *plan) add(l limit, files ...file) {
	p.Limits = append(p.Limits, l)
	for _, f := range files {
		p.Files = append(p.Files, f)
		p.fileFor = append(p.fileFor, l)
	}
}

func (p *plan) memory(m *specs.LinuxMemory) error {
	if m == nil {
		return nil
	}
	var mem int64
	if m.Limit != nil && *m.Limit != 0 {
		mem = *m.Limit
		p.add(limit{"memory limit", fmt.Sprintf("linux.resources.memory.limit=%d", mem), "memory"},
			file{"memory.max", maxOr(mem)})
		p.Props = append(p.Props, prop("MemoryMax", infinityOr(mem)))
	}
	if m.Reservation != nil && *m.Reservation != 0 {
		v := *m.Reservation
		p.add(limit{"memory reservation", fmt.Sprintf("linux.resources.memory.reservation=%d", v), "memory"},
			file{"memory.low", maxOr(v)})
		p.Props = append(p.Props, prop("MemoryLow", infinityOr(v)))
	}
	if m.Swap != nil && *m.Swap != 0 || mem == -1 {
		var swap int64
		if m.Swap != nil {
			swap = *m.Swap
		}
		v, err := SwapToV2(swap, mem)
		if err != nil {
			return err
		}
		if v != 0 {
			p.add(limit{"swap limit", fmt.Sprintf("linux.resources.memory.swap=%d", swap), "memory"},
				file{"memory.swap.max", maxOr(v)})
			p.Props = append(p.Props, prop("MemorySwapMax", infinityOr(v)))
		}
	}
	//lint:ignore SA1019 configs still carry it: it is reported as ignored, never silently dropped
	if m.Kernel != nil && *m.Kernel != 0 {
		p.Ignored = append(p.Ignored, limit{"kernel memory limit", "linux.resources.memory.kernel; cgroup v2 counts kernel memory in memory.max", ""})
	}
	if m.KernelTCP != nil && *m.KernelTCP != 0 {
		p.Ignored = append(p.Ignored, limit{"kernel TCP memory limit", "linux.resources.memory.kernelTCP; cgroup v2 counts it in memory.max", ""})
	}
	if m.Swappiness != nil && *m.Swappiness <= 100 {
		// runc and crun ignore it on v2 too; -1 (as uint64: huge) means unset.
		p.Ignored = append(p.Ignored, limit{"memory swappiness", "linux.resources.memory.swappiness; cgroup v2 has no per-cgroup swappiness", ""})
	}
	if m.DisableOOMKiller != nil && *m.DisableOOMKiller {
		p.Ignored = append(p.Ignored, limit{"OOM killer disabling", "linux.resources.memory.disableOOMKiller; cgroup v2 cannot disable the OOM killer", ""})
	}
	return nil
}

func (p *plan) cpu(c *specs.LinuxCPU) error {
	if c == nil {
		return nil
	}
	if c.Shares != nil && *c.Shares != 0 {
		w := CPUSharesToWeight(*c.Shares)
		p.add(limit{"cpu shares", fmt.Sprintf("linux.resources.cpu.shares=%d", *c.Shares), "cpu"},
			file{"cpu.weight", strconv.FormatUint(w, 10)})
		p.Props = append(p.Props, prop("CPUWeight", w))
	}
	var quota int64
	var period uint64
	if c.Quota != nil {
		quota = *c.Quota
	}
	if c.Period != nil {
		period = *c.Period
	}
	if quota != 0 || period != 0 {
		p.add(limit{"cpu quota", fmt.Sprintf("linux.resources.cpu.quota=%d period=%d", quota, period), "cpu"},
			file{"cpu.max", cpuMax(quota, period)})
		p.Props = append(p.Props, prop("CPUQuotaPerSecUSec", quotaPerSec(quota, period)))
		if period != 0 {
			p.Props = append(p.Props, prop("CPUQuotaPeriodUSec", period))
		}
	}
	if c.Burst != nil {
		p.add(limit{"cpu burst", fmt.Sprintf("linux.resources.cpu.burst=%d", *c.Burst), "cpu"},
			file{"cpu.max.burst", strconv.FormatUint(*c.Burst, 10)})
	}
	if c.Idle != nil && *c.Idle != 0 {
		p.add(limit{"cpu idle", fmt.Sprintf("linux.resources.cpu.idle=%d", *c.Idle), "cpu"},
			file{"cpu.idle", strconv.FormatInt(*c.Idle, 10)})
	}
	if c.Cpus != "" {
		mask, err := listToMask(c.Cpus)
		if err != nil {
			return fmt.Errorf("linux.resources.cpu.cpus: %w", err)
		}
		p.add(limit{"cpuset cpus", "linux.resources.cpu.cpus=" + c.Cpus, "cpuset"}, file{"cpuset.cpus", c.Cpus})
		p.Props = append(p.Props, prop("AllowedCPUs", mask))
	}
	if c.Mems != "" {
		mask, err := listToMask(c.Mems)
		if err != nil {
			return fmt.Errorf("linux.resources.cpu.mems: %w", err)
		}
		p.add(limit{"cpuset mems", "linux.resources.cpu.mems=" + c.Mems, "cpuset"}, file{"cpuset.mems", c.Mems})
		p.Props = append(p.Props, prop("AllowedMemoryNodes", mask))
	}
	if c.RealtimeRuntime != nil && *c.RealtimeRuntime != 0 || c.RealtimePeriod != nil && *c.RealtimePeriod != 0 {
		p.Unsupported = append(p.Unsupported, limit{"realtime cpu", "linux.resources.cpu.realtimeRuntime/realtimePeriod; cgroup v2 has no realtime group scheduling", ""})
	}
	return nil
}

// pids: a limit above 0 is pids.max; 0 or below means "max" (runc; the spec
// says "no limit" for an absent value, and runc always read 0 so).
func (p *plan) pids(pl *specs.LinuxPids) {
	if pl == nil || pl.Limit == nil {
		return
	}
	v := *pl.Limit
	if v <= 0 {
		v = -1
	}
	p.add(limit{"pids limit", fmt.Sprintf("linux.resources.pids.limit=%d", *pl.Limit), "pids"}, file{"pids.max", maxOr(v)})
	// The scope's TasksMax also counts sandy's own processes in its
	// supervisor/ leaf (a Go process is several tasks): it gets room for
	// them above the limit, which pids.max of the container leaf holds
	// exactly.
	if v >= 0 {
		v += SupervisorTasks
	}
	p.Props = append(p.Props, prop("TasksMax", infinityOr(v)))
}

// SupervisorTasks is the room a systemd scope's TasksMax leaves above the
// container's pids limit for sandy's processes in the supervisor leaf.
const SupervisorTasks = 32

func (p *plan) blockIO(b *specs.LinuxBlockIO) {
	if b == nil {
		return
	}
	if b.Weight != nil && *b.Weight != 0 {
		w := BlkioWeightToIOWeight(*b.Weight)
		p.add(limit{"io weight", fmt.Sprintf("linux.resources.blockIO.weight=%d", *b.Weight), "io"},
			file{"io.weight", "default " + strconv.FormatUint(w, 10)})
		p.Props = append(p.Props, prop("IOWeight", w))
	}
	for _, d := range b.WeightDevice {
		if d.Weight == nil {
			continue
		}
		p.add(limit{"io device weight", fmt.Sprintf("linux.resources.blockIO.weightDevice[%d:%d]=%d", d.Major, d.Minor, *d.Weight), "io"},
			file{"io.weight", fmt.Sprintf("%d:%d %d", d.Major, d.Minor, BlkioWeightToIOWeight(*d.Weight))})
	}
	throttle := func(list []specs.LinuxThrottleDevice, key, field string) {
		for _, d := range list {
			p.add(limit{"io throttle", fmt.Sprintf("linux.resources.blockIO.%s[%d:%d]=%d", field, d.Major, d.Minor, d.Rate), "io"},
				file{"io.max", fmt.Sprintf("%d:%d %s=%s", d.Major, d.Minor, key, maxOr(int64(d.Rate)))})
		}
	}
	throttle(b.ThrottleReadBpsDevice, "rbps", "throttleReadBpsDevice")
	throttle(b.ThrottleWriteBpsDevice, "wbps", "throttleWriteBpsDevice")
	throttle(b.ThrottleReadIOPSDevice, "riops", "throttleReadIOPSDevice")
	throttle(b.ThrottleWriteIOPSDevice, "wiops", "throttleWriteIOPSDevice")
}

// unified keys are cgroup v2 file names written as given, after the
// converted values so they win (runc and crun order). A key must be a plain
// file name: "memory.high", never "../x" or "a/b".
func (p *plan) unified(u map[string]string) error {
	keys := make([]string, 0, len(u))
	for k := range u {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		ctrl, _, ok := strings.Cut(k, ".")
		if !ok || ctrl == "" || strings.ContainsAny(k, "/\x00") || k == "." || k == ".." {
			return fmt.Errorf("linux.resources.unified: invalid key %q (want a cgroup v2 file name such as memory.high)", k)
		}
		if ctrl == "cgroup" {
			ctrl = ""
		}
		p.add(limit{k, "linux.resources.unified[" + k + "]=" + u[k], ctrl}, file{k, u[k]})
	}
	return nil
}
