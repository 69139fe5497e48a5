package initproc

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
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
	return r.remount(m.Destination, unix.MS_RDONLY|unix.MS_NOSUID|unix.MS_NODEV, 0)
}
