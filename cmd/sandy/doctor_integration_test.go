//go:build integration

package main_test

import (
	"bytes"
	"encoding/json"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/doctor"
	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/seccomp"
)

// runDoctor runs `sandy --root ROOT doctor --json` with env (nil: the
// test's own) and returns the exit status and the decoded report.
func runDoctor(t *testing.T, cmd *exec.Cmd) (int, *doctor.Report) {
	t.Helper()
	var out, errb bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errb
	code := 0
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if !errors.As(err, &ee) {
			t.Fatalf("%v: %v\n%s", cmd.Args, err, errb.String())
		}
		code = ee.ExitCode()
	}
	var r doctor.Report
	if err := json.Unmarshal(out.Bytes(), &r); err != nil {
		t.Fatalf("%v: decoding the report: %v\n%s\n%s", cmd.Args, err, out.String(), errb.String())
	}
	t.Logf("%v: exit %d\n%s%s", cmd.Args, code, out.String(), errb.String())
	return code, &r
}

func check(t *testing.T, r *doctor.Report, name string) doctor.Check {
	t.Helper()
	for _, c := range r.Checks {
		if c.Name == name {
			return c
		}
	}
	t.Fatalf("no %s check in %+v", name, r.Checks)
	return doctor.Check{}
}

func isExit(err error, code int) bool {
	var ee *exec.ExitError
	return errors.As(err, &ee) && ee.ExitCode() == code
}

func doctorCmd(t *testing.T, args ...string) *exec.Cmd {
	root := filepath.Join(testutil.TempDir(t), "state")
	return exec.Command(testutil.SandyBinary(t), append([]string{"--root", root, "doctor"}, args...)...)
}

// pathWithout makes a PATH directory holding links to what sandy looks up
// in PATH, except the names in drop.
func pathWithout(t *testing.T, drop ...string) string {
	d := testutil.TempDir(t)
	for _, name := range []string{"newuidmap", "newgidmap", "getsubids", "slirp4netns", "fuse-overlayfs", "cp", "sh"} {
		if strings.Contains(strings.Join(drop, " "), name) {
			continue
		}
		if p, err := exec.LookPath(name); err == nil {
			if err := os.Symlink(p, filepath.Join(d, name)); err != nil {
				t.Fatal(err)
			}
		}
	}
	return d
}

// TestDoctorHere: on this machine, as the test user (full subordinate
// ranges, kernel overlay in a user namespace, slirp4netns, no cgroup v2
// manager on this hybrid host), doctor exits 0 with that ladder; the text
// form says the same.
func TestDoctorHere(t *testing.T) {
	testutil.SandyWithImages(t) // the images row needs the helper beside sandy
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "newuidmap", "apt-get install uidmap")
	testutil.RequireBinary(t, "slirp4netns", "apt-get install slirp4netns")
	first := doctorCmd(t, "--json")
	code, r := runDoctor(t, first)
	if code != 0 || !r.OK() {
		t.Fatalf("exit %d, want 0", code)
	}
	if r.Schema != doctor.SchemaVersion || r.Version == "" || r.Kernel == "" || r.Binary == "" {
		t.Errorf("header fields missing: %+v", r)
	}
	for name, want := range map[string]string{"userns": doctor.OK, "idmap": doctor.OK, "rootfs": doctor.OK, "network": doctor.OK} {
		if c := check(t, r, name); c.Status != want {
			t.Errorf("%s: %s (%s), want %s", name, c.Status, c.Detail, want)
		}
	}
	if r.Ladder.Images == "" || r.Ladder.Images == "unavailable" {
		t.Errorf("image store ladder %q (row %+v)", r.Ladder.Images, check(t, r, "images"))
	}
	want := doctor.Ladder{IDMap: "subordinate ranges (newuidmap/newgidmap)", Rootfs: "overlay", Cgroup: r.Ladder.Cgroup, Network: "usernet (sandy's own)", Images: r.Ladder.Images}
	if r.Ladder != want {
		t.Errorf("ladder %+v, want %+v", r.Ladder, want)
	}
	c := check(t, r, "cgroup")
	if (r.Ladder.Cgroup == "none") != (c.Status == doctor.Warn) || c.Status == doctor.Warn && (c.Fix == "" || c.Consequence == "") {
		t.Errorf("cgroup ladder %q with check %+v", r.Ladder.Cgroup, c)
	}
	out, err := doctorCmd(t).Output()
	if err != nil {
		t.Fatalf("text form: %v", err)
	}
	for _, line := range []string{"ok    userns ", "ok    rootfs ", "root filesystem: overlay"} {
		if !bytes.Contains(out, []byte(line)) {
			t.Errorf("text form lacks %q:\n%s", line, out)
		}
	}
	// --fix-script prints the JSON's fix_script (the sysctls this host
	// lacks, or nothing) with the same exit status; with --json it is a
	// usage error.
	script, err := doctorCmd(t, "--fix-script").Output()
	if err != nil || string(script) != r.FixScript {
		t.Errorf("--fix-script: %v\n%s\nwant the JSON's fix_script:\n%s", err, script, r.FixScript)
	}
	if len(script) > 0 && !strings.HasPrefix(string(script), "sudo sh -eux <<'EOF'\n") {
		t.Errorf("--fix-script is not one sudo block:\n%s", script)
	}
	if err := doctorCmd(t, "--json", "--fix-script").Run(); !isExit(err, 2) {
		t.Errorf("--json --fix-script: %v, want exit 2", err)
	}
	if m, _ := filepath.Glob(filepath.Join(first.Args[2], "doctor-*")); len(m) > 0 {
		t.Errorf("probe directories left behind: %v", m)
	}
}

