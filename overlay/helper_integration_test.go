//go:build integration && linux

package overlay

import (
	"bufio"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// The integration tests run as the unprivileged test user (testutil.AsUser)
// and re-exec this test binary inside a new user + mount + pid namespace
// with unshare(1): TestMain turns the re-exec'd binary into helperMain,
// which does what a helperReq says (set up the environment, Mount, touch
// the merged root, hold) and answers with one JSON line on stdout.

const helperEnv = "SANDY_OVERLAY_HELPER"

func TestMain(m *testing.M) {
	if req := os.Getenv(helperEnv); req != "" {
		os.Exit(helperMain(req))
	}
	os.Exit(m.Run())
}

type helperReq struct {
	Opts     Options
	Setup    string // "", "tmpfs-layer", "overlay-layer", "fuse-lower", "ro-lower"
	Work     string // scratch dir for the setup
	Exercise bool   // write, delete, chmod, rename everywhere in the root
	Probe    []string
	Shell    string // run with sh -c in the merged root's dir, $ROOT set
	Hold     bool   // after answering, wait until stdin closes
	Cleanup  bool   // only call Cleanup(Opts.LayerDir) (inside the ns)
	Path     string // PATH for Mount, to hide fuse-overlayfs
	IOBench  bool   // measure write throughput in the merged root
	Pivot    bool   // pivot_root into the root, mount /proc, drop the old root, as the init does
	AsUID    string // with Pivot: a command run by busybox sh as container uid/gid 1000
}

type helperResp struct {
	Root     *Root
	Warnings []string
	Err      string
	Problems []string          // unexpected errors of the exercise
	Probes   map[string]string // path -> "ok" or the error
	HostPID  int
	MountNS  int64 // nanoseconds spent in Mount
	Shell    string
	IO       ioResult
	AsUIDOut string
	// Goroutines and fds Mount left behind (the init execs right after
	// Mount; a leaked fd would reach the container, CVE-2024-21626).
	Goroutines int
	FDs        int
}

func helperMain(raw string) int {
	var req helperReq
	resp := helperResp{Probes: map[string]string{}}
	out := json.NewEncoder(os.Stdout)
	if err := json.Unmarshal([]byte(raw), &req); err != nil {
		resp.Err = err.Error()
		_ = out.Encode(resp)
		return 2
	}
	// /proc is the host's procfs (no --mount-proc), so /proc/self names our
	// host pid, which the crash tests kill.
	if s, err := os.Readlink("/proc/self"); err == nil {
		resp.HostPID, _ = strconv.Atoi(s)
	}
	if req.Cleanup {
		if err := Cleanup(req.Opts.LayerDir); err != nil {
			resp.Err = err.Error()
		}
		_ = out.Encode(resp)
		return 0
	}
	if err := helperSetup(&req); err != nil {
		resp.Err = "setup: " + err.Error()
		_ = out.Encode(resp)
		return 0
	}
	if req.Setup == "bundle-in-layer" {
		if err := Cleanup(req.Opts.LayerDir); err != nil {
			resp.Err = err.Error()
		}
		_ = out.Encode(resp)
		return 0
	}
	if req.Path != "" {
		os.Setenv("PATH", req.Path)
	}
	req.Opts.Warn = func(s string) { resp.Warnings = append(resp.Warnings, s) }
	goroutines, fds := runtime.NumGoroutine(), countFDs()
	start := time.Now()
	root, err := Mount(req.Opts)
	resp.MountNS = int64(time.Since(start))
	resp.Root = root
	resp.Goroutines = runtime.NumGoroutine() - goroutines
	resp.FDs = countFDs() - fds
	if err != nil {
		resp.Err = err.Error()
		_ = out.Encode(resp)
		return 0
	}
	path := root.Path
	if req.Pivot {
		if err := pivot(path); err != nil {
			resp.Err = "pivot: " + err.Error()
			_ = out.Encode(resp)
			return 0
		}
		path = "/"
	}
	if req.AsUID != "" {
		cmd := exec.Command("/bin/busybox", "sh", "-c", req.AsUID)
		cmd.Dir = "/"
		cmd.Env = []string{"PATH=/bin:/usr/bin"}
		cmd.Stdin = strings.NewReader("") // no /dev/null after pivot
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: 1000, Gid: 1000}}
		b, err := cmd.CombinedOutput()
		resp.AsUIDOut = string(b)
		if err != nil {
			resp.AsUIDOut += "error: " + err.Error()
		}
	}
	if req.Exercise {
		resp.Problems = exercise(path)
	}
	if req.IOBench {
		r, err := ioBench(path)
		resp.IO = r
		if err != nil {
			resp.Err = "io bench: " + err.Error()
		}
	}
	if req.Shell != "" {
		cmd := exec.Command("/bin/sh", "-c", req.Shell)
		cmd.Dir = path
		cmd.Env = append(os.Environ(), "ROOT="+path)
		b, err := cmd.CombinedOutput()
		resp.Shell = string(b)
		if err != nil {
			resp.Err = fmt.Sprintf("shell: %v: %s", err, b)
		}
	}
	for _, p := range req.Probe {
		resp.Probes[p] = probe(filepath.Join(path, p))
	}
	_ = out.Encode(resp)
	if req.Hold {
		_, _ = io.Copy(io.Discard, os.Stdin)
	}
	return 0
}

