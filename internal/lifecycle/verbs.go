package lifecycle

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"github.com/opencontainers/runtime-spec/specs-go/features"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/cgroupv2"
	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/internal/state"
)

// cgroupOf loads the container's cgroup manager, for verb; the errors
// say why a verb that needs one cannot work.
func cgroupOf(g *Global, c *state.Container, verb string, o cgroupv2.Options) (cgroupv2.Manager, error) {
	if len(c.Cgroup) == 0 {
		// A state written without a cgroup (by an older sandy, or edited).
		return nil, fmt.Errorf("container %s has no cgroup in its state: %s needs one; delete the container and create it again (docs/cgroups.md)", c.ID, verb)
	}
	o.Warn = g.Warn
	m, err := cgroupv2.LoadWith(c.Cgroup, o)
	if err != nil {
		return nil, err
	}
	if m.Kind() == cgroupv2.KindNone {
		m.Close()
		return nil, fmt.Errorf("container %s has no cgroup of its own (cgroup manager none: this host has no delegated cgroup v2): %s needs one; see docs/cgroups.md for how to delegate one", c.ID, verb)
	}
	return m, nil
}

// running opens a container that must be created, running or paused, for
// verb.
func running(g *Global, id, verb string) (*state.Root, *state.Container, *state.Lock, error) {
	root, c, lock, err := open(g, id)
	if err != nil {
		return nil, nil, nil, err
	}
	if st := root.Status(c); st == state.Stopped || st == state.Creating {
		lock.Unlock()
		return nil, nil, nil, notRunning(id, verb, st)
	}
	return root, c, lock, nil
}

// notRunning is the error for verb on a container that is stopped or
// still being created: what it is, and what to do. A stopped one's error
// is state.ErrNotRunning, whose words containerd's shim looks for.
func notRunning(id, verb, st string) error {
	if st == state.Creating {
		return fmt.Errorf("container %s is still being created: %s needs it created (wait for its `sandy create` to return; if that died, `sandy delete %s` removes what it left)", id, verb, id)
	}
	return fmt.Errorf("container %s is %s (%w): %s needs a created, running or paused container (its process has exited: `sandy delete %s` removes it, then create it again)", id, st, state.ErrNotRunning, verb, id)
}

// killAll signals every process in the container's cgroup (kill --all),
// as runc does: also those left in the cgroup of a stopped container (in
// a pid namespace it shares, they outlive the init), and a stopped
// container with nothing left to signal is no error. containerd's CRI
// sends it while it stops a pod.
func killAll(g *Global, c *state.Container, st string, sig unix.Signal) error {
	if st == state.Creating {
		return notRunning(c.ID, "kill --all", st)
	}
	m, err := cgroupOf(g, c, "kill --all", cgroupv2.Options{})
	if err != nil {
		if st == state.Stopped {
			return nil // no cgroup to find processes in, and the init is gone
		}
		// Without a cgroup, the pid namespace's init is the container:
		// SIGKILL to it ends every process in the namespace.
		if sig == unix.SIGKILL {
			return signalInit(c, sig)
		}
		return fmt.Errorf("kill --all: %w", err)
	}
	defer m.Close()
	// A cgroup already gone (systemd removes an empty scope) is no error.
	return m.Kill(int(sig))
}

// Ps lists the container's processes: pids (json), sandy's PID/CMD table,
// or, with psArgs, the lines of ps(1) run with them whose PID is one of the
// container's (runc's `ps ID -- ARGS`).
func Ps(g *Global, id, format string, psArgs []string, w io.Writer) error {
	_, c, lock, err := running(g, id, "ps")
	if err != nil {
		return err
	}
	lock.Unlock()
	m, err := cgroupOf(g, c, "ps", cgroupv2.Options{})
	if err != nil {
		return err
	}
	defer m.Close()
	pids, err := m.Pids()
	if err != nil {
		return err
	}
	switch {
	case format == "json":
		if pids == nil {
			pids = []int{}
		}
		return json.NewEncoder(w).Encode(pids)
	case len(psArgs) > 0:
		return psTable(psArgs, pids, w)
	}
	tw := tabwriter.NewWriter(w, 8, 1, 2, ' ', 0)
	fmt.Fprintln(tw, "PID\tCMD")
	for _, p := range pids {
		cmd, _ := readCmdline(p)
		fmt.Fprintf(tw, "%d\t%s\n", p, cmd)
	}
	return tw.Flush()
}

