//go:build integration

package main_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// loadImage writes img as a docker-archive named ref and loads it.
func (e *imgEnv) loadImage(ref string, img imagefix.Image) {
	e.t.Helper()
	p := filepath.Join(e.dir, strings.NewReplacer("/", "_", ":", "_").Replace(ref)+".tar")
	if _, err := imagefix.DockerArchive(p, ref, img, false); err != nil {
		e.t.Fatal(err)
	}
	e.ok("load", "-q", "-i", p)
}

// storageContainers lists the ids of the store's containers (sandy's,
// podman's: the store keeps one list), read from the driver's
// containers.json, as the next sandy command sees them: after the
// removals a `run --rm` left behind (a list through the helper waits for
// them).
func (e *imgEnv) storageContainers() []string {
	e.t.Helper()
	e.ok("container", "ls", "-a", "--external", "-q")
	return e.storageContainersNow()
}

// storageContainersBack waits up to 20 s for the store to hold before
// storage containers again (a killed run's helper removing its --rm
// container) and returns how many it holds.
func (e *imgEnv) storageContainersBack(before int) int {
	e.t.Helper()
	var got int
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if got = len(e.storageContainers()); got == before {
			break
		}
	}
	return got
}

// waitOrKill waits for c, started, to exit; after 30 s it kills c and
// fails t with msg's message (called then: what c said by that time).
func waitOrKill(t *testing.T, c *exec.Cmd, msg func() string) {
	t.Helper()
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.Process.Kill()
		t.Fatal(msg())
	}
}

// privateRuntime gives e a runtime directory (XDG_RUNTIME_DIR: the state
// root, the exit files, the pause record) and a data directory (sandy's
// volumes) of its own, so that what a test leaves there is its own to
// count, and returns the runtime directory.
func (e *imgEnv) privateRuntime() string {
	e.t.Helper()
	xdg := filepath.Join(e.dir, "xdg")
	if err := os.Mkdir(xdg, 0o700); err != nil {
		e.t.Fatal(err)
	}
	e.env = append(e.env, "XDG_RUNTIME_DIR="+xdg, "XDG_DATA_HOME="+filepath.Join(e.dir, "data"))
	return xdg
}

// storageContainersNow is storageContainers without waiting for the
// removals under way.
func (e *imgEnv) storageContainersNow() []string {
	e.t.Helper()
	// A --rm container's record is in volatile-containers.json.
	matches, _ := filepath.Glob(filepath.Join(e.dir, "graph", "*-containers", "*containers.json"))
	var ids []string
	for _, m := range matches {
		b, err := os.ReadFile(m)
		if err != nil {
			e.t.Fatal(err)
		}
		var cs []struct {
			ID    string   `json:"id"`
			Names []string `json:"names"`
		}
		if err := json.Unmarshal(b, &cs); err != nil {
			e.t.Fatalf("%s: %v", m, err)
		}
		for _, c := range cs {
			ids = append(ids, c.ID)
		}
	}
	return ids
}

