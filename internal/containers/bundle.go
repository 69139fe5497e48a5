package containers

import (
	"errors"
	"fmt"
	"io/fs"
	"path"
	"slices"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"
)

// ApplyToBundle changes a bundle's spec for one `sandy run ./bundle`: the
// COMMAND after the bundle replaces process.args; --env-file then -e are
// merged into process.env (a name set again keeps its place, as in
// Generate); -w sets process.cwd; -t sets process.terminal; -v, --mount
// and --tmpfs add mounts, replacing a config mount with the same
// destination, and the mounts are then sorted by depth, stable (podman's
// sortMounts). The flags mean what they mean for an image (podman's
// syntax and defaults, the same parsers).
//
// Flags that only a container from an image has (-u, --entrypoint,
// --cap-add, ...) are refused with the config.json field to edit instead,
// and so are named and anonymous volumes and the U option: a bundle has
// no volume store and no user to chown to.
//
// It is pure (it reads no file: EditBundle checks the bind sources) and
// all or nothing: on error s is unchanged.
func ApplyToBundle(s *specs.Spec, o Options, h Host) error {
	if err := imageOnly(o); err != nil {
		return err
	}
	ms, err := bundleMounts(o, h)
	if err != nil {
		return err
	}
	if s.Process == nil {
		s.Process = &specs.Process{Cwd: "/"}
	}
	p := *s.Process
	if len(o.Command) > 0 {
		p.Args = slices.Clone(o.Command)
	}
	e := envList{kv: slices.Clone(p.Env)}
	for _, f := range o.EnvFiles {
		if err := parseEnvFile(&e, f.Name, f.Content, h.Env); err != nil {
			return err
		}
	}
	for _, l := range o.Env {
		if err := parseEnvLine(&e, l, h.Env); err != nil {
			return fmt.Errorf("-e: %w", err)
		}
	}
	p.Env = e.kv
	if o.Workdir != "" {
		if !path.IsAbs(o.Workdir) {
			return fmt.Errorf("-w %q: the working directory must be an absolute path", o.Workdir)
		}
		p.Cwd = path.Clean(o.Workdir)
	}
	if o.Terminal {
		p.Terminal = true
	}
	if len(ms.mounts) > 0 {
		s.Mounts = mergeMounts(s.Mounts, ms.mounts)
	}
	s.Process = &p
	return nil
}

// EditBundle is ApplyToBundle as lifecycle's spec hook
// (CreateOptions.EditSpec), after checking that every bind source exists:
// a missing -v or --mount source is an error before anything is made, as
// with podman (`statfs SRC: no such file or directory`), not a mount
// failure inside the container.
func EditBundle(o Options, h Host) func(*specs.Spec) error {
	return func(s *specs.Spec) error {
		ms, err := bundleMounts(o, h)
		if err != nil {
			return err
		}
		for _, m := range ms.mounts {
			if m.Type != "bind" {
				continue
			}
			var st unix.Statfs_t
			if err := unix.Statfs(m.Source, &st); err != nil {
				return fmt.Errorf("bind mount source for %s: %w", m.Destination, &fs.PathError{Op: "statfs", Path: m.Source, Err: err})
			}
		}
		return ApplyToBundle(s, o, h)
	}
}

// bundleMounts parses --mount, -v and --tmpfs (in Generate's order) and
// refuses what needs a container record: volumes and the U option.
func bundleMounts(o Options, h Host) (*mountSet, error) {
	ms := &mountSet{}
	for _, m := range o.Mounts {
		if err := parseMount(m, h.Cwd, ms); err != nil {
			return nil, err
		}
	}
	for _, v := range o.Volumes {
		if err := parseVolume(v, h.Cwd, ms); err != nil {
			return nil, err
		}
	}
	for _, t := range o.Tmpfs {
		if err := parseTmpfs(t, ms); err != nil {
			return nil, err
		}
	}
	if len(ms.volumes) > 0 {
		v := ms.volumes[0]
		what := "named volume " + v.Name
		if v.Name == "" {
			what = "anonymous volume"
		}
		return nil, fmt.Errorf("%s at %s: volumes belong to containers from images; a bundle takes a host path (-v /dir:%s or -v ./dir:%s)", what, v.Dest, v.Dest, v.Dest)
	}
	if len(ms.chown) > 0 {
		return nil, fmt.Errorf("mount at %s: the U option (chown to the process user) is for containers from images; chown the source yourself", ms.chown[0])
	}
	return ms, nil
}

// mergeMounts puts the flags' mounts in place of the config's mounts with
// the same destination, then sorts them all as podman's sortMounts: fewer
// path components first, stable, so that no mount covers a later one.
func mergeMounts(config, added []specs.Mount) []specs.Mount {
	var out []specs.Mount
	for _, m := range config {
		if !slices.ContainsFunc(added, func(a specs.Mount) bool { return a.Destination == path.Clean(m.Destination) }) {
			out = append(out, m)
		}
	}
	out = append(out, added...)
	sortMounts(out)
	return out
}

// errImageOnly: a flag of `sandy run IMAGE` given for a bundle.
var errImageOnly = errors.New("applies to containers from images only")

// imageOnly refuses, naming the config.json field to edit, the options
// that ApplyToBundle does not apply: silently ignoring one would run
// something other than what was asked.
func imageOnly(o Options) error {
	for _, f := range []struct {
		set         bool
		flag, field string
	}{
		{o.Entrypoint != nil, "--entrypoint", "process.args"},
		{o.User != "", "-u/--user", "process.user"},
		{o.Hostname != "", "--hostname", "hostname"},
		{o.ReadOnly || o.NoReadOnlyTmpfs, "--read-only", "root.readonly"},
		{len(o.CapAdd)+len(o.CapDrop) > 0, "--cap-add/--cap-drop", "process.capabilities"},
		{len(o.SecurityOpt) > 0, "--security-opt", "process.noNewPrivileges and linux.seccomp"},
		{o.Privileged, "--privileged", "process.capabilities"},
		{o.Init, "--init", "process.args"},
		{len(o.Labels) > 0, "--label", "annotations"},
		{len(o.Annotations) > 0, "--annotation", "annotations"},
		{o.Memory != "" || o.CPUs != "" || o.PidsLimit != nil, "--memory/--cpus/--pids-limit", "linux.resources"},
		{len(o.DNS)+len(o.DNSSearch)+len(o.DNSOption)+len(o.AddHost) > 0, "--dns/--add-host", "the rootfs's /etc/resolv.conf and /etc/hosts"},
		{o.Network != "", "--network", "linux.namespaces"},
		{o.Userns != "", "--userns", "linux.uidMappings and linux.gidMappings"},
	} {
		if f.set {
			return fmt.Errorf("%s %w: for a bundle, edit %s in config.json", f.flag, errImageOnly, f.field)
		}
	}
	return nil
}