// psTable runs ps(1) with args and prints its header and the lines whose
// PID column is one of pids.
func psTable(args []string, pids []int, w io.Writer) error {
	out, err := exec.Command("ps", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("running ps %s: %w: %s", strings.Join(args, " "), err, bytes.TrimSpace(out))
	}
	return filterPs(out, pids, w)
}

// filterPs keeps ps(1)'s header and the lines of pids.
func filterPs(out []byte, pids []int, w io.Writer) error {
	lines := strings.Split(strings.TrimRight(string(out), "\n"), "\n")
	col := slices.Index(strings.Fields(lines[0]), "PID")
	if col < 0 {
		return fmt.Errorf("ps output has no PID column (give ps options that print one, e.g. -ef): %q", lines[0])
	}
	fmt.Fprintln(w, lines[0])
	for _, line := range lines[1:] {
		f := strings.Fields(line)
		if len(f) <= col {
			continue
		}
		if pid, err := strconv.Atoi(f[col]); err == nil && slices.Contains(pids, pid) {
			fmt.Fprintln(w, line)
		}
	}
	return nil
}

func readCmdline(pid int) (string, error) {
	data, err := os.ReadFile("/proc/" + strconv.Itoa(pid) + "/cmdline")
	return strings.TrimSpace(strings.ReplaceAll(string(data), "\x00", " ")), err
}

// Pause and Resume freeze and thaw the container's cgroup.
func Pause(ctx context.Context, g *Global, id string, freeze bool) error {
	verb := "pause"
	if !freeze {
		verb = "resume"
	}
	root, c, lock, err := running(g, id, verb)
	if err != nil {
		return err
	}
	defer lock.Unlock()
	switch st := root.Status(c); {
	case freeze && st == state.Paused:
		return fmt.Errorf("container %s is already paused (`sandy resume %s` thaws it)", id, id)
	case !freeze && st != state.Paused:
		return fmt.Errorf("container %s is %s, not paused: nothing to resume (`sandy pause %s` freezes it)", id, st, id)
	}
	m, err := cgroupOf(g, c, verb, cgroupv2.Options{})
	if err != nil {
		return err
	}
	defer m.Close()
	if err := m.Freeze(ctx, freeze); err != nil {
		return err
	}
	c.Paused = freeze
	return root.Save(c)
}

// Update changes the limits of a running container from an OCI
// LinuxResources JSON (runc update -r).
func Update(ctx context.Context, g *Global, id string, r *specs.LinuxResources, allowUnenforced bool) error {
	_, c, lock, err := running(g, id, "update")
	if err != nil {
		return err
	}
	defer lock.Unlock()
	m, err := cgroupOf(g, c, "update", cgroupv2.Options{AllowUnenforced: allowUnenforced})
	if err != nil {
		return err
	}
	defer m.Close()
	return m.Update(ctx, r)
}

// Events prints the container's cgroup stats once (stats) or every
// interval until it stops, as runc's `events` does.
func Events(ctx context.Context, g *Global, id string, interval time.Duration, stats bool, w io.Writer) error {
	_, c, lock, err := running(g, id, "events")
	if err != nil {
		return err
	}
	lock.Unlock()
	m, err := cgroupOf(g, c, "events", cgroupv2.Options{})
	if err != nil {
		return err
	}
	defer m.Close()
	enc := json.NewEncoder(w)
	for {
		st, err := m.Stats()
		if err != nil {
			return err
		}
		if err := enc.Encode(map[string]any{"type": "stats", "id": id, "data": st}); err != nil {
			return err
		}
		if stats {
			return nil
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(interval):
		}
		if !state.Alive(c.Pid, c.PidStart) {
			return nil
		}
	}
}