// TestDoctorNoNewuidmap: with newuidmap/newgidmap missing from PATH the id
// map check warns with run's own single-mapping words and the apt-get fix,
// and doctor still exits 0 (run works with the single mapping).
func TestDoctorNoNewuidmap(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	cmd := doctorCmd(t, "--json")
	cmd.Env = append(os.Environ(), "PATH="+pathWithout(t, "newuidmap", "newgidmap"))
	code, r := runDoctor(t, cmd)
	c := check(t, r, "idmap")
	if code != 0 || c.Status != doctor.Warn || r.Ladder.IDMap != "single mapping" {
		t.Fatalf("exit %d, idmap %+v, ladder %q; want 0, warn, single mapping", code, c, r.Ladder.IDMap)
	}
	if !strings.HasPrefix(c.Detail, "using a single id mapping: newuidmap not found in PATH") || !strings.Contains(c.Fix, "apt-get install uidmap") {
		t.Errorf("idmap check %+v: want run's warning and the apt-get fix", c)
	}
}

// TestDoctorNoSlirp4netns: without slirp4netns the network check is ok
// where sandy-net is beside sandy (the default is sandy's own network),
// and warns (loopback only) with the install command where it is not.
func TestDoctorNoSlirp4netns(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	cmd := doctorCmd(t, "--json")
	cmd.Env = append(os.Environ(), "PATH="+pathWithout(t, "slirp4netns"))
	code, r := runDoctor(t, cmd)
	if c := check(t, r, "network"); code != 0 || c.Status != doctor.OK || r.Ladder.Network != "usernet (sandy's own)" || !strings.Contains(c.Detail, "sandy-net is installed") {
		t.Fatalf("exit %d, network %+v, ladder %q; want 0, ok, sandy's own network", code, c, r.Ladder.Network)
	}
	alone := filepath.Join(testutil.TempDir(t), "sandy")
	if out, err := exec.Command("cp", testutil.SandyBinary(t), alone).CombinedOutput(); err != nil {
		t.Fatalf("cp: %v %s", err, out)
	}
	cmd = exec.Command(alone, append([]string{"--root", filepath.Join(testutil.TempDir(t), "state"), "doctor"}, "--json")...)
	cmd.Env = append(os.Environ(), "PATH="+pathWithout(t, "slirp4netns"))
	code, r = runDoctor(t, cmd)
	c := check(t, r, "network")
	if code != 0 || c.Status != doctor.Warn || r.Ladder.Network != "loopback only" || !strings.Contains(c.Fix, "apt-get install slirp4netns") {
		t.Fatalf("without sandy-net: exit %d, network %+v, ladder %q; want 0, warn with the apt-get fix, loopback only", code, c, r.Ladder.Network)
	}
	if !strings.HasPrefix(c.Detail, "network: loopback only (no outside network): ") {
		t.Errorf("network %+v: want run's loopback-only line", c)
	}
}

