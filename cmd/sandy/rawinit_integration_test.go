//go:build integration

package main_test

import (
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// rawEnv is a bundle the raw init takes (initproc.RawInit): a read-only
// root whose mountpoints exist, no network of slirp4netns.
func rawEnv(t *testing.T, runcConfig bool) *env {
	e := newEnv(t)
	e.spec.Root.Readonly = true
	if runcConfig {
		// runc spec --rootless: the caller's single id, no network or
		// cgroup namespace, the host's /sys bound read-only.
		e.spec.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getuid()), Size: 1}}
		e.spec.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: uint32(os.Getgid()), Size: 1}}
		var ns []specs.LinuxNamespace
		for _, n := range e.spec.Linux.Namespaces {
			if n.Type != specs.NetworkNamespace && n.Type != specs.CgroupNamespace {
				ns = append(ns, n)
			}
		}
		e.spec.Linux.Namespaces = ns
		for i, m := range e.spec.Mounts {
			if m.Destination == "/sys" {
				e.spec.Mounts[i] = specs.Mount{Destination: "/sys", Type: "none", Source: "/sys", Options: []string{"rbind", "nosuid", "noexec", "nodev", "ro"}}
			}
		}
		e.spec.Hostname = "runc"
	}
	e.write()
	return e
}

// containerView is what the process sees of its container: the mount
// table (mount IDs and device numbers left out), /dev, its ids,
// capabilities, limits, umask, environment, fds and hostname.
//
// The network's files are the one difference allowed: the Go init binds
// them from its layer directory, the raw init from a tmpfs of its own, so
// only where they are mounted and how (read-only, nosuid, ...) is
// compared for them. A writable root's overlay names the rootfs by an fd
// of the process that mounted it, and its layer directory by the
// container's id: both are left out.
const containerView = `cut -d" " -f4- /proc/self/mountinfo | sed -E "s/ [0-9]+:[0-9]+ / DEV /; s#^.* (/etc/(resolv[.]conf|hosts|hostname)) ([^ ]*) .*#network file \1 \3#; s#lowerdir=/proc/self/fd/[0-9]+#lowerdir=FD#; s#=[^,=]*/layer/#=LAYER/#g"; echo ---
ls -ln /etc/resolv.conf /etc/hosts /etc/hostname 2>&1 | cut -c1-10,16-34,47- | sed -E "s/[0-9]{1,2}:[0-9]{2} /HH:MM /"; echo ---
cat /etc/resolv.conf /etc/hosts /etc/hostname 2>&1; ip -o link | cut -d" " -f2-3; echo ---
ls -ln /dev | sed 1d | cut -c1-10,16-; echo ---
id; hostname; grep -E "^(Cap|NoNewPrivs|Seccomp|Uid|Gid|Groups)" /proc/self/status
ulimit -n; umask; pwd; env | sort; ls /proc/self/fd | tr "\n" " "; echo; cat /proc/self/oom_score_adj`

