package containers

import (
	"encoding/csv"
	"fmt"
	"math"
	"net"
	"path"
	"slices"
	"strconv"
	"strings"

	"github.com/moby/sys/capability"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/volumes"
)

// NamedVolume is a -v NAME:/dst or --mount type=volume request: the caller
// resolves (or creates) the volume and turns it into a bind mount with
// VolumeMount.
type NamedVolume struct {
	Name    string // "" for an anonymous volume (-v /dst)
	Dest    string
	Options []string // as given, validated (ro, nodev, U, ...)
}

// mountSet collects the mounts of -v, --mount and --tmpfs, keyed by
// destination, in the order they were given.
type mountSet struct {
	mounts  []specs.Mount
	volumes []NamedVolume
	chown   []string // destinations with the U option
}

func (s *mountSet) taken(dst string) bool {
	for _, m := range s.mounts {
		if m.Destination == dst {
			return true
		}
	}
	for _, v := range s.volumes {
		if v.Dest == dst {
			return true
		}
	}
	return false
}

func (s *mountSet) addMount(flag string, m specs.Mount) error {
	if s.taken(m.Destination) {
		return fmt.Errorf("%s: duplicate mount destination %s", flag, m.Destination)
	}
	s.mounts = append(s.mounts, m)
	return nil
}

func (s *mountSet) addVolume(flag string, v NamedVolume) error {
	if s.taken(v.Dest) {
		return fmt.Errorf("%s: duplicate mount destination %s", flag, v.Dest)
	}
	s.volumes = append(s.volumes, v)
	return nil
}

// ctrPath validates a destination: absolute, then cleaned.
func ctrPath(flag, p string) (string, error) {
	if p == "" {
		return "", fmt.Errorf("%s: container path cannot be empty", flag)
	}
	if !path.IsAbs(p) {
		return "", fmt.Errorf("%s: container path %q must be absolute", flag, p)
	}
	return path.Clean(p), nil
}

// hostPath makes a bind source absolute: "./x", "../x", "." and ".x" are
// relative to cwd (podman resolves them against its working directory).
func hostPath(flag, src, cwd string) (string, error) {
	if path.IsAbs(src) {
		return path.Clean(src), nil
	}
	if cwd == "" || !path.IsAbs(cwd) {
		return "", fmt.Errorf("%s: relative host path %q needs the current directory, which is unknown", flag, src)
	}
	return path.Join(cwd, src), nil
}

// parseVolume parses one -v [SRC:]DST[:OPTS]. SRC is a host path when it
// starts with "/" or ".", else a volume name.
func parseVolume(v, cwd string, s *mountSet) error {
	flag := "-v " + v
	parts := strings.Split(v, ":")
	if len(parts) > 3 {
		return fmt.Errorf("%s: incorrect volume format, should be [host-dir:]ctr-dir[:option]", flag)
	}
	if len(parts) == 1 { // anonymous volume
		dst, err := ctrPath(flag, parts[0])
		if err != nil {
			return err
		}
		return s.addVolume(flag, NamedVolume{Dest: dst})
	}
	src := parts[0]
	if src == "" {
		return fmt.Errorf("%s: host directory cannot be empty", flag)
	}
	dst, err := ctrPath(flag, parts[1])
	if err != nil {
		return err
	}
	var opts []string
	if len(parts) == 3 {
		if opts, err = volumeOpts(flag, strings.Split(parts[2], ",")); err != nil {
			return err
		}
	}
	if strings.HasPrefix(src, "/") || strings.HasPrefix(src, ".") {
		src, err := hostPath(flag, src, cwd)
		if err != nil {
			return err
		}
		m, chown, err := bindMount(flag, src, dst, opts)
		if err != nil {
			return err
		}
		if chown {
			s.chown = append(s.chown, dst)
		}
		return s.addMount(flag, m)
	}
	if !volumes.MatchesNameRule(src) {
		return fmt.Errorf("%s: %q is neither an absolute host path nor a volume name (write ./%s for a path relative to the current directory)", flag, src, src)
	}
	return s.addVolume(flag, NamedVolume{Name: src, Dest: dst, Options: opts})
}

