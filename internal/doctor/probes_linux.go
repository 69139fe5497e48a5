//go:build linux

package doctor

import (
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/cgroupv2"
	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/slirp"
	"github.com/sandy-rt/sandy/userns"
)

// Options are doctor's inputs.
type Options struct {
	Version string
	Root    string // the state root (--root); "" = state.DefaultRoot()
	// Env is the machine; nil = HostEnv(). Only tests set it.
	Env *Env
}

// doctor is one run: the machine and what the throwaway namespace probes
// found, shared by the rows that depend on them.
type doctor struct {
	env     Env
	root    string
	limits  userns.Limits
	session cgroupv2.Session
	ladder  Ladder

	stateErr   error                // the state root cannot hold a probe directory
	nsErr      error                // the user namespace probe's start error (nil: it ran)
	rootfsErr  error                // the rootfs probe's failure: a *userns.ChildFailed, or its answer unreadable
	cleanupErr error                // removing the probe directory failed
	rootfs     *overlay.ProbeResult // what it found, nil when it failed
}

// Run runs every probe once and returns the report.
func Run(o Options) *Report {
	d := &doctor{root: o.Root}
	if o.Env != nil {
		d.env = *o.Env
	} else {
		d.env = HostEnv()
	}
	if d.root == "" {
		d.root = state.DefaultRoot()
	}
	d.limits = userns.ReadLimits(d.env.ProcSys, d.env.Status)
	d.session = cgroupv2.ReadSession(d.env.Root)

	r := &Report{Schema: SchemaVersion, Version: o.Version, Binary: d.env.Exe}
	var u unix.Utsname
	if unix.Uname(&u) == nil {
		r.Kernel = unix.ByteSliceToString(u.Release[:])
	}
	var osr osRelease
	r.Distro, osr = readOSRelease(d.env.etc("os-release"))
	if o.Env == nil {
		if way, how, err := userns.SelfExeProtection(); err == nil {
			r.BinaryProtection, r.BinaryProtectionDetail = way, how
			r.BinaryCopied = way == "memfd"
		}
	}

	d.tryNamespaces()
	r.Checks = []Check{
		d.checkUserNS(),
		d.checkAppArmor(),
		d.checkIDMap(),
		d.checkRootfs(),
		d.checkFuse(),
		d.checkCgroup(),
		d.checkLinger(),
		d.checkNetwork(),
		d.checkPing(),
		d.checkPorts(),
		d.checkImages(),
	}
	r.Ladder = d.ladder
	r.FixScript = fixScript(r.Checks, osr)
	return r
}

