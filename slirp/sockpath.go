package slirp

import (
	"fmt"
	"os"
	"path/filepath"

	"golang.org/x/sys/unix"
)

// maxSockPath is the longest path a unix socket address holds (sun_path
// is 108 bytes with the terminating NUL).
const maxSockPath = 107

// sockPath names the unix socket name in dir for bind(2) or connect(2).
// A path too long for a socket address (a 64-hex container id under a
// long state root, or the reaper's .gone-ID-… rename of the state
// directory) is reached through an O_PATH handle on dir instead:
// /proc/self/fd/N/name, which the kernel resolves as any path. done
// closes that handle once the socket is bound or connected.
func sockPath(dir, name string) (path string, done func(), err error) {
	p := filepath.Join(dir, name)
	if len(p) <= maxSockPath {
		return p, func() {}, nil
	}
	f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d/%s", f.Fd(), name), func() { f.Close() }, nil
}

// socketDir is dir for the sockets other code joins names to (rootlesskit's
// port drivers take a directory or a path and dial it for every
// connection): dir itself when a socket named longest fits in a socket
// address, else /proc/self/fd/N through an O_PATH handle on dir, which
// release closes once no socket in it is used any more.
func socketDir(dir, longest string) (path string, release func(), err error) {
	if len(filepath.Join(dir, longest)) <= maxSockPath {
		return dir, func() {}, nil
	}
	f, err := os.OpenFile(dir, unix.O_PATH|unix.O_DIRECTORY|unix.O_CLOEXEC, 0)
	if err != nil {
		return "", nil, err
	}
	return fmt.Sprintf("/proc/self/fd/%d", f.Fd()), func() { f.Close() }, nil
}
