//go:build linux

package doctor

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/cgroupv2"
	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/slirp"
	"github.com/sandy-rt/sandy/userns"
)

// machine is a fake host for Run: files under a temporary root, and the
// answers of the probes that try things. Its zero-ish default (newMachine)
// is a host where everything works.
type machine struct {
	files map[string]string // path under the root -> content, or absent
	dirs  []string          // paths made directories
	bins  map[string]bool   // PATH: name -> present (newuidmap, newgidmap, fuse-overlayfs, slirp4netns)

	nsErr     error  // the user namespace probe's start error
	rootfs    string // the rootfs probe's stdout (a ProbeResult)
	rootfsErr error  // the rootfs probe child's failure
	tunErr    error  // the tap device probe child's failure
	pingErr   error
	linger    bool
	lingerErr error
	cgroup    cgroupv2.Choice       // the cgroup ladder probe's answer
	store     imagehelper.StoreInfo // the image helper's probe answer
	storeErr  error
	stateRoot string // --root; "" = a fresh directory
	root      bool   // the caller is root (uid 0), not alice
}

// absent as a file's content leaves the file out.
const absent = "\x00"

func newMachine() *machine {
	return &machine{
		files: map[string]string{
			"etc/subuid":                                   "alice:100000:65536\n",
			"etc/subgid":                                   "alice:100000:65536\n",
			"etc/os-release":                               "PRETTY_NAME=\"Ubuntu 24.04.1 LTS\"\nNAME=\"Ubuntu\"\nID=ubuntu\nID_LIKE=debian\n",
			"proc/sys/user/max_user_namespaces":            "15000\n",
			"proc/sys/net/ipv4/ping_group_range":           "0\t2147483647\n",
			"proc/sys/net/ipv4/ip_unprivileged_port_start": "80\n",
			"proc/self/status":                             "Name:\tsandy\nSeccomp:\t0\n",
			"dev/fuse":                                     "",
			"dev/net/tun":                                  "",
			"usr/lib/systemd/user/dbus.socket":             "",
			"proc/sys/kernel/apparmor_restrict_unprivileged_userns": "0\n",
		},
		bins:      map[string]bool{"newuidmap": true, "newgidmap": true, "fuse-overlayfs": true, "slirp4netns": true},
		rootfs:    `{"mode":"overlay"}`,
		store:     imagehelper.StoreInfo{GraphRoot: "/home/alice/.local/share/containers/storage", Driver: "overlay", Existing: true, Images: 3},
		lingerErr: fmt.Errorf("%w: connecting to the system bus: no such file", cgroupv2.ErrNoLogind),
		cgroup:    cgroupv2.Choice{Manager: cgroupv2.KindNone, Reason: "this host has cgroup v1 only (/sys/fs/cgroup is not cgroup2); sandy manages cgroup v2 only", Fix: "boot with systemd.unified_cgroup_hierarchy=1"},
	}
}

