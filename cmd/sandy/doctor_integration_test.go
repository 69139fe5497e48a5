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

	"github.com/sandy-rt/sandy/internal/doctor"
	"github.com/sandy-rt/sandy/internal/testutil"
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
	want := doctor.Ladder{IDMap: "subordinate ranges (newuidmap/newgidmap)", Rootfs: "overlay", Cgroup: r.Ladder.Cgroup, Network: "slirp4netns"}
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

// TestDoctorNoSlirp4netns: without slirp4netns the network check warns
// (loopback only) with the install command.
func TestDoctorNoSlirp4netns(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	cmd := doctorCmd(t, "--json")
	cmd.Env = append(os.Environ(), "PATH="+pathWithout(t, "slirp4netns"))
	code, r := runDoctor(t, cmd)
	c := check(t, r, "network")
	if code != 0 || c.Status != doctor.Warn || r.Ladder.Network != "loopback only" || !strings.Contains(c.Fix, "apt-get install slirp4netns") {
		t.Fatalf("exit %d, network %+v, ladder %q; want 0, warn with the apt-get fix, loopback only", code, c, r.Ladder.Network)
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
}
