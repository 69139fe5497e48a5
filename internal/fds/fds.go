// Package fds marks the fds a process inherited close-on-exec. A caller
// may leave any fd open across its exec of sandy (a shell's pipe in
// out=$(sandy ...), a test harness's, an engine's); without the flag,
// every process sandy starts (slirp4netns, nsenter, the image helper, a
// monitor, a reaper, a hook) would hold it, keep the caller's pipe open
// past sandy's exit, or see what it should not. Fds sandy hands on on
// purpose go through exec.Cmd.ExtraFiles, which dup2s them into place in
// the child and so clears the flag there.
//
// It also opens and reads the small kernel files of sandy's short paths
// (/proc/PID/stat, uid_map, ns/*, sysctls) with raw system calls:
// ReadFile and Open; and takes the one fd a message carries
// (FromRights).
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

// ReadFile reads the whole file at path, as os.ReadFile does, with open,
// read until end of file, and close only. An *os.File tries to register
// its fd with the runtime's poller first (fcntl F_GETFL and F_SETFL to
// set O_NONBLOCK, epoll_ctl, which fails with EPERM for a /proc, /sys or
// regular file, then F_GETFL and F_SETFL again to clear it: five calls),
// and os.ReadFile adds an fstat for a size /proc reports as 0. For small
// files read once (/proc/PID/stat, /proc/PID/uid_map, a sysctl); errors
// are *os.PathError, as os.ReadFile's.
func ReadFile(path string) ([]byte, error) {
	fd, err := open(path, unix.O_RDONLY)
	if err != nil {
		return nil, err
	}
	defer unix.Close(fd)
	buf := make([]byte, 0, 1024)
	for {
		if len(buf) == cap(buf) {
			buf = append(buf, 0)[:len(buf)]
		}
		n, err := unix.Read(fd, buf[len(buf):cap(buf)])
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return nil, &os.PathError{Op: "read", Path: path, Err: err}
		}
		if n == 0 {
			return buf, nil
		}
		buf = buf[:len(buf)+n]
	}
}

// Open opens path with flag (O_CLOEXEC added) as an *os.File that the
// runtime's poller does not know: os.NewFile around the raw fd, one
// fcntl instead of os.OpenFile's five calls (see ReadFile). For a file
// that is handed on rather than read through Go's I/O: a namespace to
// join, a directory fd for openat2. Reads and writes through it block
// their thread, which for a /proc file is what os.OpenFile ends up with
// anyway.
func Open(path string, flag int) (*os.File, error) {
	fd, err := open(path, flag)
	if err != nil {
		return nil, err
	}
	return os.NewFile(uintptr(fd), path), nil
}

func open(path string, flag int) (int, error) {
	for {
		fd, err := unix.Open(path, flag|unix.O_CLOEXEC, 0)
		if errors.Is(err, unix.EINTR) {
			continue
		}
		if err != nil {
			return -1, &os.PathError{Op: "open", Path: path, Err: err}
		}
		return fd, nil
	}
}

// FromRights returns the one fd of a message's control data (oob, as
// recvmsg filled it: SCM_RIGHTS), closing any more it carries.
func FromRights(oob []byte) (int, error) {
	msgs, err := unix.ParseSocketControlMessage(oob)
	if err != nil {
		return -1, err
	}
	var got []int
	for i := range msgs {
		if fds, err := unix.ParseUnixRights(&msgs[i]); err == nil {
			got = append(got, fds...)
		}
	}
	if len(got) != 1 {
		for _, fd := range got {
			unix.Close(fd)
		}
		return -1, fmt.Errorf("want one fd, got %d", len(got))
	}
	return got[0], nil
}