// volumeOpts checks -v options (common/pkg/parse.ValidateVolumeOpts):
// known names, one of each kind. cached and delegated (macOS) are dropped.
func volumeOpts(flag string, in []string) ([]string, error) {
	kinds := map[string]string{
		"ro": "rw/ro", "rw": "rw/ro", "noexec": "exec", "exec": "exec", "nodev": "dev", "dev": "dev",
		"nosuid": "suid", "suid": "suid", "z": "label", "Z": "label", "U": "U",
		"private": "propagation", "rprivate": "propagation", "shared": "propagation", "rshared": "propagation",
		"slave": "propagation", "rslave": "propagation", "unbindable": "propagation", "runbindable": "propagation",
		"bind": "bind", "rbind": "bind", "copy": "copy", "nocopy": "copy",
	}
	seen := map[string]string{}
	var out []string
	for _, o := range in {
		switch {
		case o == "cached" || o == "delegated":
			continue
		case o == "O" || strings.HasPrefix(o, "upperdir") || strings.HasPrefix(o, "workdir"):
			return nil, fmt.Errorf("%s: overlay volumes (option %q) are not supported by sandy", flag, o)
		case strings.HasPrefix(o, "idmap"):
			return nil, fmt.Errorf("%s: option %q: an idmapped mount needs privilege in the initial user namespace (docs/troubleshooting.md#idmap)", flag, o)
		}
		k, ok := kinds[o]
		if !ok {
			return nil, fmt.Errorf("%s: invalid option %q", flag, o)
		}
		if prev, dup := seen[k]; dup {
			return nil, fmt.Errorf("%s: options %q and %q: only one %s option", flag, prev, o, k)
		}
		seen[k] = o
		out = append(out, o)
	}
	return out, nil
}

// bindMount builds a bind mount with podman's defaults (pkg/util
// ProcessOptions): rw, rprivate and rbind unless given. z and Z (SELinux
// relabelling) are dropped, as podman drops them once it has relabelled;
// U is returned as chown. The flags the kernel locked on the source
// (nosuid, nodev, noexec) are kept by the runtime, which reads them from
// the source mount.
func bindMount(flag, src, dst string, opts []string) (specs.Mount, bool, error) {
	var out []string
	var rw, prop, bind, chown bool
	for _, o := range opts {
		switch o {
		case "z", "Z", "copy", "nocopy":
			continue
		case "U":
			chown = true
			continue
		case "ro", "rw":
			rw = true
		case "bind", "rbind":
			bind = true
		case "private", "rprivate", "shared", "rshared", "slave", "rslave", "unbindable", "runbindable":
			prop = true
		}
		out = append(out, o)
	}
	if !rw {
		out = append(out, "rw")
	}
	if !prop {
		out = append(out, "rprivate")
	}
	if !bind {
		out = append(out, "rbind")
	}
	return specs.Mount{Destination: dst, Type: "bind", Source: src, Options: out}, chown, nil
}

// VolumeMount turns a resolved named volume into its bind mount: source is
// the volume's directory on the host.
func VolumeMount(v NamedVolume, source string) specs.Mount {
	m, _, _ := bindMount("", source, v.Dest, v.Options)
	return m
}

// tmpfsMount builds a tmpfs with podman's defaults: rw, rprivate, nosuid,
// nodev and tmpcopyup unless given (notmpcopyup removes it).
func tmpfsMount(flag, dst string, opts []string) (specs.Mount, error) {
	var out []string
	seen := map[string]string{}
	for _, o := range opts {
		name, _, _ := strings.Cut(o, "=")
		kind := map[string]string{
			"ro": "rw", "rw": "rw", "exec": "exec", "noexec": "exec", "suid": "suid", "nosuid": "suid",
			"dev": "dev", "nodev": "dev", "size": "size", "mode": "mode", "tmpcopyup": "copyup", "notmpcopyup": "copyup",
			"private": "prop", "rprivate": "prop", "shared": "prop", "rshared": "prop", "slave": "prop",
			"rslave": "prop", "unbindable": "prop", "runbindable": "prop", "U": "U",
			"uid": "uid", "gid": "gid", "nr_inodes": "nr_inodes", "nr_blocks": "nr_blocks",
		}[name]
		if kind == "" {
			return specs.Mount{}, fmt.Errorf("%s: unknown tmpfs option %q", flag, o)
		}
		if prev, dup := seen[kind]; dup {
			return specs.Mount{}, fmt.Errorf("%s: options %q and %q: only one %s option", flag, prev, o, kind)
		}
		seen[kind] = o
		if name == "size" {
			if _, err := ramInBytes(o[len("size="):]); err != nil && !strings.HasSuffix(o, "%") {
				return specs.Mount{}, fmt.Errorf("%s: %s: %w", flag, o, err)
			}
		}
		if o == "notmpcopyup" {
			continue
		}
		out = append(out, o)
	}
	for _, d := range []struct{ kind, opt string }{{"rw", "rw"}, {"prop", "rprivate"}, {"suid", "nosuid"}, {"dev", "nodev"}, {"copyup", "tmpcopyup"}} {
		if _, ok := seen[d.kind]; !ok {
			out = append(out, d.opt)
		}
	}
	return specs.Mount{Destination: dst, Type: "tmpfs", Source: "tmpfs", Options: out}, nil
}

