package containers

import (
	"context"
	"fmt"
	"io"
	"os/user"
	"strconv"
	"text/tabwriter"
	"time"

	"github.com/sandy-rt/sandy/internal/inroot"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/internal/top"
)

// maxNamesFile bounds what top reads of the container's /etc/passwd and
// /etc/group: the container writes them.
const maxNamesFile = 4 << 20

// Top prints the processes of a running container as podman top does
// (internal/top): the columns top.Parse made, the container's pids, ids
// and user names.
func (m Manage) Top(ctx context.Context, ref string, cols []top.Descriptor, w io.Writer) error {
	c, err := m.Get(ctx, ref)
	if err != nil {
		return err
	}
	if c.External {
		return externalError(c, refuseTop)
	}
	if !c.Running() {
		return fmt.Errorf("container %s is %s: top needs a running container (sandy container start %s)", short(c.ID), c.State, short(c.ID))
	}
	pid, start, err := lifecycle.InitProcess(m.G, c.ID, "top")
	if err != nil {
		return err
	}
	procs, err := top.InNamespace("/proc", pid)
	if err != nil {
		return err
	}
	v, err := containerView(pid)
	if err != nil {
		return err
	}
	// The init read was the container's, not a process that reused its pid.
	if !state.Alive(pid, start) {
		return fmt.Errorf("container %s exited while top read its processes", short(c.ID))
	}
	tw := tabwriter.NewWriter(w, 12, 1, 1, ' ', 0)
	for _, row := range top.Table(procs, cols, v) {
		for i, f := range row {
			if i > 0 {
				fmt.Fprint(tw, "\t")
			}
			fmt.Fprint(tw, f)
		}
		fmt.Fprintln(tw)
	}
	return tw.Flush()
}

// containerView is the container's view of ids (its init's maps) and
// names (its /etc/passwd and /etc/group, through the init's root).
func containerView(pid int) (*top.View, error) {
	proc := "/proc/" + strconv.Itoa(pid)
	uids, err := top.ReadIDMap(proc + "/uid_map")
	if err != nil {
		return nil, fmt.Errorf("reading the container's uid map: %w", err)
	}
	gids, err := top.ReadIDMap(proc + "/gid_map")
	if err != nil {
		return nil, fmt.Errorf("reading the container's gid map: %w", err)
	}
	boot, err := top.BootTime("/proc")
	if err != nil {
		return nil, err
	}
	v := &top.View{
		UIDMap: uids, GIDMap: gids, Users: map[int]string{}, Groups: map[int]string{},
		HostUsers:  func(id int) string { u, err := user.LookupId(strconv.Itoa(id)); return nameOr(u, err) },
		HostGroups: func(id int) string { g, err := user.LookupGroupId(strconv.Itoa(id)); return groupOr(g, err) },
		Now:        time.Now(), Boot: boot,
	}
	// Names are a convenience: without them, ids are shown.
	if text, err := inroot.ReadFile(proc+"/root", "/etc/passwd", maxNamesFile); err == nil {
		for _, u := range ParsePasswd(text) {
			if _, dup := v.Users[int(u.UID)]; !dup {
				v.Users[int(u.UID)] = u.Name
			}
		}
	}
	if text, err := inroot.ReadFile(proc+"/root", "/etc/group", maxNamesFile); err == nil {
		for _, g := range ParseGroup(text) {
			if _, dup := v.Groups[int(g.GID)]; !dup {
				v.Groups[int(g.GID)] = g.Name
			}
		}
	}
	return v, nil
}

func nameOr(u *user.User, err error) string {
	if err != nil {
		return ""
	}
	return u.Username
}

func groupOr(g *user.Group, err error) string {
	if err != nil {
		return ""
	}
	return g.Name
}
