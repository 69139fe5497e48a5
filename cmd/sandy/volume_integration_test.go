//go:build integration

package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// volumeEnv is a sandy whose volumes live in a fresh XDG_DATA_HOME.
func volumeEnv(t *testing.T) (*env, string) {
	t.Helper()
	e := newEnv(t)
	data := testutil.TempDir(t)
	t.Setenv("XDG_DATA_HOME", data)
	return e, filepath.Join(data, "sandy", "volumes")
}

func (e *env) want(code int, args ...string) result {
	e.t.Helper()
	r := e.run("", args...)
	if r.code != code {
		e.t.Fatalf("sandy %s: exit %d, want %d\nstdout: %s\nstderr: %s", strings.Join(args, " "), r.code, code, r.stdout, r.stderr)
	}
	return r
}

// The CLI round trip as podman's: names, flags, output and exit codes.
func TestVolumeCLI(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e, root := volumeEnv(t)
	if r := e.want(0, "volume", "create", "--label", "app=web", "-l", "tier", "foo"); r.stdout != "foo\n" {
		t.Errorf("create printed %q, want the name", r.stdout)
	}
	fi, err := os.Stat(filepath.Join(root, "foo", "_data"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Getuid() || !fi.IsDir() {
		t.Errorf("_data: owner %d, dir %v; want the user's directory", st.Uid, fi.IsDir())
	}
	r := e.want(125, "volume", "create", "foo")
	if !strings.Contains(r.stderr, "volume with name foo already exists") {
		t.Errorf("second create: %s", r.stderr)
	}
	e.want(0, "volume", "create", "--ignore", "foo")
	anon := strings.TrimSpace(e.want(0, "volume", "create").stdout)
	if len(anon) != 64 {
		t.Errorf("create without a name printed %q, want 64 hex digits", anon)
	}
	for _, bad := range [][]string{
		{"volume", "create", "bad/name"},
		{"volume", "create", "-o", "type=tmpfs", "t"},
		{"volume", "create", "-o", "o=uid=1000", "u"},
		{"volume", "create", "--driver", "nfs", "d"},
		{"volume", "ls", "--filter", "bogus=1"},
		{"volume", "ls", "--format", "{{.Nope}}"},
		{"volume", "bogus"},
	} {
		if r := e.want(125, bad...); r.stderr == "" {
			t.Errorf("%v: no error message", bad)
		}
	}
	if r := e.want(125, "volume", "create", "-o", "type=tmpfs", "t"); !strings.Contains(r.stderr, "--tmpfs") {
		t.Errorf("tmpfs refusal does not say what to use: %s", r.stderr)
	}

	if r := e.want(0, "volume", "ls"); r.stdout != "DRIVER      VOLUME NAME\nlocal       "+anon+"\nlocal       foo\n" {
		t.Errorf("ls:\n%s", r.stdout)
	}
	if r := e.want(0, "volume", "ls", "-q", "--filter", "label=app=web"); r.stdout != "foo\n" {
		t.Errorf("ls -q --filter label=app=web: %q", r.stdout)
	}
	// "^fo", not "^f": the anonymous volume's random hex name may start
	// with f (the test failed 1 run in 16).
	if r := e.want(0, "volume", "ls", "--format", "{{.Name}} {{.Driver}} {{.Scope}} {{.Labels}}", "--filter", "name=^fo"); r.stdout != "foo local local map[app:web tier:]\n" {
		t.Errorf("ls --format: %q", r.stdout)
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.want(0, "volume", "ls", "--format", "json").stdout), &list); err != nil || len(list) != 2 {
		t.Fatalf("ls --format json: %v, %v", list, err)
	}

	var insp []map[string]any
	if err := json.Unmarshal([]byte(e.want(0, "volume", "inspect", "foo").stdout), &insp); err != nil || len(insp) != 1 {
		t.Fatalf("inspect: %v, %v", insp, err)
	}
	if insp[0]["Mountpoint"] != filepath.Join(root, "foo", "_data") || insp[0]["Driver"] != "local" || insp[0]["Scope"] != "local" {
		t.Errorf("inspect: %v", insp[0])
	}
	r = e.want(125, "volume", "inspect", "foo", "nope")
	if !strings.Contains(r.stdout, `"Name": "foo"`) || !strings.Contains(r.stderr, `no volume with name "nope" found`) {
		t.Errorf("inspect foo nope: stdout %s stderr %s", r.stdout, r.stderr)
	}
	e.want(0, "volume", "exists", "foo")
	e.want(1, "volume", "exists", "nope")

	e.want(1, "volume", "rm", "nope")
	if r := e.want(1, "volume", "rm", "nope", anon); r.stdout != anon+"\n" {
		t.Errorf("rm nope ANON: the existing one is removed and printed, got %q", r.stdout)
	}
	e.want(0, "volume", "create", "bar")
	if r := e.run("n\n", "volume", "prune"); r.code != 0 || !strings.Contains(r.stdout, "Are you sure you want to continue? [y/N]") {
		t.Fatalf("prune answered n: %+v", r)
	}
	e.want(0, "volume", "exists", "bar")
	if r := e.want(0, "volume", "prune", "-f", "--filter", "label=app"); r.stdout != "foo\n" {
		t.Errorf("prune -f --filter label=app: %q", r.stdout)
	}
	if r := e.want(0, "volume", "rm", "--all"); r.stdout != "bar\n" {
		t.Errorf("rm --all: %q", r.stdout)
	}
	ents, _ := os.ReadDir(root)
	if len(ents) != 1 || ents[0].Name() != ".lock" {
		t.Errorf("the volume root holds %v after rm --all, want only .lock", ents)
	}
}

// Eight `sandy volume create race` at once: exactly one makes it, the
// others fail naming it.
func TestVolumeCreateRace(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e, _ := volumeEnv(t)
	const n = 8
	codes := make([]int, n)
	stderrs := make([]string, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			cmd := exec.Command(e.sandy, "volume", "create", "race")
			var errb strings.Builder
			cmd.Stderr = &errb
			_ = cmd.Run()
			codes[i], stderrs[i] = cmd.ProcessState.ExitCode(), errb.String()
		}()
	}
	wg.Wait()
	won := 0
	for i, c := range codes {
		switch {
		case c == 0:
			won++
		case c != 125 || !strings.Contains(stderrs[i], "volume with name race already exists"):
			t.Errorf("loser: exit %d: %s", c, stderrs[i])
		}
	}
	if won != 1 {
		t.Fatalf("%d creations succeeded, want 1 (exits %v)", won, codes)
	}
	if r := e.want(0, "volume", "ls", "-q"); r.stdout != "race\n" {
		t.Errorf("ls -q: %q", r.stdout)
	}
}