// parseTmpfs parses one --tmpfs DST[:OPT,OPT...].
func parseTmpfs(v string, s *mountSet) error {
	flag := "--tmpfs " + v
	dst, optStr, _ := strings.Cut(v, ":")
	dst, err := ctrPath(flag, dst)
	if err != nil {
		return err
	}
	var opts []string
	if optStr != "" {
		opts = strings.Split(optStr, ",")
	}
	m, err := tmpfsMount(flag, dst, opts)
	if err != nil {
		return err
	}
	return s.addMount(flag, m)
}

// parseMount parses one --mount type=bind|tmpfs|volume,KEY[=VALUE],...
// (podman's pkg/specgenutil Mounts).
func parseMount(v, cwd string, s *mountSet) error {
	flag := "--mount " + v
	recs, err := csv.NewReader(strings.NewReader(v)).ReadAll()
	if err != nil || len(recs) != 1 {
		return fmt.Errorf("%s: incorrect mount format: should be --mount type=<bind|tmpfs|volume>,[src=<host-dir|volume-name>,]target=<ctr-dir>[,options]", flag)
	}
	var typ, src, dst string
	var opts []string
	for _, f := range recs[0] {
		k, val, hasVal := strings.Cut(f, "=")
		switch k {
		case "type":
			typ = val
		case "src", "source":
			if !hasVal || val == "" {
				return fmt.Errorf("%s: %s needs a value", flag, k)
			}
			src = val
		case "dst", "destination", "target":
			if !hasVal {
				return fmt.Errorf("%s: %s needs a value", flag, k)
			}
			if dst, err = ctrPath(flag, val); err != nil {
				return err
			}
		case "readonly", "ro", "rw":
			if k == "readonly" {
				k = "ro"
			}
			switch strings.ToLower(val) {
			case "", "true":
				opts = append(opts, k)
			case "false":
				if k == "rw" {
					opts = append(opts, "ro")
				}
			default:
				return fmt.Errorf("%s: %s must be true or false, not %q", flag, k, val)
			}
		case "bind-propagation":
			if val == "" {
				return fmt.Errorf("%s: bind-propagation needs a value", flag)
			}
			opts = append(opts, val)
		case "bind-nonrecursive":
			opts = append(opts, "bind")
		case "relabel":
			switch val {
			case "private":
				opts = append(opts, "Z")
			case "shared":
				opts = append(opts, "z")
			default:
				return fmt.Errorf("%s: relabel must be private or shared, not %q", flag, val)
			}
		case "U", "chown":
			switch strings.ToLower(val) {
			case "", "true":
				opts = append(opts, "U")
			case "false":
			default:
				return fmt.Errorf("%s: %s must be true or false, not %q", flag, k, val)
			}
		case "tmpfs-size":
			opts = append(opts, "size="+val)
		case "tmpfs-mode":
			opts = append(opts, "mode="+val)
		case "consistency":
		default:
			if hasVal {
				return fmt.Errorf("%s: unknown option %q", flag, f)
			}
			opts = append(opts, k)
		}
	}
	if typ == "" {
		return fmt.Errorf("%s: missing type= (bind, tmpfs or volume)", flag)
	}
	if dst == "" {
		return fmt.Errorf("%s: must set the destination (target=)", flag)
	}
	switch typ {
	case "bind":
		if src == "" {
			return fmt.Errorf("%s: a bind mount needs src=", flag)
		}
		if src, err = hostPath(flag, src, cwd); err != nil {
			return err
		}
		if opts, err = volumeOpts(flag, opts); err != nil {
			return err
		}
		m, chown, err := bindMount(flag, src, dst, opts)
		if err != nil {
			return err
		}
		if chown {
			s.chown = append(s.chown, dst)
		}
		return s.addMount(flag, m)
	case "tmpfs":
		if src != "" {
			return fmt.Errorf("%s: source is not supported with tmpfs mounts", flag)
		}
		m, err := tmpfsMount(flag, dst, opts)
		if err != nil {
			return err
		}
		return s.addMount(flag, m)
	case "volume":
		if src != "" && !volumes.MatchesNameRule(src) {
			return fmt.Errorf("%s: invalid volume name %q", flag, src)
		}
		if opts, err = volumeOpts(flag, opts); err != nil {
			return err
		}
		return s.addVolume(flag, NamedVolume{Name: src, Dest: dst, Options: opts})
	default:
		return fmt.Errorf("%s: unsupported mount type %q (bind, tmpfs or volume)", flag, typ)
	}
}

