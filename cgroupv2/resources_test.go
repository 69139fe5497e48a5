package cgroupv2

import (
	"fmt"
	"math"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func ptr[T any](v T) *T { return &v }

func TestCPUSharesToWeight(t *testing.T) {
	// Values of runc's (opencontainers/cgroups) and crun's quadratic; the
	// "old" column is the linear formula both used before 2025, kept to
	// show what changed (1024 → 39 starved default containers).
	for _, tc := range []struct{ shares, want, old uint64 }{
		{0, 0, 0},
		{1, 1, 0},
		{2, 1, 1},
		{3, 2, 1},
		{100, 17, 4},
		{512, 59, 20},
		{1024, 100, 39},
		{2048, 174, 79},
		{4096, 303, 157},
		{100000, 4340, 3815},
		{262144, 10000, 10000},
		{500000, 10000, 19072},
	} {
		t.Run(fmt.Sprint(tc.shares), func(t *testing.T) {
			if got := CPUSharesToWeight(tc.shares); got != tc.want {
				t.Errorf("CPUSharesToWeight(%d) = %d, want %d (linear formula: %d)", tc.shares, got, tc.want, tc.old)
			}
		})
	}
}

func TestBlkioWeightToIOWeight(t *testing.T) {
	for _, tc := range []struct {
		in   uint16
		want uint64
	}{{0, 0}, {10, 1}, {500, 4950}, {1000, 10000}, {5, 1}} {
		if got := BlkioWeightToIOWeight(tc.in); got != tc.want {
			t.Errorf("BlkioWeightToIOWeight(%d) = %d, want %d", tc.in, got, tc.want)
		}
	}
}

func TestSwapToV2(t *testing.T) {
	for _, tc := range []struct {
		name         string
		swap, memory int64
		want         int64
		err          string
	}{
		{"unset", 0, 0, 0, ""},
		{"unlimited memory, swap unset means both unlimited", 0, -1, -1, ""},
		{"unlimited swap", -1, 100, -1, ""},
		{"memory+swap to swap alone", 300, 100, 200, ""},
		{"no swap at all", 100, 100, 0, ""},
		{"unlimited memory, swap as is", 300, -1, 0, "needs a memory limit"},
		{"swap without memory", 300, 0, 0, "needs a memory limit"},
		{"swap below memory", 50, 100, 0, "below the memory limit"},
		{"bad memory", 50, -5, 0, "invalid memory limit"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := SwapToV2(tc.swap, tc.memory)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("SwapToV2(%d, %d) = %d, %v; want error with %q", tc.swap, tc.memory, got, err, tc.err)
				}
				return
			}
			if err != nil || got != tc.want {
				t.Fatalf("SwapToV2(%d, %d) = %d, %v; want %d", tc.swap, tc.memory, got, err, tc.want)
			}
		})
	}
}

func TestQuota(t *testing.T) {
	for _, tc := range []struct {
		quota   int64
		period  uint64
		perSec  uint64
		cpuMaxV string
	}{
		{50000, 100000, 500000, "50000 100000"},
		{50000, 0, 500000, "50000"},             // default period 100ms for systemd; kernel keeps its period
		{12345, 100000, 130000, "12345 100000"}, // 123450 µs/s rounded up to 1% (10ms/s) steps
		{1, 1000000, 10000, "1 1000000"},        // never rounded down to 0 (unlimited)
		{250000, 50000, 5000000, "250000 50000"},
		{-1, 100000, math.MaxUint64, "max 100000"},
		{0, 100000, math.MaxUint64, "max 100000"},
	} {
		t.Run(fmt.Sprintf("%d/%d", tc.quota, tc.period), func(t *testing.T) {
			if got := quotaPerSec(tc.quota, tc.period); got != tc.perSec {
				t.Errorf("quotaPerSec = %d, want %d", got, tc.perSec)
			}
			if got := cpuMax(tc.quota, tc.period); got != tc.cpuMaxV {
				t.Errorf("cpuMax = %q, want %q", got, tc.cpuMaxV)
			}
		})
	}
}

func TestListToMask(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want []byte
		err  bool
	}{
		{"0", []byte{1}, false},
		{"0-3", []byte{0x0f}, false},
		{"1,3", []byte{0x0a}, false},
		{"0-1,8", []byte{0x03, 0x01}, false},
		{"9", []byte{0, 0x02}, false},
		{"3-1", nil, true},
		{"x", nil, true},
		{"", nil, true},
	} {
		got, err := listToMask(tc.in)
		if (err != nil) != tc.err || !reflect.DeepEqual(got, tc.want) {
			t.Errorf("listToMask(%q) = %v, %v; want %v (error %v)", tc.in, got, err, tc.want, tc.err)
		}
	}
}