// tryNamespaces creates a throwaway user namespace and walks the rootfs
// ladder in it, in a fresh directory of the state root (where a
// container's layer goes).
func (d *doctor) tryNamespaces() {
	dir, err := probeDir(d.root)
	if err != nil {
		d.stateErr = err
		// The user namespace is still tried, with a child that does
		// nothing but print sandy's version.
		if _, err := d.env.Probe(0, "--version"); err != nil && !errors.As(err, new(*userns.ChildFailed)) {
			d.nsErr = err
		}
		return
	}
	out, err := d.env.Probe(0, overlay.ProbeRole, dir)
	var res overlay.ProbeResult
	jerr := json.Unmarshal(out, &res)
	var cf *userns.ChildFailed
	switch {
	case errors.As(err, &cf):
		d.rootfsErr = cf
	case err != nil:
		d.nsErr = err
	case jerr != nil:
		d.rootfsErr = fmt.Errorf("reading the probe's answer %q: %w", out, jerr)
	default:
		d.rootfs = &res
	}
	d.cleanupErr = overlay.ProbeCleanup(dir, res.Mode)
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

// nsFlags are the clone flags of the probe: what Diagnose is told.
const nsFlags = unix.CLONE_NEWUSER | unix.CLONE_NEWNS

// apparmorBlocks: the AppArmor restriction is on and the probes failed,
// as it makes them fail (Ubuntu 24.04 gives the child a namespace with no
// capabilities, so the first mount fails; some kernels refuse the clone).
func (d *doctor) apparmorBlocks() bool {
	return d.limits.AppArmorRestrict == 1 && (d.nsErr != nil || errors.As(d.rootfsErr, new(*userns.ChildFailed)))
}

func (d *doctor) checkUserNS() Check {
	c := Check{Name: "userns", Status: OK, Detail: "a user namespace can be created and its uid/gid maps written"}
	if d.nsErr == nil {
		return c
	}
	msg, hint, _ := strings.Cut(d.nsErr.Error(), "\nhint: ")
	diag := d.limits.Diagnose(d.nsErr, nsFlags, d.env.Exe)
	if diag.Hint != "" {
		hint = diag.Hint
	}
	c = Check{Name: "userns", Status: Fail, Detail: msg,
		Consequence: "rootless containers cannot start at all", Fix: hint, RootFix: sysctlLines(diag.Sysctls)}
	switch diag.Cause {
	case userns.CauseSeccomp:
		c.Detail += ": blocked by a seccomp filter of the container you run in (CI runner)"
		if !d.limits.Seccomp {
			c.Detail = msg + ": no sysctl forbids it, so most likely a seccomp filter of the container you run in (CI runner)"
		}
		c.Consequence = "rootless containers cannot start inside this container: only its outer runtime can allow user namespaces"
	case userns.CauseAppArmor:
		c.Fix = "see the apparmor line: " + hint
	}
	return c
}

func (d *doctor) checkAppArmor() Check {
	c := Check{Name: "apparmor", Status: OK}
	switch {
	case d.limits.AppArmorRestrict < 0:
		c.Detail = "no AppArmor restriction on user namespaces (kernel.apparmor_restrict_unprivileged_userns absent)"
	case d.limits.AppArmorRestrict == 0:
		c.Detail = "kernel.apparmor_restrict_unprivileged_userns=0: AppArmor does not restrict user namespaces"
	case !d.apparmorBlocks():
		c.Detail = "kernel.apparmor_restrict_unprivileged_userns=1, and sandy may use user namespaces (a profile allows it, or you are root)"
	default:
		c.Status = Fail
		c.Detail = "kernel.apparmor_restrict_unprivileged_userns=1 and sandy has no AppArmor profile that allows user namespaces: the throwaway namespace had no capabilities in it"
		c.Consequence = "rootless containers cannot start: setting up their user namespace or their first mount is denied"
		c.Fix = userns.AppArmorHint(d.env.Exe)
		c.RootFix = apparmorLines(d.env.Exe)
	}
	return c
}

// apparmorLines install and load the AppArmor profile for exe.
func apparmorLines(exe string) []string {
	return []string{"cat > " + userns.AppArmorProfileFile + " <<'PROFILE'\n" + userns.AppArmorProfile(exe) + "PROFILE",
		"apparmor_parser -r " + userns.AppArmorProfileFile}
}

// checkIDMap resolves the automatic maps as `run` does (resolveIDMaps,
// idmap.CallerRequest, which HostEnv takes the caller from) and reports
// run's own warning when they degrade to the single mapping.
func (d *doctor) checkIDMap() Check {
	req := idmap.Request{UID: d.env.UID, GID: d.env.GID, User: d.env.User, Privileged: d.env.Privileged, LookPath: d.env.LookPath}
	if d.env.Etc != "/etc" { // the real files are left to Resolve, which may ask getsubids first
		req.SubUIDFile, req.SubGIDFile = d.env.etc("subuid"), d.env.etc("subgid")
	}
	plan, err := idmap.Resolve(req)
	l := &d.ladder
	switch {
	case err != nil:
		l.IDMap = "unavailable"
		return Check{Name: "idmap", Status: Fail, Detail: err.Error(), Consequence: "containers with a user namespace cannot start"}
	case plan.Warning != "":
		l.IDMap = "single mapping"
		detail, fix, _ := strings.Cut(plan.Warning, "; fix: ")
		return Check{Name: "idmap", Status: Warn, Detail: detail,
			Consequence: "only root exists in the container: installing packages, chown and images with other users fail", Fix: fix,
			RootFix: plan.RootFix, Packages: plan.Packages}
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

func (d *doctor) checkRootfs() Check {
	c := Check{Name: "rootfs"}
	d.ladder.Rootfs = "unavailable"
	var cf *userns.ChildFailed
	switch {
	case d.stateErr != nil:
		c.Status, c.Detail = Fail, d.stateErr.Error()
		c.Consequence = "containers cannot be created: sandy keeps its state and each container's layer there"
		c.Fix = "make " + d.root + " a directory you can write, or pass --root DIR"
		return c
	case d.cleanupErr != nil:
		c.Status, c.Detail = Fail, d.cleanupErr.Error()
		c.Consequence = "sandy run cannot remove a container's layer here either"
		c.Fix = "see docs/rootfs.md#troubleshooting"
		return c
	case d.nsErr != nil:
		c.Status, c.Detail = Fail, "not tried: it needs a user namespace"
		c.Consequence, c.Fix = "sandy run cannot build a container root either", "fix the userns line first"
		return c
	case d.apparmorBlocks() && errors.As(d.rootfsErr, &cf):
		c.Status, c.Detail = Fail, "no rung of the root filesystem ladder works in "+d.root+": "+cf.Stderr
		c.Consequence = "sandy run cannot build a container root"
		c.Fix = "see the apparmor line: " + userns.AppArmorHint(d.env.Exe)
		return c
	case errors.As(d.rootfsErr, &cf):
		c.Status, c.Detail = Fail, "no rung of the root filesystem ladder works in "+d.root+": "+cf.Stderr
		c.Consequence = "sandy run cannot build a writable container root"
		c.Fix = "install fuse-overlayfs (apt-get install fuse-overlayfs), or pass --root on a local filesystem (ext4, xfs, btrfs, tmpfs)"
		return c
	case d.rootfsErr != nil:
		c.Status, c.Detail = Fail, d.rootfsErr.Error()
		c.Consequence = "doctor cannot tell whether sandy run can build a container root here"
		c.Fix = "see docs/rootfs.md#troubleshooting"
		return c
	}
	res := d.rootfs
	d.ladder.Rootfs = string(res.Mode)
	if res.Mode == overlay.ModeOverlay {
		c.Status, c.Detail = OK, "kernel overlay mounts in a user namespace in "+d.root
		return c
	}
	c.Status, c.Detail = Warn, fmt.Sprintf("%s in %s", res.Mode, d.root)
	c.Consequence = fmt.Sprintf("sandy run falls back to %s for the container root (slower, or read-only for bind)", res.Mode)
	c.Fix = "put --root on a local filesystem where kernel overlay works (Linux 5.11+; not NFS or overlay), or install fuse-overlayfs (apt-get install fuse-overlayfs)"
	if len(res.Warnings) > 0 {
		// Mount's own line, "what; fix: how", as run prints it.
		detail, fix, ok := strings.Cut(strings.Join(res.Warnings, "; "), "; fix: ")
		c.Detail = detail
		if ok {
			c.Fix = fix
		}
	}
	return c
}

// checkFuse tries the fuse rung's preconditions on their own: it matters
// where kernel overlay does not work, and says so where it does.
func (d *doctor) checkFuse() Check {
	err := overlay.CheckFuse(d.env.LookPath, d.env.dev("fuse"))
	if err == nil {
		return Check{Name: "fuse", Status: OK, Detail: "fuse-overlayfs is in PATH and " + d.env.dev("fuse") + " opens for reading and writing"}
	}
	var re *overlay.RungError
	why, fix := err.Error(), ""
	if errors.As(err, &re) {
		why, fix = re.Why, re.Fix
	}
	if d.rootfs != nil && d.rootfs.Mode == overlay.ModeOverlay {
		return Check{Name: "fuse", Status: OK, Detail: "the fuse-overlayfs fallback is unavailable (" + why + "), and not needed: kernel overlay works in " + d.root}
	}
	c := Check{Name: "fuse", Status: Warn, Detail: why,
		Consequence: "the fuse-overlayfs fallback is unavailable: where kernel overlay does not work, sandy run falls back to a read-only bind of the root", Fix: fix}
	if _, lerr := d.env.LookPath("fuse-overlayfs"); lerr != nil {
		c.Packages = []string{"fuse-overlayfs"}
	}
	return c
}

// checkCgroup reports the manager cgroupv2.New picks with auto, tried
// for real: under systemd, a no-op scope started on the user bus and the
// controllers delegated to it (Env.Cgroup).
func (d *doctor) checkCgroup() Check {
	if d.env.Cgroup == nil {
		return d.cgroupRow(cgroupv2.Probe())
	}
	return d.cgroupRow(d.env.Cgroup())
}

// cgroupRow is the cgroup check for ch. For none, the detail and the fix
// are the words of run's line (ch.Warning); for controllers the user
// manager does not delegate, the words of run's "cannot enforce" error.
func (d *doctor) cgroupRow(ch cgroupv2.Choice) Check {
	d.ladder.Cgroup = ch.Manager
	switch {
	case ch.Err != nil:
		return Check{Name: "cgroup", Status: Fail, Detail: ch.Reason + ", but starting a transient scope failed: " + ch.Err.Error(),
			Consequence: "sandy run picks the systemd cgroup manager here and fails at its cgroup step",
			Fix:         "see why in the user manager's log (journalctl --user -e; systemctl --user status), or pass --cgroup-manager=cgroupfs inside a delegated cgroup (systemd-run --user --scope -p Delegate=yes sandy run …)"}
	case ch.Manager == cgroupv2.KindSystemd && ch.Scope.Unit != "":
		lost := cgroupv2.Missing(cgroupv2.Delegated, ch.Scope.Controllers)
		if len(lost) == 0 {
			break
		}
		return Check{Name: "cgroup", Status: Warn,
			Detail:      "systemd: " + ch.Reason + ": " + cgroupv2.NotDelegated(lost, ch.Scope.Controllers, int(d.env.UID), ch.Scope.Cgroup),
			Consequence: "limits of those controllers (" + strings.Join(lost, ", ") + ") cannot be enforced: they are an error unless you pass --allow-unenforced",
			Fix:         cgroupv2.DelegateFix(lost), RootFix: cgroupv2.DelegateCommands(lost)}
	}
	if ch.Manager != cgroupv2.KindNone {
		return Check{Name: "cgroup", Status: OK, Detail: ch.Manager + ": " + ch.Reason}
	}
	c := Check{Name: "cgroup", Status: Warn, Detail: "cgroup manager none: " + ch.Reason,
		Consequence: "memory, pids and cpu limits cannot be enforced: --memory and the other limits are an error unless you pass --allow-unenforced, and ps, pause, update and events do not work",
		Fix:         ch.Fix}
	if d.session.Systemd && !d.session.UserBus {
		c.Fix = "install the user session bus (apt-get install dbus-user-session) and log in again; " + c.Fix
		c.Packages = []string{"dbus-user-session"}
	}
	return c
}

// checkLinger asks systemd-logind: a user without linger loses the user
// manager at logout, and with it the user bus and its scopes.
func (d *doctor) checkLinger() Check {
	if d.env.UID == 0 {
		// Root's scopes are the system's systemd's (cgroupv2's manager
		// address for root), which no logout stops.
		return Check{Name: "linger", Status: OK, Detail: "root: sandy uses the system's systemd (PID 1), which no logout stops; linger does not apply"}
	}
	on, err := d.env.Linger()
	switch {
	case errors.Is(err, cgroupv2.ErrNoLogind):
		return Check{Name: "linger", Status: OK, Detail: "no systemd-logind answers here: nothing stops your processes at logout"}
	case err != nil:
		return Check{Name: "linger", Status: Warn, Detail: err.Error(),
			Consequence: "doctor cannot tell whether your containers outlive your login sessions", Fix: "loginctl show-user -p Linger " + d.env.User}
	case on:
		return Check{Name: "linger", Status: OK, Detail: "linger is on for " + d.env.User + ": your user manager and its containers outlive your sessions"}
	}
	cmd := cgroupv2.LingerCommand(d.env.User)
	return Check{Name: "linger", Status: Warn, Detail: "linger is off for " + d.env.User + " (systemd-logind)",
		Consequence: "when your last session ends, systemd stops your user manager: containers under the systemd cgroup manager are stopped, and sandy started from cron or a service finds no user bus",
		Fix:         "as root: " + cmd, RootFix: []string{cmd}}
}

// checkNetwork is run's own choice of the default network
// (lifecycle.DefaultNetwork: sandy's own, else slirp4netns, else
// loopback only), then the tap device either makes, made in a throwaway
// user and network namespace.
func (d *doctor) checkNetwork() Check {
	tun := d.env.dev("net/tun")
	prog, perr := d.env.NetProgram()
	serr := slirp.CheckWith(d.env.LookPath, tun)
	var what string
	switch terr := slirp.CheckTun(tun); {
	case perr == nil && terr == nil:
		d.ladder.Network = "usernet (sandy's own)"
		what = "sandy-net is installed (" + prog + ") and " + tun + " opens"
	case serr == nil:
		d.ladder.Network = "slirp4netns"
		what = "slirp4netns is in PATH and " + tun + " opens (sandy's own network cannot run: " + perr.Error() + ")"
	default:
		if perr == nil {
			perr = terr
		}
		d.ladder.Network = "loopback only"
		detail, fix := splitParenFix(slirp.LoopbackWarning(lifecycle.NoNetwork(perr, serr)))
		c := Check{Name: "network", Status: Warn, Detail: detail,
			Consequence: "containers started by sandy run have no outside network, and -p is an error", Fix: fix}
		if _, lerr := d.env.LookPath("slirp4netns"); lerr != nil {
			c.Packages = []string{"slirp4netns"}
		}
		return c
	}
	if d.nsErr != nil {
		return Check{Name: "network", Status: OK, Detail: what + "; no tap device tried: no user namespace"}
	}
	if _, err := d.env.Probe(unix.CLONE_NEWNET, slirp.TunProbeRole, d.env.dev("net/tun")); err != nil {
		msg := err.Error()
		var cf *userns.ChildFailed
		if errors.As(err, &cf) {
			msg = strings.TrimPrefix(cf.Stderr, "sandy "+slirp.TunProbeRole+": ")
		}
		detail, fix := splitParenFix(msg)
		if fix == "" {
			fix = "pass --network=none, or see docs/networking.md"
		}
		return Check{Name: "network", Status: Fail, Detail: detail,
			Consequence: "sandy run fails at its network step: the container's tap device cannot be made", Fix: fix}
	}
	return Check{Name: "network", Status: OK, Detail: what + "; a tap device can be made in a new network namespace"}
}

// checkPing opens the ICMP echo socket slirp4netns opens, as you.
func (d *doctor) checkPing() Check {
	err := slirp.CheckPing(d.env.ProcSys, d.env.Groups, d.env.PingSocket())
	if err == nil {
		return Check{Name: "ping", Status: OK, Detail: "an ICMP echo socket opens as you: ping from a container gets answers"}
	}
	detail, fix := splitParenFix(err.Error())
	c := Check{Name: "ping", Status: Warn, Detail: detail,
		Consequence: "ping from a container to other hosts gets no answer (slirp4netns and usernet cannot send ICMP echo as you); TCP and UDP work"}
	if fix != "" {
		c.Fix, c.RootFix = fix, sysctlLines([]string{slirp.PingSysctl})
	}
	return c
}

// checkPorts: the lowest host port -p accepts (run refuses lower ones
// before it starts anything).
func (d *doctor) checkPorts() Check {
	start := slirp.UnprivilegedPortStart(d.env.ProcSys)
	if start <= 80 {
		return Check{Name: "ports", Status: OK, Detail: fmt.Sprintf("net.ipv4.ip_unprivileged_port_start=%d: -p can publish host ports from %d up (-p 80:80 works)", start, start)}
	}
	return Check{Name: "ports", Status: Warn, Detail: fmt.Sprintf("net.ipv4.ip_unprivileged_port_start=%d", start),
		Consequence: fmt.Sprintf("-p can publish host ports from %d up only: -p 80:80 is an error (privileged host port); -p 8080:80 works", start),
		Fix:         "as root: sysctl -w " + slirp.LowPortsSysctl + ", and persist it in /etc/sysctl.d/",
		RootFix:     sysctlLines([]string{slirp.LowPortsSysctl})}
}

// checkImages reports the image store as the image helper's own probe
// (internal/images.Probe) finds it: the store it opens, or the driver a
// new store would get, tried in a scratch store beside it.
func (d *doctor) checkImages() Check {
	c := Check{Name: "images"}
	d.ladder.Images = "unavailable"
	if d.env.ImageStore == nil {
		c.Status, c.Detail = Warn, "not probed"
		return c
	}
	info, err := d.env.ImageStore()
	switch {
	case errors.Is(err, ErrNoImageHelper):
		c.Status, c.Detail = Warn, "sandy-image is not installed beside sandy"
		c.Consequence = "sandy pull, images, load, save, rmi and the other image commands are unavailable (bundles run as before)"
		c.Fix = "bash hack/install.sh (installs sandy and sandy-image together), or put sandy-image beside sandy"
		return c
	case err != nil:
		c.Status, c.Detail = Warn, err.Error()
		c.Consequence = "the image commands will fail the same way"
		return c
	case info.Error != "":
		c.Status, c.Detail = Warn, fmt.Sprintf("image store %s: %s", info.GraphRoot, info.Error)
		c.Consequence = "the image commands will fail the same way"
		c.Fix = "see docs/troubleshooting.md#images"
		return c
	}
	driver := info.Driver
	switch {
	case driver == "overlay" && info.Mount != "":
		driver = "overlay (" + filepath.Base(info.Mount) + ")"
	case driver == "overlay":
		driver = "overlay (kernel, in the user namespace)"
	}
	d.ladder.Images = driver
	if info.Existing {
		c.Detail = fmt.Sprintf("image store %s: driver %s, %d images (shared with podman, buildah and skopeo)", info.GraphRoot, driver, info.Images)
	} else {
		c.Detail = fmt.Sprintf("no image store yet; one in %s would use %s (tried)", info.GraphRoot, driver)
	}
	c.Status = OK
	if info.Fallback != "" {
		c.Status = Warn
		c.Detail += ": " + info.Fallback
		c.Consequence = "image layers use a slower driver (vfs copies every layer in full)"
		c.Fix = info.Fix
	}
	return c
}