// TestRawInitMatchesGoInit: the raw init builds the container the Go init
// builds, to the last mount flag, with runc's rootless config (the
// caller's single id) and with sandy's (the subordinate ids, newuidmap),
// and --debug says which init ran.
func TestRawInitMatchesGoInit(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	for _, tc := range []struct {
		name     string
		runc     bool
		network  string
		writable bool
	}{
		{"runc's rootless config", true, "--network=none", false},
		{"sandy's rootless config", false, "--network=none", false},
		{"sandy's rootless config, slirp4netns", false, "--network=slirp4netns", false},
		{"runc's rootless config, moby's seccomp profile", true, "--seccomp=default", false},
		// A writable root: the kernel overlay over the layer directory,
		// the network's files written into it.
		{"sandy's rootless config, writable", false, "--network=none", true},
		{"sandy's rootless config, writable, slirp4netns", false, "--network=slirp4netns", true},
		{"runc's rootless config, writable", true, "--network=none", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := rawEnv(t, tc.runc)
			if tc.writable {
				// A volume and a working directory the rootfs lacks:
				// made in the root by either init.
				e.spec.Root.Readonly = false
				e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/src/tree", Type: "bind", Source: testutil.TempDir(t), Options: []string{"rbind", "rw", "rprivate"}})
				e.spec.Process.Cwd = "/work/dir"
				e.write()
			}
			e.sh(containerView)
			// The files the network binds over: a rootfs without them
			// needs the stub layer, which the raw init does not make.
			for _, f := range []string{"etc/resolv.conf", "etc/hostname"} {
				if err := os.WriteFile(filepath.Join(e.bundle, "rootfs", f), nil, 0o644); err != nil {
					t.Fatal(err)
				}
			}
			views := map[string]string{}
			for _, raw := range []string{"0", "1"} {
				t.Setenv("SANDY_RAW_INIT", raw)
				r := e.run("", "--debug", "run", tc.network, e.bundle)
				if r.code != 0 {
					t.Fatalf("SANDY_RAW_INIT=%s: exit %d\n%s", raw, r.code, r.stderr)
				}
				forked := strings.Contains(r.stderr, "debug: the init is forked")
				if forked != (raw == "1") {
					t.Fatalf("SANDY_RAW_INIT=%s: raw init %v, want %v\n%s", raw, forked, raw == "1", r.stderr)
				}
				views[raw] = r.stdout
			}
			if views["0"] != views["1"] {
				t.Fatalf("the raw init's container differs from the Go init's:\n--- Go init\n%s\n--- raw init\n%s", views["0"], views["1"])
			}
			if tc.network == "--seccomp=default" && !strings.Contains(views["1"], "Seccomp:\t2") {
				t.Errorf("no seccomp filter in the container's view:\n%s", views["1"])
			}
			wants := []string{" /proc ", " /dev/pts ", " /sys ", "/proc/sys ro,", "CapBnd:"}
			if tc.writable {
				wants = append(wants, "/ / rw,", " - overlay ", "upperdir=LAYER/upper", " /src/tree ", "\n/work/dir\n")
			}
			for _, want := range wants {
				if !strings.Contains(views["1"], want) {
					t.Errorf("no %q in the container's view:\n%s", want, views["1"])
				}
			}
		})
	}
}

