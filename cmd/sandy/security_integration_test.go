//go:build integration

package main_test

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"testing"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestNoHostFDLeak (CVE-2024-21626): the container's process holds only
// stdin/stdout/stderr, none of them a host file other than what the caller
// passed, and its cwd is inside the container root. Checked from the host,
// on the running process, so the check itself opens nothing in it.
func TestNoHostFDLeak(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "sleep", "100")
	e.spec.Process.Cwd = "/etc"
	e.write()
	id := fmt.Sprintf("fd-%d", time.Now().UnixNano())
	if r := e.run("", "create", "--bundle", e.bundle, id); r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	if r := e.run("", "start", id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	pid := statePid(t, e, id)
	waitFor(t, 10*time.Second, "the process to exec", func() bool {
		comm, _ := os.ReadFile(fmt.Sprintf("/proc/%d/comm", pid))
		return strings.TrimSpace(string(comm)) == "sleep"
	})
	ents, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
	if err != nil {
		t.Fatal(err)
	}
	var fds []string
	for _, d := range ents {
		target, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, d.Name()))
		fds = append(fds, d.Name()+"->"+target)
	}
	if len(fds) != 3 {
		t.Fatalf("the container process has fds %v, want only 0 1 2", fds)
	}
	cwd, _ := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid))
	if !strings.HasSuffix(cwd, "/etc") || strings.HasPrefix(cwd, "/etc") && cwd != "/etc" {
		t.Fatalf("cwd %q", cwd)
	}
	// Seen from inside, the cwd is /etc of the container.
	if r := e.run("", "delete", "--force", id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
}

func statePid(t *testing.T, e *env, id string) int {
	t.Helper()
	st := e.run("", "state", id)
	i := strings.Index(st.stdout, `"pid": `)
	if i < 0 {
		t.Fatalf("no pid in state: %s %s", st.stdout, st.stderr)
	}
	var pid int
	fmt.Sscanf(st.stdout[i+7:], "%d", &pid)
	return pid
}

// TestHostBinaryNotWritable (CVE-2019-5736): while a container exists, the
// sandy process the container could reach runs from a binary that the
// container's root (the caller's uid on the host) cannot write: when the
// caller owns the sandy binary, the binary through a read-only overlayfs
// mount (EROFS; TestRootlessBinaryReadOnlyOverlay) or a sealed memfd copy.
func TestHostBinaryNotWritable(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh("sleep 100")
	// A sandy the test user owns, as one built into $HOME would be.
	own := ownSandy(t, e.sandy)
	for _, bin := range []string{e.sandy, own} {
		t.Run(filepath.Base(filepath.Dir(bin)), func(t *testing.T) {
			id := fmt.Sprintf("exe-%d", time.Now().UnixNano())
			cmd := exec.Command(bin, "--root", e.root, "create", "--bundle", e.bundle, id)
			if err := cmd.Run(); err != nil { // stdio /dev/null: the container keeps it
				t.Fatalf("create with %s: %v", bin, err)
			}
			defer exec.Command(bin, "--root", e.root, "delete", "--force", id).Run()
			exe, target, err := writeOpenExe(statePid(t, e, id))
			if err == nil {
				t.Fatalf("%s (%s) opened for writing", exe, target)
			}
			if bin == own && !overlayOrMemfd(target, err) {
				t.Fatalf("init of a user-owned sandy runs from %q (open for writing: %v), want a read-only overlayfs (EROFS) or a sealed memfd", target, err)
			}
			t.Logf("%s -> %s: open for writing: %v", exe, target, err)
		})
	}
}

// ownSandy is a copy of the sandy binary in a directory of the test's,
// owned by the caller: a sandy the user can write, as one built into
// $HOME would be.
func ownSandy(t *testing.T, sandy string) string {
	t.Helper()
	own := filepath.Join(testutil.TempDir(t), "sandy")
	data, err := os.ReadFile(sandy)
	if err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(own, data, 0o755); err != nil {
		t.Fatal(err)
	}
	return own
}

