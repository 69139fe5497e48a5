package idmap

import (
	"errors"
	"fmt"
	"io/fs"
	"os/exec"
	"strings"
	"syscall"
)

// directHint explains an error from writing /proc/PID/{setgroups,gid_map,
// uid_map} directly (the single mapping).
func directHint(err error, idName string) string {
	switch {
	case idName == "setgroups" && errors.Is(err, syscall.EPERM):
		// user_namespaces(7): setgroups is fixed once gid_map is written.
		return fmt.Sprintf("setgroups can change only before the gid map is written: the maps were already written, or the process is not yours (%sidmap-write)", docRef)
	case errors.Is(err, syscall.EPERM):
		return fmt.Sprintf("without newuidmap/newgidmap only your own %s can be mapped, once, into a user namespace you created; is the map already written, or the process not yours? (%sidmap-write)", idName, docRef)
	case errors.Is(err, syscall.EINVAL):
		return fmt.Sprintf("the kernel rejected the map: overlapping ranges or more than %d lines (%sidmap-write)", MaxLines, docRef)
	case errors.Is(err, fs.ErrNotExist):
		return "the process has exited"
	}
	return "see " + docRef + "idmap-write"
}

// helperHint turns shadow's newuidmap/newgidmap messages into a fix.
func helperHint(name, path, out string, err error, rangeHint string) string {
	file := "/etc/subuid"
	if name == "newgidmap" {
		file = "/etc/subgid"
	}
	var ee *exec.Error
	switch {
	case errors.As(err, &ee):
		return fmt.Sprintf("%s cannot be run: %s (%snewuidmap-missing)", name, installHint, docRef)
	case strings.Contains(out, "not allowed"):
		// "newuidmap: uid range [1-65537) -> [100000-165536) not allowed"
		if rangeHint == "" {
			rangeHint = "add a range for your user to " + file + " (" + docRef + "subuid)"
		}
		return "a host range is not yours in " + file + ": " + rangeHint
	case strings.Contains(out, "Could not set caps"), strings.Contains(out, "Operation not permitted") && !strings.Contains(out, "write to"):
		return fmt.Sprintf("%s has no privilege: as root, chmod u+s %s (or reinstall: %s) (%snewuidmap-not-setuid)", name, path, installHint, docRef)
	case strings.Contains(out, "write to"):
		// "newuidmap: write to uid_map failed: Operation not permitted"
		return fmt.Sprintf("the kernel refused the map: it was already written, the ranges overlap, or the process left its user namespace (%sidmap-write)", docRef)
	case strings.Contains(out, "different user"), strings.Contains(out, "Could not open proc directory"):
		return "the target process is not yours or has exited"
	}
	return fmt.Sprintf("check %s and that %s is setuid root (%sidmap-write)", file, path, docRef)
}
