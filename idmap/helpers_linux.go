//go:build linux

package idmap

import (
	"fmt"
	"os"
	"syscall"

	"golang.org/x/sys/unix"
)

// findHelpers looks up newuidmap and newgidmap and checks that they can do
// their job: an unprivileged caller needs them setuid root, or carrying file
// capabilities (Fedora ships them with cap_setuid/cap_setgid instead of the
// setuid bit). Without either they run with the caller's privileges and the
// kernel refuses any map but the own id (user_namespaces(7)), so Resolve
// degrades up front instead of failing at Apply. uid 0 needs neither.
func findHelpers(lookPath func(string) (string, error), uid uint32) (uidPath, gidPath string, _ *problem) {
	var paths [2]string
	for i, name := range []string{"newuidmap", "newgidmap"} {
		p, err := lookPath(name)
		if err != nil {
			return "", "", &problem{what: name + " not found in PATH", fix: installHint, anchor: "newuidmap-missing", pkg: "uidmap"}
		}
		paths[i] = p
		if uid == 0 {
			continue
		}
		if pr := checkPrivileged(name, p); pr != nil {
			return "", "", pr
		}
	}
	return paths[0], paths[1], nil
}

func checkPrivileged(name, path string) *problem {
	fi, err := os.Stat(path)
	if err != nil {
		return &problem{what: fmt.Sprintf("cannot stat %s (%v)", name, err), fix: installHint, anchor: "newuidmap-missing", pkg: "uidmap"}
	}
	st, _ := fi.Sys().(*syscall.Stat_t)
	rootOwned := st != nil && st.Uid == 0
	if fi.Mode()&os.ModeSetuid != 0 && rootOwned {
		return nil
	}
	if hasFileCaps(path) {
		return nil
	}
	fix := fmt.Sprintf("as root: chmod u+s %s, or reinstall it: %s", path, installHint)
	if fi.Mode()&os.ModeSetuid != 0 {
		return &problem{what: fmt.Sprintf("%s is setuid but not owned by root", path),
			fix: fmt.Sprintf("as root: chown root:root %s && chmod u+s %s", path, path), anchor: "newuidmap-not-setuid",
			root: fmt.Sprintf("chown root:root %s && chmod u+s %s", path, path)}
	}
	return &problem{what: fmt.Sprintf("%s is not setuid root and has no file capabilities", path), fix: fix, anchor: "newuidmap-not-setuid", root: "chmod u+s " + path}
}

// hasFileCaps reports whether path carries a security.capability xattr.
func hasFileCaps(path string) bool {
	n, err := unix.Getxattr(path, "security.capability", nil)
	return err == nil && n > 0
}