// pivot does what the container init does with the root: pivot_root(".",
// ".") into it, detach the old root, mount a fresh /proc. With fuse, this
// proves fuse-overlayfs keeps serving once the old root is gone from the
// init's mount namespace.
func pivot(root string) error {
	// Before pivot_root, as runc does: mounting procfs in a user namespace
	// needs a fully visible procfs in the mount namespace (the host's, still
	// there), mount_too_revealing() in fs/namespace.c.
	if err := unix.Mount("proc", filepath.Join(root, "proc"), "proc", unix.MS_NOSUID|unix.MS_NODEV|unix.MS_NOEXEC, ""); err != nil {
		return fmt.Errorf("mounting /proc: %w", err)
	}
	if err := unix.Chdir(root); err != nil {
		return err
	}
	if err := unix.PivotRoot(".", "."); err != nil {
		return fmt.Errorf("pivot_root: %w", err)
	}
	if err := unix.Unmount(".", unix.MNT_DETACH); err != nil {
		return fmt.Errorf("detaching the old root: %w", err)
	}
	return unix.Chdir("/")
}

// countFDs counts open fds other than the Go runtime's netpoller (an
// epoll fd and an eventfd, made on first use, close-on-exec).
func countFDs() int {
	ents, _ := os.ReadDir("/proc/self/fd")
	n := 0
	for _, e := range ents {
		target, _ := os.Readlink("/proc/self/fd/" + e.Name())
		if target == "anon_inode:[eventpoll]" || target == "anon_inode:[eventfd]" {
			continue
		}
		n++
	}
	return n - 1 // the ReadDir fd
}

// probe says whether a path exists in the merged root, and what it is.
func probe(p string) string {
	fi, err := os.Lstat(p)
	if err != nil {
		return "missing"
	}
	switch {
	case fi.IsDir():
		return "dir"
	case fi.Mode()&fs.ModeSymlink != 0:
		return "symlink"
	case fi.Mode().IsRegular():
		b, _ := os.ReadFile(p)
		return "file:" + string(b)
	}
	return fi.Mode().String()
}