// A container writes into a volume's mountpoint (bound as `run -v` will):
// the files root writes belong to the user on the host; those a non-root
// container user writes belong to subordinate ids, and rm removes them
// from a user namespace with the caller's maps (the store's RemoveForeign).
func TestVolumeContainerData(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e, root := volumeEnv(t)
	e.want(0, "volume", "create", "data")
	src := filepath.Join(root, "data", "_data")
	e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/vol", Type: "bind", Source: src, Options: []string{"rbind", "rw"}})
	// chown to a container user, and (later) removing what it owns.
	c := e.spec.Process.Capabilities
	for _, cp := range []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"} {
		c.Bounding, c.Effective, c.Permitted = append(c.Bounding, cp), append(c.Effective, cp), append(c.Permitted, cp)
	}
	e.sh("echo hi > /vol/f && mkdir /vol/d && touch /vol/d/g && chown -R 1000:1000 /vol/d")
	e.runBundle(0)
	fi, err := os.Stat(filepath.Join(src, "f"))
	if err != nil {
		t.Fatal(err)
	}
	if st := fi.Sys().(*syscall.Stat_t); int(st.Uid) != os.Getuid() {
		t.Errorf("a file container root wrote belongs to %d, want the user %d", st.Uid, os.Getuid())
	}
	// What a container user wrote belongs to subordinate ids: rm removes
	// it from a user namespace with the caller's maps.
	e.want(0, "volume", "rm", "data")
	e.want(1, "volume", "exists", "data")
	ents, _ := os.ReadDir(root)
	for _, d := range ents {
		if strings.HasPrefix(d.Name(), ".remove-data") {
			t.Errorf("%s left after volume rm", filepath.Join(root, d.Name()))
		}
	}
}