// TestRunImage runs containers from images the way a developer and a CI
// job type it: the image's config is honoured, flags override it, the
// root is the image's layers (whiteouts, opaque directories and all),
// exit statuses are podman's, --rm leaves no storage container, and a
// container without --rm keeps its writes in its own layer, never in
// the image.
func TestRunImage(t *testing.T) {
	testutil.SandyWithImages(t) // built as root, beside sandy
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	e.env = append(e.env, "XDG_DATA_HOME="+filepath.Join(e.dir, "data")) // sandy's volumes
	e.loadImage("localhost/bb:changes", imagefix.BusyboxWithChanges(t))
	cfg := imagefix.Busybox(t)
	cfg.Config.Env = append(cfg.Config.Env, "FROM_IMAGE=yes")
	cfg.Config.WorkingDir = "/opt/data"
	cfg.Config.User = "app"
	cfg.Config.Cmd = []string{"sh", "-c", "echo $FROM_IMAGE; pwd; id -u; echo $HOME"}
	e.loadImage("localhost/bb:cfg", cfg)
	before := len(e.storageContainers())

	t.Run("command and layers", func(t *testing.T) {
		out := e.ok("run", "--rm", "localhost/bb:changes", "sh", "-c",
			"cat "+imagefix.Replaced+"; ls "+imagefix.OpaqueDir+"; test -e "+imagefix.WhitedOut+" || echo whited-out")
		want := imagefix.ReplacedAfter + "c\nc-link\nwhited-out\n" // the opaque dir holds only the top layer's entries
		if out != want {
			t.Errorf("got %q, want %q", out, want)
		}
	})
	t.Run("image config", func(t *testing.T) {
		if out, want := e.ok("run", "--rm", "localhost/bb:cfg"), "yes\n/opt/data\n1000\n/home/app\n"; out != want {
			t.Errorf("image config: got %q, want %q", out, want)
		}
	})
	t.Run("flags override the config", func(t *testing.T) {
		out := e.ok("run", "--rm", "-e", "FROM_IMAGE=flag", "-e", "EXTRA=1", "-w", "/tmp", "-u", "root",
			"localhost/bb:cfg", "sh", "-c", "echo $FROM_IMAGE $EXTRA; pwd; id -u")
		if want := "flag 1\n/tmp\n0\n"; out != want {
			t.Errorf("got %q, want %q", out, want)
		}
		if out := e.ok("run", "--rm", "--entrypoint", "/bin/echo", "localhost/bb:cfg", "from", "entrypoint"); out != "from entrypoint\n" {
			t.Errorf("--entrypoint: got %q", out)
		}
		// The caller's proxy reaches the container (podman's
		// --http-proxy, on by default); --env-host passes everything,
		// under the image's own variables.
		env := e.env
		e.env = append(append([]string(nil), env...), "https_proxy=http://proxy.example:3128", "SANDY_T_HOST=h", "FROM_IMAGE=host")
		defer func() { e.env = env }()
		show := []string{"localhost/bb:cfg", "sh", "-c", "echo ${https_proxy:-none} ${SANDY_T_HOST:-none} $FROM_IMAGE"}
		for _, tc := range []struct {
			flags []string
			want  string
		}{{nil, "http://proxy.example:3128 none yes\n"}, {[]string{"--http-proxy=false"}, "none none yes\n"}, {[]string{"--env-host"}, "http://proxy.example:3128 h yes\n"}} {
			if out := e.ok(append(append([]string{"run", "--rm"}, tc.flags...), show...)...); out != tc.want {
				t.Errorf("run %v: %q, want %q", tc.flags, out, tc.want)
			}
		}
	})
	t.Run("exit statuses", func(t *testing.T) {
		e.fails(7, "run", "--rm", "localhost/bb:changes", "sh", "-c", "exit 7")
		e.fails(127, "run", "--rm", "localhost/bb:changes", "no-such-command")
		e.fails(126, "run", "--rm", "localhost/bb:changes", "/etc/passwd")
		if msg := e.fails(125, "run", "--rm", "--pull=never", "localhost/no-such-image"); !strings.Contains(msg, "no-such-image") {
			t.Errorf("unknown image: %s", msg)
		}
		if msg := e.fails(125, "run", "--rm", "--memory", "1x", "localhost/bb:changes", "true"); !strings.Contains(msg, "1x") {
			t.Errorf("--memory 1x: %s", msg)
		}
		if msg := e.fails(125, "run", "--rm", "-v", filepath.Join(e.dir, "missing")+":/mnt", "localhost/bb:changes", "true"); !strings.Contains(msg, "missing") {
			t.Errorf("-v of a missing source: %s", msg)
		}
	})
	t.Run("stdin", func(t *testing.T) {
		if r := e.run_([]byte("typed\n"), "run", "--rm", "localhost/bb:changes", "cat"); r.code != 0 || r.stdout != "" {
			t.Errorf("without -i stdin must be empty: exit %d, %q", r.code, r.stdout)
		}
		if r := e.run_([]byte("typed\n"), "run", "--rm", "-i", "localhost/bb:changes", "cat"); r.code != 0 || r.stdout != "typed\n" {
			t.Errorf("-i: exit %d, %q (%s)", r.code, r.stdout, r.stderr)
		}
	})
	t.Run("bind mount and read-only root", func(t *testing.T) {
		host := filepath.Join(e.dir, "share")
		if err := os.Mkdir(host, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(host, "in"), []byte("from host\n"), 0o644); err != nil {
			t.Fatal(err)
		}
		// A CI step: what the container's root writes into the workspace
		// belongs to the user on the host.
		e.ok("run", "--rm", "-v", host+":/src", "-w", "/src", "localhost/bb:changes", "sh", "-c", "echo built > made && mkdir -p out && touch out/bin")
		for _, f := range []string{"made", "out", "out/bin"} {
			var st unix.Stat_t
			if err := unix.Stat(filepath.Join(host, f), &st); err != nil || int(st.Uid) != os.Getuid() || int(st.Gid) != os.Getgid() {
				t.Errorf("%s on the host: %v, owner %d:%d, want %d:%d", f, err, st.Uid, st.Gid, os.Getuid(), os.Getgid())
			}
		}
		out := e.ok("run", "--rm", "--read-only", "-v", host+":/share", "localhost/bb:changes", "sh", "-c",
			"cat /share/in; touch /x 2>/dev/null || echo read-only; touch /tmp/ok && echo tmp-writable")
		if want := "from host\nread-only\ntmp-writable\n"; out != want {
			t.Errorf("got %q, want %q", out, want)
		}
	})
	t.Run("volumes", func(t *testing.T) {
		e.ok("run", "--rm", "-v", "cache1:/cache", "localhost/bb:changes", "sh", "-c", "echo kept > /cache/f")
		if out := e.ok("run", "--rm", "-v", "cache1:/cache:ro", "localhost/bb:changes", "sh", "-c", "cat /cache/f; touch /cache/g 2>/dev/null || echo ro"); out != "kept\nro\n" {
			t.Errorf("a named volume across runs: %q", out)
		}
		e.ok("run", "--rm", "-v", "/scratch", "--mount", "type=volume,dst=/other", "localhost/bb:changes", "sh", "-c", "touch /scratch/a /other/b")
		if out := strings.Fields(e.ok("volume", "ls", "-q")); len(out) != 1 || out[0] != "cache1" {
			t.Errorf("after --rm with anonymous volumes: volume ls = %q, want only cache1", out)
		}
	})
	if got := len(e.storageContainers()); got != before {
		t.Fatalf("--rm left %d storage containers behind", got-before)
	}
	t.Run("resolv.conf and hosts", func(t *testing.T) {
		// An image container gets them on every network, as podman gives
		// them; --dns, --dns-search, --dns-option and --add-host apply.
		show := "cat /etc/resolv.conf /etc/hosts 2>/dev/null; echo; hostname"
		out := e.ok("run", "--rm", "--hostname", "box1", "--dns", "192.0.2.53", "--dns-search", "corp.test", "--dns-option", "ndots:3",
			"--add-host", "db.test:192.0.2.10", "localhost/bb:changes", "sh", "-c", show)
		for _, want := range []string{"nameserver 192.0.2.53\n", "search corp.test\n", "options ndots:3\n", "192.0.2.10\tdb.test\n", "\tbox1\n", "\nbox1\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("slirp4netns: no %q in:\n%s", want, out)
			}
		}
		if strings.Contains(out, "nameserver 10.0.2.3") {
			t.Errorf("--dns did not replace slirp4netns's server:\n%s", out)
		}
		out = e.ok("run", "--rm", "--network", "none", "--hostname", "box2", "--add-host", "db.test:192.0.2.10", "localhost/bb:changes", "sh", "-c", show)
		for _, want := range []string{"127.0.0.1\tlocalhost\n", "127.0.1.1\tbox2\n", "192.0.2.10\tdb.test\n"} {
			if !strings.Contains(out, want) {
				t.Errorf("--network none: no %q in:\n%s", want, out)
			}
		}
		host, err := os.ReadFile("/etc/resolv.conf")
		if err != nil {
			t.Fatal(err)
		}
		out = e.ok("run", "--rm", "--network", "host", "localhost/bb:changes", "cat", "/etc/resolv.conf")
		if out != string(host) && out != string(host)+"\n" {
			t.Errorf("--network host: resolv.conf %q, want the host's %q", out, host)
		}
	})
	t.Run("published port", func(t *testing.T) {
		port := freePort(t)
		c := e.cmd("run", "--rm", "-p", fmt.Sprintf("127.0.0.1:%d:8080", port), "localhost/bb:changes", "sh", "-c",
			"mkdir -p /www && echo served > /www/index.html && trap 'exit 0' TERM INT; httpd -f -p 8080 -h /www & wait")
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() {
			_ = c.Process.Signal(syscall.SIGTERM)
			_ = c.Wait()
		}()
		if body := waitHTTP(t, port); body != "served\n" {
			t.Errorf("GET through -p: %q", body)
		}
	})
	t.Run("--init", func(t *testing.T) {
		// sandy's own init is pid 1, read-only, and passes SIGTERM on to
		// a command that, as pid 1, would have ignored it (sleep has no
		// handler): the run ends with 143.
		out := e.ok("run", "--rm", "--init", "localhost/bb:changes", "sh", "-c",
			"cat /proc/1/comm; test $$ != 1 && echo not-pid-1; echo x > /run/sandy-init 2>/dev/null || echo read-only")
		if want := "sandy-init\nnot-pid-1\nread-only\n"; out != want {
			t.Errorf("--init: %q, want %q", out, want)
		}
		e.fails(5, "run", "--rm", "--init", "localhost/bb:changes", "sh", "-c", "exit 5")
		c := e.cmd("run", "--rm", "--init", "localhost/bb:changes", "sh", "-c", "echo up; exec sleep 100")
		startUntilUp(t, c)
		time.Sleep(200 * time.Millisecond) // sh has exec'd sleep
		_ = c.Process.Signal(syscall.SIGTERM)
		waitOrKill(t, c, func() string { return "SIGTERM did not end a container with --init" })
		if code := c.ProcessState.ExitCode(); code != 143 {
			t.Errorf("exit status %d, want 143 (SIGTERM)", code)
		}
	})
	t.Run("interrupted --rm", func(t *testing.T) {
		// Ctrl-C (SIGINT to sandy) reaches the container, whose status
		// sandy returns, and --rm still removes the storage container:
		// the helper that holds it is in a session of its own.
		c := e.cmd("run", "--rm", "localhost/bb:changes", "sh", "-c", "trap 'exit 3' INT; echo up; sleep 100 & wait")
		startUntilUp(t, c)
		_ = c.Process.Signal(syscall.SIGINT)
		waitOrKill(t, c, func() string { return "sandy run did not end after SIGINT" })
		if code := c.ProcessState.ExitCode(); code != 3 {
			t.Errorf("exit status %d, want the container's 3", code)
		}
		if got := len(e.storageContainers()); got != before {
			t.Errorf("an interrupted --rm left %d storage containers", got-before)
		}
	})
	t.Run("kill -9 of run --rm", func(t *testing.T) {
		// sandy killed mid-run: the container dies with it, and the
		// helper that holds the --rm container removes it.
		c := e.cmd("run", "--rm", "localhost/bb:changes", "sh", "-c", "echo up; sleep 100")
		startUntilUp(t, c)
		_ = c.Process.Kill()
		_ = c.Wait()
		if got := e.storageContainersBack(before); got != before {
			t.Errorf("kill -9 of sandy run --rm left %d storage containers", got-before)
		}
	})
	t.Run("network teardown ends", func(t *testing.T) {
		// The default network (slirp4netns) of a container with a 64-hex
		// id: the reaper's teardown of its renamed state directory
		// (.gone-ID-…, a socket path longer than a socket address) ends.
		e.ok("run", "--rm", "localhost/bb:changes", "true")
		root := filepath.Join(os.TempDir(), fmt.Sprintf("sandy-%d", os.Getuid()))
		if d := os.Getenv("XDG_RUNTIME_DIR"); d != "" {
			root = filepath.Join(d, "sandy")
		}
		var left []string
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
			left, _ = filepath.Glob(filepath.Join(root, ".gone-"+strings.Repeat("[0-9a-f]", 64)+"-*"))
			if len(left) == 0 {
				return
			}
		}
		t.Errorf("teardown left %q", left)
	})
	t.Run("kept layer and names", func(t *testing.T) {
		e.ok("run", "--name", "keeper", "localhost/bb:changes", "sh", "-c", "echo kept > /new-file")
		ids := e.storageContainers()
		if len(ids) != before+1 {
			t.Fatalf("without --rm: %d storage containers, want %d", len(ids), before+1)
		}
		// The write is in the container's layer, not in the image.
		e.fails(1, "run", "--rm", "localhost/bb:changes", "test", "-e", "/new-file")
		found := false
		for _, id := range ids {
			b, err := os.ReadFile(filepath.Join(e.dir, "graph", "overlay-containers", id, "userdata", "config.json"))
			if err == nil && strings.Contains(string(b), "/new-file") {
				found = true
			}
		}
		if !found {
			t.Errorf("no storage container kept config.json with the command")
		}
		msg := e.fails(125, "run", "--name", "keeper", "localhost/bb:changes", "true")
		if !strings.Contains(msg, `"keeper" is already in use`) {
			t.Errorf("a name in use: %s", msg)
		}
		if got := len(e.storageContainers()); got != before+1 {
			t.Errorf("the refused run left a storage container: %d, want %d", got, before+1)
		}
	})
}