// TestRawInitFallsBack: where the kernel refuses the raw program (a tmpfs
// option it does not know), the Go init runs instead and says what is
// wrong in its words; --debug names the op that failed. Nothing is left.
func TestRawInitFallsBack(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := rawEnv(t, false)
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=lots"}})
	e.write()
	for _, f := range []string{"etc/resolv.conf", "etc/hostname"} {
		if err := os.WriteFile(filepath.Join(e.bundle, "rootfs", f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	// This test's slirp4netns processes: those holding an fd in its state
	// root (their state directory's handle), whatever else of the test
	// user's runs beside it (other packages' tests, in parallel).
	slirps := func() []string {
		out, _ := exec.Command("pgrep", "-u", strconv.Itoa(os.Getuid()), "-x", "slirp4netns").Output()
		var ours []string
		for _, pid := range strings.Fields(string(out)) {
			fds, _ := os.ReadDir("/proc/" + pid + "/fd")
			for _, fd := range fds {
				if target, err := os.Readlink("/proc/" + pid + "/fd/" + fd.Name()); err == nil && strings.HasPrefix(target, e.root) {
					ours = append(ours, pid)
					break
				}
			}
		}
		return ours
	}
	// With slirp4netns and usernet, the network the raw child's
	// namespace had is ended, and one is started for the Go init's.
	nets := netsNow()
	for _, network := range []string{"--network=none", "--network=slirp4netns", "--network=usernet"} {
		r := e.run("", "--debug", "run", network, e.bundle)
		if r.code == 0 {
			t.Fatalf("%s: a tmpfs with size=lots ran:\n%s", network, r.stderr)
		}
		for _, want := range []string{
			"the raw init's program: mounting tmpfs on /tmp (size=lots): invalid argument: the Go init runs instead",
			"mounting config.json mounts: mounts[", "(tmpfs on /tmp): invalid argument",
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("%s: no %q in:\n%s", network, want, r.stderr)
			}
		}
		if out := e.run("", "list", "-q"); strings.TrimSpace(out.stdout) != "" {
			t.Errorf("%s: left behind: %q", network, out.stdout)
		}
	}
	waitFor(t, 10*time.Second, "no slirp4netns left", func() bool { return len(slirps()) == 0 })
	waitFor(t, 10*time.Second, "no sandy-net left", func() bool { return len(newNets(nets)) == 0 })
}

// TestRawInitProcess: the process's exit status, a signal to sandy, and
// the errors of a process that cannot start are the Go init's.
func TestRawInitProcess(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := rawEnv(t, true)
	for _, tc := range []struct {
		args []string
		code int
		err  string
	}{
		{[]string{"sh", "-c", "exit 3"}, 3, ""},
		{[]string{"no-such-program"}, 127, `exec: "no-such-program": executable file not found in $PATH`},
		{[]string{"/etc/passwd"}, 126, `exec: "/etc/passwd": permission denied`},
	} {
		r := e.run("", append([]string{"--debug", "run", "--network=none", e.bundle}, tc.args...)...)
		if r.code != tc.code || !strings.Contains(r.stderr, tc.err) || !strings.Contains(r.stderr, "the init is forked") {
			t.Errorf("%v: exit %d, want %d and %q from the raw init\n%s", tc.args, r.code, tc.code, tc.err, r.stderr)
		}
	}
	e.sh(`trap 'echo got-term; exit 7' TERM; echo ready; while true; do sleep 0.1; done`)
	cmd := exec.Command(e.sandy, "--root", e.root, "run", "--network=none", e.bundle)
	out := &syncBuffer{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "ready", func() bool { return strings.Contains(out.String(), "ready") })
	_ = cmd.Process.Signal(syscall.SIGTERM)
	_ = cmd.Wait()
	if got := cmd.ProcessState.ExitCode(); got != 7 || !strings.Contains(out.String(), "got-term") {
		t.Fatalf("exit %d, output %q; want 7 and got-term", got, out.String())
	}
}

// TestRawInitWritable: a writable root takes the raw init (the kernel
// overlay over the layer directory); what the container writes, as root
// and as a subordinate id, lands in its layer, never in the bundle, and
// the teardown removes the layer (the reaper, in a user namespace).
func TestRawInitWritable(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t)
	e.spec.Root.Readonly = false
	e.spec.Process.User.UID, e.spec.Process.User.GID = 1000, 1000
	e.sh(`echo x > /tmp/by-1000 && stat -c "%u %g" /tmp/by-1000 && cat /etc/resolv.conf | head -1 && exit 5`)
	before := treeHash(t, filepath.Join(e.bundle, "rootfs"))
	r := e.run("", "--debug", "run", e.bundle)
	if r.code != 5 {
		t.Fatalf("exit %d, want 5\n%s", r.code, r.stderr)
	}
	if !strings.Contains(r.stderr, "debug: the init is forked") {
		t.Fatalf("not the raw init:\n%s", r.stderr)
	}
	if !strings.HasPrefix(r.stdout, "1000 1000\nnameserver ") {
		t.Errorf("stdout %q, want the file owned by 1000 and the network's resolv.conf", r.stdout)
	}
	if after := treeHash(t, filepath.Join(e.bundle, "rootfs")); after != before {
		t.Errorf("the bundle's rootfs changed")
	}
	waitStateRootEmpty(t, e)
	assertNothingLeft(t, e)
}

// TestRawInitPublish: published ports take the raw init too: the
// builtin driver's port child joins the container's network and user
// namespaces by the handles sandy opened while it could (nsenter
// --net=/proc/self/fd/N), not by the pid of a child nobody may open the
// namespaces of; httpd is served on the host's loopback, and nothing of
// the network is left after the run.
func TestRawInitPublish(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "slirp4netns", "apt-get install slirp4netns")
	port := freePort(t)
	e := rawEnv(t, false).sh(`mkdir -p /tmp/www && echo hello-from-raw > /tmp/www/index.html && exec httpd -f -p 80 -h /tmp/www`)
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs"})
	e.write()
	for _, f := range []string{"etc/resolv.conf", "etc/hostname"} {
		if err := os.WriteFile(filepath.Join(e.bundle, "rootfs", f), nil, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	cmd := exec.Command(e.sandy, "--root", e.root, "--debug", "run", "--network=slirp4netns", "-p", fmt.Sprintf("127.0.0.1:%d:80", port), e.bundle)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() {
		_ = cmd.Process.Kill() // httpd, pid 1, ignores SIGINT: the parent-death signal ends it
		_ = cmd.Wait()
		noSlirpLeft(t, e)
	}()
	if body := waitHTTP(t, port); strings.TrimSpace(body) != "hello-from-raw" {
		t.Fatalf("body %q; output %s", body, out.String())
	}
	if !strings.Contains(out.String(), "debug: the init is forked") || strings.Contains(out.String(), "the Go init runs instead") {
		t.Fatalf("not the raw init:\n%s", out.String())
	}
}

// TestRawInitKilled: kill -9 of sandy run ends the container (the raw
// init's parent-death signal), and delete cleans up what is left.
func TestRawInitKilled(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := rawEnv(t, true).sh(`echo ready; sleep 60`)
	cmd := exec.Command(e.sandy, "--root", e.root, "run", "--network=none", "--bundle", e.bundle, "rawkill")
	out := &syncBuffer{}
	cmd.Stdout = out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	waitFor(t, 20*time.Second, "ready", func() bool { return strings.Contains(out.String(), "ready") })
	var st specs.State
	if err := json.Unmarshal([]byte(e.run("", "state", "rawkill").stdout), &st); err != nil || st.Pid <= 0 {
		t.Fatalf("state: %v (%+v)", err, st)
	}
	_ = cmd.Process.Kill()
	_ = cmd.Wait()
	waitFor(t, 10*time.Second, "the container's end", func() bool { return syscall.Kill(st.Pid, 0) != nil })
	if r := e.run("", "delete", "--force", "rawkill"); r.code != 0 {
		t.Fatalf("delete: %d %s", r.code, r.stderr)
	}
	if out := e.run("", "list", "-q"); strings.TrimSpace(out.stdout) != "" {
		t.Errorf("left behind: %q", out.stdout)
	}
}

// TestForkedNofile: a process that sandy forks itself (the raw init's,
// exec's) gets the caller's open-file limit when the config sets none,
// as the Go init's does, not the one the Go runtime raised sandy's own
// to (internal/nofile).
func TestForkedNofile(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := rawEnv(t, true)
	e.spec.Process.Rlimits = nil
	e.spec.Process.Args = []string{"sleep", "60"}
	e.write()
	sandy := func(args ...string) string {
		t.Helper()
		cmd := exec.Command("/bin/sh", append([]string{"-c", `ulimit -S -n 321 && exec "$@"`, "sh", e.sandy, "--root", e.root}, args...)...)
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("sandy %v: %v", args, err)
		}
		return strings.TrimSpace(string(out))
	}
	for _, raw := range []string{"0", "1"} {
		t.Setenv("SANDY_RAW_INIT", raw)
		if got := sandy("run", "--network=none", e.bundle, "sh", "-c", "ulimit -S -n"); got != "321" {
			t.Errorf("SANDY_RAW_INIT=%s: run: soft RLIMIT_NOFILE %s, want the caller's 321", raw, got)
		}
	}
	if r := e.run("", "run", "-d", "--network=none", "--bundle", e.bundle, "nofile"); r.code != 0 {
		t.Fatalf("run -d: %d %s", r.code, r.stderr)
	}
	defer e.run("", "delete", "--force", "nofile")
	if got := sandy("exec", "nofile", "sh", "-c", "ulimit -S -n"); got != "321" {
		t.Errorf("exec: soft RLIMIT_NOFILE %s, want the caller's 321", got)
	}
}

// TestRawInitWarnsOnce: the Go init's warnings that the raw init's plan
// gives (a cgroup view asked writable that stays read-only) are said
// once, whichever init ends up running the container.
func TestRawInitWarnsOnce(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := rawEnv(t, true)
	for i := range e.spec.Mounts {
		if e.spec.Mounts[i].Type == "cgroup" {
			e.spec.Mounts[i].Options = append(e.spec.Mounts[i].Options, "rw")
		}
	}
	e.write()
	const warning = "sandy: warning: mount /sys/fs/cgroup: "
	r := e.run("", "--debug", "run", "--network=none", e.bundle)
	if r.code != 0 || strings.Count(r.stderr, warning) != 1 || !strings.Contains(r.stderr, "the init is forked") {
		t.Errorf("the raw init: exit %d, %d warnings, want 0 and 1:\n%s", r.code, strings.Count(r.stderr, warning), r.stderr)
	}
	// The raw program fails (a tmpfs option the kernel refuses), the Go
	// init says the warning, then fails too.
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=lots"}})
	e.write()
	r = e.run("", "--debug", "run", "--network=none", e.bundle)
	if r.code == 0 || strings.Count(r.stderr, warning) != 1 || !strings.Contains(r.stderr, "the Go init runs instead") {
		t.Errorf("after the fallback: exit %d, %d warnings, want an error and 1:\n%s", r.code, strings.Count(r.stderr, warning), r.stderr)
	}
}

// TestRunImageRawInitMatchesGoInit: `sandy run --rm IMAGE` takes the
// raw init in the image store's user namespace (its init starts once
// the bundle is in), and the container it builds is the Go init's: the
// image's layers with their whiteouts and opaque directories, a volume,
// a working directory and network files the image lacks, a user the
// image lacks (its /etc/passwd bound), slirp4netns, a published port.
// Flags the raw init cannot plan start the Go init beside the helper,
// as before.
func TestRunImageRawInitMatchesGoInit(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	e.privateRuntime()
	e.loadImage("localhost/bb:changes", imagefix.BusyboxWithChanges(t))
	vol := testutil.TempDir(t)
	if err := os.WriteFile(filepath.Join(vol, "f"), []byte("from the host\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	// containerView, with the overlay's layer options (fds of whoever
	// mounted it, one lowerdir or one lowerdir+ each) left out, and the
	// image's changes.
	// The hostname (the container's id) and the dates differ from run to
	// run (the cut columns move with the listing's widths, so the times
	// are replaced apart: two runs across a minute's end differed).
	view := "( (" + containerView + `) | sed -E "s#lowerdir[+]?=.*,workdir=[^,]*#LAYERS#"; echo ---
ls -ln /etc /opt/data /src/tree 2>&1 | cut -c1-10,16-34,47-; cat /etc/issue /src/tree/f 2>&1; true ) | sed -E "s/[0-9a-f]{64}/ID/g; s/$(hostname)/HOST/g; s/[A-Z][a-z]{2} +[0-9]+ +[0-9:]{4,5}/DATE/g; s/[0-9]{1,2}:[0-9]{2} /HH:MM /g"`
	run := func(t *testing.T, raw string, args ...string) result {
		t.Helper()
		c := e.cmd(append(append([]string{"--debug", "run", "--rm"}, args...), "localhost/bb:changes", "sh", "-c", view)...)
		c.Env = append(append([]string(nil), e.env...), "SANDY_RAW_INIT="+raw)
		var out, errb strings.Builder
		c.Stdout, c.Stderr = &out, &errb
		err := c.Run()
		r := result{stdout: out.String(), stderr: errb.String()}
		if err != nil {
			t.Fatalf("SANDY_RAW_INIT=%s run %v: %v\n%s", raw, args, err, r.stderr)
		}
		return r
	}
	for _, tc := range []struct {
		name string
		args []string
	}{
		{"the image as it is", []string{"--network=none"}},
		{"a volume and a working directory the image lacks", []string{"--network=none", "-v", vol + ":/src/tree", "-w", "/work/dir"}},
		{"a user the image lacks", []string{"--network=none", "-u", "1234:1234"}},
		{"a hostname", []string{"--network=none", "--hostname", "raw-image"}},
		// slirp4netns and the port child join the child's namespaces by
		// the handles its fork gave (it is not dumpable from its start).
		{"slirp4netns", nil},
		{"a published port", []string{"-p", "127.0.0.1:" + strconv.Itoa(freePort(t)) + ":80"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			goInit, rawInit := run(t, "0", tc.args...), run(t, "1", tc.args...)
			if !strings.Contains(rawInit.stderr, "debug: the init is forked") || !strings.Contains(rawInit.stderr, "the init started in the image store's user namespace") {
				t.Fatalf("the raw init did not run in the store's namespace:\n%s", rawInit.stderr)
			}
			if strings.Contains(goInit.stderr, "debug: the init is forked") {
				t.Fatalf("SANDY_RAW_INIT=0 forked the init:\n%s", goInit.stderr)
			}
			if goInit.stdout != rawInit.stdout {
				t.Fatalf("the raw init's container differs from the Go init's:\n%s\n--- Go init\n%s", lineDiff(goInit.stdout, rawInit.stdout), goInit.stdout)
			}
			if !strings.Contains(rawInit.stdout, " - overlay ") || strings.Contains(rawInit.stdout, "motd") {
				t.Errorf("the view shows no overlay root, or the whited-out /etc/motd:\n%s", rawInit.stdout)
			}
		})
	}
	// run -d: the monitor runs the container in the foreground, and its
	// init is the raw init too; exec into it, then its removal.
	for _, raw := range []string{"1", "0"} {
		c := e.cmd("--debug", "run", "-d", "--network=none", "localhost/bb:changes", "sleep", "1000")
		c.Env = append(append([]string(nil), e.env...), "SANDY_RAW_INIT="+raw)
		var out, errb strings.Builder
		c.Stdout, c.Stderr = &out, &errb
		if err := c.Run(); err != nil {
			t.Fatalf("SANDY_RAW_INIT=%s run -d: %v\n%s", raw, err, errb.String())
		}
		if forked := strings.Contains(errb.String(), "debug: the init is forked"); forked != (raw == "1") {
			t.Errorf("SANDY_RAW_INIT=%s run -d: raw init %v:\n%s", raw, forked, errb.String())
		}
		id := strings.TrimSpace(out.String())
		if got := strings.TrimSpace(e.ok("exec", id, "cat", "/etc/issue")); got == "" {
			t.Errorf("run -d, SANDY_RAW_INIT=%s: exec printed nothing", raw)
		}
		e.ok("rm", "-f", id)
	}
	// Flags the raw init does not plan: the Go init, started beside the
	// image helper (not once the bundle is in).
	for _, args := range [][]string{{"--network=none", "--tmpfs", "/scratch"}, {"--network=none", "--read-only"}, {"--network=none", "--init"}, {"-d", "--network=none", "--tmpfs", "/scratch"}} {
		r := run(t, "1", args...)
		if strings.Contains(r.stderr, "debug: the init is forked") || strings.Contains(r.stderr, "starts once the image's bundle is in") {
			t.Errorf("run %v: the raw init was tried:\n%s", args, r.stderr)
		}
	}
}

// lineDiff is the lines of a that b lacks ("-") and of b that a lacks ("+").
func lineDiff(a, b string) string {
	count := func(s string) map[string]int {
		m := map[string]int{}
		for _, l := range strings.Split(s, "\n") {
			m[l]++
		}
		return m
	}
	ca, cb := count(a), count(b)
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if cb[l] < ca[l] {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if ca[l] < cb[l] {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}