// writeOpenExe does what the CVE-2019-5736 attack does first: it opens
// /proc/PID/exe for writing, and closes it again if that worked. It
// returns the link and its target, for the messages, and the open's
// error: nil when the binary could have been rewritten.
func writeOpenExe(pid int) (exe, target string, err error) {
	exe = fmt.Sprintf("/proc/%d/exe", pid)
	target, _ = os.Readlink(exe)
	fd, err := unix.Open(exe, unix.O_WRONLY, 0)
	if err == nil {
		unix.Close(fd)
	}
	return exe, target, err
}

// overlayOrMemfd: the failed open of writeOpenExe was the read-only
// overlay's (EROFS) or the target is sandy's sealed memfd copy.
func overlayOrMemfd(target string, err error) bool {
	return strings.HasPrefix(target, "/memfd:sandy") || errors.Is(err, unix.EROFS)
}

// wantReadOnlyOverlayExe fails t unless process pid runs sandy through
// the read-only overlay: its exe is neither a memfd copy nor the file on
// disk (path; "" for no such check), and does not open for writing
// (EROFS).
func wantReadOnlyOverlayExe(t *testing.T, pid int, path string) (exe, target string) {
	t.Helper()
	exe, target, err := writeOpenExe(pid)
	switch {
	case strings.HasPrefix(target, "/memfd:") || path != "" && target == path:
		t.Fatalf("%s runs from %q, not the overlay", exe, target)
	case err == nil:
		t.Fatalf("%s (%s) opened for writing by uid %d", exe, target, os.Getuid())
	case !errors.Is(err, unix.EROFS):
		t.Fatalf("open %s (%s) for writing: %v, want EROFS", exe, target, err)
	}
	return exe, target
}

