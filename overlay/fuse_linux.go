//go:build linux

package overlay

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"golang.org/x/sys/unix"
)

// fuseBinary is the helper's name in PATH.
const fuseBinary = "fuse-overlayfs"

// fuseTimeout bounds how long fuse-overlayfs may take to mount.
const fuseTimeout = 30 * time.Second

// fuse mounts fuse-overlayfs and binds it on merged.
//
// Where the process lives, and why:
//
//  1. It runs in the container's user and pid namespaces (a child of the
//     init, which is pid 1 there), so when pid 1 exits the kernel kills it
//     with the rest of the namespace (pid_namespaces(7)); nothing on the
//     host has to reap or unmount it. It daemonizes (no -f): its parent
//     exits once the mount is in place and it is reparented to pid 1, so
//     Mount returns with no child, no goroutine and no fd of ours held.
//  2. It runs in a mount namespace of its own (CLONE_NEWNS), a copy of the
//     init's. The init later pivot_roots into the mount fuse-overlayfs
//     serves; in the same namespace that would move fuse-overlayfs's own
//     root onto its own filesystem, and its /proc/self/fd lookups would
//     then go through itself (a deadlock). So: fuse/ is made a shared
//     bind mount first, fuse-overlayfs mounts on its copy of fuse/, the
//     mount propagates back into our namespace (same user namespace, same
//     peer group, mount_namespaces(7)), and we bind it privately on merged.
//  3. No uidmapping=/gidmapping=: inside the user namespace it sees the same
//     ids the kernel and the container see, so there is nothing to map;
//     those options are for a fuse-overlayfs that runs outside it.
//
// The rootfs is passed as fd 3 and named /proc/self/fd/3, so its path needs
// no escaping; the layer paths are ours and checked by checkPaths. They are
// plain paths on purpose: Cleanup finds a leftover fuse-overlayfs by them.
func (m *mounter) fuse() (*Root, error) {
	bin, err := findFuse(exec.LookPath)
	if err != nil {
		return nil, err
	}
	if err := checkDevFuse(); err != nil {
		return nil, err
	}
	if err := m.ensure(fuseName); err != nil {
		return nil, err
	}
	if err := m.ensureFor(); err != nil {
		return nil, err
	}
	fuseDir := m.path(fuseName)
	if err := unix.Mount(fuseDir, fuseDir, "", unix.MS_BIND, ""); err != nil {
		return nil, fmt.Errorf("binding %s: %w", fuseDir, err)
	}
	if err := unix.Mount("", fuseDir, "", unix.MS_SHARED, ""); err != nil {
		return nil, fmt.Errorf("making %s shared: %w", fuseDir, err)
	}
	opts := "lowerdir=" + m.lowerdirs("/proc/self/fd/3")
	if !m.o.Readonly {
		opts += ",upperdir=" + m.path(upperName) + ",workdir=" + m.path(workName)
	}
	if err := runFuse(bin, opts, fuseDir, m.lower); err != nil {
		return nil, err
	}
	var st unix.Statfs_t
	if err := unix.Statfs(fuseDir, &st); err != nil || st.Type != unix.FUSE_SUPER_MAGIC {
		return nil, &RungError{Mode: ModeFuse, Why: fmt.Sprintf("fuse-overlayfs exited 0 but its mount did not reach %s (found %s)", fuseDir, magicName(int64(st.Type))), Fix: "see docs/rootfs.md#troubleshooting", Err: err}
	}
	// Leave the peer group before binding, so nothing we do to our copy
	// (the init's detach of the old root) propagates to fuse-overlayfs's.
	if err := unix.Mount("", fuseDir, "", unix.MS_PRIVATE, ""); err != nil {
		return nil, fmt.Errorf("making %s private: %w", fuseDir, err)
	}
	merged := m.path(mergedName)
	if err := unix.Mount(fuseDir, merged, "", unix.MS_BIND, ""); err != nil {
		return nil, fmt.Errorf("binding %s on %s: %w", fuseDir, merged, err)
	}
	if m.o.Readonly {
		if err := remountReadonly(merged); err != nil {
			return nil, err
		}
	}
	r, err := m.root(ModeFuse, true)
	if err != nil {
		return nil, err
	}
	m.reportHidden()
	return r, nil
}

// findFuse looks fuse-overlayfs up with lookPath.
func findFuse(lookPath func(string) (string, error)) (string, error) {
	bin, err := lookPath(fuseBinary)
	if err != nil {
		return "", &RungError{Mode: ModeFuse, Err: err, Why: "fuse-overlayfs is not installed", Fix: "apt-get install fuse-overlayfs (or dnf install fuse-overlayfs)"}
	}
	return bin, nil
}

// CheckFuse checks what the fuse rung needs before it mounts, as Mount
// does: fuse-overlayfs found by lookPath, and dev (normally /dev/fuse)
// opened for reading and writing (CheckDevFuse). It returns nil or a
// *RungError with the fix. `sandy doctor` reports it.
func CheckFuse(lookPath func(string) (string, error), dev string) error {
	if _, err := findFuse(lookPath); err != nil {
		return err
	}
	return CheckDevFuse(dev)
}

func checkDevFuse() error { return CheckDevFuse("/dev/fuse") }

