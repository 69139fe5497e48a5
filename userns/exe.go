package userns

import (
	"errors"
	"fmt"
	"io"
	"os"
	"time"

	"golang.org/x/sys/unix"
)

// SelfExe returns a handle on the running sandy binary to exec the
// container init from, such that nothing inside a container can write to
// the host binary (CVE-2019-5736: a container process opened
// /proc/<runc-pid>/exe and rewrote runc on the host).
//
// A rootless container's root is the caller's own uid on the host, so the
// attack matters exactly when that uid can write the binary (a sandy built
// into $HOME): then the handle is a copy in a sealed memfd
// (memfd_create(2) with F_SEAL_WRITE|F_SEAL_GROW|F_SEAL_SHRINK|F_SEAL_SEAL),
// which no one can modify and which is gone when the last user exits. A
// binary the caller cannot write (root-owned, as installed) is opened
// read-only and used as it is: copying it would only cost time.
func SelfExe() (*os.File, error) { return protectedExe("/proc/self/exe") }

// protectedExe is SelfExe for the binary at path.
func protectedExe(path string) (*os.File, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("opening %s: %w", path, err)
	}
	if !writableByMe(f) {
		return f, nil
	}
	defer f.Close()
	return sealedCopy(f)
}

func writableByMe(f *os.File) bool {
	var st unix.Stat_t
	if err := unix.Fstat(int(f.Fd()), &st); err != nil {
		return true
	}
	if int(st.Uid) == os.Geteuid() {
		return true // the owner can chmod it writable at any time
	}
	return unix.Access(fmt.Sprintf("/proc/self/fd/%d", f.Fd()), unix.W_OK) == nil
}

func sealedCopy(src *os.File) (*os.File, error) {
	fd, err := unix.MemfdCreate("sandy", unix.MFD_CLOEXEC|unix.MFD_ALLOW_SEALING)
	if err != nil {
		return nil, fmt.Errorf("memfd_create for the sealed sandy copy: %w", err)
	}
	dst := os.NewFile(uintptr(fd), "memfd:sandy")
	if err := copyInKernel(dst, src); err != nil {
		dst.Close()
		return nil, fmt.Errorf("copying sandy into a memfd: %w", err)
	}
	if err := sealWrites(fd, addSeals); err != nil {
		dst.Close()
		return nil, fmt.Errorf("sealing the sandy memfd: %w", err)
	}
	return dst, nil
}

// copyInKernel copies src, from its start to its end, into dst, an
// empty memfd, with sendfile(2): the page cache's pages go into the
// memfd's without a trip through user memory, about half the time of
// io.Copy's 32 KiB read/write pairs (copy_file_range(2) refuses a copy
// from another filesystem to tmpfs, EXDEV). On this project's 2-core
// machine, for a 14 MB sandy (a -trimpath build, not stripped): 2.5 ms
// against 5.0 ms, best of 15, on every run, create and exec of a
// container when the user can write the binary. A kernel whose sendfile
// refuses the pair (EINVAL, ENOSYS) before a byte is copied gets
// io.Copy.
func copyInKernel(dst, src *os.File) error {
	var off int64
	for {
		n, err := unix.Sendfile(int(dst.Fd()), int(src.Fd()), &off, 1<<30)
		switch {
		case (errors.Is(err, unix.EINVAL) || errors.Is(err, unix.ENOSYS)) && off == 0:
			_, err = io.Copy(dst, src)
			return err
		case errors.Is(err, unix.EINTR):
			continue
		case err != nil:
			return fmt.Errorf("sendfile: %w", err)
		case n == 0:
			return nil
		}
	}
}

// addSeals is fcntl(F_ADD_SEALS) (a variable for the tests).
var addSeals = func(fd int, seals int) error {
	_, err := unix.FcntlInt(uintptr(fd), unix.F_ADD_SEALS, seals)
	return err
}

// sealWrites seals the memfd against every change. F_SEAL_WRITE fails with
// EBUSY while a page of the file still has a reference besides the page
// cache's: pages just written can sit in another CPU's LRU batch for a
// moment, which the kernel's own wait (memfd_wait_for_pins) does not
// always outlast on a loaded machine (seen once in about 5 critest runs).
// A few tries, 2 ms apart and doubling, outlast it; any other error, or
// EBUSY after the last try, is returned.
func sealWrites(fd int, add func(int, int) error) error {
	const seals = unix.F_SEAL_SEAL | unix.F_SEAL_SHRINK | unix.F_SEAL_GROW | unix.F_SEAL_WRITE
	wait := 2 * time.Millisecond
	for try := 1; ; try++ {
		err := add(fd, seals)
		if err == nil || !errors.Is(err, unix.EBUSY) || try == 6 {
			return err
		}
		time.Sleep(wait)
		wait *= 2
	}
}