// TestDoctorNoUserNamespaces: inside a user namespace whose
// user.max_user_namespaces is 0 (the host's limit is untouched), the user
// namespace check fails with the sysctl fix and doctor exits 1.
func TestDoctorNoUserNamespaces(t *testing.T) {
	if os.Getuid() != 0 {
		testutil.Skip(t, "needs root to make the user namespace with its own limits (run the tests as root)")
	}
	cmd := doctorCmd(t, "--json")
	cmd.Args = append([]string{"/bin/sh", "-c", `echo 0 > /proc/sys/user/max_user_namespaces && exec "$@"`, "sh"}, cmd.Args...)
	cmd.Path = "/bin/sh"
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Cloneflags:  syscall.CLONE_NEWUSER,
		UidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
		GidMappings: []syscall.SysProcIDMap{{ContainerID: 0, HostID: 0, Size: 1}},
	}
	code, r := runDoctor(t, cmd)
	c := check(t, r, "userns")
	if code != 1 || c.Status != doctor.Fail || !strings.Contains(c.Fix, "sysctl -w user.max_user_namespaces=") {
		t.Fatalf("exit %d, userns %+v; want 1, FAIL with the sysctl fix", code, c)
	}
	if !strings.Contains(r.FixScript, "\nsysctl -w user.max_user_namespaces=15000\n") {
		t.Errorf("fix script lacks the sysctl:\n%s", r.FixScript)
	}
	if rf := check(t, r, "rootfs"); rf.Status != doctor.Fail || r.Ladder.Rootfs != "unavailable" {
		t.Errorf("rootfs %+v, ladder %q: want FAIL, unavailable", rf, r.Ladder.Rootfs)
	}
}

