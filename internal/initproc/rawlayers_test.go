//go:build linux

package initproc

import (
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/userns"
)

// imageInput is rawInput's config as an image's container: a writable
// root of two lowers (busybox, and a top layer with /etc/motd and a
// whiteout of /etc/group), an empty upper and work, HOME set.
func imageInput(t *testing.T) RawInput {
	t.Helper()
	in := rawInput(t, func(s *specs.Spec) {
		s.Root.Readonly = false
		s.Process.Env = append(s.Process.Env, "HOME=/root")
	})
	store := t.TempDir()
	top, upper, work := filepath.Join(store, "top"), filepath.Join(store, "upper"), filepath.Join(store, "work")
	for _, d := range []string{top + "/etc", upper, work} {
		if err := os.MkdirAll(d, 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for _, f := range []string{"motd", "resolv.conf", "hosts", "hostname"} {
		if err := os.WriteFile(top+"/etc/"+f, []byte("from the top layer\n"), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := unix.Mknod(top+"/etc/group", unix.S_IFCHR|0o600, 0); err != nil {
		testutil.Skip(t, "cannot make a whiteout (a 0/0 character device) as uid %d: %v", os.Getuid(), err)
	}
	in.Layers = &overlay.Layers{Driver: overlay.DriverOverlay, Lowers: []string{top, in.Rootfs}, Upper: upper, Work: work, Volatile: true}
	in.LayerDir = filepath.Join(store, "layer")
	if err := os.Mkdir(in.LayerDir, 0o700); err != nil {
		t.Fatal(err)
	}
	in.Rootfs = filepath.Join(in.Bundle, "no-rootfs") // an image's bundle has none
	return in
}

// An image's root is the storage layers' kernel overlay on merged/, the
// layers named by the fds the plan passes (lowers top first, upper,
// work), closed once mounted; the network's files are bound, not
// written (the root is the image's own layer); the bundle's rootfs is
// not used. What the Go init must do is refused.
func TestRawInitImageLayers(t *testing.T) {
	in := imageInput(t)
	in.ResolvConf, in.Hosts = "nameserver 10.0.2.3\n", "127.0.0.1 localhost\n"
	plan := mustPlan(t, in)
	if len(plan.Files) != 0 {
		t.Errorf("%d files: the layers are opened by the child, in its mount namespace", len(plan.Files))
	}
	var ops []string
	for _, op := range plan.Program {
		ops = append(ops, op.What)
	}
	all := strings.Join(ops, "\n")
	merged := filepath.Join(in.LayerDir, "merged")
	for _, w := range []string{
		"making " + merged, "opening the storage layer " + in.Layers.Lowers[0], "opening the storage layer " + in.Layers.Lowers[1],
		"opening the storage layer " + in.Layers.Upper, "opening the storage layer " + in.Layers.Work,
		"setting overlay's upperdir", "setting overlay's workdir",
		"setting overlay's userxattr", "setting overlay's volatile", "moving the overlay onto " + merged,
		"making " + merged + " private", "a tmpfs for the network's files", "binding /etc/hosts",
	} {
		if !strings.Contains(all, w) {
			t.Errorf("no op %q in the program:\n%s", w, all)
		}
	}
	lower := "setting overlay's lowerdir+"
	if !lowerdirPlus() {
		lower = "setting overlay's lowerdir"
	}
	if n := strings.Count(all, lower+"\n"); lowerdirPlus() && n != 2 || !lowerdirPlus() && n != 1 {
		t.Errorf("%d ops %q:\n%s", n, lower, all)
	}
	for _, not := range []string{"opening the rootfs", "replacing /etc/hosts", "giving "} {
		if strings.Contains(all, not) {
			t.Errorf("op %q in the program:\n%s", not, all)
		}
	}
	for name, edit := range map[string]func(*RawInput){
		"a read-only root":     func(in *RawInput) { in.Spec.Root.Readonly = true },
		"HOME":                 func(in *RawInput) { in.Spec.Process.Env = in.Spec.Process.Env[:len(in.Spec.Process.Env)-1] },
		"fuse-overlayfs":       func(in *RawInput) { in.Layers.Program = "/usr/bin/fuse-overlayfs" },
		"trusted xattrs":       func(in *RawInput) { in.Layers.Trusted = true },
		"a missing directory":  func(in *RawInput) { in.Spec.Mounts = append(in.Spec.Mounts, bindFile("/opt/none/file")) },
		"a symlink on the way": func(in *RawInput) { in.Spec.Process.Cwd = "/bin/sh" },
	} {
		c := imageInput(t)
		edit(&c)
		if plan, why, _, err := RawInit(c); err != nil || plan != nil || why == "" {
			t.Errorf("%s: plan %v, why %q, err %v; want the Go init", name, plan != nil, why, err)
		}
	}
}

func bindFile(dest string) specs.Mount {
	return specs.Mount{Destination: dest, Type: "bind", Source: "/etc/hostname", Options: []string{"bind", "ro"}}
}

// layeredDir reads the layers as the overlay will merge them: the top
// layer's entry decides, a whiteout makes a path missing, an opaque
// directory hides what is below it.
func TestLayeredDir(t *testing.T) {
	in := imageInput(t)
	l := in.Layers
	if err := os.MkdirAll(filepath.Join(l.Lowers[1], "opt/lower-only"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.MkdirAll(filepath.Join(l.Upper, "opt"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		p        string
		file     bool
		from     int
		hasWhy   bool
		skipOpaq bool
	}{
		{"/etc", false, 1, false, false},
		{"/etc/motd", true, 2, false, false},
		{"/etc/passwd", true, 2, false, false},
		{"/etc/group", true, 1, true, false},        // whited out
		{"/data/x", false, 0, true, false},          // missing
		{"/opt/lower-only", false, 2, false, false}, // below a plain directory
		{"/etc/motd", false, -1, true, false},       // a file, not a directory
		{"/bin/sh", true, -1, true, false},          // a symlink
	} {
		from, why := layeredDir(l, c.p, c.file)
		if from != c.from || (why != "") != c.hasWhy {
			t.Errorf("layeredDir(%s, file %v) = %d, %q; want %d, a reason %v", c.p, c.file, from, why, c.from, c.hasWhy)
		}
	}
	// A lower layer's symlink under the upper's directory of the same
	// name is not merged, nor followed (here to a directory outside the
	// layers that has the rest of the path); a lower file under a
	// directory hides the layers below it.
	outside := t.TempDir()
	if err := os.MkdirAll(filepath.Join(outside, "sub"), 0o755); err != nil {
		t.Fatal(err)
	}
	for _, step := range []error{
		os.Symlink(outside, filepath.Join(l.Lowers[0], "link")),
		os.Mkdir(filepath.Join(l.Upper, "link"), 0o755),
		os.Mkdir(filepath.Join(l.Upper, "srv"), 0o755),
		os.WriteFile(filepath.Join(l.Lowers[0], "srv"), nil, 0o644),
		os.MkdirAll(filepath.Join(l.Lowers[1], "srv/www"), 0o755),
	} {
		if step != nil {
			t.Fatal(step)
		}
	}
	for _, p := range []string{"/link/sub", "/srv/www"} {
		if from, why := layeredDir(l, p, false); from != 1 || why == "" {
			t.Errorf("layeredDir(%s) = %d, %q; want missing from index 1, as overlay merges it", p, from, why)
		}
	}
	if err := unix.Lsetxattr(filepath.Join(l.Upper, "opt"), "user.overlay.opaque", []byte("y"), 0); err != nil {
		t.Fatalf("setting the opaque xattr: %v", err)
	}
	if from, why := layeredDir(l, "/opt/lower-only", false); from != 1 || why == "" {
		t.Errorf("below an opaque directory: %d, %q; want missing from index 1", from, why)
	}
}

// The program mounts the image's root and the process sees the merged
// layers: the top layer's file, the lower's, the whiteout's absence, its
// writes going to the upper; no layer fd is left to the process.
func TestRawInitImageRuns(t *testing.T) {
	in := imageInput(t)
	in.Spec.Process.Args = []string{"/bin/sh", "-c", `cat /etc/motd; test -e /etc/group || echo no group; test -x /bin/busybox && echo busybox; echo written > /new; ls /proc/self/fd | tr '\n' ' '`}
	plan := mustPlan(t, in)
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	null, err := os.Open(os.DevNull)
	if err != nil {
		t.Fatal(err)
	}
	defer null.Close()
	plan.Files = []*os.File{null, w, w}
	plan.Pdeathsig = syscall.SIGKILL
	f, err := userns.ForkInit(plan, func(pid int) error {
		for _, m := range []struct{ name, data string }{
			{"setgroups", "deny"}, {"uid_map", fmt.Sprintf("0 %d 1", os.Geteuid())}, {"gid_map", fmt.Sprintf("0 %d 1", os.Getegid())},
		} {
			if err := os.WriteFile(fmt.Sprintf("/proc/%d/%s", pid, m.name), []byte(m.data), 0); err != nil {
				return err
			}
		}
		return nil
	})
	w.Close()
	if err != nil {
		t.Fatal(err)
	}
	if err := f.AwaitReady(); err != nil {
		var pe *userns.ProgramError
		if errors.As(err, &pe) && errors.Is(err, unix.EINVAL) && strings.Contains(pe.What, "overlay") {
			testutil.Skip(t, "this kernel refuses an overlay in a user namespace here: %v", err)
		}
		t.Fatal(err)
	}
	if err := f.Release(); err != nil {
		t.Fatal(err)
	}
	out, _ := io.ReadAll(r)
	var ws syscall.WaitStatus
	if _, err := syscall.Wait4(f.Pid, &ws, 0, nil); err != nil || ws.ExitStatus() != 0 {
		t.Fatalf("wait4: %v, status %v, output %q", err, ws, out)
	}
	if want := "from the top layer\nno group\nbusybox\n0 1 2 3 "; strings.TrimSpace(string(out)) != strings.TrimSpace(want) {
		t.Errorf("output %q, want %q", out, want)
	}
	if b, err := os.ReadFile(filepath.Join(in.Layers.Upper, "new")); err != nil || string(b) != "written\n" {
		t.Errorf("the write went to the upper: %q, %v", b, err)
	}
}

func TestKernelRelease(t *testing.T) {
	for rel, want := range map[string][2]int{"6.1.0-18-amd64": {6, 1}, "6.18.2": {6, 18}, "5.10.0-cloud": {5, 10}, "6.8": {6, 8}} {
		if ma, mi, ok := kernelRelease(rel); !ok || ma != want[0] || mi != want[1] {
			t.Errorf("kernelRelease(%q) = %d, %d, %v", rel, ma, mi, ok)
		}
	}
	if _, _, ok := kernelRelease("linux"); ok {
		t.Error("kernelRelease(linux) parsed")
	}
}
