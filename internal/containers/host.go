package containers

import (
	"fmt"
	"os"
	"os/user"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/initproc"
)

// maxRaisedRlimit caps the limits the container gets raised to (podman's
// rlimit default: the caller's hard limit, at most 1048576).
const maxRaisedRlimit = 1048576

// CallerHost gathers the Host facts of the calling process: its ids and
// account, its subordinate ranges, environment and working directory, the
// limits podman raises, and its bounding set. What cannot be read is left
// empty (the account of a uid with no passwd entry, subordinate ranges a
// user does not have): Generate and the runtime report what that costs.
func CallerHost(id, rootfs string) (Host, error) {
	h := Host{ContainerID: id, Rootfs: rootfs, UID: uint32(os.Getuid()), GID: uint32(os.Getgid())}
	h.UserName = strconv.Itoa(int(h.UID))
	if u, err := user.LookupId(h.UserName); err == nil {
		h.UserName, h.Gecos, h.Home = u.Username, u.Name, u.HomeDir
	}
	h.GroupName = strconv.Itoa(int(h.GID))
	if g, err := user.LookupGroupId(h.GroupName); err == nil {
		h.GroupName = g.Name
	}
	h.SubUIDs = subIDs("/etc/subuid", h.UserName, h.UID)
	h.SubGIDs = subIDs("/etc/subgid", h.UserName, h.UID)
	h.Env = envMap(os.Environ())
	var err error
	if h.Cwd, err = os.Getwd(); err != nil {
		return h, fmt.Errorf("reading the working directory: %w", err)
	}
	for _, rl := range []struct {
		name string
		res  int
	}{{"RLIMIT_NOFILE", unix.RLIMIT_NOFILE}, {"RLIMIT_NPROC", unix.RLIMIT_NPROC}} {
		var lim unix.Rlimit
		if unix.Getrlimit(rl.res, &lim) != nil {
			continue
		}
		v := min(lim.Max, maxRaisedRlimit)
		h.Rlimits = append(h.Rlimits, specs.POSIXRlimit{Type: rl.name, Hard: v, Soft: v})
	}
	h.AllCaps = boundingCaps()
	// --init binds the runtime's own binary: the container's init opens
	// this in its own context, so it is the copy the init runs from (the
	// sealed one when the user can write sandy's file), never a path
	// the container could redirect.
	h.InitPath = initproc.SelfBinary
	return h, nil
}

func subIDs(file, name string, id uint32) []idmap.SubIDRange {
	f, err := os.Open(file)
	if err != nil {
		return nil
	}
	defer f.Close()
	r, _ := idmap.ParseSubID(f, name, id)
	return r
}

// boundingCaps are the capabilities in the caller's bounding set, which
// is what --privileged can grant at most.
func boundingCaps() []string {
	c, err := capability.NewPid2(0)
	if err != nil || c.Load() != nil {
		return nil
	}
	var out []string
	for _, cp := range capability.ListKnown() {
		if c.Get(capability.BOUNDING, cp) {
			out = append(out, "CAP_"+strings.ToUpper(cp.String()))
		}
	}
	return out
}

// envMap is an environment ("K=V" lines) by name.
func envMap(env []string) map[string]string {
	m := make(map[string]string, len(env))
	for _, kv := range env {
		if k, v, ok := strings.Cut(kv, "="); ok {
			m[k] = v
		}
	}
	return m
}