// TestDoctorStateRootUnusable: a --root that cannot be made fails the
// rootfs check and doctor exits 1.
func TestDoctorStateRootUnusable(t *testing.T) {
	f := filepath.Join(testutil.TempDir(t), "file")
	if err := os.WriteFile(f, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	code, r := runDoctor(t, exec.Command(testutil.SandyBinary(t), "--root", filepath.Join(f, "state"), "doctor", "--json"))
	if c := check(t, r, "rootfs"); code != 1 || c.Status != doctor.Fail || !strings.Contains(c.Fix, "--root") {
		t.Fatalf("exit %d, rootfs %+v; want 1, FAIL naming --root", code, c)
	}
}

// TestDoctorRootfsOnOverlay: with the state root on an overlayfs (in a
// private mount namespace; the host is untouched), where the kernel refuses
// an overlay upper directory, the rootfs check warns with run's own
// fuse-overlayfs fallback line and its fix, the ladder says fuse, and the
// probe leaves neither its directory nor a fuse-overlayfs behind.
func TestDoctorRootfsOnOverlay(t *testing.T) {
	if os.Getuid() != 0 {
		testutil.Skip(t, "needs root to mount the overlayfs state root in a private mount namespace (run the tests as root)")
	}
	testutil.RequireBinary(t, "unshare", "apt-get install util-linux")
	testutil.RequireBinary(t, "setpriv", "apt-get install util-linux")
	testutil.RequireBinary(t, "fuse-overlayfs", "apt-get install fuse-overlayfs")
	u := testutil.TestUser(t)
	d := testutil.TempDir(t)
	for _, n := range []string{"l", "u", "w", "m"} {
		if err := os.Mkdir(filepath.Join(d, n), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	m := filepath.Join(d, "m")
	script := `mount -t overlay overlay -o lowerdir=$1/l,upperdir=$1/u,workdir=$1/w $1/m && chmod 777 $1/m || exit 9
setpriv --reuid=$2 --regid=$3 --init-groups env HOME=/tmp "$4" --root $1/m/state doctor --json; rc=$?
[ -z "$(ls -A $1/m/state)" ] || { echo "left in the state root: $(ls -A $1/m/state)" >&2; exit 8; }
exit $rc`
	cmd := exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", d, u.Uid, u.Gid, testutil.SandyBinary(t))
	code, r := runDoctor(t, cmd) // 8: the probe directory was left behind
	c := check(t, r, "rootfs")
	if code != 0 || c.Status != doctor.Warn || r.Ladder.Rootfs != "fuse" {
		t.Fatalf("exit %d, rootfs %+v, ladder %q; want 0, warn, fuse", code, c, r.Ladder.Rootfs)
	}
	if !strings.Contains(c.Detail, "using fuse-overlayfs instead of kernel overlay") || !strings.Contains(c.Fix, "--root") {
		t.Errorf("rootfs %+v: want run's fallback line and its fix", c)
	}
	if out, _ := exec.Command("pgrep", "-af", "fuse-overlayfs.*"+m).Output(); len(out) > 0 {
		t.Errorf("fuse-overlayfs left running: %s", out)
	}
}

// TestDoctorNoSubuid: with an empty /etc/subuid (bind-mounted over the real
// one in a private mount namespace; the host file is untouched), the id
// map check warns with run's "no range for USER in /etc/subuid" line and
// the usermod fix, and the ladder says single mapping.
func TestDoctorNoSubuid(t *testing.T) {
	if os.Getuid() != 0 {
		testutil.Skip(t, "needs root to bind-mount over /etc/subuid in a private mount namespace (run the tests as root)")
	}
	testutil.RequireBinary(t, "unshare", "apt-get install util-linux")
	testutil.RequireBinary(t, "setpriv", "apt-get install util-linux")
	testutil.RequireBinary(t, "newuidmap", "apt-get install uidmap")
	u := testutil.TestUser(t)
	empty := filepath.Join(testutil.TempDir(t), "subuid")
	if err := os.WriteFile(empty, nil, 0o644); err != nil {
		t.Fatal(err)
	}
	share := testutil.TempDir(t)
	if err := os.Chmod(share, 0o777); err != nil { // the test user makes its state root there
		t.Fatal(err)
	}
	root := filepath.Join(share, "state")
	script := `mount --bind "$1" /etc/subuid || exit 9
exec setpriv --reuid=$2 --regid=$3 --init-groups env HOME=/tmp "$4" --root "$5" doctor --json`
	code, r := runDoctor(t, exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", empty, u.Uid, u.Gid, testutil.SandyBinary(t), root))
	c := check(t, r, "idmap")
	if code != 0 || c.Status != doctor.Warn || r.Ladder.IDMap != "single mapping" {
		t.Fatalf("exit %d, idmap %+v, ladder %q; want 0, warn, single mapping", code, c, r.Ladder.IDMap)
	}
	if !strings.Contains(c.Detail, "no range for "+u.Username+" in /etc/subuid") || !strings.Contains(c.Fix, "usermod --add-subuids") {
		t.Errorf("idmap %+v: want run's no-range line and the usermod fix", c)
	}
	if strings.Contains(c.Detail, "/etc/subgid") {
		t.Errorf("idmap %+v: /etc/subgid is untouched and has the range", c)
	}
	// The fix script adds the first free range of the (empty) file, and
	// nothing for /etc/subgid.
	if want := "\necho '" + u.Username + ":100000:65536' >> /etc/subuid\n"; !strings.Contains(r.FixScript, want) || strings.Contains(r.FixScript, "subgid") {
		t.Errorf("fix script lacks %q or touches /etc/subgid:\n%s", want, r.FixScript)
	}
}

// seccompDoctorEnv marks TestDoctorSeccompCI's child that loads the
// filter and execs sandy doctor.
const seccompDoctorEnv = "SANDY_TEST_SECCOMP_DOCTOR_ROOT"

// TestDoctorSeccompCI: under a seccomp filter that refuses clone and
// unshare with CLONE_NEWUSER (EPERM, as Docker's default profile does for a
// container without CAP_SYS_ADMIN: the nested-CI case), with no sysctl
// forbidding user namespaces, the userns check names the filter of the
// container doctor runs in and the runner flags to pass, and doctor exits
// 1. The filter is loaded in a child of this test only.
func TestDoctorSeccompCI(t *testing.T) {
	if root := os.Getenv(seccompDoctorEnv); root != "" {
		execUnderSeccomp(t, testutil.SandyBinary(t), "--root", root, "doctor", "--json")
		return
	}
	if testutil.AsUser(t) {
		return
	}
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(exe, "-test.run=^TestDoctorSeccompCI$")
	cmd.Env = append(os.Environ(), seccompDoctorEnv+"="+filepath.Join(testutil.TempDir(t), "state"), "SANDY_BIN="+testutil.SandyBinary(t))
	code, r := runDoctor(t, cmd)
	c := check(t, r, "userns")
	if code != 1 || c.Status != doctor.Fail {
		t.Fatalf("exit %d, userns %+v; want 1, FAIL", code, c)
	}
	for _, want := range []string{"operation not permitted", "a seccomp filter of the container you run in (CI runner)", "--security-opt seccomp=unconfined"} {
		if !strings.Contains(c.Detail+" "+c.Fix, want) {
			t.Errorf("userns %+v lacks %q", c, want)
		}
	}
	if strings.Contains(r.FixScript, "user") || strings.Contains(r.FixScript, "apparmor") {
		t.Errorf("the outer runtime's filter has no root fix here, got:\n%s", r.FixScript)
	}
}

// execUnderSeccomp loads a filter refusing clone and unshare with
// CLONE_NEWUSER (after no_new_privs, as an unprivileged process must) and
// execs argv; it returns only on failure.
func execUnderSeccomp(t *testing.T, argv0 string, args ...string) {
	eperm := uint(syscall.EPERM)
	newUser := []specs.LinuxSeccompArg{{Index: 0, Value: syscall.CLONE_NEWUSER, ValueTwo: syscall.CLONE_NEWUSER, Op: specs.OpMaskedEqual}}
	f, err := seccomp.Compile(&specs.LinuxSeccomp{DefaultAction: specs.ActAllow, Syscalls: []specs.LinuxSyscall{
		{Names: []string{"clone", "unshare"}, Action: specs.ActErrno, ErrnoRet: &eperm, Args: newUser},
	}})
	if err != nil {
		t.Fatal(err)
	}
	if err := unix.Prctl(unix.PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0); err != nil {
		t.Fatal(err)
	}
	if _, err := f.Load(); err != nil { // locks this goroutine to its thread, which execs
		t.Fatal(err)
	}
	t.Fatal(syscall.Exec(argv0, append([]string{argv0}, args...), os.Environ()))
}

// TestDoctorUnreadableDevices: with a file of mode 0 bind-mounted over
// /dev/fuse and /dev/net/tun (in a private mount namespace; the host's
// devices are untouched), the fuse row says the fallback is unavailable
// with the chmod fix's cause (and that kernel overlay makes it unneeded
// here), and the network row falls back to loopback with the chmod fix.
func TestDoctorUnreadableDevices(t *testing.T) {
	if os.Getuid() != 0 {
		testutil.Skip(t, "needs root to bind-mount over /dev/fuse in a private mount namespace (run the tests as root)")
	}
	testutil.RequireBinary(t, "unshare", "apt-get install util-linux")
	testutil.RequireBinary(t, "setpriv", "apt-get install util-linux")
	u := testutil.TestUser(t)
	locked := filepath.Join(testutil.TempDir(t), "dev")
	if err := os.WriteFile(locked, nil, 0); err != nil {
		t.Fatal(err)
	}
	share := testutil.TempDir(t)
	if err := os.Chmod(share, 0o777); err != nil {
		t.Fatal(err)
	}
	script := `mount --bind "$1" /dev/fuse && mount --bind "$1" /dev/net/tun || exit 9
exec setpriv --reuid=$2 --regid=$3 --init-groups env HOME=/tmp "$4" --root "$5" doctor --json`
	code, r := runDoctor(t, exec.Command("unshare", "-m", "--propagation", "private", "sh", "-c", script, "sh", locked, u.Uid, u.Gid, testutil.SandyBinary(t), filepath.Join(share, "state")))
	if code != 0 {
		t.Errorf("exit %d, want 0: both are fallbacks", code)
	}
	f := check(t, r, "fuse")
	if !strings.Contains(f.Detail, "cannot open /dev/fuse") || !strings.Contains(f.Detail, "permission denied") {
		t.Errorf("fuse %+v: want the open error", f)
	}
	if r.Ladder.Rootfs == "overlay" && (f.Status != doctor.OK || !strings.Contains(f.Detail, "not needed")) ||
		r.Ladder.Rootfs != "overlay" && (f.Status != doctor.Warn || !strings.Contains(f.Fix, "chmod 0666 /dev/fuse")) {
		t.Errorf("fuse %+v with rootfs %s", f, r.Ladder.Rootfs)
	}
	n := check(t, r, "network")
	if n.Status != doctor.Warn || r.Ladder.Network != "loopback only" || !strings.Contains(n.Fix, "chmod 0666 /dev/net/tun") {
		t.Errorf("network %+v, ladder %q: want warn, loopback only, the chmod fix", n, r.Ladder.Network)
	}
}