// render turns a plan into comparable strings.
func render(p *plan) (files, props, limits, ignored []string) {
	for _, f := range p.Files {
		files = append(files, f.Name+"="+f.Value)
	}
	for _, pr := range p.Props {
		props = append(props, fmt.Sprintf("%s=%v", pr.Name, pr.Value.Value()))
	}
	for _, l := range p.Limits {
		limits = append(limits, l.Controller+":"+l.What)
	}
	for _, l := range append(p.Unsupported, p.Ignored...) {
		ignored = append(ignored, l.What)
	}
	return
}

func TestPlan(t *testing.T) {
	const inf = "18446744073709551615"
	for _, tc := range []struct {
		name    string
		r       *specs.LinuxResources
		files   []string
		props   []string
		limits  []string
		ignored []string
		err     string
	}{
		{name: "nil"},
		{name: "devices only is no limit", r: &specs.LinuxResources{Devices: []specs.LinuxDeviceCgroup{{Allow: false, Access: "rwm"}}}},
		{
			name:   "memory limit reservation swap",
			r:      &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](64 << 20), Reservation: ptr[int64](32 << 20), Swap: ptr[int64](96 << 20)}},
			files:  []string{"memory.max=67108864", "memory.low=33554432", "memory.swap.max=33554432"},
			props:  []string{"MemoryMax=67108864", "MemoryLow=33554432", "MemorySwapMax=33554432"},
			limits: []string{"memory:memory limit", "memory:memory reservation", "memory:swap limit"},
		},
		{
			name:   "memory unlimited means swap unlimited",
			r:      &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](-1)}},
			files:  []string{"memory.max=max", "memory.swap.max=max"},
			props:  []string{"MemoryMax=" + inf, "MemorySwapMax=" + inf},
			limits: []string{"memory:memory limit", "memory:swap limit"},
		},
		{
			name: "swap without memory is a config error",
			r:    &specs.LinuxResources{Memory: &specs.LinuxMemory{Swap: ptr[int64](1 << 30)}},
			err:  "needs a memory limit",
		},
		{
			name: "v1-only memory knobs are ignored with a warning",
			//lint:ignore SA1019 the deprecated field is what this case feeds in
			r:       &specs.LinuxResources{Memory: &specs.LinuxMemory{Kernel: ptr[int64](1 << 20), KernelTCP: ptr[int64](1 << 20), Swappiness: ptr[uint64](60), DisableOOMKiller: ptr(true)}},
			ignored: []string{"kernel memory limit", "kernel TCP memory limit", "memory swappiness", "OOM killer disabling"},
		},
		{
			name:   "swappiness -1 is unset",
			r:      &specs.LinuxResources{Memory: &specs.LinuxMemory{Swappiness: ptr(^uint64(0))}},
			limits: nil,
		},
		{
			name:   "cpu shares quota period burst idle",
			r:      &specs.LinuxResources{CPU: &specs.LinuxCPU{Shares: ptr[uint64](512), Quota: ptr[int64](25000), Period: ptr[uint64](50000), Burst: ptr[uint64](1000), Idle: ptr[int64](1)}},
			files:  []string{"cpu.weight=59", "cpu.max=25000 50000", "cpu.max.burst=1000", "cpu.idle=1"},
			props:  []string{"CPUWeight=59", "CPUQuotaPerSecUSec=500000", "CPUQuotaPeriodUSec=50000"},
			limits: []string{"cpu:cpu shares", "cpu:cpu quota", "cpu:cpu burst", "cpu:cpu idle"},
		},
		{
			name:   "quota without period",
			r:      &specs.LinuxResources{CPU: &specs.LinuxCPU{Quota: ptr[int64](150000)}},
			files:  []string{"cpu.max=150000"},
			props:  []string{"CPUQuotaPerSecUSec=1500000"},
			limits: []string{"cpu:cpu quota"},
		},
		{
			name:   "cpuset",
			r:      &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "0-1", Mems: "0"}},
			files:  []string{"cpuset.cpus=0-1", "cpuset.mems=0"},
			props:  []string{"AllowedCPUs=[3]", "AllowedMemoryNodes=[1]"},
			limits: []string{"cpuset:cpuset cpus", "cpuset:cpuset mems"},
		},
		{
			name: "bad cpuset",
			r:    &specs.LinuxResources{CPU: &specs.LinuxCPU{Cpus: "2-1"}},
			err:  "linux.resources.cpu.cpus",
		},
		{
			name:    "realtime is unsupported",
			r:       &specs.LinuxResources{CPU: &specs.LinuxCPU{RealtimeRuntime: ptr[int64](950000)}},
			ignored: []string{"realtime cpu"},
		},
		{
			name:   "pids",
			r:      &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](20)}},
			files:  []string{"pids.max=20"},
			props:  []string{"TasksMax=52"}, // + SupervisorTasks: the exact limit is the leaf's pids.max
			limits: []string{"pids:pids limit"},
		},
		{
			name:   "pids 0 and -1 are unlimited",
			r:      &specs.LinuxResources{Pids: &specs.LinuxPids{Limit: ptr[int64](0)}},
			files:  []string{"pids.max=max"},
			props:  []string{"TasksMax=" + inf},
			limits: []string{"pids:pids limit"},
		},
		{
			name: "block io",
			r: &specs.LinuxResources{BlockIO: &specs.LinuxBlockIO{
				Weight:                  ptr[uint16](500),
				WeightDevice:            []specs.LinuxWeightDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Weight: ptr[uint16](1000)}},
				ThrottleReadBpsDevice:   []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 0}, Rate: 1 << 20}},
				ThrottleWriteIOPSDevice: []specs.LinuxThrottleDevice{{LinuxBlockIODevice: specs.LinuxBlockIODevice{Major: 8, Minor: 16}, Rate: 100}},
			}},
			files:  []string{"io.weight=default 4950", "io.weight=8:0 10000", "io.max=8:0 rbps=1048576", "io.max=8:16 wiops=100"},
			props:  []string{"IOWeight=4950"},
			limits: []string{"io:io weight", "io:io device weight", "io:io throttle", "io:io throttle"},
		},
		{
			name:   "hugetlb and rdma",
			r:      &specs.LinuxResources{HugepageLimits: []specs.LinuxHugepageLimit{{Pagesize: "2MB", Limit: 1 << 30}}, Rdma: map[string]specs.LinuxRdma{"mlx5_1": {HcaHandles: ptr[uint32](3), HcaObjects: ptr[uint32](10000)}}},
			files:  []string{"hugetlb.2MB.max=1073741824", "rdma.max=mlx5_1 hca_handle=3 hca_object=10000"},
			limits: []string{"hugetlb:hugepage limit", "rdma:rdma limit"},
		},
		{
			name:    "network classid is unsupported",
			r:       &specs.LinuxResources{Network: &specs.LinuxNetwork{ClassID: ptr[uint32](7)}},
			ignored: []string{"network class/priority"},
		},
		{
			name:   "unified after converted values, sorted",
			r:      &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: ptr[int64](100)}, Unified: map[string]string{"memory.oom.group": "1", "memory.high": "90", "cgroup.max.depth": "2"}},
			files:  []string{"memory.max=100", "cgroup.max.depth=2", "memory.high=90", "memory.oom.group=1"},
			props:  []string{"MemoryMax=100"},
			limits: []string{"memory:memory limit", ":cgroup.max.depth", "memory:memory.high", "memory:memory.oom.group"},
		},
		{name: "unified path key", r: &specs.LinuxResources{Unified: map[string]string{"../memory.max": "1"}}, err: "invalid key"},
		{name: "unified no dot", r: &specs.LinuxResources{Unified: map[string]string{"memory": "1"}}, err: "invalid key"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			p, err := planFor(tc.r)
			if tc.err != "" {
				if err == nil || !strings.Contains(err.Error(), tc.err) {
					t.Fatalf("planFor: %v, want error with %q", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			files, props, limits, ignored := render(p)
			for _, c := range []struct {
				what      string
				got, want []string
			}{{"files", files, tc.files}, {"props", props, tc.props}, {"limits", limits, tc.limits}, {"ignored", ignored, tc.ignored}} {
				if !reflect.DeepEqual(c.got, c.want) {
					t.Errorf("%s:\n got  %q\n want %q", c.what, c.got, c.want)
				}
			}
			if len(p.fileFor) != len(p.Files) {
				t.Errorf("fileFor has %d entries for %d files", len(p.fileFor), len(p.Files))
			}
		})
	}
}

func TestControllers(t *testing.T) {
	p, err := planFor(&specs.LinuxResources{
		Pids: &specs.LinuxPids{Limit: ptr[int64](5)}, Memory: &specs.LinuxMemory{Limit: ptr[int64](1 << 20)},
		CPU: &specs.LinuxCPU{Cpus: "0", Shares: ptr[uint64](2)}, Unified: map[string]string{"cgroup.max.descendants": "3"},
	})
	if err != nil {
		t.Fatal(err)
	}
	if got, want := p.Controllers(), []string{"cpu", "cpuset", "memory", "pids"}; !reflect.DeepEqual(got, want) {
		t.Errorf("Controllers() = %q, want %q", got, want)
	}
}

func FuzzListToMask(f *testing.F) {
	for _, s := range []string{"0", "0-3,7", "1,,2", "-", "65535"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		mask, err := listToMask(s)
		if err == nil && len(mask) == 0 {
			t.Fatalf("listToMask(%q): empty mask without error", s)
		}
	})
}