// parseEnvLine applies one -e or --env-file line to env: K=V sets, K
// copies the host's value (nothing when unset), K* copies every host
// variable whose name starts with K (podman's pkg/env parseEnv).
func parseEnvLine(env *envList, line string, host map[string]string) error {
	name, val, hasVal := strings.Cut(line, "=")
	name = strings.TrimLeft(name, " \t")
	if name == "" {
		return fmt.Errorf("invalid environment variable: %q", line)
	}
	switch {
	case hasVal:
		env.set(name, val)
	case strings.HasSuffix(name, "*"):
		prefix := strings.TrimSuffix(name, "*")
		keys := make([]string, 0, len(host))
		for k := range host {
			if strings.HasPrefix(k, prefix) {
				keys = append(keys, k)
			}
		}
		slices.Sort(keys)
		for _, k := range keys {
			env.set(k, host[k])
		}
	default:
		if v, ok := host[name]; ok {
			env.set(name, v)
		}
	}
	return nil
}

// parseEnvFile applies the content of one --env-file: one variable per
// line, blank lines and lines starting with # skipped, no quoting (as
// podman 4).
func parseEnvFile(env *envList, name, content string, host map[string]string) error {
	for i, line := range strings.Split(content, "\n") {
		line = strings.TrimRight(strings.TrimLeft(line, " \t"), "\r")
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		if err := parseEnvLine(env, line, host); err != nil {
			return fmt.Errorf("--env-file %s line %d: %w", name, i+1, err)
		}
	}
	return nil
}

// envList is an ordered environment: setting a name again replaces its
// value in place.
type envList struct{ kv []string }

func (e *envList) index(name string) int {
	for i, kv := range e.kv {
		if k, _, _ := strings.Cut(kv, "="); k == name {
			return i
		}
	}
	return -1
}

func (e *envList) set(name, val string) {
	if i := e.index(name); i >= 0 {
		e.kv[i] = name + "=" + val
		return
	}
	e.kv = append(e.kv, name+"="+val)
}

func (e *envList) has(name string) bool { return e.index(name) >= 0 }

// ramInBytes parses a size exactly as go-units v0.5.0's RAMInBytes
// (podman's parser; TestRAMInBytes compares the two): a number (Go float
// syntax), an optional space, then an optional unit: b, or k, m, g, t, p
// (binary: k = 1024) alone or followed by "b" or "ib", in any case.
// Written out rather than imported: go-units builds maps at package init,
// which every sandy process (the container's init too) would pay.
func ramInBytes(s string) (int64, error) {
	sep := strings.LastIndexAny(s, "01234567890. ")
	if sep == -1 {
		return -1, fmt.Errorf("invalid size: '%s'", s)
	}
	num, sfx := s[:sep+1], s[sep+1:]
	if s[sep] == ' ' {
		num = s[:sep]
	}
	size, err := strconv.ParseFloat(num, 64)
	if err != nil {
		return -1, fmt.Errorf("invalid size: '%s'", s)
	}
	if size < 0 {
		return -1, fmt.Errorf("invalid size: '%s'", s)
	}
	if sfx == "" {
		return int64(size), nil
	}
	bad := fmt.Errorf("invalid suffix: '%s'", sfx)
	sfx = strings.ToLower(sfx)
	if len(sfx) > 3 {
		return -1, bad
	}
	if sfx[0] == 'b' {
		if len(sfx) > 1 {
			return -1, bad
		}
		return int64(size), nil
	}
	i := strings.IndexByte("kmgtp", sfx[0])
	if i < 0 || (len(sfx) == 2 && sfx[1] != 'b') || (len(sfx) == 3 && sfx[1:] != "ib") {
		return -1, bad
	}
	return int64(size * float64(int64(1)<<(10*(i+1)))), nil
}

