//go:build integration

package main_test

import (
	"archive/tar"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// TestRunHostileEtc: an image (a malicious registry) whose /etc/hosts,
// /etc/resolv.conf or /etc/hostname, the files sandy provides, are
// symlinks to a host file or directory (absolute, relative, through
// /proc/self/root and /proc/1/root, which lead to the host's / while the
// init has not pivoted yet), a fifo or a directory, or whose /etc is a
// symlink to / or to a host directory. Running it writes, reads and mounts
// nothing outside the container's root and never blocks: it runs (sandy's
// files bound inside the root) or fails with an error, and the host file
// and directory are untouched. A container cannot do the same to itself
// for its next start: while it runs those files are mount points, which
// it can neither remove nor move away with /etc (overlay refuses to rename
// a lower directory, and mv's copy cannot remove them), as the
// "sabotage" case checks.
func TestRunHostileEtc(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e, _ := detachedEnv(t)
	host := filepath.Join(e.dir, "host")
	if err := os.Mkdir(host, 0o777); err != nil {
		t.Fatal(err)
	}
	secret := filepath.Join(host, "secret")
	if err := os.WriteFile(secret, []byte("HOST SECRET\n"), 0o666); err != nil {
		t.Fatal(err)
	}
	before := treeHash(t, host)
	rel := strings.Repeat("../", 12) + strings.TrimPrefix(secret, "/")
	fifo := func(name string) imagefix.Entry {
		return imagefix.Entry{Header: tar.Header{Typeflag: tar.TypeFifo, Name: name, Mode: 0o644}}
	}
	replace := func(name string, by imagefix.Entry) []imagefix.Entry {
		return []imagefix.Entry{imagefix.Dir("etc/", 0o755), imagefix.Whiteout(name), by}
	}
	// runs runs the image with a minute's bound; it returns the exit code.
	runs := func(t *testing.T, args ...string) (int, string) {
		c := e.cmd(args...)
		var out strings.Builder
		c.Stdout, c.Stderr = &out, &out
		if err := c.Start(); err != nil {
			t.Fatal(err)
		}
		done := make(chan struct{})
		go func() { _ = c.Wait(); close(done) }()
		select {
		case <-done:
		case <-time.After(time.Minute):
			_ = c.Process.Kill()
			<-done
			t.Errorf("sandy %s blocked for a minute: %s", strings.Join(args, " "), out.String())
		}
		return c.ProcessState.ExitCode(), out.String()
	}
	// want: 0, it runs with sandy's files (a dangling symlink is
	// followed inside the root); 125, refused.
	for i, tc := range []struct {
		name    string
		want    int
		entries []imagefix.Entry
	}{
		{"hosts to a host file", 0, replace("etc/hosts", imagefix.Symlink("etc/hosts", secret))},
		{"hosts to a host file, relative", 0, replace("etc/hosts", imagefix.Symlink("etc/hosts", rel))},
		{"hosts through /proc/self/root", 125, replace("etc/hosts", imagefix.Symlink("etc/hosts", "/proc/self/root"+secret))},
		{"resolv.conf through /proc/1/root", 125, replace("etc/resolv.conf", imagefix.Symlink("etc/resolv.conf", "/proc/1/root"+secret))},
		{"hostname through /proc/1/cwd", 125, replace("etc/hostname", imagefix.Symlink("etc/hostname", "/proc/1/cwd/secret"))},
		{"hosts through /proc/self/fd", 125, replace("etc/hosts", imagefix.Symlink("etc/hosts", "/proc/self/fd/3"))},
		{"resolv.conf dangling, as systemd-resolved's", 0, replace("etc/resolv.conf", imagefix.Symlink("etc/resolv.conf", "../run/systemd/resolve/stub-resolv.conf"))},
		// A relative link read from where its directory really is: /etc
		// is a link to /private/etc, so ../run/stub is /private/run/stub.
		{"resolv.conf dangling under a linked /etc", 0, []imagefix.Entry{imagefix.Whiteout("etc"), imagefix.Dir("private/", 0o755), imagefix.Dir("private/etc/", 0o755),
			imagefix.Symlink("private/etc/resolv.conf", "../run/stub"), imagefix.Symlink("etc", "private/etc")}},
		{"hosts a fifo", 0, replace("etc/hosts", fifo("etc/hosts"))},
		{"hosts a directory", 125, replace("etc/hosts", imagefix.Dir("etc/hosts/", 0o755))},
		{"etc to /", 0, []imagefix.Entry{imagefix.Whiteout("etc"), imagefix.Symlink("etc", "/")}},
		{"etc to the host directory", 125, []imagefix.Entry{imagefix.Whiteout("etc"), imagefix.Symlink("etc", "/proc/1/root"+host)}},
		{"etc to the host directory, relative", 125, []imagefix.Entry{imagefix.Whiteout("etc"), imagefix.Symlink("etc", strings.Repeat("../", 12)+strings.TrimPrefix(host, "/"))}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ref := fmt.Sprintf("localhost/hostile:%d", i)
			e := *e
			e.t = t
			e.loadImage(ref, imagefix.Busybox(t).WithLayers(imagefix.Layer{Entries: tc.entries}))
			code, out := runs(t, "run", "--rm", "--hostname", "h", ref, "sh", "-c",
				"grep -q nameserver /etc/resolv.conf && grep -q localhost /etc/hosts && grep -qx h /etc/hostname && echo ran")
			if code != tc.want || (code == 0) != strings.Contains(out, "ran") {
				t.Errorf("run: exit %d, want %d: %s", code, tc.want, out)
			}
			if after := treeHash(t, host); after != before {
				t.Errorf("the host directory changed:\n%s\n%s", before, after)
			}
		})
	}
	t.Run("sabotage", func(t *testing.T) {
		e := *e
		e.t = t
		for _, script := range []string{"rm -f /etc/hosts", "ln -sf " + secret + " /etc/hostname", "mv /etc /etc.old"} {
			if code, out := runs(t, "run", "--rm", "--network", "none", "localhost/bb:d", "sh", "-c", script); code == 0 {
				t.Errorf("the container could run %q: %s", script, out)
			}
		}
	})
}

