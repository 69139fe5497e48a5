// Package fds marks the fds a process inherited close-on-exec. A caller
// may leave any fd open across its exec of sandy (a shell's pipe in
// out=$(sandy ...), a test harness's, an engine's); without the flag,
// every process sandy starts (slirp4netns, nsenter, the image helper, a
// monitor, a reaper, a hook) would hold it, keep the caller's pipe open
// past sandy's exit, or see what it should not. Fds sandy hands on on
// purpose go through exec.Cmd.ExtraFiles, which dup2s them into place in
// the child and so clears the flag there.
package fds

import (
	"errors"
	"fmt"
	"os"
	"strconv"

	"golang.org/x/sys/unix"
)

// CloexecFrom sets FD_CLOEXEC on every fd >= first: close_range(2) with
// CLOSE_RANGE_CLOEXEC (Linux 5.11), else one fcntl per entry of
// /proc/self/fd. It only adds the flag, it closes nothing.
func CloexecFrom(first int) error {
	if err := unix.CloseRange(uint(first), ^uint(0), unix.CLOSE_RANGE_CLOEXEC); err == nil {
		return nil
	}
	d, err := os.Open("/proc/self/fd")
	if err != nil {
		return err
	}
	defer d.Close()
	names, err := d.Readdirnames(-1)
	if err != nil {
		return err
	}
	for _, n := range names {
		fd, err := strconv.Atoi(n)
		if err != nil || fd < first || fd == int(d.Fd()) {
			continue
		}
		// EBADF: the fd closed since the listing (or was the listing's own).
		if _, err := unix.FcntlInt(uintptr(fd), unix.F_SETFD, unix.FD_CLOEXEC); err != nil && !errors.Is(err, unix.EBADF) {
			return fmt.Errorf("fcntl(%d, F_SETFD, FD_CLOEXEC): %w", fd, err)
		}
	}
	return nil
}