// TestRootBinaryReadOnlyOverlay (CVE-2019-5736, as root): root can write
// every binary, so the init of a root container runs sandy through a
// detached, read-only overlayfs mount of the binary's directory, as
// runc >= 1.2 does, not a copy: --debug names that path, the init's
// /proc/PID/exe refuses to open for writing even for root on the host
// (EROFS) and is not a memfd, and no mount namespace of the host lists
// the overlay, while the container exists or after.
func TestRootBinaryReadOnlyOverlay(t *testing.T) {
	requireRoot(t)
	e := newEnv(t).sh("sleep 100")
	hostIDs(e)
	e.write()
	id := uniqueID("exe-root")
	r := e.run("", "--debug", "create", "--bundle", e.bundle, id)
	if r.code != 0 {
		t.Fatalf("create: %s", r.stderr)
	}
	defer e.run("", "delete", "--force", id)
	if !strings.Contains(r.stderr, "the init runs "+e.sandy+" through a detached read-only overlayfs mount") {
		t.Fatalf("--debug does not name the overlay for %s:\n%s", e.sandy, r.stderr)
	}
	exe, target := wantReadOnlyOverlayExe(t, statePid(t, e, id), "")
	t.Logf("%s -> %s: open for writing: %v", exe, target, unix.EROFS)
	noExeOverlay(t, e)
	if r := e.run("", "delete", "--force", id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
	noExeOverlay(t, e)
}

// TestRootlessBinaryReadOnlyOverlay (CVE-2019-5736, as the test user): the
// rootless twin of TestRootBinaryReadOnlyOverlay. The user can write a
// sandy of its own (one built into $HOME), so the init runs it through a
// detached read-only overlayfs mount that a child of sandy made in a user
// namespace of its own, not a sealed copy: --debug names that path; the
// init's /proc/PID/exe refuses to open for writing, from the host as the
// same uid (EROFS) and from a process inside the container, its root,
// which is that uid on the host (EACCES: the init is not dumpable); no
// mount namespace of the host lists the overlay, while the container
// exists or after; and the container's process holds no fd of the binary.
// The other starts of the binary take the same handle: exec's fallback
// (the exec init, for --tty) and the reaper of a foreground run.
func TestRootlessBinaryReadOnlyOverlay(t *testing.T) {
	testutil.RequireKernel(t, 5, 11, "overlayfs in a user namespace")
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh("ls -l /proc/self/fd/; sleep 100")
	own := ownSandy(t, e.sandy)
	e.sandy = own
	id := uniqueID("exe-rootless")
	out := filepath.Join(testutil.TempDir(t), "out")
	cmd := exec.Command(own, "--root", e.root, "--debug", "create", "--bundle", e.bundle, id)
	f, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o600)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	cmd.Stdout, cmd.Stderr = f, f // files: the container keeps its stdio
	if err := cmd.Run(); err != nil {
		b, _ := os.ReadFile(out)
		t.Fatalf("create: %v: %s", err, b)
	}
	defer e.run("", "delete", "--force", id)
	debug, _ := os.ReadFile(out)
	if !strings.Contains(string(debug), "the init runs "+own+" through a detached read-only overlayfs mount made in a user namespace of its own") {
		t.Fatalf("--debug does not name the user namespace's overlay for %s:\n%s", own, debug)
	}
	exe, target := wantReadOnlyOverlayExe(t, statePid(t, e, id), own)
	t.Logf("%s -> %s: open for writing from the host: %v", exe, target, unix.EROFS)
	r := e.run("", "exec", id, "sh", "-c", "exec 3>>/proc/1/exe && echo OPENED")
	if r.code == 0 || strings.Contains(r.stdout, "OPENED") {
		t.Fatalf("a process of the container opened the init's exe for writing: %d %q %s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "Permission denied") && !strings.Contains(r.stderr, "Read-only file system") {
		t.Fatalf("open of /proc/1/exe inside the container: %q, want EACCES or EROFS", r.stderr)
	}
	t.Logf("inside the container: %s", strings.TrimSpace(r.stderr))
	noExeOverlay(t, e)
	if r := e.run("", "start", id); r.code != 0 {
		t.Fatalf("start: %s", r.stderr)
	}
	var fds string
	waitFor(t, 10*time.Second, "the container's fd listing", func() bool {
		b, _ := os.ReadFile(out)
		_, fds, _ = strings.Cut(string(b), "total ")
		return strings.Count(fds, "\n") >= 4 // the total, 0, 1, 2 (and ls's own directory)
	})
	for _, l := range strings.Split(fds, "\n") {
		_, target, ok := strings.Cut(l, " -> ")
		if ok && (target == "/"+filepath.Base(own) || strings.HasPrefix(target, filepath.Dir(own)) || strings.Contains(target, "memfd:")) {
			t.Fatalf("the container's process holds an fd of the binary (%s):\n%s", target, fds)
		}
	}
	t.Logf("the container's fds:\n%s", fds)
	overlay := " runs " + own + " through a detached read-only overlayfs mount made in a user namespace of its own"
	r = e.run("", "--debug", "exec", "-t", id, "true")
	if r.code != 0 || !strings.Contains(r.stderr, "exec: the init"+overlay) {
		t.Fatalf("exec -t (the exec init): %d, want it started from the overlay: %s", r.code, r.stderr)
	}
	if r := e.run("", "delete", "--force", id); r.code != 0 {
		t.Fatalf("delete: %s", r.stderr)
	}
	e.sh("echo x > /written") // something in the layer: the reaper removes it
	// The Go init's run: the raw init starts no sandy binary in the
	// container, and its reaper, on the host after the container's end,
	// runs sandy's own binary (TestRawInitWritable).
	t.Setenv("SANDY_RAW_INIT", "0")
	r = e.run("", "--debug", "run", "--bundle", e.bundle, uniqueID("exe-reaper"))
	if r.code != 0 || !strings.Contains(r.stderr, "the init"+overlay) || !strings.Contains(r.stderr, "the reaper finishes the teardown") {
		t.Fatalf("run: %d, want the init and the reaper started from the overlay: %s", r.code, r.stderr)
	}
	noExeOverlay(t, e)
}

// TestRootlessBinaryOverlayFallback (as the test user): where no user
// namespace can be made for the overlay (here: user.max_user_namespaces
// set to 0 in a user namespace of the test's, where sandy runs as its
// root and can write its own binary), the binary is copied into a sealed
// memfd, and --debug and doctor say so and why.
func TestRootlessBinaryOverlayFallback(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	unshare := testutil.RequireBinary(t, "unshare", "apt-get install util-linux")
	e := newEnv(t, "true")
	own := ownSandy(t, e.sandy)
	// The Go init's binary: the raw init execs none in the container.
	t.Setenv("SANDY_RAW_INIT", "0")
	limited := func(args ...string) string {
		script := `echo 0 >/proc/sys/user/max_user_namespaces && exec "$@"`
		out, _ := exec.Command(unshare, append([]string{"--user", "--map-root-user", "sh", "-c", script, "sh", own}, args...)...).CombinedOutput()
		return string(out)
	}
	const why = "no read-only overlayfs: in a user namespace of its own: clone with a user and mount namespace: no space left on device: user namespace limit reached (user.max_user_namespaces=0)"
	// The container cannot start there either (its own user namespace),
	// but the binary's handle is made, and named, first.
	out := limited("--root", e.root, "--debug", "run", "--bundle", e.bundle, uniqueID("exe-fallback"))
	if !strings.Contains(out, "the init runs a sealed memfd copy of "+own+" (writable by uid 0; "+why) {
		t.Fatalf("--debug run does not name the sealed copy and why:\n%s", out)
	}
	out = limited("doctor", "--json")
	if !strings.Contains(out, `"binary_protection": "memfd"`) || !strings.Contains(out, why) || !strings.Contains(out, `"binary_copied": true`) {
		t.Fatalf("doctor does not report the sealed copy and why:\n%s", out)
	}
}

// noExeOverlay fails if a mount namespace of the host (this process's,
// PID 1's) lists an overlay of the sandy binary's directory, or any mount
// on that directory (the rootless overlay's child mounts a tmpfs there in
// its own mount namespace, which must not propagate to the host's).
func noExeOverlay(t *testing.T, e *env) {
	t.Helper()
	for _, p := range []string{"/proc/self/mountinfo", "/proc/1/mountinfo"} {
		mi, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(mi), "\n") {
			if strings.Contains(l, " overlay ") && (strings.Contains(l, filepath.Dir(e.sandy)) || strings.Contains(l, "sandy-exe-")) {
				t.Fatalf("%s lists the binary's overlay: %s", p, l)
			}
			if f := strings.Fields(l); len(f) > 4 && f[4] == filepath.Dir(e.sandy) {
				t.Fatalf("%s lists a mount on the binary's directory: %s", p, l)
			}
		}
	}
}

