package containers

import (
	"context"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strconv"

	"github.com/sandy-rt/sandy/internal/inroot"
	"github.com/sandy-rt/sandy/internal/lifecycle"
)

// ExecRequest is podman exec's part of `sandy container exec`: what is
// resolved against the container (its name, its users) and the host (the
// environment) before the runtime's exec runs.
type ExecRequest struct {
	Ref      string   // name, id or unique id prefix
	Env      []string // -e K=V, K (the host's value), K* (the host's by prefix)
	EnvFiles []string // --env-file
	User     string   // -u USER[:GROUP] | UID[:GID], names from the container's files
	HostEnv  []string // the caller's environment (os.Environ())
	// Privileged: every capability sandy holds (run --privileged's set),
	// whatever the container was given.
	Privileged bool
}

// PrepareExec fills o's id, environment and user from r: the container
// resolved (it must run), -e and --env-file applied as run's are, and
// -u resolved through the container's own /etc/passwd and /etc/group
// (read in-root through its init, as runc's GetExecUser reads them for
// podman), with HOME set to the user's home when the user has an entry
// and -e did not set it.
func (m Manage) PrepareExec(ctx context.Context, r ExecRequest, o *lifecycle.ExecOptions) error {
	id, err := m.Resolve(ctx, r.Ref)
	if err != nil {
		return err
	}
	o.ID = id
	host := envMap(r.HostEnv)
	env := &envList{}
	for _, name := range r.EnvFiles {
		b, err := os.ReadFile(name)
		if err != nil {
			return fmt.Errorf("--env-file: %w", err)
		}
		if err := parseEnvFile(env, name, string(b), host); err != nil {
			return err
		}
	}
	for _, line := range r.Env {
		if err := parseEnvLine(env, line, host); err != nil {
			return fmt.Errorf("-e: %w", err)
		}
	}
	if r.User != "" {
		pid, _, err := lifecycle.InitProcess(m.G, id, "exec")
		if err != nil {
			return err
		}
		db, err := containerUserDB(pid)
		if err != nil {
			return err
		}
		u, err := db.Resolve(r.User)
		if err != nil {
			return fmt.Errorf("-u %s: %w (in the container's /etc/passwd and /etc/group)", r.User, err)
		}
		o.User = strconv.FormatUint(uint64(u.UID), 10) + ":" + strconv.FormatUint(uint64(u.GID), 10)
		for _, g := range u.Sgids {
			o.AdditionalGID = append(o.AdditionalGID, int64(g))
		}
		if u.Home != "" && !env.has("HOME") {
			env.set("HOME", u.Home)
		}
	}
	o.Env = append(o.Env, env.kv...)
	if r.Privileged {
		o.PrivilegedCaps = boundingCaps()
	}
	return nil
}

// containerUserDB reads a running container's /etc/passwd and /etc/group
// through its init's root, in-root; a missing file is an empty one.
func containerUserDB(pid int) (UserDB, error) {
	root := "/proc/" + strconv.Itoa(pid) + "/root"
	read := func(p string) (string, error) {
		text, err := inroot.ReadFile(root, p, maxNamesFile)
		if errors.Is(err, fs.ErrNotExist) {
			return "", nil
		}
		if err != nil {
			return "", fmt.Errorf("reading the container's %s: %w", p, err)
		}
		return text, nil
	}
	passwd, err := read("/etc/passwd")
	if err != nil {
		return UserDB{}, err
	}
	group, err := read("/etc/group")
	if err != nil {
		return UserDB{}, err
	}
	return UserDB{Users: ParsePasswd(passwd), Groups: ParseGroup(group)}, nil
}