// CheckDevFuse opens dev (normally /dev/fuse) for reading and writing, as
// fuse-overlayfs does, and returns a *RungError with the fix when it
// cannot: the fuse rung is then unavailable. `sandy doctor` reports it.
func CheckDevFuse(dev string) error {
	f, err := os.OpenFile(dev, os.O_RDWR|unix.O_CLOEXEC, 0)
	if err != nil {
		re := &RungError{Mode: ModeFuse, Err: err, Why: fmt.Sprintf("cannot open %s: %v", dev, err)}
		switch {
		case errors.Is(err, fs.ErrNotExist):
			re.Fix = "modprobe fuse as root; in a container, pass --device /dev/fuse"
		case errors.Is(err, fs.ErrPermission):
			re.Fix = "chmod 0666 /dev/fuse as root (it is 0666 by default)"
		default:
			re.Fix = "see docs/rootfs.md#troubleshooting"
		}
		return re
	}
	return f.Close()
}

// runFuse starts fuse-overlayfs and waits for the daemonizing parent to
// exit, which it does once the filesystem is mounted.
func runFuse(bin, opts, mountpoint string, lower *os.File) error {
	cmd := exec.Command(bin, "-o", opts, mountpoint)
	cmd.ExtraFiles = []*os.File{lower} // fd 3, O_PATH, dup'd without O_CLOEXEC
	inheritProcFDs(cmd, mountpoint)    // a layer dir given as /proc/self/fd/N
	cmd.SysProcAttr = &syscall.SysProcAttr{Cloneflags: unix.CLONE_NEWNS}
	out, timedOut, runErr := runQuiet(cmd, fuseTimeout)
	if runErr == nil {
		return nil
	}
	re := &RungError{Mode: ModeFuse, Err: runErr, Why: fmt.Sprintf("%s -o %s %s: %v", filepath.Base(bin), opts, mountpoint, runErr)}
	if msg := cleanFuseOutput(out); msg != "" {
		re.Why += ": " + msg
	}
	if timedOut {
		re.Why = fmt.Sprintf("fuse-overlayfs did not mount within %v", fuseTimeout)
	}
	re.Fix = "see docs/rootfs.md#troubleshooting"
	return re
}

// runQuiet runs cmd with a clean environment, its output in a memfd, and a
// deadline, without starting a goroutine: os/exec copies a pipe or a
// bytes.Buffer with one (and exec.CommandContext watches with one), and
// Mount must leave none behind, because the init execs right after it. A
// memfd also never blocks a daemon that keeps its stdio open.
func runQuiet(cmd *exec.Cmd, timeout time.Duration) (string, bool, error) {
	outFd, err := unix.MemfdCreate("sandy-overlay-output", unix.MFD_CLOEXEC)
	if err != nil {
		return "", false, fmt.Errorf("memfd_create: %w", err)
	}
	out := os.NewFile(uintptr(outFd), "sandy-overlay-output")
	defer out.Close()
	cmd.Stdout = out
	cmd.Stderr = out
	cmd.Env = []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin", "LC_ALL=C"}
	cmd.Dir = "/"
	if err := cmd.Start(); err != nil {
		return "", false, err
	}
	// time.AfterFunc starts its goroutine only when it fires.
	timer := time.AfterFunc(timeout, func() { _ = cmd.Process.Kill() })
	runErr := cmd.Wait()
	timedOut := !timer.Stop()
	_, _ = out.Seek(0, io.SeekStart)
	b, _ := io.ReadAll(io.LimitReader(out, 64<<10))
	return string(b), timedOut, runErr
}

// cleanFuseOutput keeps the lines worth quoting: fuse-overlayfs 1.10 also
// prints "unknown argument ignored: lazytime" on every start.
func cleanFuseOutput(s string) string {
	var keep []string
	for _, l := range strings.Split(s, "\n") {
		l = strings.TrimSpace(l)
		if l == "" || strings.Contains(l, "unknown argument ignored") {
			continue
		}
		keep = append(keep, l)
	}
	return strings.Join(keep, "; ")
}

// reportHidden warns once about entries fuse-overlayfs will not show:
// fuse-overlayfs reads names starting with ".wh." in every lower layer as
// whiteouts (and hides both them and the names they "delete"), where the
// kernel overlay shows them as ordinary files. An OCI rootfs should have
// none (the image spec reserves the prefix), so this costs one getdents walk
// of the rootfs on this rung only, and no stat.
func (m *mounter) reportHidden() {
	n, example := countWhiteoutNames(m.o.Lower)
	if n == 0 {
		return
	}
	m.warn(FallbackWhiteouts.Line(n, example))
}

// countWhiteoutNames walks dir with readdir only (d_type, no stat) and
// counts names fuse-overlayfs treats as whiteouts.
func countWhiteoutNames(root string) (int, string) {
	n := 0
	example := ""
	var walk func(dir string)
	walk = func(dir string) {
		f, err := os.OpenFile(dir, os.O_RDONLY|unix.O_DIRECTORY|unix.O_NOFOLLOW|unix.O_CLOEXEC, 0)
		if err != nil {
			return
		}
		ents, _ := f.ReadDir(-1)
		f.Close()
		for _, e := range ents {
			if strings.HasPrefix(e.Name(), ".wh.") {
				n++
				if example == "" {
					rel, _ := filepath.Rel(root, filepath.Join(dir, e.Name()))
					example = "/" + rel
				}
			}
			if e.Type().IsDir() {
				walk(filepath.Join(dir, e.Name()))
			}
		}
	}
	walk(root)
	return n, example
}
