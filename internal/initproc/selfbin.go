package initproc

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/pid1"
)

// SelfBinary as a bind mount's source is the runtime's own binary (`run
// --init` binds it at /run/sandy-init, where it is the container's pid 1).
const SelfBinary = "/proc/self/exe"

// bindSelf gives the container a read-only copy of the binary the init
// runs from at m.Destination. The file itself cannot be bound: it belongs
// to the host's mount namespace (or is the sealed memfd copy), and a bind
// of a file the user can write would let the container's root, who may
// remount it writable, change the host's sandy (CVE-2019-5736). The copy
// lives on a tmpfs of its own in the layer directory, read-only; the
// container may remount its own copy, which touches nothing on the host.
func (r *rootfs) bindSelf(m specs.Mount) error {
	if r.cfg.LayerDir == "" {
		return fmt.Errorf("%s: no layer directory to hold the copy of sandy's binary", m.Destination)
	}
	self, err := os.Open(SelfBinary)
	if err != nil {
		return fmt.Errorf("opening sandy's binary: %w", err)
	}
	defer self.Close()
	fi, err := self.Stat()
	if err != nil {
		return err
	}
	dir := filepath.Join(r.cfg.LayerDir, "init-bin")
	if err := os.Mkdir(dir, 0o700); err != nil && !errors.Is(err, fs.ErrExist) {
		return err
	}
	size := fmt.Sprintf("size=%d,mode=0755", fi.Size()+1<<20)
	if err := unix.Mount("tmpfs", dir, "tmpfs", unix.MS_NOSUID|unix.MS_NODEV, size); err != nil {
		return fmt.Errorf("mounting a tmpfs for the copy of sandy's binary: %w", err)
	}
	bin := filepath.Join(dir, "sandy-init")
	out, err := os.OpenFile(bin, os.O_WRONLY|os.O_CREATE|os.O_EXCL|unix.O_CLOEXEC, 0o555)
	if err != nil {
		return err
	}
	if _, err := io.Copy(out, self); err != nil {
		out.Close()
		return fmt.Errorf("copying sandy's binary: %w", err)
	}
	if err := out.Close(); err != nil {
		return err
	}
	if err := unix.Mount("", dir, "", unix.MS_REMOUNT|unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, ""); err != nil {
		return fmt.Errorf("making the copy of sandy's binary read-only: %w", err)
	}
	target, err := r.openFile(m.Destination)
	if err != nil {
		return err
	}
	defer target.Close()
	if err := r.checkInRoot(target, m.Destination); err != nil {
		return err
	}
	if err := unix.Mount(bin, procPath(target), "", unix.MS_BIND, ""); err != nil {
		return fmt.Errorf("bind mounting the copy of sandy's binary on %s: %w", m.Destination, err)
	}
	var st unix.Stat_t
	if err := unix.Stat(bin, &st); err != nil {
		return fmt.Errorf("stat of the copy of sandy's binary: %w", err)
	}
	r.selfCopies = append(r.selfCopies, fileID{st.Dev, st.Ino})
	return r.remount(m.Destination, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, 0)
}

// fileID names a file by its device and inode.
type fileID struct{ dev, ino uint64 }

// selfInit reports whether the process about to be exec'd is sandy's own
// pid 1 (internal/pid1, `run --init`): its executable is one of the
// copies bindSelf made, compared by device and inode after pivot_root, so
// that no other program, whatever the paths and mounts say, is taken for
// it; and its argv[0] is named pid1.Name, which is what makes sandy's
// main run pid1.Main. Nothing in the container runs yet that could swap
// the file between this stat and the execve.
func (p *process) selfInit(copies []fileID) bool {
	if len(copies) == 0 || filepath.Base(p.p.Args[0]) != pid1.Name {
		return false
	}
	var st unix.Stat_t
	if err := unix.Stat(p.path, &st); err != nil {
		return false
	}
	return slices.Contains(copies, fileID{st.Dev, st.Ino})
}

// handOn gives sandy's pid 1 the exec fifo across the execve, so that
// `start` (which reads the fifo until EOF) returns only once pid 1 has
// its signal handlers. Between execve and its signal.Notify, sandy-init
// is a Go program whose runtime has a handler of its own for every
// signal: a SIGTERM then makes the runtime exit 2 (pid 1 cannot die of
// it), and before the runtime's handlers the kernel drops it (a pid 1
// with the default action, pid_namespaces(7)). Blocking the signal
// across the execve cannot help: the Go runtime unblocks it. So the init
// writes FifoHandedOn, clears close-on-exec on its fifo fd (after exec's
// close_range marked every fd) and puts pid1.ReadyFDFlag=N first in the
// arguments; pid1.Main closes N right after signal.Notify and before it
// starts the command, which never sees it. The fd is a write end of the
// host's exec fifo, which offers nothing but a write to that fifo (not a
// directory, so no path to the host through it, CVE-2024-21626), or under
// `sandy run` the init's end of the start socket, whose other end only
// that run holds (it reads bytes, never fds, and sends nothing after its
// one start byte), and
// only sandy's own code holds it in the container. A write error (start
// died since it read the first byte) changes nothing: pid 1 closes the
// fd all the same.
func (p *process) handOn(fifo *os.File) ([]string, error) {
	_, _ = fifo.Write([]byte{FifoHandedOn})
	fd := fifo.Fd()
	if _, err := unix.FcntlInt(fd, unix.F_SETFD, 0); err != nil {
		return nil, fmt.Errorf("clearing close-on-exec on the exec fifo: %w", err)
	}
	flag := pid1.ReadyFDFlag + "=" + strconv.Itoa(int(fd))
	return append([]string{p.p.Args[0], flag}, p.p.Args[1:]...), nil
}