// TestVolumeHostileContent: what a container leaves in its volumes
// (symlinks to host paths, to / and to /proc/self/root, fifos and a hard
// link to one, directories it closed with chmod 000 as its root and as a
// container user, a deep tree, the volume's own root closed and given
// away) is never followed or crossed by volume inspect, rm and prune:
// both remove everything (what subordinate ids own from a user
// namespace), leave no .remove- directory, and the host files the links
// name are untouched.
func TestVolumeHostileContent(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e, root := volumeEnv(t)
	canary := testutil.TempDir(t)
	if err := os.WriteFile(filepath.Join(canary, "secret"), []byte("key"), 0o600); err != nil {
		t.Fatal(err)
	}
	if err := os.Mkdir(filepath.Join(canary, "closed"), 0o700); err != nil {
		t.Fatal(err)
	}
	before := treeHash(t, canary)
	for _, v := range []string{"a", "b"} {
		e.want(0, "volume", "create", v)
		src := filepath.Join(root, v, "_data")
		e.spec.Mounts = append(e.spec.Mounts, specs.Mount{Destination: "/" + v, Type: "bind", Source: src, Options: []string{"rbind", "rw"}})
	}
	c := e.spec.Process.Capabilities
	for _, cp := range []string{"CAP_CHOWN", "CAP_DAC_OVERRIDE", "CAP_FOWNER"} {
		c.Bounding, c.Effective, c.Permitted = append(c.Bounding, cp), append(c.Effective, cp), append(c.Permitted, cp)
	}
	e.sh(`set -e
for v in /a /b; do
  cd $v
  ln -s ` + canary + ` hostdir
  ln -s ` + canary + `/secret hostfile
  ln -s ` + canary + `/closed hostclosed
  ln -s / slash
  ln -s /proc/self/root procroot
  mkfifo fifo
  ln fifo fifo.hard
  mkdir closed; touch closed/f; chmod 000 closed
  mkdir -p sub/closed; touch sub/closed/g sub/h; ln -s ` + canary + ` sub/closed/l
  chown -R 1000:1000 sub; chmod 000 sub/closed sub
  i=0; while [ $i -lt 300 ]; do mkdir d; cd d; i=$((i+1)); done
  ln -s ` + canary + ` deep
  cd /
  chown 1000:1000 $v; chmod 000 $v
done`)
	e.runBundle(0)
	for _, v := range []string{"a", "b"} {
		r := e.want(0, "volume", "inspect", v)
		if !strings.Contains(r.stdout, filepath.Join(root, v, "_data")) {
			t.Errorf("volume inspect %s: %s", v, r.stdout)
		}
	}
	e.want(0, "volume", "rm", "a")
	if r := e.want(0, "volume", "prune", "--force"); !strings.Contains(r.stdout, "b") {
		t.Errorf("volume prune removed %q, want b", r.stdout)
	}
	ents, err := os.ReadDir(root)
	if err != nil {
		t.Fatal(err)
	}
	for _, d := range ents {
		if d.Name() != ".lock" {
			t.Errorf("%s left after volume rm and prune", filepath.Join(root, d.Name()))
		}
	}
	if after := treeHash(t, canary); after != before {
		t.Errorf("the host directory the volumes' symlinks name changed:\n%s\n%s", before, after)
	}
}