// TestRunHostileVolumes: an image whose paths lead out of its root (a
// symlink to a host directory, absolute or relative) under the
// destination of an anonymous volume (-v /dst, the mechanism of an
// image's VOLUME too), or a destination that is a file (/etc/hosts,
// /dev/null): the volume lands inside the root or the run is refused; no host directory is written, no run
// blocks, and --rm leaves no volume behind.
func TestRunHostileVolumes(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e, _ := detachedEnv(t)
	vols := filepath.Join(e.dir, "data", "sandy", "volumes")
	host := filepath.Join(e.dir, "host")
	if err := os.Mkdir(host, 0o777); err != nil {
		t.Fatal(err)
	}
	before := treeHash(t, host)
	e.loadImage("localhost/hostilevol:1", imagefix.Busybox(t).WithLayers(imagefix.Layer{Entries: []imagefix.Entry{
		imagefix.Symlink("out", host),
		imagefix.Symlink("rel", strings.Repeat("../", 12)+strings.TrimPrefix(host, "/")),
		imagefix.Symlink("lnk", "/"),
	}}))
	for _, tc := range []struct {
		dst  string
		want int
	}{
		// Through a link whose target the root lacks: refused, as runc
		// refuses it (the target is not made through a dangling link).
		{"/out/x", 125},
		{"/rel/x", 125},
		{"/out", 125},
		{"/lnk/x", 0}, // lnk → /: lands on /x in the root
		{"/etc/hosts", 125},
		{"/dev/null", 125},
	} {
		t.Run(tc.dst, func(t *testing.T) {
			c := e.cmd("run", "--rm", "--network", "none", "-v", tc.dst, "localhost/hostilevol:1", "sh", "-c", "echo in > "+tc.dst+"/f && cat "+tc.dst+"/f")
			out, _ := runBounded(t, c)
			if code := c.ProcessState.ExitCode(); code != tc.want || (code == 0 && !strings.HasSuffix(out, "in\n")) {
				t.Errorf("run -v %s: exit %d, want %d: %s", tc.dst, code, tc.want, out)
			}
			if after := treeHash(t, host); after != before {
				t.Errorf("the host directory changed:\n%s\n%s", before, after)
			}
			if left, _ := os.ReadDir(vols); len(left) > 1 {
				t.Errorf("volumes left after run --rm: %v", left)
			}
		})
	}
}

// runBounded runs c for at most a minute; a run that blocks fails the
// test and is killed.
func runBounded(t *testing.T, c *exec.Cmd) (string, error) {
	var out strings.Builder
	c.Stdout, c.Stderr = &out, &out
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- c.Wait() }()
	select {
	case err := <-done:
		return out.String(), err
	case <-time.After(time.Minute):
		_ = c.Process.Kill()
		err := <-done
		t.Errorf("%s blocked for a minute: %s", strings.Join(c.Args, " "), out.String())
		return out.String(), err
	}
}