// TestMountTargetStaysInRoot (CVE-2021-30465): a mount destination that
// runs through a symlink pointing outside the root lands inside it.
func TestMountTargetStaysInRoot(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh(`grep -c ' /inside1 ' /proc/mounts; grep -c ' /inside2/deep ' /proc/mounts`)
	rootfs := filepath.Join(e.bundle, "rootfs")
	outside := testutil.TempDir(t) // a host directory the symlinks aim at
	for _, d := range []string{"inside1", "inside2/deep"} {
		if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	// Absolute and relative escapes: both must resolve inside the root.
	// On the host, /abs would name the host's /inside and rel the test's
	// own dirs; only in-root resolution keeps them in the container.
	if err := os.Symlink("/../../../inside1", filepath.Join(rootfs, "abs")); err != nil {
		t.Fatal(err)
	}
	if err := os.Symlink("../../../../../../../../inside2/deep", filepath.Join(rootfs, "rel")); err != nil {
		t.Fatal(err)
	}
	e.spec.Mounts = append(e.spec.Mounts,
		specs.Mount{Destination: "/abs", Type: "tmpfs", Source: "tmpfs"},
		specs.Mount{Destination: "/rel", Type: "tmpfs", Source: "tmpfs"},
	)
	e.write()
	r := e.runBundle(0)
	if got := strings.Fields(r.stdout); len(got) != 2 || got[0] != "1" || got[1] != "1" {
		t.Fatalf("mounts at /inside1 and /inside2/deep: %q (want 1 1)", r.stdout)
	}
	ents, _ := os.ReadDir(outside)
	if len(ents) != 0 {
		t.Fatalf("host dir %s written: %v", outside, ents)
	}
}

// TestMaskedPathsStayMasked: masked paths read empty and cannot be
// unmounted or remounted from inside with the default capabilities.
func TestMaskedPathsStayMasked(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh(`
		printf 'timer_list=%s\n' "$(wc -c < /proc/timer_list)"
		umount /proc/timer_list 2>/dev/null && echo UNMASKED-file
		umount -l /sys/firmware 2>/dev/null && echo UNMASKED-dir
		mount -o remount,rw /proc/sys 2>/dev/null && echo REMOUNTED
		echo 1 > /proc/sys/kernel/domainname 2>/dev/null && echo WROTE-SYS
		ls /sys/firmware | wc -l`)
	r := e.runBundle(0)
	for _, bad := range []string{"UNMASKED", "REMOUNTED", "WROTE-SYS"} {
		if strings.Contains(r.stdout, bad) {
			t.Fatalf("%s: %s", bad, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "timer_list=0") {
		t.Fatalf("/proc/timer_list not masked: %s", r.stdout)
	}
	if strings.TrimSpace(r.stdout[strings.LastIndex(strings.TrimSpace(r.stdout), "\n")+1:]) != "0" {
		t.Fatalf("/sys/firmware not empty: %s", r.stdout)
	}
}

// TestNoStrayFDInHelpers: an fd the caller left open without
// close-on-exec (a harness's pipe, a shell's) reaches none of the
// processes sandy starts: slirp4netns, its port forwarder, the network
// monitor, the reaper. Before the CLI marked its inherited fds, the
// pipe below was held by slirp4netns and the port child (a reader of
// it waited for them).
func TestNoStrayFDInHelpers(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "slirp4netns", "apt-get install slirp4netns")
	e := newEnv(t).sh("echo stray-fd-ctr-up; sleep 100")
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	var st unix.Stat_t
	if err := unix.Fstat(int(w.Fd()), &st); err != nil {
		t.Fatal(err)
	}
	pipe := fmt.Sprintf("pipe:[%d]", st.Ino)
	cmd := exec.Command(e.sandy, "--root", e.root, "run", "--network=slirp4netns", "-p", fmt.Sprintf("127.0.0.1:%d:80", freePort(t)), e.bundle)
	var out syncBuffer
	cmd.Stdout, cmd.Stderr = &out, &out
	// fd 10 of sandy, without close-on-exec: above the numbers sandy's
	// children get their own fds at (which would replace it).
	cmd.ExtraFiles = []*os.File{nil, nil, nil, nil, nil, nil, nil, w}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	w.Close()
	defer func() {
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		noSlirpLeft(t, e)
	}()
	waitFor(t, 20*time.Second, "the container to run", func() bool { return strings.Contains(out.String(), "stray-fd-ctr-up") })
	if len(procsWith("slirp4netns")) == 0 {
		t.Fatalf("no slirp4netns running: %s", out.String())
	}
	// Every process of this user but sandy itself.
	ents, _ := os.ReadDir("/proc")
	for _, d := range ents {
		pid, err := strconv.Atoi(d.Name())
		if err != nil || pid == cmd.Process.Pid || pid == os.Getpid() {
			continue
		}
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			continue // another user's
		}
		for _, fd := range fds {
			if l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name())); l == pipe {
				cmdline, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", pid))
				t.Errorf("pid %d (%s) holds the caller's stray fd as its fd %s", pid, strings.ReplaceAll(string(cmdline), "\x00", " "), fd.Name())
			}
		}
	}
}