// parseMemory parses --memory: a number with an optional b, k, m, g
// suffix, binary units (go-units RAMInBytes, as podman).
func parseMemory(v string) (int64, error) {
	n, err := ramInBytes(v)
	if err != nil {
		return 0, fmt.Errorf("--memory %q: %w (write e.g. 512m or 1g)", v, err)
	}
	if n < 6*1024*1024 {
		return 0, fmt.Errorf("--memory %q: the minimum memory limit is 6m", v)
	}
	return n, nil
}

// cpuPeriod is the CFS period podman uses for --cpus.
const cpuPeriod = 100000

// parseCPUs parses --cpus into a CFS quota for cpuPeriod.
func parseCPUs(v string) (int64, error) {
	f, err := strconv.ParseFloat(v, 64)
	if err != nil || f <= 0 || math.IsInf(f, 0) || math.IsNaN(f) {
		return 0, fmt.Errorf("--cpus %q: not a positive number of CPUs (e.g. 1.5)", v)
	}
	q := int64(f * cpuPeriod)
	if q < 1000 {
		return 0, fmt.Errorf("--cpus %q: below the kernel's minimum CFS quota of 1ms per 100ms (0.01 CPUs)", v)
	}
	return q, nil
}

// knownCaps returns every capability name the capability package knows,
// as "CAP_X".
func knownCaps() []string {
	var out []string
	for _, c := range capability.ListKnown() {
		out = append(out, "CAP_"+strings.ToUpper(c.String()))
	}
	slices.Sort(out)
	return out
}

// normalizeCaps upper-cases names and adds the CAP_ prefix; "ALL" stays.
func normalizeCaps(flag string, in []string) ([]string, error) {
	known := knownCaps()
	var out []string
	for _, c := range in {
		c = strings.ToUpper(strings.TrimSpace(c))
		if c == "ALL" {
			out = append(out, c)
			continue
		}
		if !strings.HasPrefix(c, "CAP_") {
			c = "CAP_" + c
		}
		if !slices.Contains(known, c) {
			return nil, fmt.Errorf("%s: unknown capability %q (names as in capabilities(7), e.g. NET_ADMIN)", flag, c)
		}
		out = append(out, c)
	}
	return out, nil
}

// mergeCaps is common/pkg/capabilities.MergeCapabilities: base plus adds
// minus drops, sorted; ALL in adds means all, ALL in drops keeps only
// adds; a name both added and dropped is an error.
func mergeCaps(base, adds, drops, all []string) ([]string, error) {
	add, err := normalizeCaps("--cap-add", adds)
	if err != nil {
		return nil, err
	}
	drop, err := normalizeCaps("--cap-drop", drops)
	if err != nil {
		return nil, err
	}
	if slices.Contains(drop, "ALL") {
		if slices.Contains(add, "ALL") {
			return nil, fmt.Errorf("--cap-add=ALL and --cap-drop=ALL: adding all caps and removing all caps not allowed")
		}
		out := slices.Clone(add)
		slices.Sort(out)
		return slices.Compact(out), nil
	}
	if slices.Contains(add, "ALL") {
		base, add = all, nil
	}
	for _, a := range add {
		if slices.Contains(drop, a) {
			return nil, fmt.Errorf("capability %q cannot be dropped and added", a)
		}
	}
	var out []string
	for _, c := range base {
		if !slices.Contains(drop, c) {
			out = append(out, c)
		}
	}
	out = append(out, add...)
	slices.Sort(out)
	return slices.Compact(out), nil
}

// HostEntry is one --add-host NAME:IP.
type HostEntry struct {
	Name string
	IP   net.IP
}

// parseAddHost parses --add-host HOST:IP (the IP may be IPv6, so only the
// first colon splits).
func parseAddHost(v string) (HostEntry, error) {
	name, ip, ok := strings.Cut(v, ":")
	if !ok || name == "" {
		return HostEntry{}, fmt.Errorf("--add-host %q: should be HOST:IP", v)
	}
	p := net.ParseIP(strings.Trim(ip, "[]"))
	if p == nil {
		return HostEntry{}, fmt.Errorf("--add-host %q: invalid IP address %q", v, ip)
	}
	return HostEntry{Name: name, IP: p}, nil
}