// TestRunImageSymlinkEscape: an image (a malicious registry's) whose
// paths are symlinks out of the root: /etc/passwd → a host file, a
// directory → a host directory by absolute and by relative path. Reading
// the image's user database, a bind mount's target, the working
// directory and the container's writes all stay inside the container's
// root; the host files are never read into it or written.
func TestRunImageSymlinkEscape(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	host := filepath.Join(e.dir, "host")
	if err := os.Mkdir(host, 0o755); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(host, "secret")
	if err := os.WriteFile(secret, []byte("evil:x:0:0:HOST SECRET:/:/bin/sh\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	rel := strings.Repeat("../", 12) + strings.TrimPrefix(host, "/")
	passwdLink := imagefix.Busybox(t).WithLayers(imagefix.Layer{Entries: []imagefix.Entry{
		imagefix.Dir("etc/", 0o755),
		imagefix.Whiteout("etc/passwd"),
		imagefix.Symlink("etc/passwd", secret),
	}})
	passwdLink.Config.User = "evil" // resolvable only through the host's file
	e.loadImage("localhost/evil:passwd", passwdLink)
	if msg := e.fails(125, "run", "--rm", "localhost/evil:passwd", "true"); !strings.Contains(msg, `unable to find user evil`) {
		t.Errorf("the image's /etc/passwd was read through its symlink to the host: %s", msg)
	}
	evil := imagefix.Busybox(t).WithLayers(imagefix.Layer{Entries: []imagefix.Entry{
		imagefix.Symlink("abs", host),
		imagefix.Symlink("rel", rel),
	}})
	e.loadImage("localhost/evil:1", evil)
	share := filepath.Join(e.dir, "share")
	if err := os.Mkdir(share, 0o755); err != nil {
		t.Fatal(err)
	}
	// A working directory through a symlink whose target is missing in
	// the root is refused, as runc refuses it (securejoin's MkdirAll does
	// not create a dangling symlink's target).
	e.fails(125, "run", "--rm", "-w", "/rel/work", "localhost/evil:1", "true")
	// The container's own writes through the links resolve in its root.
	out := e.ok("run", "--rm", "localhost/evil:1", "sh", "-c",
		"mkdir -p "+host+" && echo in > /abs/written && echo in2 > /rel/written2 && cat "+host+"/written "+host+"/written2")
	if out != "in\nin2\n" {
		t.Errorf("in the container: %q", out)
	}
	// A bind mount's target through the symlinks: mounted inside the root,
	// or refused; never on the host.
	r := e.run_(nil, "run", "--rm", "-u", "0", "-v", share+":/abs/mnt", "-v", share+":/rel/mnt2", "localhost/evil:1", "true")
	if r.code != 0 && r.code != 125 {
		t.Errorf("bind on a symlinked target: exit %d: %s", r.code, r.stderr)
	}
	entries, err := os.ReadDir(host)
	if err != nil {
		t.Fatal(err)
	}
	for _, en := range entries {
		if en.Name() != "secret" {
			t.Errorf("the container reached the host directory %s: %s appeared", host, en.Name())
		}
	}
	if b, _ := os.ReadFile(secret); !strings.Contains(string(b), "HOST SECRET") {
		t.Errorf("the host file changed: %q", b)
	}
}

// TestRunImageAsRoot: root runs an image from its own store, as rootful
// podman: no user namespace (uid_map is the whole range), overlay's
// metadata in trusted.* xattrs, so whiteouts and opaque directories hold;
// a kept container is listed and removed.
func TestRunImageAsRoot(t *testing.T) {
	sandy := testutil.SandyWithImages(t)
	if os.Geteuid() != 0 {
		testutil.Skip(t, "needs root")
	}
	dir := t.TempDir()
	store := []string{"--storage-root", filepath.Join(dir, "graph"), "--storage-runroot", filepath.Join(dir, "run"), "--root", filepath.Join(dir, "state")}
	sh := func(want int, args ...string) string {
		t.Helper()
		c := exec.Command(sandy, append(append([]string(nil), store...), args...)...)
		c.Env = append(os.Environ(), "XDG_DATA_HOME="+filepath.Join(dir, "data"))
		out, err := c.CombinedOutput()
		if code := c.ProcessState.ExitCode(); code != want {
			t.Fatalf("sandy %v: exit %d, want %d (%v): %s", args, code, want, err, out)
		}
		return string(out)
	}
	archive := filepath.Join(dir, "bb.tar")
	if _, err := imagefix.DockerArchive(archive, "localhost/bb:root", imagefix.BusyboxWithChanges(t), false); err != nil {
		t.Fatal(err)
	}
	sh(0, "load", "-q", "-i", archive)
	out := sh(0, "run", "--rm", "--network", "none", "localhost/bb:root", "sh", "-c",
		"id -u; cat /proc/self/uid_map | tr -s ' '; ls "+imagefix.OpaqueDir+"; test -e "+imagefix.WhitedOut+" || echo whited-out")
	if want := "0\n 0 0 4294967295\nc\nc-link\nwhited-out\n"; !strings.HasSuffix(out, want) {
		t.Errorf("run IMAGE as root: %q, want it to end with %q", out, want)
	}
	sh(0, "run", "--network", "none", "--name", "kept", "localhost/bb:root", "sh", "-c", "echo x > /made")
	if ls := sh(0, "container", "ls", "-a"); !strings.Contains(ls, "kept") {
		t.Errorf("container ls -a: %s", ls)
	}
	if diff := sh(0, "diff", "kept"); !strings.Contains(diff, "A /made") {
		t.Errorf("diff: %s", diff)
	}
	sh(0, "container", "rm", "kept")
	sh(0, "rmi", "-a", "-f")
}

// TestContainerLsRm: sandy container ls and rm over the containers made
// from images: how each ended (sandy's record), which one runs (the
// runtime's state), removal by name and id prefix, a running one refused
// without -f and killed with it, podman's and buildah's left to them.
func TestContainerLsRm(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	e.loadImage("localhost/bb:ls", imagefix.Busybox(t))
	before := len(e.storageContainers())
	e.fails(4, "run", "--name", "done4", "localhost/bb:ls", "sh", "-c", "exit 4")
	if out := e.ok("container", "ls"); strings.Contains(out, "done4") {
		t.Errorf("ls without -a lists an exited container:\n%s", out)
	}
	out := e.ok("container", "ls", "-a")
	if !strings.Contains(out, "done4") || !strings.Contains(out, "Exited (4)") || !strings.Contains(out, "localhost/bb:ls") {
		t.Errorf("ls -a:\n%s", out)
	}
	var listed []struct {
		ID       string `json:"Id"`
		Names    []string
		State    string
		ExitCode *int
		Command  []string
	}
	if err := json.Unmarshal([]byte(e.ok("container", "ls", "-a", "--format", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || listed[0].State != "exited" || listed[0].ExitCode == nil || *listed[0].ExitCode != 4 || strings.Join(listed[0].Command, " ") != "sh -c exit 4" {
		t.Errorf("ls --format json: %+v", listed)
	}

	c := e.cmd("run", "--name", "live", "localhost/bb:ls", "sh", "-c", "trap 'exit 0' TERM; echo up; sleep 100 & wait")
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() {
		_, _ = bufio.NewReader(stdout).ReadString('\n')
		_, _ = io.Copy(io.Discard, stdout)
		done <- c.Wait()
	}()
	for deadline := time.Now().Add(20 * time.Second); !strings.Contains(e.ok("container", "ls"), "live"); time.Sleep(100 * time.Millisecond) {
		if time.Now().After(deadline) {
			_ = c.Process.Kill()
			t.Fatal("the running container is not listed")
		}
	}
	if out := e.ok("container", "exec", "live", "sh", "-c", "echo in-$HOSTNAME; id -u"); !strings.HasPrefix(out, "in-") || !strings.HasSuffix(out, "\n0\n") {
		t.Errorf("container exec by name: %q", out)
	}
	if msg := e.fails(125, "container", "exec", "done4", "true"); !strings.Contains(msg, "exec needs a running container") {
		t.Errorf("container exec into an exited container: %s", msg)
	}
	if msg := e.fails(125, "container", "rm", "live"); !strings.Contains(msg, "is running") {
		t.Errorf("rm of a running container: %s", msg)
	}
	e.ok("container", "rm", "-f", "live")
	select {
	case <-done:
	case <-time.After(30 * time.Second):
		_ = c.Process.Kill()
		t.Fatal("sandy run did not end when its container was removed")
	}
	if msg := e.fails(125, "container", "rm", "no-such"); !strings.Contains(msg, `no container with name or id "no-such"`) {
		t.Errorf("rm of an unknown name: %s", msg)
	}
	e.ok("container", "rm", listed[0].ID[:8])
	if got := len(e.storageContainers()); got != before {
		t.Errorf("%d storage containers left", got-before)
	}
	if out := e.ok("container", "ls", "-a", "-q"); out != "" {
		t.Errorf("ls -a -q after rm: %q", out)
	}
}

// TestRunImageBinaryOverlay (as the test user): with sandy and its image
// helpers the user's own (writable by them), every `run IMAGE`'s
// init runs sandy through the read-only overlay made in a user namespace,
// never the sealed memfd copy: the image helper's join of the store's
// user namespace (userns.ForkExec, whose children make this process not
// dumpable while they share its memory) raced create's overlay, whose
// child must write its own maps, and won 9 runs of 12.
func TestRunImageBinaryOverlay(t *testing.T) {
	testutil.RequireKernel(t, 5, 11, "overlayfs in a user namespace")
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	own := filepath.Join(testutil.TempDir(t), "bin")
	if err := os.Mkdir(own, 0o755); err != nil {
		t.Fatal(err)
	}
	for _, name := range []string{"sandy", "sandy-image", "sandy-store", "sandy-create"} {
		data, err := os.ReadFile(filepath.Join(filepath.Dir(e.sandy), name))
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(own, name), data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	e.sandy = filepath.Join(own, "sandy")
	e.loadImage("localhost/bb:own", imagefix.Busybox(t))
	// The Go init, started beside the helper (the raw init, which a
	// --network=none run takes, runs no sandy binary: it is forked).
	e.env = append(e.env, "SANDY_RAW_INIT=0")
	want := "the init runs " + e.sandy + " through a detached read-only overlayfs mount made in a user namespace of its own"
	for i := range 6 {
		r := e.run_(nil, "--debug", "run", "--rm", "--network=none", "localhost/bb:own", "true")
		if r.code != 0 {
			t.Fatalf("run %d: exit %d: %s", i, r.code, r.stderr)
		}
		if !strings.Contains(r.stderr, want) {
			line := "no line names the init's binary"
			for _, l := range strings.Split(r.stderr, "\n") {
				if strings.Contains(l, "the init runs") {
					line = l
				}
			}
			t.Fatalf("run %d: %s; want %q", i, line, want)
		}
	}
}

// startUntilUp starts c, a sandy run whose container prints "up" first,
// and returns once the container has said it; the caller signals sandy.
func startUntilUp(t *testing.T, c *exec.Cmd) {
	t.Helper()
	stdout, err := c.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	if line, _ := bufio.NewReader(stdout).ReadString('\n'); line != "up\n" {
		_ = c.Process.Kill()
		t.Fatalf("the container said %q", line)
	}
}
