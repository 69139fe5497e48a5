//go:build integration

package main_test

import (
	"archive/tar"
	"bytes"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/containers"
	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

func tarNames(t *testing.T, b []byte) []string {
	t.Helper()
	var names []string
	tr := tar.NewReader(bytes.NewReader(b))
	for {
		h, err := tr.Next()
		if errors.Is(err, io.EOF) {
			return names
		}
		if err != nil {
			t.Fatalf("reading the tar stream: %v", err)
		}
		names = append(names, h.Name)
	}
}

func writeFile(t *testing.T, p, body string) {
	t.Helper()
	if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(p, []byte(body), 0o640); err != nil {
		t.Fatal(err)
	}
}

func readFile(t *testing.T, p string) string {
	t.Helper()
	b, err := os.ReadFile(p)
	if err != nil {
		t.Errorf("%v", err)
	}
	return string(b)
}

func ownerOf(t *testing.T, p string) uint32 {
	t.Helper()
	fi, err := os.Lstat(p)
	if err != nil {
		t.Fatal(err)
	}
	return fi.Sys().(*syscall.Stat_t).Uid
}

// TestCp is sandy cp both ways, for a running and a stopped container:
// a file, a directory, SRC/., a tar stream on stdin and stdout, docker's
// rules for the destination, the owners on each side (the container's
// root, or -a's mapped ids; the calling user on the host), and that the
// running container sees what was copied and a stopped one has it when
// it starts again.
func TestCp(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e, _ := detachedEnv(t)
	host := filepath.Join(e.dir, "host")
	writeFile(t, filepath.Join(host, "f.txt"), "file\n")
	writeFile(t, filepath.Join(host, "d", "a"), "a\n")
	writeFile(t, filepath.Join(host, "d", "sub", "b"), "b\n")
	if err := os.Symlink("a", filepath.Join(host, "d", "link")); err != nil {
		t.Fatal(err)
	}
	liveID := e.runD("--name", "live", "localhost/bb:d", "sleep", "600")
	defer e.run_(nil, "rm", "-f", "live")
	sh := func(script string) string { return e.ok("container", "exec", "live", "sh", "-c", script) }

	t.Run("into a running container", func(t *testing.T) {
		e.ok("cp", filepath.Join(host, "f.txt"), "live:/tmp/")
		e.ok("cp", filepath.Join(host, "f.txt"), liveID[:12]+":tmp/renamed") // an id prefix, a relative path
		e.ok("container", "cp", filepath.Join(host, "d"), "live:/tmp/newdir")
		e.ok("cp", filepath.Join(host, "d"), "live:/tmp")
		sh("mkdir /tmp/existing")
		e.ok("cp", filepath.Join(host, "d")+"/.", "live:/tmp/existing")
		out := sh("cat /tmp/f.txt /tmp/renamed /tmp/newdir/a /tmp/newdir/sub/b /tmp/d/a /tmp/existing/sub/b; readlink /tmp/d/link; stat -c '%u:%g %a' /tmp/f.txt /tmp/d/sub; ls /tmp/existing")
		want := "file\nfile\na\nb\na\nb\na\n0:0 640\n0:0 755\na\nlink\nsub\n"
		if out != want {
			t.Errorf("in the container:\n%s\nwant\n%s", out, want)
		}
		// A tar stream on stdin: the container's root owns it, unless -a
		// keeps the stream's ids.
		s := testutil.TarStream(t, tar.Header{Name: "s/", Typeflag: tar.TypeDir, Mode: 0o755, Uid: 1234, Gid: 1234},
			tar.Header{Name: "s/x", Typeflag: tar.TypeReg, Linkname: "streamed\n", Uid: 1234, Gid: 4321})
		if r := e.run_(s, "cp", "-", "live:/tmp"); r.code != 0 {
			t.Fatalf("cp - live:/tmp: %d %s", r.code, r.stderr)
		}
		sh("mkdir /srv")
		if r := e.run_(s, "cp", "-a", "-", "live:/srv"); r.code != 0 {
			t.Fatalf("cp -a - live:/srv: %d %s", r.code, r.stderr)
		}
		if out := sh("cat /tmp/s/x; stat -c %u:%g /tmp/s/x /srv/s/x /srv/s"); out != "streamed\n0:0\n1234:4321\n1234:1234\n" {
			t.Errorf("streamed files: %q", out)
		}
		// -a with a host file whose owner the container does not map
		// (root's): the overflow id, as the kernel shows it inside.
		e.ok("cp", "-a", "/etc/hostname", "live:/tmp/hostname-a")
		if out := sh("stat -c %u:%g /tmp/hostname-a"); out != "65534:65534\n" {
			t.Errorf("-a of a root-owned host file: %q, want 65534:65534", out)
		}
		// docker's errors: a missing directory, a directory onto a file.
		e.fails(125, "cp", filepath.Join(host, "f.txt"), "live:/nonexistent/")
		e.fails(125, "cp", filepath.Join(host, "f.txt"), "live:/no/such/dir/f")
		e.fails(125, "cp", filepath.Join(host, "d"), "live:/tmp/f.txt")
		e.ok("cp", "--overwrite", filepath.Join(host, "d"), "live:/tmp/f.txt")
		if out := sh("cat /tmp/f.txt/a"); out != "a\n" {
			t.Errorf("--overwrite: %q", out)
		}
	})

	t.Run("out of a running container", func(t *testing.T) {
		sh("mkdir -p /out/sub && echo o > /out/sub/o && chown 1000:1000 /out/sub/o && chmod 600 /out/sub/o && ln -s /etc/passwd /out/abs && touch -t 200102030405.06 /out/sub/o")
		dst := filepath.Join(e.dir, "got")
		if err := os.Mkdir(dst, 0o755); err != nil {
			t.Fatal(err)
		}
		e.ok("cp", "live:/out", dst)
		e.ok("cp", "live:/out/.", filepath.Join(dst, "contents"))
		e.ok("cp", "live:/etc/hostname", filepath.Join(dst, "hn"))
		if got := readFile(t, filepath.Join(dst, "out", "sub", "o")); got != "o\n" {
			t.Errorf("out/sub/o: %q", got)
		}
		fi, err := os.Stat(filepath.Join(dst, "contents", "sub", "o"))
		if err != nil {
			t.Fatal(err)
		}
		if fi.Mode().Perm() != 0o600 || fi.ModTime().UTC().Format("2006-01-02T15:04:05") != "2001-02-03T04:05:06" && fi.ModTime().Format("2006-01-02T15:04:05") != "2001-02-03T04:05:06" {
			t.Errorf("contents/sub/o: mode %v, time %v", fi.Mode(), fi.ModTime())
		}
		for _, p := range []string{"out/sub/o", "contents/sub", "hn"} {
			if uid := ownerOf(t, filepath.Join(dst, p)); uid != uint32(os.Getuid()) {
				t.Errorf("%s belongs to %d on the host, want the caller %d", p, uid, os.Getuid())
			}
		}
		if l, err := os.Readlink(filepath.Join(dst, "out", "abs")); err != nil || l != "/etc/passwd" {
			t.Errorf("the symlink: %q %v, want it copied as a symlink", l, err)
		}
		r := e.run_(nil, "cp", "live:/out", "-")
		if r.code != 0 {
			t.Fatalf("cp live:/out -: %d %s", r.code, r.stderr)
		}
		names := tarNames(t, []byte(r.stdout))
		for _, want := range []string{"out/", "out/sub/", "out/sub/o", "out/abs"} {
			if !slices.Contains(names, want) {
				t.Errorf("cp live:/out -: no %s in %v", want, names)
			}
		}
		e.fails(125, "cp", "live:/nonexistent", dst)
		// Device nodes cannot be made on the host: skipped, with a warning.
		if r := e.run_(nil, "cp", "live:/dev", filepath.Join(dst, "dev")); r.code != 0 || !strings.Contains(r.stderr, "device nodes not copied") {
			t.Errorf("cp live:/dev: exit %d: %s", r.code, r.stderr)
		}
	})

	t.Run("hard links and extended attributes", func(t *testing.T) {
		d := filepath.Join(e.dir, "linked")
		writeFile(t, filepath.Join(d, "a"), "shared\n")
		if err := os.Link(filepath.Join(d, "a"), filepath.Join(d, "b")); err != nil {
			t.Fatal(err)
		}
		if err := syscall.Setxattr(filepath.Join(d, "a"), "user.note", []byte("kept"), 0); err != nil {
			t.Fatalf("the test's directory takes no user attribute: %v", err)
		}
		e.ok("cp", d, "live:/tmp/")
		if out := sh("stat -c '%h %i' /tmp/linked/a /tmp/linked/b"); strings.Count(out, strings.SplitN(out, "\n", 2)[0]) != 2 || !strings.HasPrefix(out, "2 ") {
			t.Errorf("a and b in the container: %q, want one inode with 2 links", out)
		}
		back := filepath.Join(e.dir, "linked-back")
		e.ok("cp", "live:/tmp/linked", back)
		var a, b syscall.Stat_t
		if syscall.Stat(filepath.Join(back, "a"), &a) != nil || syscall.Stat(filepath.Join(back, "b"), &b) != nil || a.Ino != b.Ino {
			t.Errorf("copied back: a and b are not one file (%d, %d)", a.Ino, b.Ino)
		}
		buf := make([]byte, 64)
		if n, err := syscall.Getxattr(filepath.Join(back, "a"), "user.note", buf); err != nil || string(buf[:n]) != "kept" {
			t.Errorf("user.note after the round trip: %q %v", buf[:max(n, 0)], err)
		}
		// A file capability (cap_net_raw), set in the container by a
		// stream: kept inside and in a stream out; the host refuses it to
		// a user, which cp says.
		capV2 := string([]byte{0x01, 0x00, 0x00, 0x02, 0x00, 0x20, 0x00, 0x00, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0})
		s := testutil.TarStream(t, tar.Header{Name: "pinger", Typeflag: tar.TypeReg, Mode: 0o755, Linkname: "#!/bin/sh\n",
			PAXRecords: map[string]string{"SCHILY.xattr.security.capability": capV2}})
		if r := e.run_(s, "cp", "-", "live:/tmp"); r.code != 0 || r.stderr != "" {
			t.Fatalf("cp - live:/tmp with a file capability: %d %s", r.code, r.stderr)
		}
		r := e.run_(nil, "cp", "live:/tmp/pinger", "-")
		tr := tar.NewReader(strings.NewReader(r.stdout))
		h, err := tr.Next()
		if err != nil || h.PAXRecords["SCHILY.xattr.security.capability"] != capV2 {
			t.Errorf("cp live:/tmp/pinger -: the capability %x (%v), want %x", h.PAXRecords["SCHILY.xattr.security.capability"], err, capV2)
		}
		r = e.run_(nil, "cp", "live:/tmp/pinger", filepath.Join(e.dir, "pinger"))
		if r.code != 0 || !strings.Contains(r.stderr, "1 extended attributes not copied") {
			t.Errorf("cp of a file capability out to the host as a user: exit %d: %q, want a warning", r.code, r.stderr)
		}
	})

	t.Run("stopped container", func(t *testing.T) {
		e.runD("--name", "stopped", "localhost/bb:d", "sh", "-c", "cat /in.txt 2>/dev/null; echo made > /made")
		e.ok("wait", "stopped")
		defer e.run_(nil, "rm", "-f", "stopped")
		e.fails(125, "cp", filepath.Join(host, "f.txt"), "stopped:/in/")
		e.ok("cp", filepath.Join(host, "f.txt"), "stopped:/in.txt")
		e.ok("cp", "stopped:/made", filepath.Join(e.dir, "made"))
		if got := readFile(t, filepath.Join(e.dir, "made")); got != "made\n" {
			t.Errorf("copied out of the stopped container: %q", got)
		}
		e.fails(125, "cp", filepath.Join(host, "f.txt"), "stopped:/in.txt/")
		if out := e.ok("start", "-a", "stopped"); !strings.Contains(out, "file\n") {
			t.Errorf("the stopped container, started again, does not see the copied file: %q", out)
		}
	})

	t.Run("keep-id", func(t *testing.T) {
		e.runD("--name", "kid", "--userns=keep-id", "localhost/bb:d", "sleep", "600")
		defer e.run_(nil, "rm", "-f", "kid")
		e.ok("cp", filepath.Join(host, "f.txt"), "kid:/tmp/root.txt")
		e.ok("cp", "-a", filepath.Join(host, "f.txt"), "kid:/tmp/mine.txt")
		want := "0\n" + strings.TrimSpace(e.ok("container", "exec", "kid", "id", "-u")) + "\n"
		if out := e.ok("container", "exec", "kid", "stat", "-c", "%u", "/tmp/root.txt", "/tmp/mine.txt"); out != want {
			t.Errorf("owners under keep-id: %q, want %q (root; -a: the caller's own id)", out, want)
		}
		// Stopped, the container's layer is reached with its keep-id map.
		e.ok("stop", "-t", "0", "kid")
		e.ok("cp", "-a", filepath.Join(host, "f.txt"), "kid:/tmp/stopped.txt")
		e.ok("cp", "kid:/tmp/mine.txt", filepath.Join(e.dir, "kid-mine"))
		if uid := ownerOf(t, filepath.Join(e.dir, "kid-mine")); uid != uint32(os.Getuid()) {
			t.Errorf("copied out of the stopped keep-id container: owner %d, want %d", uid, os.Getuid())
		}
		e.ok("container", "start", "kid")
		if out := e.ok("container", "exec", "kid", "stat", "-c", "%u", "/tmp/stopped.txt"); out != want[2:] {
			t.Errorf("-a into the stopped keep-id container: owner %q, want %q", out, want[2:])
		}
	})

	t.Run("a non-root process", func(t *testing.T) {
		// The init runs as a subordinate id on the host: its root is
		// reached all the same, and files of other users inside too.
		e.runD("--name", "user", "-u", "1000:1000", "localhost/bb:d", "sleep", "600")
		defer e.run_(nil, "rm", "-f", "user")
		e.ok("cp", filepath.Join(host, "f.txt"), "user:/tmp/f.txt")
		e.ok("container", "exec", "-u", "0", "user", "sh", "-c", "echo private > /root/private && chmod 600 /root/private")
		e.ok("cp", "user:/root/private", filepath.Join(e.dir, "private"))
		if got := readFile(t, filepath.Join(e.dir, "private")); got != "private\n" {
			t.Errorf("a root-only file of the container: %q", got)
		}
	})

	t.Run("the worker is out of the container's reach", func(t *testing.T) {
		// A copy from a stdin that stays open: the worker waits in it.
		c := e.cmd("cp", "-", "live:/tmp")
		in, err := c.StdinPipe()
		if err != nil {
			t.Fatal(err)
		}
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		defer func() { in.Close(); _ = c.Wait() }()
		var pid int
		waitFor(t, 10*time.Second, "the copy worker", func() bool {
			// The worker itself (argv[1:] _cp running …; argv[0] is
			// sandy, or the sealed binary's fd path when nsenter execs
			// it directly), not nsenter or the spawn helper on the way.
			for _, p := range procsWith(containers.CopyRole + " running") {
				b, _ := os.ReadFile(fmt.Sprintf("/proc/%d/cmdline", p))
				argv := strings.Split(string(b), "\x00")
				if len(argv) > 2 && argv[1] == containers.CopyRole && argv[2] == "running" {
					pid = p
				}
			}
			return pid != 0
		})
		// Past its first steps, it waits for the stream.
		time.Sleep(500 * time.Millisecond)
		// The container cannot see it: another pid namespace.
		if out := sh("cat /proc/[0-9]*/cmdline | tr '\\0' ' '"); strings.Contains(out, containers.CopyRole) {
			t.Errorf("the container sees the worker: %q", out)
		}
		status, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", pid))
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range strings.Split(string(status), "\n") {
			if strings.HasPrefix(l, "NSpid:") && len(strings.Fields(l)) != 2 {
				t.Errorf("the worker has a pid in another namespace: %s", l)
			}
		}
		// Its fds: stdio, the sync socket and the container's root; its
		// working directory is that root, no host directory.
		fds, err := os.ReadDir(fmt.Sprintf("/proc/%d/fd", pid))
		if err != nil {
			t.Fatal(err)
		}
		var names []string
		for _, fd := range fds {
			l, _ := os.Readlink(fmt.Sprintf("/proc/%d/fd/%s", pid, fd.Name()))
			names = append(names, fd.Name()+"="+l)
		}
		for _, n := range names {
			_, l, _ := strings.Cut(n, "=")
			switch {
			case strings.HasPrefix(l, "pipe:"), strings.HasPrefix(l, "socket:"),
				l == "/",                                // the container's root
				l == "/dev/null",                        // the test's stderr
				l == "/proc",                            // pathrs-lite's handle, for Reopen
				strings.HasPrefix(l, "/sys/fs/cgroup/"): // the Go runtime's GOMAXPROCS
			default:
				t.Errorf("the worker holds a host file: fd %s (all: %v)", n, names)
			}
		}
		if cwd, err := os.Readlink(fmt.Sprintf("/proc/%d/cwd", pid)); err != nil || cwd != "/" {
			t.Errorf("the worker's working directory: %q %v, want the container's root", cwd, err)
		}
		if _, err := in.Write(testutil.TarStream(t, tar.Header{Name: "late", Typeflag: tar.TypeReg, Linkname: "late\n"})); err != nil {
			t.Fatal(err)
		}
		in.Close()
		if err := c.Wait(); err != nil {
			t.Errorf("the copy: %v", err)
		}
		if out := sh("cat /tmp/late"); out != "late\n" {
			t.Errorf("/tmp/late: %q", out)
		}
	})

	// The time a copy takes, by step (go test -v shows it).
	t.Run("speed", func(t *testing.T) {
		for _, c := range [][]string{
			{"cp", filepath.Join(host, "f.txt"), "live:/tmp/timed"},
			{"cp", "live:/tmp/timed", filepath.Join(e.dir, "timed")},
			{"cp", filepath.Join(host, "f.txt"), "stopped-speed:/timed"},
		} {
			if c[2] == "stopped-speed:/timed" {
				e.ok("run", "--name", "stopped-speed", "localhost/bb:d", "true")
				defer e.run_(nil, "rm", "-f", "stopped-speed")
			}
			t0 := time.Now()
			r := e.run_(nil, append([]string{"--debug"}, c...)...)
			took := time.Since(t0).Round(time.Millisecond)
			if r.code != 0 {
				t.Fatalf("sandy %s: exit %d: %s", strings.Join(c, " "), r.code, r.stderr)
			}
			var steps []string
			for _, l := range strings.Split(r.stderr, "\n") {
				if _, step, ok := strings.Cut(l, "debug: cp: "); ok {
					steps = append(steps, step)
				}
			}
			t.Logf("sandy %s: %v (%s)", strings.Join(c, " "), took, strings.Join(steps, ", "))
		}
	})
}

// TestCpAttacks: a container's symlinks to host paths, used as cp's
// destination or source, stay inside its root; a malicious tar on stdin
// is refused; a container that swaps a directory for a symlink to a host
// directory while cp writes into it never gets a file onto the host.
func TestCpAttacks(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e, _ := detachedEnv(t)
	target := filepath.Join(e.dir, "target") // the host directory the attacks aim at
	writeFile(t, filepath.Join(target, "secret"), "HOST SECRET\n")
	rel := strings.Repeat("../", 12) + strings.TrimPrefix(target, "/")
	evil := imagefix.Busybox(t).WithLayers(imagefix.Layer{Entries: []imagefix.Entry{
		imagefix.Symlink("evil", "/"),
		imagefix.Symlink("abs", target),
		imagefix.Symlink("rel", rel),
		imagefix.Dir("etc/", 0o755),
		imagefix.Symlink("etc/x", rel+"/secret"),
	}})
	e.loadImage("localhost/evil:cp", evil)
	src := filepath.Join(e.dir, "src")
	writeFile(t, filepath.Join(src, "payload"), "payload\n")
	writeFile(t, filepath.Join(src, "dir", "p2"), "p2\n")
	checkTarget := func(t *testing.T) {
		t.Helper()
		ents, _ := os.ReadDir(target)
		for _, en := range ents {
			if en.Name() != "secret" {
				t.Errorf("cp wrote onto the host: %s appeared in %s", en.Name(), target)
			}
		}
		if got := readFile(t, filepath.Join(target, "secret")); got != "HOST SECRET\n" {
			t.Errorf("the host file changed: %q", got)
		}
	}
	for _, state := range []string{"running", "stopped"} {
		t.Run(state, func(t *testing.T) {
			name := "evil-" + state
			if state == "running" {
				e.runD("--name", name, "localhost/evil:cp", "sleep", "600")
			} else {
				e.runD("--name", name, "localhost/evil:cp", "true")
				e.ok("wait", name)
			}
			defer e.run_(nil, "rm", "-f", name)
			// Sources through the links: the container's files (missing
			// here), or the symlink itself; never the host's secret.
			out := filepath.Join(e.dir, "out-"+state)
			if err := os.Mkdir(out, 0o755); err != nil {
				t.Fatal(err)
			}
			for i, s := range []string{"/abs/secret", "/rel/secret", "/etc/x", "/abs/.", "/rel/", "/etc/x/."} {
				_ = e.run_(nil, "cp", name+":"+s, filepath.Join(out, strings.Repeat("o", i+1)))
				r := e.run_(nil, "cp", name+":"+s, "-")
				if strings.Contains(r.stdout, "HOST SECRET") {
					t.Errorf("cp %s - read the host's secret", s)
				}
			}
			_ = filepath.Walk(out, func(p string, fi os.FileInfo, err error) error {
				if err == nil && fi.Mode().IsRegular() {
					if b, _ := os.ReadFile(p); strings.Contains(string(b), "HOST SECRET") {
						t.Errorf("%s holds the host's secret", p)
					}
				}
				return nil
			})
			if l, err := os.Readlink(filepath.Join(out, "ooo")); err != nil || l != rel+"/secret" {
				t.Errorf("cp CTR:/etc/x: %q, %v; want the symlink itself", l, err)
			}
			// Destinations through the links: inside the root, or an error.
			for _, dst := range []string{"/evil/", "/evil/payload-in-root", "/abs/", "/abs/x", "/rel/", "/rel/x", "/etc/x", "/abs/../../x"} {
				r := e.run_(nil, "cp", filepath.Join(src, "payload"), name+":"+dst)
				if r.code != 0 && r.code != 125 {
					t.Errorf("cp payload %s: exit %d: %s", dst, r.code, r.stderr)
				}
				_ = e.run_(nil, "cp", filepath.Join(src, "dir"), name+":"+dst)
			}
			checkTarget(t)
			// Malicious streams on stdin.
			hard := filepath.Join(target, "secret")
			for _, s := range [][]byte{
				testutil.TarStream(t, tar.Header{Name: "../../../../../../../../../../../../" + strings.TrimPrefix(target, "/") + "/dotdot", Typeflag: tar.TypeReg, Linkname: "x"}),
				testutil.TarStream(t, tar.Header{Name: target + "/absolute", Typeflag: tar.TypeReg, Linkname: "x"}),
				testutil.TarStream(t, tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: hard}),
				testutil.TarStream(t, tar.Header{Name: "hard", Typeflag: tar.TypeLink, Linkname: "../../../../../../../../../../../../" + strings.TrimPrefix(hard, "/")}),
				testutil.TarStream(t, tar.Header{Name: "null", Typeflag: tar.TypeChar, Devmajor: 1, Devminor: 3}),
			} {
				if r := e.run_(s, "cp", "-", name+":/tmp"); r.code != 125 {
					t.Errorf("a malicious tar: exit %d, want 125: %s", r.code, r.stderr)
				}
			}
			// Symlink then file: contained in the root.
			s := testutil.TarStream(t, tar.Header{Name: "l", Typeflag: tar.TypeSymlink, Linkname: target},
				tar.Header{Name: "l/via-link", Typeflag: tar.TypeReg, Linkname: "x"})
			_ = e.run_(s, "cp", "-", name+":/tmp")
			checkTarget(t)
		})
	}

	t.Run("race", func(t *testing.T) {
		e.runD("--name", "racer", "localhost/evil:cp", "sh", "-c",
			"mkdir -p /r; while :; do rm -rf /r/race; mkdir /r/race; rm -rf /r/race; ln -s "+target+" /r/race; rm -f /r/race; ln -s "+rel+" /r/race; done")
		defer e.run_(nil, "rm", "-f", "racer")
		s := testutil.TarStream(t, tar.Header{Name: "race/", Typeflag: tar.TypeDir, Mode: 0o755},
			tar.Header{Name: "race/streamed", Typeflag: tar.TypeReg, Linkname: "x"})
		// How often each copy went through: a race that never lets one
		// through, or never fails one, tests little.
		var ok, failed int
		count := func(r result) {
			if r.code == 0 {
				ok++
			} else {
				failed++
			}
		}
		for i := 0; i < 30; i++ {
			count(e.run_(nil, "cp", filepath.Join(src, "dir")+"/.", "racer:/r/race"))
			count(e.run_(nil, "cp", filepath.Join(src, "payload"), "racer:/r/race/"))
			count(e.run_(s, "cp", "-", "racer:/r"))
			r := e.run_(nil, "cp", "racer:/r/race/.", "-")
			count(r)
			if strings.Contains(r.stdout, "HOST SECRET") {
				t.Fatalf("copying out through the racing symlink read the host's secret")
			}
		}
		t.Logf("racing copies: %d went through, %d failed", ok, failed)
		checkTarget(t)
	})
}