func helperSetup(req *helperReq) error {
	o := &req.Opts
	sh := func(script string) error {
		b, err := exec.Command("/bin/sh", "-ec", script).CombinedOutput()
		if err != nil {
			return fmt.Errorf("%s: %v: %s", script, err, b)
		}
		return nil
	}
	// Our mounts stay in this namespace; none may propagate anywhere.
	if err := unix.Mount("", "/", "", unix.MS_REC|unix.MS_PRIVATE, ""); err != nil {
		return err
	}
	switch req.Setup {
	case "":
	case "tmpfs-layer":
		return unix.Mount("tmpfs", o.LayerDir, "tmpfs", 0, "mode=0700")
	case "overlay-layer":
		// The layer dir lives on a kernel overlay: the nested case.
		w := req.Work
		return sh(fmt.Sprintf("mkdir -p %[1]s/l %[1]s/u %[1]s/w && mount -t overlay overlay -o lowerdir=%[1]s/l,upperdir=%[1]s/u,workdir=%[1]s/w,userxattr %[2]s", w, o.LayerDir))
	case "fuse-lower":
		// The rootfs is on FUSE: a read-only fuse-overlayfs over it.
		f := filepath.Join(req.Work, "fuselower")
		if err := sh(fmt.Sprintf("mkdir -p %[1]s && fuse-overlayfs -o lowerdir=%[2]s %[1]s", f, o.Lower)); err != nil {
			return err
		}
		o.Lower = f
	case "overlay-lower":
		// The rootfs is itself a kernel overlay (a bundle that an image
		// store mounted): overlay over overlay, stacking depth 2.
		w, l := req.Work, filepath.Join(req.Work, "ovlower")
		if err := sh(fmt.Sprintf("mkdir -p %[1]s/ou %[1]s/ow %[3]s && mount -t overlay overlay -o lowerdir=%[2]s,upperdir=%[1]s/ou,workdir=%[1]s/ow,userxattr %[3]s", w, o.Lower, l)); err != nil {
			return err
		}
		o.Lower = l
	case "bundle-in-layer":
		// A bind of the bundle inside the layer (what a Cleanup run in the
		// container's mount namespace would meet), and a symlink to it.
		mnt := filepath.Join(o.LayerDir, "merged")
		return sh(fmt.Sprintf("mkdir -p %[1]s && mount --bind %[2]s %[1]s && ln -s %[2]s %[3]s/link", mnt, o.Lower, o.LayerDir))
	case "ro-lower":
		// The bundle on a read-only filesystem: a read-only bind of it.
		r := filepath.Join(req.Work, "rolower")
		if err := sh(fmt.Sprintf("mkdir -p %[1]s && mount --bind %[2]s %[1]s && mount -o remount,bind,ro %[1]s", r, o.Lower)); err != nil {
			return err
		}
		o.Lower = r
	default:
		return fmt.Errorf("unknown setup %q", req.Setup)
	}
	return nil
}

// exercise writes, deletes, chmods, chowns and renames across the whole
// merged root and returns what failed unexpectedly. Renaming a directory of
// the rootfs is allowed to fail with EXDEV: overlay in a user namespace has
// no redirect_dir, and mv(1) copies then.
func exercise(root string) []string {
	var problems []string
	bad := func(op, p string, err error) {
		if err != nil {
			problems = append(problems, fmt.Sprintf("%s %s: %v", op, strings.TrimPrefix(p, root), err))
		}
	}
	var files, dirs []string
	_ = filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			bad("walk", p, err)
			return nil
		}
		switch {
		case d.IsDir() && p == filepath.Join(root, "proc") && root == "/":
			return filepath.SkipDir // the fresh procfs after pivot
		case d.IsDir():
			dirs = append(dirs, p)
		case d.Type().IsRegular():
			files = append(files, p)
		}
		return nil
	})
	for i, f := range files {
		switch i % 4 {
		case 0:
			fh, err := os.OpenFile(f, os.O_WRONLY|os.O_APPEND, 0)
			bad("append", f, err)
			if err == nil {
				_, err = fh.WriteString("changed\n")
				bad("append", f, err)
				fh.Close()
			}
		case 1:
			bad("remove", f, os.Remove(f))
		case 2:
			bad("chmod", f, os.Chmod(f, 0o600))
			bad("chown", f, os.Lchown(f, 0, 0))
		case 3:
			bad("rename", f, os.Rename(f, f+".renamed"))
		}
	}
	for i, d := range dirs {
		bad("create", d, os.WriteFile(filepath.Join(d, "new-file"), []byte("new\n"), 0o644))
		bad("mkdir", d, os.Mkdir(filepath.Join(d, "new-dir"), 0o755))
		bad("symlink", d, os.Symlink("/etc/passwd", filepath.Join(d, "new-link")))
		bad("mkfifo", d, unix.Mkfifo(filepath.Join(d, "new-fifo"), 0o600))
		bad("setxattr", d, unix.Setxattr(d, "user.sandy", []byte("x"), 0))
		if d != root && i%5 == 0 {
			bad("chmod", d, os.Chmod(d, 0o700))
		}
	}
	// A whole tree away, and a directory renamed.
	bad("removeall", "/usr", os.RemoveAll(filepath.Join(root, "usr")))
	if err := os.Rename(filepath.Join(root, "var"), filepath.Join(root, "var2")); err != nil && !errors.Is(err, unix.EXDEV) {
		bad("rename", "/var", err)
	}
	bad("removeall", "/home", os.RemoveAll(filepath.Join(root, "home")))
	bad("write", "/marker", os.WriteFile(filepath.Join(root, "marker"), []byte("run\n"), 0o644))
	return problems
}

