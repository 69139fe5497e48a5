//go:build linux

package doctor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/cgroupv2"
	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/slirp"
	"github.com/sandy-rt/sandy/userns"
)

// Options are doctor's inputs.
type Options struct {
	Version string
	Root    string // the state root (--root); "" = state.DefaultRoot()
}

// Run runs every probe once and returns the report.
func Run(o Options) *Report {
	r := &Report{Schema: SchemaVersion, Version: o.Version}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		r.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	r.Binary, _ = os.Executable()
	r.BinaryWritable, _ = userns.SealedCopy()

	ns, rootfs := checkNamespaces(o.Root, &r.Ladder)
	r.Checks = append(r.Checks, ns, checkIDMap(&r.Ladder), rootfs, checkCgroup(&r.Ladder), checkNetwork(&r.Ladder))
	return r
}

// checkNamespaces creates a throwaway user namespace and walks the rootfs
// ladder in it, in a fresh directory of the state root (where a
// container's layer goes).
func checkNamespaces(root string, l *Ladder) (ns, rootfs Check) {
	ns = Check{Name: "userns", Status: OK, Detail: "a user namespace can be created and its uid/gid maps written"}
	rootfs = Check{Name: "rootfs"}
	l.Rootfs = "unavailable"
	if root == "" {
		root = state.DefaultRoot()
	}
	dir, err := probeDir(root)
	if err != nil {
		rootfs.Status, rootfs.Detail = Fail, err.Error()
		rootfs.Consequence = "containers cannot be created: sandy keeps its state and each container's layer there"
		rootfs.Fix = "make " + root + " a directory you can write, or pass --root DIR"
		return ns, rootfs
	}
	out, err := userns.Probe("/proc/self/exe", overlay.ProbeRole, dir)
	var res overlay.ProbeResult
	_ = json.Unmarshal(out, &res) // checked below, when the probe ran
	defer func() {
		if err := overlay.ProbeCleanup(dir, res.Mode); err != nil {
			rootfs.Status, rootfs.Detail = Fail, err.Error()
			rootfs.Consequence = "sandy run cannot remove a container's layer here either"
			rootfs.Fix = "see docs/rootfs.md#troubleshooting"
		}
	}()
	var cf *userns.ChildFailed
	switch {
	case errors.As(err, &cf):
		rootfs.Status, rootfs.Detail = Fail, "no rung of the root filesystem ladder works in "+root+": "+cf.Stderr
		rootfs.Consequence = "sandy run cannot build a writable container root"
		rootfs.Fix = "install fuse-overlayfs (apt-get install fuse-overlayfs), or pass --root on a local filesystem (ext4, xfs, btrfs, tmpfs)"
		return ns, rootfs
	case err != nil:
		msg, fix, _ := strings.Cut(err.Error(), "\nhint: ")
		ns = Check{Name: "userns", Status: Fail, Detail: msg,
			Consequence: "rootless containers cannot start at all", Fix: fix}
		rootfs.Status, rootfs.Detail = Fail, "not tried: it needs a user namespace"
		return ns, rootfs
	}
	if err := json.Unmarshal(out, &res); err != nil {
		rootfs.Status, rootfs.Detail = Fail, fmt.Sprintf("reading the probe's answer %q: %v", out, err)
		return ns, rootfs
	}
	l.Rootfs = string(res.Mode)
	rootfs.Detail = fmt.Sprintf("%s in %s", res.Mode, root)
	switch res.Mode {
	case overlay.ModeOverlay:
		rootfs.Status = OK
		rootfs.Detail = "kernel overlay mounts in a user namespace in " + root
	default:
		rootfs.Status = Warn
		rootfs.Consequence = fmt.Sprintf("sandy run falls back to %s for the container root (slower, or read-only for bind)", res.Mode)
		rootfs.Fix = "put --root on a local filesystem where kernel overlay works (Linux 5.11+; not NFS or overlay), or install fuse-overlayfs (apt-get install fuse-overlayfs)"
		if len(res.Warnings) > 0 {
			// Mount's own line, "what; fix: how", as run prints it.
			detail, fix, ok := strings.Cut(strings.Join(res.Warnings, "; "), "; fix: ")
			rootfs.Detail = detail
			if ok {
				rootfs.Fix = fix
			}
		}
	}
	return ns, rootfs
}

// probeDir makes a fresh directory in the state root.
func probeDir(root string) (string, error) {
	if err := os.MkdirAll(root, 0o700); err != nil {
		return "", fmt.Errorf("making state root %s: %w", root, err)
	}
	dir, err := os.MkdirTemp(root, "doctor-")
	if err != nil {
		return "", fmt.Errorf("making a probe directory in %s: %w", root, err)
	}
	return dir, nil
}

// checkIDMap resolves the automatic maps as `run` does (resolveIDMaps,
// idmap.CallerRequest) and
// reports run's own warning when they degrade to the single mapping.
func checkIDMap(l *Ladder) Check {
	plan, err := idmap.Resolve(idmap.CallerRequest())
	switch {
	case err != nil:
		l.IDMap = "unavailable"
		return Check{Name: "idmap", Status: Fail, Detail: err.Error(), Consequence: "containers with a user namespace cannot start"}
	case plan.Warning != "":
		l.IDMap = "single mapping"
		detail, fix, _ := strings.Cut(plan.Warning, "; fix: ")
		return Check{Name: "idmap", Status: Warn, Detail: detail,
			Consequence: "only root exists in the container: installing packages, chown and images with other users fail", Fix: fix}
	case plan.Privileged:
		l.IDMap = "written directly (privileged)"
		return Check{Name: "idmap", Status: OK, Detail: "you may write any id map yourself (CAP_SETUID and CAP_SETGID)"}
	}
	l.IDMap = "subordinate ranges (newuidmap/newgidmap)"
	return Check{Name: "idmap", Status: OK, Detail: fmt.Sprintf("uids %s, gids %s (newuidmap/newgidmap usable)", fmtMaps(plan.UIDs), fmtMaps(plan.GIDs))}
}

func fmtMaps(m []specs.LinuxIDMapping) string {
	parts := make([]string, len(m))
	for i, x := range m {
		parts[i] = fmt.Sprintf("%d->%d+%d", x.ContainerID, x.HostID, x.Size)
	}
	return strings.Join(parts, ",")
}

// checkCgroup reports the manager cgroupv2.New picks with auto.
func checkCgroup(l *Ladder) Check {
	c := cgroupv2.Probe()
	l.Cgroup = c.Manager
	if c.Manager != cgroupv2.KindNone {
		return Check{Name: "cgroup", Status: OK, Detail: c.Manager + ": " + c.Reason}
	}
	return Check{Name: "cgroup", Status: Warn, Detail: "cgroup manager none: " + c.Reason,
		Consequence: "memory, pids and cpu limits cannot be enforced: --memory and the other limits are an error unless you pass --allow-unenforced, and ps, pause and events do not work",
		Fix:         c.Fix}
}

// checkNetwork is run's own network check (planNetwork).
func checkNetwork(l *Ladder) Check {
	if err := slirp.Check(); err != nil {
		l.Network = "loopback only"
		detail, fix := splitParenFix(slirp.LoopbackWarning(err))
		return Check{Name: "network", Status: Warn, Detail: detail,
			Consequence: "containers started by sandy run have no outside network, and -p is an error", Fix: fix}
	}
	l.Network = "slirp4netns"
	return Check{Name: "network", Status: OK, Detail: "slirp4netns is in PATH and /dev/net/tun opens"}
}
