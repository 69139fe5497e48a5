//go:build integration

package containers

import (
	"encoding/json"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/testutil"
)

// runGenerated writes the spec Generate makes for a busybox rootfs and
// opts, the passwd and group lines it asks for, and runs it with `sandy
// run --bundle`, as the caller (the test user). It returns stdout.
func runGenerated(t *testing.T, o Options) string {
	t.Helper()
	testutil.RequireBinary(t, "newuidmap", "apt-get install uidmap")
	me, err := user.Current()
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(me.Uid)
	gid, _ := strconv.Atoi(me.Gid)
	subs := func(file string) []idmap.SubIDRange {
		f, err := os.Open(file)
		if err != nil {
			t.Fatal(err)
		}
		defer f.Close()
		r, err := idmap.ParseSubID(f, me.Username, uint32(uid))
		if err != nil {
			t.Fatal(err)
		}
		return r
	}
	dir := testutil.TempDir(t)
	rootfs := testutil.MakeRootfs(t, dir)
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join(rootfs, name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	db := UserDB{Users: ParsePasswd(read("etc/passwd")), Groups: ParseGroup(read("etc/group"))}
	s, x, err := Generate(imagehelper.ImageConfig{Cmd: []string{"sh"}}, o, db, Host{
		ContainerID: strings.Repeat("ab", 32), Rootfs: "rootfs",
		UID: uint32(uid), GID: uint32(gid), UserName: me.Username, GroupName: me.Username, Home: me.HomeDir,
		SubUIDs: subs("/etc/subuid"), SubGIDs: subs("/etc/subgid"),
	})
	if err != nil {
		t.Fatal(err)
	}
	// The caller's part: the passwd and group lines.
	for name, add := range map[string]string{"etc/passwd": x.PasswdEntry, "etc/group": x.GroupEntry} {
		if err := os.WriteFile(filepath.Join(rootfs, name), []byte(read(name)+add), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	b, err := json.Marshal(s)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
		t.Fatal(err)
	}
	state := filepath.Join(testutil.TempDir(t), "state")
	cmd := exec.Command(testutil.SandyBinary(t), "--root", state, "run", "--cgroup-manager=none", "--bundle", dir, "gen")
	var stderr strings.Builder
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("sandy run: %v\nstdout: %s\nstderr: %s\nconfig: %s", err, out, stderr.String(), b)
	}
	return string(out)
}

// TestGeneratedSpecRuns: the default spec runs as root with podman's
// default capabilities, HOME and HOSTNAME set.
func TestGeneratedSpecRuns(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	out := runGenerated(t, Options{Command: []string{"sh", "-c", `id -u; echo "$HOME $HOSTNAME $container"; grep CapEff /proc/self/status; cat /proc/sys/net/ipv4/ping_group_range`}})
	want := "0\n/root abababababab podman\nCapEff:\t00000000800405fb\n0\t0\n"
	if out != want {
		t.Errorf("got %q\nwant %q", out, want)
	}
}