// Features prints what this build supports, honestly (runtime-spec
// features.Features).
func Features(w io.Writer) error {
	t, f := true, false
	var caps []string
	for _, c := range capability.ListKnown() {
		caps = append(caps, "CAP_"+strings.ToUpper(c.String()))
	}
	// Like runc, the cgroup fields say what is compiled in; what this host
	// offers goes into annotations.
	annotations := map[string]string{"org.opencontainers.runtime-spec.features.sandy.rootless": "true"}
	for k, v := range cgroupv2.Features() {
		annotations["io.github.sandy-rt.cgroup."+k] = v
	}
	ft := features.Features{
		OCIVersionMin: "1.0.0",
		OCIVersionMax: specs.Version,
		Hooks:         []string{"prestart", "createRuntime", "createContainer", "startContainer", "poststart", "poststop"},
		MountOptions:  initproc.MountOptions(),
		Linux: &features.Linux{
			Namespaces:   []string{"cgroup", "ipc", "mount", "network", "pid", "user", "uts"},
			Capabilities: caps,
			Cgroup:       &features.Cgroup{V1: &f, V2: &t, Systemd: &t, SystemdUser: &t, Rdma: &f},
			Seccomp: &features.Seccomp{Enabled: &t,
				Actions:        []string{"SCMP_ACT_ALLOW", "SCMP_ACT_ERRNO", "SCMP_ACT_KILL", "SCMP_ACT_KILL_PROCESS", "SCMP_ACT_KILL_THREAD", "SCMP_ACT_LOG", "SCMP_ACT_NOTIFY", "SCMP_ACT_TRACE", "SCMP_ACT_TRAP"},
				Operators:      []string{"SCMP_CMP_EQ", "SCMP_CMP_GE", "SCMP_CMP_GT", "SCMP_CMP_LE", "SCMP_CMP_LT", "SCMP_CMP_MASKED_EQ", "SCMP_CMP_NE"},
				Archs:          []string{"SCMP_ARCH_AARCH64", "SCMP_ARCH_ARM", "SCMP_ARCH_X32", "SCMP_ARCH_X86", "SCMP_ARCH_X86_64"},
				KnownFlags:     []string{"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_TSYNC", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"},
				SupportedFlags: []string{"SECCOMP_FILTER_FLAG_LOG", "SECCOMP_FILTER_FLAG_SPEC_ALLOW", "SECCOMP_FILTER_FLAG_WAIT_KILLABLE_RECV"},
			},
			Apparmor:        &features.Apparmor{Enabled: &f},
			Selinux:         &features.Selinux{Enabled: &f},
			IntelRdt:        &features.IntelRdt{Enabled: &f},
			MountExtensions: &features.MountExtensions{IDMap: &features.IDMap{Enabled: &f}},
		},
		Annotations: annotations,
	}
	out, err := json.MarshalIndent(ft, "", "    ")
	if err != nil {
		return err
	}
	_, err = fmt.Fprintf(w, "%s\n", out)
	return err
}

// ParseResources reads `update`'s resources JSON (-r FILE, "-" = stdin).
func ParseResources(data []byte) (*specs.LinuxResources, error) {
	var r specs.LinuxResources
	if err := json.Unmarshal(data, &r); err != nil {
		return nil, fmt.Errorf("resources JSON: %w", err)
	}
	return &r, nil
}

// InitProcess is the host pid and start time of a created, running or
// paused container's init (what `sandy top` reads the container's
// processes and files through).
func InitProcess(g *Global, id, verb string) (pid int, start uint64, err error) {
	_, c, lock, err := running(g, id, verb)
	if err != nil {
		return 0, 0, err
	}
	lock.Unlock()
	return c.Pid, c.PidStart, nil
}