// nsKind picks the id map of the helper's user namespace.
type nsKind int

const (
	nsSingle nsKind = iota // own uid -> 0 only (unshare --map-root-user)
	nsFull                 // own uid -> 0, subordinate range -> 1.. (--map-auto)
	nsNoPID                // full map, and no pid namespace
)

// startHelper starts the helper in new namespaces. The caller reads its
// answer with readResp and closes stdin to end a holding helper.
func startHelper(t *testing.T, kind nsKind, req helperReq) (*exec.Cmd, io.WriteCloser, *bufio.Reader) {
	t.Helper()
	testutil.RequireBinary(t, "unshare", "apt-get install util-linux")
	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	raw, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	args := []string{"--user", "--map-root-user", "--mount"}
	if kind != nsSingle {
		args = append(args, "--map-auto")
	}
	if kind != nsNoPID {
		args = append(args, "--pid", "--fork", "--kill-child")
	}
	args = append(args, exe)
	cmd := exec.Command("unshare", args...)
	cmd.Env = append(os.Environ(), helperEnv+"="+string(raw))
	cmd.Stderr = os.Stderr
	stdin, err := cmd.StdinPipe()
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatalf("starting helper: %v", err)
	}
	return cmd, stdin, bufio.NewReader(stdout)
}

func readResp(t *testing.T, r *bufio.Reader) helperResp {
	t.Helper()
	line, err := r.ReadBytes('\n')
	if err != nil {
		t.Fatalf("reading helper answer: %v (%q)", err, line)
	}
	var resp helperResp
	if err := json.Unmarshal(line, &resp); err != nil {
		t.Fatalf("decoding helper answer %q: %v", line, err)
	}
	return resp
}

// runHelper runs a helper to completion and returns its answer.
func runHelper(t *testing.T, kind nsKind, req helperReq) helperResp {
	t.Helper()
	cmd, stdin, r := startHelper(t, kind, req)
	stdin.Close()
	resp := readResp(t, r)
	_, _ = io.Copy(io.Discard, r)
	if err := cmd.Wait(); err != nil {
		t.Fatalf("helper: %v", err)
	}
	return resp
}

// treeHash hashes every entry under root with its metadata: type, mode,
// owner, size, mtime, ctime, symlink target, xattrs and contents. ctime
// moves on any change to an inode (chmod, chown, xattr, link count), so an
// unchanged hash means the bundle was not written at all. atime is left out:
// reading moves it.
func treeHash(t *testing.T, root string) string {
	t.Helper()
	h := sha256.New()
	var lines []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		var st unix.Stat_t
		if err := unix.Lstat(p, &st); err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, p)
		line := fmt.Sprintf("%s mode=%o uid=%d gid=%d size=%d mtime=%d.%d ctime=%d.%d nlink=%d rdev=%d",
			rel, st.Mode, st.Uid, st.Gid, st.Size, st.Mtim.Sec, st.Mtim.Nsec, st.Ctim.Sec, st.Ctim.Nsec, st.Nlink, st.Rdev)
		if d.Type()&fs.ModeSymlink != 0 {
			target, _ := os.Readlink(p)
			line += " -> " + target
		}
		line += " xattrs=" + xattrs(p)
		if d.Type().IsRegular() {
			if b, err := os.ReadFile(p); err == nil {
				s := sha256.Sum256(b)
				line += " sha=" + hex.EncodeToString(s[:8])
			} else {
				line += " unreadable"
			}
		}
		lines = append(lines, line)
		return nil
	})
	if err != nil {
		t.Fatalf("hashing %s: %v", root, err)
	}
	sort.Strings(lines)
	for _, l := range lines {
		io.WriteString(h, l+"\n")
	}
	return hex.EncodeToString(h.Sum(nil))
}

