// Package inroot reads small files of a container's root from the host:
// every path resolved inside the root (openat2 RESOLVE_IN_ROOT, no magic
// links, no other mount), only regular files, and no more than a bound.
// A container or an image whose /etc/passwd is a FIFO, a device, a
// symlink to a host file or a file of gigabytes can neither block the
// reader, show it a host file nor exhaust its memory.
package inroot

import (
	"fmt"
	"io"
	"os"

	"golang.org/x/sys/unix"
)

// ReadFile reads path (relative to root, or absolute in it) of the root
// directory root, at most limit bytes. A path that does not exist is an
// error satisfying errors.Is(err, fs.ErrNotExist).
func ReadFile(root, path string, limit int64) (string, error) {
	dfd, err := unix.Open(root, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", fmt.Errorf("opening the container's root: %w", err)
	}
	defer unix.Close(dfd)
	fd, err := unix.Openat2(dfd, path, &unix.OpenHow{
		// O_NONBLOCK: a FIFO opens at once (and is refused below).
		Flags:   unix.O_RDONLY | unix.O_NONBLOCK | unix.O_NOCTTY | unix.O_CLOEXEC,
		Resolve: unix.RESOLVE_IN_ROOT | unix.RESOLVE_NO_MAGICLINKS | unix.RESOLVE_NO_XDEV,
	})
	if err != nil {
		return "", &os.PathError{Op: "open", Path: path, Err: err}
	}
	f := os.NewFile(uintptr(fd), path)
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return "", err
	}
	if !fi.Mode().IsRegular() {
		return "", fmt.Errorf("%s is not a regular file (%s)", path, fi.Mode().Type())
	}
	b, err := io.ReadAll(io.LimitReader(f, limit+1))
	if err != nil {
		return "", fmt.Errorf("reading %s: %w", path, err)
	}
	if int64(len(b)) > limit {
		return "", fmt.Errorf("%s is larger than %d bytes", path, limit)
	}
	return string(b), nil
}
