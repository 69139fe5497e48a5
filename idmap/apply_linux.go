//go:build linux

package idmap

import (
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"syscall"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// Apply writes the maps for pid, which must be a process that has just
// been cloned into a new user namespace and waits (for example on a sync
// pipe) until its maps exist. Maps can be written once per namespace.
//
// With Helpers, newuidmap(1) then newgidmap(1) run as "newuidmap PID c h s
// ...": they are setuid root and check each line against /etc/subuid and
// /etc/subgid (or the NSS subid plugin) themselves. A failure returns a
// *HelperError with the argv, the helper's output and a hint.
//
// Without Helpers, Apply writes the maps itself, in the order the kernel
// demands for an unprivileged writer (user_namespaces(7)): "deny" to
// /proc/PID/setgroups first, because since Linux 3.19 (CVE-2014-8989) an
// unprivileged gid_map write fails with EPERM until setgroups is denied;
// then gid_map; then uid_map. Each map is one write(2): the kernel takes
// only the first write to a map file.
func (p *Plan) Apply(pid int) error {
	if p.Helpers {
		// The two maps are independent files of the same process: write
		// them at once, which takes one helper start off the critical path.
		gidErr := make(chan error, 1)
		go func() { gidErr <- p.runHelper("newgidmap", p.gidHelper, pid, p.GIDs, p.gidHint) }()
		uerr := p.runHelper("newuidmap", p.uidHelper, pid, p.UIDs, p.uidHint)
		gerr := <-gidErr
		if uerr != nil {
			return fmt.Errorf("writing uid map for pid %d: %w", pid, uerr)
		}
		if gerr != nil {
			return fmt.Errorf("writing gid map for pid %d: %w", pid, gerr)
		}
		return nil
	}
	proc := "/proc/" + strconv.Itoa(pid)
	if p.Privileged {
		// With CAP_SETGID the gid map needs no setgroups "deny" first.
		if err := writeProcFile(proc+"/gid_map", mapText(p.GIDs)); err != nil {
			return fmt.Errorf("writing gid map %q for pid %d: %w (every host gid must exist in sandy's own user namespace)", mapText(p.GIDs), pid, err)
		}
		if err := writeProcFile(proc+"/uid_map", mapText(p.UIDs)); err != nil {
			return fmt.Errorf("writing uid map %q for pid %d: %w (every host uid must exist in sandy's own user namespace)", mapText(p.UIDs), pid, err)
		}
		return nil
	}
	if err := writeProcFile(proc+"/setgroups", "deny"); err != nil && !errors.Is(err, fs.ErrNotExist) {
		// ENOENT: kernel before 3.19, which has no setgroups file and
		// needs none.
		return fmt.Errorf("denying setgroups for pid %d: %w\nhint: %s", pid, err, directHint(err, "setgroups"))
	}
	if err := writeProcFile(proc+"/gid_map", mapText(p.GIDs)); err != nil {
		return fmt.Errorf("writing gid map for pid %d: %w\nhint: %s", pid, err, directHint(err, "gid"))
	}
	if err := writeProcFile(proc+"/uid_map", mapText(p.UIDs)); err != nil {
		return fmt.Errorf("writing uid map for pid %d: %w\nhint: %s", pid, err, directHint(err, "uid"))
	}
	return nil
}

// KernelMaps returns the maps for syscall.SysProcAttr, for userns.Start
// to have Go's clone write them, when no helper is needed: a privileged
// caller's maps (setgroups stays allowed), or the single mapping of the
// caller's own ids, which an unprivileged parent may write itself once
// setgroups is denied (user_namespaces(7)). ok is false when newuidmap and
// newgidmap must write them.
func (p *Plan) KernelMaps() (uids, gids []syscall.SysProcIDMap, setgroups, ok bool) {
	if p.Helpers {
		return nil, nil, false, false
	}
	conv := func(m []specs.LinuxIDMapping) []syscall.SysProcIDMap {
		out := make([]syscall.SysProcIDMap, len(m))
		for i, l := range m {
			out[i] = syscall.SysProcIDMap{ContainerID: int(l.ContainerID), HostID: int(l.HostID), Size: int(l.Size)}
		}
		return out
	}
	return conv(p.UIDs), conv(p.GIDs), p.Privileged, true
}

// CanMapAny reports whether this process may write any uid and gid map
// for a child user namespace itself: it has CAP_SETUID and CAP_SETGID in
// its own user namespace (Request.Privileged).
func CanMapAny() bool {
	hdr := unix.CapUserHeader{Version: unix.LINUX_CAPABILITY_VERSION_3}
	var data [2]unix.CapUserData
	if err := unix.Capget(&hdr, &data[0]); err != nil {
		return false
	}
	const want = 1<<unix.CAP_SETUID | 1<<unix.CAP_SETGID
	return data[0].Effective&want == want
}

func writeProcFile(path, content string) error {
	f, err := os.OpenFile(path, os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	_, werr := f.Write([]byte(content))
	cerr := f.Close()
	if werr != nil {
		return werr
	}
	return cerr
}

func (p *Plan) runHelper(name, path string, pid int, m []specs.LinuxIDMapping, rangeHint string) error {
	if path == "" {
		path = name
	}
	argv := append([]string{path, strconv.Itoa(pid)}, helperArgs(m)...)
	cmd := exec.Command(argv[0], argv[1:]...)
	var out bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &out
	err := cmd.Run()
	if err == nil {
		return nil
	}
	he := &HelperError{Argv: argv, Output: strings.TrimSpace(out.String()), Err: err}
	he.Hint = helperHint(name, path, he.Output, err, rangeHint)
	return he
}