// helperBin is a file that passes idmap's setuid-root check: made setuid
// as root, else the real newuidmap when it is setuid root.
func helperBin(t *testing.T) string {
	t.Helper()
	if os.Getuid() == 0 {
		p := filepath.Join(t.TempDir(), "helper")
		if err := os.WriteFile(p, nil, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.Chmod(p, 0o755|os.ModeSetuid); err != nil {
			t.Fatal(err)
		}
		return p
	}
	p, err := exec.LookPath("newuidmap")
	if fi, serr := os.Stat(p); err != nil || serr != nil || fi.Mode()&os.ModeSetuid == 0 {
		testutil.Skip(t, "a setuid-root helper stands for newuidmap: run as root, or install uidmap (apt-get install uidmap)")
	}
	return p
}

// env builds the machine and returns its Env (user alice, uid 1000, the
// binary at /opt/sandy/bin/sandy).
func (m *machine) env(t *testing.T) *Env {
	t.Helper()
	root := t.TempDir()
	for p, content := range m.files {
		if content == absent {
			continue
		}
		full := filepath.Join(root, p)
		if err := os.MkdirAll(filepath.Dir(full), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(full, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	for _, d := range m.dirs {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	helper := helperBin(t)
	e := &Env{Root: root, Etc: filepath.Join(root, "etc"), ProcSys: filepath.Join(root, "proc/sys"),
		Status: filepath.Join(root, "proc/self/status"), Dev: filepath.Join(root, "dev"),
		LookPath: func(name string) (string, error) {
			if !m.bins[name] {
				return "", &exec.Error{Name: name, Err: exec.ErrNotFound}
			}
			return helper, nil
		},
		NetProgram: func() (string, error) {
			if !m.bins["sandy-net"] {
				return "", errors.New("--network=usernet needs sandy-net, which is not installed beside sandy")
			}
			return "/usr/local/bin/sandy-net", nil
		},
		Probe: func(extra uintptr, args ...string) ([]byte, error) {
			switch args[0] {
			case "--version":
				return []byte("sandy version test\n"), m.nsErr
			case overlay.ProbeRole:
				if m.nsErr != nil {
					return nil, m.nsErr
				}
				return []byte(m.rootfs), m.rootfsErr
			case slirp.TunProbeRole:
				if extra&unix.CLONE_NEWNET == 0 {
					return nil, errors.New("tap probe without CLONE_NEWNET")
				}
				return nil, m.tunErr
			}
			return nil, fmt.Errorf("unknown probe %v", args)
		},
		PingSocket: func() error { return m.pingErr },
		Linger:     func() (bool, error) { return m.linger, m.lingerErr },
		Cgroup:     func() cgroupv2.Choice { return m.cgroup },
		ImageStore: func() (imagehelper.StoreInfo, error) { return m.store, m.storeErr },
		UID:        1000, GID: 1000, Groups: []uint32{1000, 27}, User: "alice", Exe: "/opt/sandy/bin/sandy",
	}
	if m.root {
		e.UID, e.GID, e.Groups, e.User, e.Privileged = 0, 0, []uint32{0}, "root", true
	}
	return e
}

// sdScope is the systemd rung's answer with a scope that has ctrls.
func sdScope(ctrls ...string) cgroupv2.Choice {
	dir := "/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/sandy-doctor-42.scope"
	return cgroupv2.Choice{Manager: cgroupv2.KindSystemd,
		Reason: fmt.Sprintf("transient scope sandy-doctor-42.scope started on unix:path=/run/user/1000/bus with controllers %q delegated", strings.Join(ctrls, " ")),
		Scope:  cgroupv2.ScopeProbe{Bus: "unix:path=/run/user/1000/bus", Unit: "sandy-doctor-42.scope", Cgroup: dir, Controllers: ctrls}}
}

func childFailed(stderr string) error {
	return &userns.ChildFailed{Err: errors.New("exit status 1"), Stderr: stderr}
}

// TestRunFaults feeds Run one broken thing at a time and checks the row's
// status and words, the exit status and the fix script: the fault
// injection, without touching the host.
func TestRunFaults(t *testing.T) {
	eperm := fmt.Errorf("creating a user namespace: fork/exec /proc/self/exe: %w", unix.EPERM)
	type row struct {
		status string
		words  []string // in detail, consequence or fix
	}
	tests := []struct {
		name   string
		fault  func(m *machine)
		rows   map[string]row
		exit   int
		script []string // substrings, in order; nil = no script
	}{
		{name: "all works", fault: func(*machine) {},
			rows: map[string]row{"userns": {OK, nil}, "apparmor": {OK, []string{"=0"}}, "idmap": {OK, []string{"1->100000+65536"}},
				"rootfs": {OK, nil}, "fuse": {OK, nil}, "linger": {OK, []string{"no systemd-logind"}}, "network": {OK, []string{"tap device"}},
				"ping": {OK, nil}, "ports": {OK, []string{"-p 80:80 works"}},
				"images": {OK, []string{"driver overlay (kernel, in the user namespace), 3 images"}}}},
		{name: "sandy's own network", fault: func(m *machine) { m.bins["sandy-net"] = true },
			rows: map[string]row{"network": {OK, []string{"sandy-net is installed (/usr/local/bin/sandy-net)", "a tap device can be made"}}}},
		{name: "no sandy-net, no slirp4netns", fault: func(m *machine) { delete(m.bins, "slirp4netns") },
			rows:   map[string]row{"network": {Warn, []string{"loopback only", "slirp4netns not in PATH", "sandy's own network cannot run", "apt-get install slirp4netns"}}},
			script: []string{"apt-get install -y slirp4netns\n"}},
		{name: "no image helper", fault: func(m *machine) {
			m.storeErr = fmt.Errorf("%w: the image commands need sandy-image", ErrNoImageHelper)
		},
			rows: map[string]row{"images": {Warn, []string{"not installed beside sandy", "image commands are unavailable", "hack/install.sh"}}}},
		{name: "image store on vfs", fault: func(m *machine) {
			m.store = imagehelper.StoreInfo{GraphRoot: "/nfs/alice/storage", Driver: "vfs", Fallback: "native overlay: not supported; using vfs (a full copy per layer)", Fix: "apt-get install fuse-overlayfs"}
		},
			rows: map[string]row{"images": {Warn, []string{"no image store yet", "would use vfs", "slower driver", "apt-get install fuse-overlayfs"}}}},
		{name: "image store unusable", fault: func(m *machine) {
			m.store = imagehelper.StoreInfo{GraphRoot: "/x", Error: "the image store /x holds layers of several drivers (overlay, vfs)"}
		},
			rows: map[string]row{"images": {Warn, []string{"several drivers", "troubleshooting.md#images"}}}},
		{name: "no subuid entry", fault: func(m *machine) { m.files["etc/subuid"] = "bob:100000:65536\n" },
			rows:   map[string]row{"idmap": {Warn, []string{"no range for alice in", "only root exists in the container", "usermod --add-subuids 165536-231071 alice"}}},
			script: []string{"sudo sh -eux <<'EOF'\n", "echo 'alice:165536:65536' >> ", "/etc/subuid\n", "EOF\n"}},
		{name: "max_user_namespaces=0", fault: func(m *machine) {
			m.files["proc/sys/user/max_user_namespaces"] = "0\n"
			m.nsErr = fmt.Errorf("creating a user namespace: fork/exec /proc/self/exe: %w", unix.ENOSPC)
		},
			rows: map[string]row{"userns": {Fail, []string{"no space left on device", "rootless containers cannot start", "user.max_user_namespaces=0", "sysctl -w user.max_user_namespaces=15000"}},
				"rootfs": {Fail, []string{"not tried"}}, "network": {OK, []string{"no tap device tried"}}},
			exit:   1,
			script: []string{"sysctl -w user.max_user_namespaces=15000\n", "echo user.max_user_namespaces=15000 > /etc/sysctl.d/50-sandy-user.max_user_namespaces.conf\n"}},
		{name: "Debian sysctl", fault: func(m *machine) {
			m.files["proc/sys/kernel/unprivileged_userns_clone"] = "0\n"
			m.nsErr = eperm
		},
			rows:   map[string]row{"userns": {Fail, []string{"kernel.unprivileged_userns_clone=0"}}},
			exit:   1,
			script: []string{"sysctl -w kernel.unprivileged_userns_clone=1\n"}},
		{name: "AppArmor restriction", fault: func(m *machine) {
			m.files["proc/sys/kernel/apparmor_restrict_unprivileged_userns"] = "1\n"
			m.rootfsErr = childFailed("sandy _probe-rootfs: rootfs mode bind: mounting: permission denied")
			m.rootfs = ""
		},
			rows: map[string]row{"userns": {OK, nil},
				"apparmor": {Fail, []string{"kernel.apparmor_restrict_unprivileged_userns=1", "rootless containers cannot start", "install a profile for /opt/sandy/bin/sandy", "--fix-script"}},
				"rootfs":   {Fail, []string{"permission denied", "see the apparmor line"}}},
			exit: 1,
			script: []string{"cat > /etc/apparmor.d/sandy <<'PROFILE'\nabi <abi/4.0>,\ninclude <tunables/global>\n\nprofile sandy /opt/sandy/bin/sandy flags=(unconfined) {\n  userns,\n",
				"}\nPROFILE\napparmor_parser -r /etc/apparmor.d/sandy\nEOF\n"}},
		{name: "AppArmor restriction, clone refused", fault: func(m *machine) {
			m.files["proc/sys/kernel/apparmor_restrict_unprivileged_userns"] = "1\n"
			m.nsErr = eperm
		},
			rows:   map[string]row{"userns": {Fail, []string{"see the apparmor line"}}, "apparmor": {Fail, nil}},
			exit:   1,
			script: []string{"apparmor_parser -r /etc/apparmor.d/sandy\n"}},
		{name: "AppArmor restriction, sandy allowed", fault: func(m *machine) {
			m.files["proc/sys/kernel/apparmor_restrict_unprivileged_userns"] = "1\n"
		},
			rows: map[string]row{"apparmor": {OK, []string{"=1, and sandy may use user namespaces"}}}},
		{name: "seccomp of a CI runner", fault: func(m *machine) {
			m.files["proc/self/status"] = "Name:\tsandy\nSeccomp:\t2\n"
			m.nsErr = eperm
		},
			rows: map[string]row{"userns": {Fail, []string{"operation not permitted: blocked by a seccomp filter of the container you run in (CI runner)",
				"only its outer runtime", "--security-opt seccomp=unconfined"}}, "apparmor": {OK, nil}},
			exit: 1},
		{name: "EPERM, no filter visible", fault: func(m *machine) { m.nsErr = eperm },
			rows: map[string]row{"userns": {Fail, []string{"no sysctl forbids it, so most likely a seccomp filter of the container you run in (CI runner)"}}},
			exit: 1},
		{name: "no /dev/fuse, kernel overlay works", fault: func(m *machine) { m.files["dev/fuse"] = absent },
			rows: map[string]row{"fuse": {OK, []string{"fallback is unavailable (cannot open", "not needed: kernel overlay works"}}}},
		{name: "no /dev/fuse on a bind rung", fault: func(m *machine) {
			m.files["dev/fuse"] = absent
			m.rootfs = `{"mode":"bind","warnings":["rootfs: using a read-only bind; fix: install fuse-overlayfs"]}`
		},
			rows: map[string]row{"fuse": {Warn, []string{"cannot open", "fuse-overlayfs fallback is unavailable", "modprobe fuse"}},
				"rootfs": {Warn, []string{"using a read-only bind"}}}},
		{name: "unopenable /dev/fuse", fault: func(m *machine) {
			m.files["dev/fuse"] = absent
			m.dirs = []string{"dev/fuse"}
			m.rootfs = `{"mode":"bind"}`
		},
			rows: map[string]row{"fuse": {Warn, []string{"is a directory"}}}},
		{name: "missing packages, one install line", fault: func(m *machine) {
			m.bins = map[string]bool{"fuse-overlayfs": false}
			m.rootfs = `{"mode":"bind"}`
		},
			rows:   map[string]row{"idmap": {Warn, []string{"newuidmap not found"}}, "fuse": {Warn, nil}, "network": {Warn, []string{"loopback only"}}},
			script: []string{"sudo sh -eux <<'EOF'\napt-get install -y uidmap fuse-overlayfs slirp4netns\n"}},
		{name: "Fedora names", fault: func(m *machine) {
			m.bins = map[string]bool{"fuse-overlayfs": true, "slirp4netns": true}
			m.files["etc/os-release"] = "NAME=Fedora\nVERSION_ID=41\nID=fedora\n"
		},
			script: []string{"dnf install -y shadow-utils\n"}},
		{name: "tap device refused", fault: func(m *machine) {
			m.tunErr = childFailed("sandy _probe-tun: creating tap device tap0 (TUNSETIFF) in a new network namespace: operation not permitted")
		},
			rows: map[string]row{"network": {Fail, []string{"creating tap device tap0", "the container's tap device cannot be made", "--network=none"}}},
			exit: 1},
		{name: "ping range", fault: func(m *machine) {
			m.files["proc/sys/net/ipv4/ping_group_range"] = "1\t0\n"
			m.pingErr = fmt.Errorf("opening an ICMP echo socket: %w", unix.EACCES)
		},
			rows:   map[string]row{"ping": {Warn, []string{`"1 0", which holds none of your groups [1000 27]`, "gets no answer"}}},
			script: []string{"sysctl -w 'net.ipv4.ping_group_range=0 2147483647'\necho 'net.ipv4.ping_group_range=0 2147483647' > /etc/sysctl.d/50-sandy-net.ipv4.ping_group_range.conf\n"}},
		{name: "low ports", fault: func(m *machine) { m.files["proc/sys/net/ipv4/ip_unprivileged_port_start"] = "1024\n" },
			rows:   map[string]row{"ports": {Warn, []string{"=1024", "-p 80:80 is an error", "sysctl -w net.ipv4.ip_unprivileged_port_start=80"}}},
			script: []string{"sysctl -w net.ipv4.ip_unprivileged_port_start=80\n"}},
		{name: "state root unusable", fault: func(m *machine) { m.stateRoot = "/dev/null/state" },
			rows: map[string]row{"userns": {OK, nil}, "rootfs": {Fail, []string{"making state root /dev/null/state", "pass --root DIR"}}},
			exit: 1},
		{name: "state root unusable, no user namespace either", fault: func(m *machine) {
			m.stateRoot = "/dev/null/state"
			m.nsErr = fmt.Errorf("creating a user namespace: fork/exec /proc/self/exe: %w", unix.ENOSPC)
		},
			rows: map[string]row{"userns": {Fail, []string{"sysctl -w user.max_user_namespaces=15000"}}, "rootfs": {Fail, []string{"pass --root DIR"}}},
			exit: 1, script: []string{"sysctl -w user.max_user_namespaces=15000\n"}},
		{name: "linger off", fault: func(m *machine) { m.lingerErr = nil },
			rows:   map[string]row{"linger": {Warn, []string{"linger is off for alice", "systemd stops your user manager", "loginctl enable-linger alice"}}},
			script: []string{"loginctl enable-linger alice\n"}},
		{name: "linger off for root", fault: func(m *machine) {
			m.lingerErr, m.root = nil, true
			m.files["etc/subuid"] += "root:165536:65536\n"
			m.files["etc/subgid"] += "root:165536:65536\n"
		},
			rows: map[string]row{"linger": {OK, []string{"root", "the system's systemd", "linger does not apply"}}}},
		{name: "linger on", fault: func(m *machine) { m.lingerErr, m.linger = nil, true },
			rows: map[string]row{"linger": {OK, []string{"linger is on for alice"}}}},
		{name: "systemd scope with cpu memory pids", fault: func(m *machine) { m.cgroup = sdScope("cpu", "memory", "pids") },
			rows: map[string]row{"cgroup": {OK, []string{"systemd: transient scope sandy-doctor-42.scope started", `"cpu memory pids" delegated`}}}},
		{name: "controllers not delegated", fault: func(m *machine) { m.cgroup = sdScope("pids") },
			rows: map[string]row{"cgroup": {Warn, []string{"the cpu, memory controller is not delegated to uid 1000 (/sys/fs/cgroup/user.slice/user-1000.slice/user@1000.service/user.slice/sandy-doctor-42.scope has \"pids\")",
				"cannot be enforced", "--allow-unenforced", "Delegate=cpu memory pids"}}},
			script: []string{"mkdir -p /etc/systemd/system/user@.service.d\n", "printf '[Service]\\nDelegate=cpu memory pids\\n' > /etc/systemd/system/user@.service.d/delegate.conf\n", "systemctl daemon-reload\n"}},
		{name: "user manager refuses the scope", fault: func(m *machine) {
			m.cgroup = cgroupv2.Choice{Manager: cgroupv2.KindSystemd, Reason: "the user session bus answers at unix:path=/run/user/1000/bus",
				Err: errors.New("starting scope sandy-doctor-42.scope: Access denied")}
		},
			rows: map[string]row{"cgroup": {Fail, []string{"starting a transient scope failed: starting scope sandy-doctor-42.scope: Access denied", "fails at its cgroup step", "journalctl --user"}}},
			exit: 1},
		{name: "no user session bus", fault: func(m *machine) {
			m.cgroup = cgroupv2.Choice{Manager: cgroupv2.KindNone, Fix: "run sandy in a systemd user session (loginctl enable-linger $USER; DBUS_SESSION_BUS_ADDRESS or XDG_RUNTIME_DIR set)",
				Reason: "no user session bus at /tmp/x/bus: stat /tmp/x/bus: no such file or directory, and the cgroup /sys/fs/cgroup/user.slice/user-1000.slice/session-3.scope is not delegated to uid 1000"}
		},
			rows: map[string]row{"cgroup": {Warn, []string{"cgroup manager none: no user session bus at /tmp/x/bus", "cannot be enforced", "DBUS_SESSION_BUS_ADDRESS or XDG_RUNTIME_DIR set"}}}},
		{name: "systemd without the user bus", fault: func(m *machine) {
			m.dirs = []string{"run/systemd/system"}
			m.files["usr/lib/systemd/user/dbus.socket"] = absent
		},
			script: []string{"apt-get install -y dbus-user-session\n"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			m := newMachine()
			tt.fault(m)
			root := m.stateRoot
			if root == "" {
				root = t.TempDir()
			}
			r := Run(Options{Version: "test", Root: root, Env: m.env(t)})
			var text strings.Builder
			_ = r.WriteText(&text)
			t.Log(text.String() + r.FixScript)
			if r.Distro == "" || r.Binary != "/opt/sandy/bin/sandy" {
				t.Errorf("header: distro %q, binary %q", r.Distro, r.Binary)
			}
			byName := map[string]Check{}
			for _, c := range r.Checks {
				byName[c.Name] = c
				if (c.Status == OK) != (c.Consequence == "") {
					t.Errorf("%s: status %s with consequence %q", c.Name, c.Status, c.Consequence)
				}
			}
			for name, want := range tt.rows {
				c, ok := byName[name]
				if !ok {
					t.Fatalf("no %s row", name)
				}
				if c.Status != want.status {
					t.Errorf("%s: %s (%s), want %s", name, c.Status, c.Detail, want.status)
				}
				all := c.Detail + "\n" + c.Consequence + "\n" + c.Fix
				for _, w := range want.words {
					if !strings.Contains(all, w) {
						t.Errorf("%s lacks %q:\n%s", name, w, all)
					}
				}
			}
			if got := r.ExitCode(); got != tt.exit {
				t.Errorf("exit %d, want %d", got, tt.exit)
			}
			if tt.script == nil {
				// The cgroup row is the real host's; it never needs root here.
				if r.FixScript != "" {
					t.Errorf("fix script without a root fix:\n%s", r.FixScript)
				}
				return
			}
			rest := r.FixScript
			for _, w := range tt.script {
				i := strings.Index(rest, w)
				if i < 0 {
					t.Fatalf("fix script lacks %q (in order):\n%s", w, r.FixScript)
				}
				rest = rest[i+len(w):]
			}
			if !strings.HasPrefix(r.FixScript, "sudo sh -eux <<'EOF'\n") || !strings.HasSuffix(r.FixScript, "\nEOF\n") {
				t.Errorf("fix script is not one sudo sh block:\n%s", r.FixScript)
			}
		})
	}
}

// TestFixScriptRuns: the script is valid sh, and with each command
// replaced by echo it runs the lines it lists once each, the nested
// profile here-document included.
func TestFixScriptRuns(t *testing.T) {
	checks := []Check{
		{Name: "a", Status: Fail, RootFix: apparmorLines("/opt/x y/sandy")},
		{Name: "b", Status: Warn, RootFix: sysctlLines([]string{"net.ipv4.ping_group_range=0 2147483647"}), Packages: []string{"uidmap"}},
		{Name: "c", Status: Warn, RootFix: sysctlLines([]string{"net.ipv4.ping_group_range=0 2147483647"}), Packages: []string{"uidmap", "slirp4netns"}},
		{Name: "d", Status: OK, RootFix: []string{"never"}},
	}
	s := fixScript(checks, osRelease{ID: "debian"})
	body, ok := strings.CutPrefix(s, "sudo sh -eux <<'EOF'\n")
	body, ok2 := strings.CutSuffix(body, "EOF\n")
	if !ok || !ok2 {
		t.Fatalf("not one sudo block:\n%s", s)
	}
	if strings.Count(body, "ping_group_range=0 2147483647' >") != 1 || strings.Contains(body, "never") {
		t.Errorf("each fix once, none of an ok row:\n%s", body)
	}
	if !strings.HasPrefix(body, "apt-get install -y uidmap slirp4netns\n") {
		t.Errorf("want one install line first:\n%s", body)
	}
	dir := t.TempDir()
	// Stand-ins: the script's commands print what they got; the profile
	// and sysctl files go to dir.
	body = strings.NewReplacer("/etc/apparmor.d/", dir+"/", "/etc/sysctl.d/", dir+"/").Replace(body)
	var fns strings.Builder
	for _, f := range []string{"apt-get", "sysctl", "apparmor_parser"} {
		fmt.Fprintf(&fns, "%s() { echo %s \"$@\"; }\n", strings.ReplaceAll(f, "-", "_"), f)
	}
	body = strings.Replace(body, "apt-get ", "apt_get ", 1)
	out, err := exec.Command("sh", "-eu", "-c", fns.String()+body).CombinedOutput()
	if err != nil {
		t.Fatalf("sh: %v\n%s\n%s", err, out, body)
	}
	prof, err := os.ReadFile(filepath.Join(dir, "sandy"))
	if err != nil || !strings.Contains(string(prof), `profile sandy "/opt/x y/sandy" flags=(unconfined) {`) {
		t.Errorf("profile file: %v\n%s", err, prof)
	}
	if b, err := os.ReadFile(filepath.Join(dir, "50-sandy-net.ipv4.ping_group_range.conf")); err != nil || string(b) != "net.ipv4.ping_group_range=0 2147483647\n" {
		t.Errorf("sysctl file: %v %q", err, b)
	}
	if want := "apt-get install -y uidmap slirp4netns\nsysctl -w net.ipv4.ping_group_range=0 2147483647\napparmor_parser -r " + dir + "/sandy\n"; !strings.Contains(string(out), "apt-get install -y uidmap slirp4netns\n") ||
		!strings.Contains(string(out), "sysctl -w net.ipv4.ping_group_range=0 2147483647\n") || !strings.Contains(string(out), "apparmor_parser -r "+dir+"/sandy\n") {
		t.Errorf("ran:\n%s\nwant the lines of:\n%s", out, want)
	}
}

func TestReadOSRelease(t *testing.T) {
	p := filepath.Join(t.TempDir(), "os-release")
	if err := os.WriteFile(p, []byte("# comment\nNAME='Arch Linux'\nID=arch\nVERSION_ID=\"rolling\"\nID_LIKE=\"a b\"\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	name, o := readOSRelease(p)
	if name != "Arch Linux rolling" || o.ID != "arch" || strings.Join(o.IDLike, ",") != "a,b" {
		t.Errorf("readOSRelease = %q, %+v", name, o)
	}
	if name, _ := readOSRelease(filepath.Join(t.TempDir(), "none")); name != "" {
		t.Errorf("missing file: %q", name)
	}
}