func xattrs(p string) string {
	buf := make([]byte, 4096)
	n, err := unix.Llistxattr(p, buf)
	if err != nil || n == 0 {
		return ""
	}
	var out []string
	for _, name := range strings.Split(strings.TrimRight(string(buf[:n]), "\x00"), "\x00") {
		v := make([]byte, 4096)
		m, _ := unix.Lgetxattr(p, name, v)
		if m < 0 {
			m = 0
		}
		out = append(out, name+"="+hex.EncodeToString(v[:m]))
	}
	sort.Strings(out)
	return strings.Join(out, ",")
}

// fixture is one bundle rootfs and one layer dir, both reachable by the test
// user, removed at the end of the test (through Cleanup for the layer).
type fixture struct {
	dir, rootfs, layer string
}

func newFixture(t *testing.T) fixture {
	t.Helper()
	// t.TempDir, not testutil.TempDir: the latter chmods a root-owned shared
	// directory, which fails as the test user.
	dir := t.TempDir()
	t.Cleanup(func() { openUp(dir) })
	rootfs := testutil.MakeRootfs(t, dir)
	// Entries a real image has: a nested tree, a setuid file, an xattr, a
	// hard link, a read-only directory.
	must(t, os.MkdirAll(filepath.Join(rootfs, "usr/share/doc/x"), 0o755))
	must(t, os.WriteFile(filepath.Join(rootfs, "usr/share/doc/x/README"), []byte("doc\n"), 0o644))
	must(t, os.WriteFile(filepath.Join(rootfs, "usr/bin/suid"), []byte("#!/bin/sh\n"), 0o4755))
	must(t, os.Chmod(filepath.Join(rootfs, "usr/bin/suid"), 0o4755))
	must(t, os.Link(filepath.Join(rootfs, "etc/hosts"), filepath.Join(rootfs, "etc/hosts.link")))
	_ = unix.Setxattr(filepath.Join(rootfs, "etc/passwd"), "user.origin", []byte("bundle"), 0)
	must(t, os.MkdirAll(filepath.Join(rootfs, "var/ro"), 0o755))
	must(t, os.WriteFile(filepath.Join(rootfs, "var/ro/f"), []byte("ro\n"), 0o644))
	must(t, os.Chmod(filepath.Join(rootfs, "var/ro"), 0o555))
	layer := filepath.Join(dir, "layer")
	must(t, os.Mkdir(layer, 0o700))
	t.Cleanup(func() { cleanupEverything(t, layer) })
	return fixture{dir: dir, rootfs: rootfs, layer: layer}
}

// cleanupEverything removes the layer, from inside a user namespace when
// the container left files of subordinate ids.
func cleanupEverything(t *testing.T, layer string) {
	err := Cleanup(layer)
	if errors.Is(err, ErrForeignOwned) {
		resp := runHelper(t, nsFull, helperReq{Cleanup: true, Opts: Options{LayerDir: layer}})
		if resp.Err != "" {
			t.Errorf("cleanup in the user namespace: %s", resp.Err)
		}
		return
	}
	if err != nil {
		t.Errorf("cleanup: %v", err)
	}
}

// openUp makes every directory under dir writable again, so that the
// rootfs's read-only directories do not fail t.TempDir's RemoveAll.
func openUp(dir string) {
	_ = filepath.WalkDir(dir, func(p string, d fs.DirEntry, err error) error {
		if err == nil && d.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
}

func must(t *testing.T, err error) {
	t.Helper()
	if err != nil {
		t.Fatal(err)
	}
}

func requireFuse(t *testing.T) {
	t.Helper()
	testutil.RequireBinary(t, "fuse-overlayfs", "apt-get install fuse-overlayfs")
	if f, err := os.OpenFile("/dev/fuse", os.O_RDWR, 0); err != nil {
		testutil.Skip(t, "opening /dev/fuse: %v (modprobe fuse; chmod 0666 /dev/fuse)", err)
	} else {
		f.Close()
	}
}
