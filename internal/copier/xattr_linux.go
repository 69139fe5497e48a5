//go:build linux

package copier

import (
	"archive/tar"
	"errors"
	"strings"

	"golang.org/x/sys/unix"
)

// paxXattr is the PAX record prefix GNU tar, bsdtar and Go's archive/tar
// use for extended attributes.
const paxXattr = "SCHILY.xattr."

// keptXattr reports whether cp carries the extended attribute name:
// file capabilities, IMA signatures and user attributes, as buildah's
// copier does. Others are the filesystem's or the kernel's business
// (security.selinux, system.posix_acl_*, trusted.*), and overlayfs's own
// (user.overlay.*: a whiteout or a redirect must not travel with a file).
func keptXattr(name string) bool {
	switch {
	case strings.HasPrefix(name, "user.overlay."):
		return false
	case strings.HasPrefix(name, "user."), name == "security.capability", name == "security.ima":
		return true
	}
	return false
}

// readXattrs adds the kept extended attributes of the open file fd to h.
// A filesystem without them adds none.
func readXattrs(fd int, h *tar.Header) error {
	names, err := listXattrs(fd)
	if err != nil || len(names) == 0 {
		return err
	}
	for _, n := range names {
		if !keptXattr(n) {
			continue
		}
		v, err := getXattr(fd, n)
		if errors.Is(err, unix.ENODATA) {
			continue // removed meanwhile
		}
		if err != nil {
			return err
		}
		if h.PAXRecords == nil {
			h.PAXRecords = map[string]string{}
		}
		h.PAXRecords[paxXattr+n] = string(v)
	}
	return nil
}

func listXattrs(fd int) ([]string, error) {
	size, err := unix.Flistxattr(fd, nil)
	for {
		if errors.Is(err, unix.ENOTSUP) {
			return nil, nil
		}
		if err != nil {
			return nil, err
		}
		if size == 0 {
			return nil, nil
		}
		buf := make([]byte, size)
		n, err2 := unix.Flistxattr(fd, buf)
		if errors.Is(err2, unix.ERANGE) { // grew meanwhile
			size, err = unix.Flistxattr(fd, nil)
			continue
		}
		if err2 != nil {
			return nil, err2
		}
		return strings.Split(strings.TrimSuffix(string(buf[:n]), "\x00"), "\x00"), nil
	}
}

func getXattr(fd int, name string) ([]byte, error) {
	for {
		size, err := unix.Fgetxattr(fd, name, nil)
		if err != nil {
			return nil, err
		}
		buf := make([]byte, size)
		n, err := unix.Fgetxattr(fd, name, buf)
		if errors.Is(err, unix.ERANGE) {
			continue
		}
		if err != nil {
			return nil, err
		}
		return buf[:n], nil
	}
}

// writeXattrs sets the stream's kept extended attributes on the open
// file fd, after its owner is set (chown clears file capabilities). One
// the filesystem or the user's rights refuse (a filesystem without user
// attributes) is counted in lost, not an error: the file itself is
// copied. With userOnly (a copy out to the host), only user.* are set
// and the others counted: a file capability a container wrote is its
// root's to give, and root running cp must not turn it into a host
// capability.
func writeXattrs(fd int, h *tar.Header, userOnly bool, lost *int) error {
	for k, v := range h.PAXRecords {
		name, ok := strings.CutPrefix(k, paxXattr)
		if !ok || !keptXattr(name) {
			continue
		}
		if userOnly && !strings.HasPrefix(name, "user.") {
			if lost != nil {
				*lost++
			}
			continue
		}
		err := unix.Fsetxattr(fd, name, []byte(v), 0)
		switch {
		case err == nil:
		case errors.Is(err, unix.EPERM), errors.Is(err, unix.ENOTSUP), errors.Is(err, unix.EACCES), errors.Is(err, unix.EINVAL):
			if lost != nil {
				*lost++
			}
		default:
			return err
		}
	}
	return nil
}
