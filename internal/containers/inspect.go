package containers

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"slices"
	"strings"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/volumes"
)

// Inspected is `sandy container inspect`'s record of a container: podman's
// JSON names and shape (libpod's InspectContainerData) for the fields
// sandy has.
type Inspected struct {
	ID              string            `json:"Id"`
	Created         time.Time         `json:"Created"`
	Path            string            `json:"Path"`
	Args            []string          `json:"Args"`
	State           InspectState      `json:"State"`
	Image           string            `json:"Image"`
	ImageName       string            `json:"ImageName"`
	Name            string            `json:"Name"`
	OCIConfigPath   string            `json:"OCIConfigPath"`
	OCIRuntime      string            `json:"OCIRuntime"`
	LogPath         string            `json:"LogPath,omitempty"`
	Mounts          []InspectMount    `json:"Mounts"`
	NetworkSettings InspectNetwork    `json:"NetworkSettings"`
	Config          InspectConfig     `json:"Config"`
	EffectiveCaps   []string          `json:"EffectiveCaps"`
	BoundingCaps    []string          `json:"BoundingCaps"`
	HostConfig      InspectHostConfig `json:"HostConfig"`
}

// InspectState is the container's state, as podman's State.
type InspectState struct {
	OciVersion string     `json:"OciVersion"`
	Status     string     `json:"Status"`
	Running    bool       `json:"Running"`
	Paused     bool       `json:"Paused"`
	Dead       bool       `json:"Dead"`
	Pid        int        `json:"Pid"`
	ExitCode   int        `json:"ExitCode"`
	Error      string     `json:"Error"`
	StartedAt  *time.Time `json:"StartedAt,omitempty"`
	FinishedAt *time.Time `json:"FinishedAt,omitempty"`
}

// InspectMount is a volume or bind mount the flags asked for.
type InspectMount struct {
	Type        string   `json:"Type"`
	Name        string   `json:"Name,omitempty"`
	Source      string   `json:"Source"`
	Destination string   `json:"Destination"`
	Options     []string `json:"Options"`
	RW          bool     `json:"RW"`
	Propagation string   `json:"Propagation"`
}

// InspectNetwork holds the published ports, as podman's
// NetworkSettings.Ports: "80/tcp" → [{HostIp, HostPort}].
type InspectNetwork struct {
	Ports map[string][]InspectHostPort `json:"Ports"`
}

// InspectHostPort is one host side of a published port.
type InspectHostPort struct {
	HostIP   string `json:"HostIp"`
	HostPort string `json:"HostPort"`
}

// InspectConfig is the container's configuration, as podman's Config.
type InspectConfig struct {
	Hostname    string            `json:"Hostname"`
	User        string            `json:"User"`
	Env         []string          `json:"Env"`
	Cmd         []string          `json:"Cmd"`
	Image       string            `json:"Image"`
	WorkingDir  string            `json:"WorkingDir"`
	Labels      map[string]string `json:"Labels"`
	Annotations map[string]string `json:"Annotations,omitempty"`
	StopSignal  string            `json:"StopSignal"`
	Tty         bool              `json:"Tty"`
}

// InspectHostConfig is the part of podman's HostConfig sandy has: the
// limits are the spec's (--memory, --cpus, --pids-limit), 0 for none.
type InspectHostConfig struct {
	NetworkMode    string `json:"NetworkMode"`
	AutoRemove     bool   `json:"AutoRemove"`
	ReadonlyRootfs bool   `json:"ReadonlyRootfs"`
	Privileged     bool   `json:"Privileged"`
	Memory         int64  `json:"Memory"`
	MemorySwap     int64  `json:"MemorySwap"`
	NanoCpus       int64  `json:"NanoCpus"`
	CpuPeriod      uint64 `json:"CpuPeriod"`
	CpuQuota       int64  `json:"CpuQuota"`
	PidsLimit      int64  `json:"PidsLimit"`
}

// resources fills the limits from the spec's resources.
func (h *InspectHostConfig) resources(r *specs.LinuxResources) {
	if r == nil {
		return
	}
	if m := r.Memory; m != nil {
		if m.Limit != nil {
			h.Memory = *m.Limit
		}
		if m.Swap != nil {
			h.MemorySwap = *m.Swap
		}
	}
	if c := r.CPU; c != nil && c.Quota != nil && c.Period != nil && *c.Period > 0 {
		h.CpuQuota, h.CpuPeriod = *c.Quota, *c.Period
		if *c.Quota > 0 {
			h.NanoCpus = *c.Quota * 1e9 / int64(*c.Period)
		}
	}
	if p := r.Pids; p != nil && p.Limit != nil {
		h.PidsLimit = *p.Limit
	}
}

// Inspect builds the records of the containers refs name (name, id or
// unique id prefix), in order; the first unknown one is an error.
func (m Manage) Inspect(ctx context.Context, refs []string) ([]Inspected, error) {
	volRoot, _ := volumes.DefaultRoot()
	out := make([]Inspected, 0, len(refs))
	for _, ref := range refs {
		c, err := m.Find(ctx, ref)
		if err != nil {
			return nil, err
		}
		in, err := inspect(m.G, c, volRoot)
		if err != nil {
			return nil, fmt.Errorf("container %s: %w", short(c.ID), err)
		}
		out = append(out, in)
	}
	return out, nil
}

func inspect(g *lifecycle.Global, c Listed, volRoot string) (Inspected, error) {
	cfgPath := filepath.Join(c.dir, "config.json")
	b, err := os.ReadFile(cfgPath)
	if err != nil {
		return Inspected{}, err
	}
	var s specs.Spec
	if err := json.Unmarshal(b, &s); err != nil {
		return Inspected{}, fmt.Errorf("reading %s: %w", cfgPath, err)
	}
	in := Inspected{
		ID: c.ID, Created: c.Created, Image: c.ImageID, ImageName: c.Image, OCIConfigPath: cfgPath, OCIRuntime: "sandy",
		Mounts: []InspectMount{}, NetworkSettings: InspectNetwork{Ports: map[string][]InspectHostPort{}},
		Config:     InspectConfig{Hostname: s.Hostname, Image: c.Image, Annotations: s.Annotations, StopSignal: c.rec.StopSignal},
		HostConfig: InspectHostConfig{NetworkMode: c.rec.Network, AutoRemove: c.rec.Rm, ReadonlyRootfs: s.Root != nil && s.Root.Readonly},
	}
	if len(c.Names) > 0 {
		in.Name = c.Names[0]
	}
	in.Config.Labels = c.Labels
	if in.Config.Labels == nil {
		in.Config.Labels = map[string]string{}
	}
	if s.Linux != nil {
		in.HostConfig.resources(s.Linux.Resources)
	}
	if in.Config.StopSignal == "" {
		in.Config.StopSignal = "SIGTERM"
	}
	if c.rec.Detached && c.rec.LogDriver != "none" {
		in.LogPath = filepath.Join(c.dir, LogFile)
	}
	if p := s.Process; p != nil {
		if len(p.Args) > 0 {
			in.Path, in.Args = p.Args[0], slices.Clone(p.Args[1:])
		}
		in.Config.Cmd, in.Config.Env, in.Config.WorkingDir, in.Config.Tty = p.Args, p.Env, p.Cwd, p.Terminal
		in.Config.User = fmt.Sprintf("%d:%d", p.User.UID, p.User.GID)
		if caps := p.Capabilities; caps != nil {
			in.EffectiveCaps, in.BoundingCaps = caps.Effective, caps.Bounding
			in.HostConfig.Privileged = len(caps.Bounding) > 0 && slices.Contains(caps.Bounding, "CAP_SYS_ADMIN") && s.Linux != nil && s.Linux.Seccomp == nil && len(s.Linux.MaskedPaths) == 0
		}
	}
	in.State = inspectState(g, c)
	for _, p := range c.Ports {
		key := fmt.Sprintf("%d/%s", p.ContainerPort, p.Protocol)
		host := p.HostIP
		if host == "" {
			host = "0.0.0.0"
		}
		in.NetworkSettings.Ports[key] = append(in.NetworkSettings.Ports[key], InspectHostPort{HostIP: host, HostPort: fmt.Sprint(p.HostPort)})
	}
	for _, m := range s.Mounts {
		if im, ok := userMount(m, c.dir, volRoot); ok {
			in.Mounts = append(in.Mounts, im)
		}
	}
	return in, nil
}

// inspectState is the State object: the runtime's state for a container
// that has one (its pid), the record's exit status otherwise.
func inspectState(g *lifecycle.Global, c Listed) InspectState {
	st := InspectState{OciVersion: specs.Version, Status: c.State, StartedAt: c.Started, FinishedAt: c.Finished}
	switch c.State {
	case "running", "paused", "created", "creating":
		st.Running, st.Paused = c.State == "running", c.State == "paused"
		var buf bytes.Buffer
		var oci struct {
			Pid int `json:"pid"`
		}
		if lifecycle.State(g, c.ID, &buf) == nil && json.Unmarshal(buf.Bytes(), &oci) == nil {
			st.Pid = oci.Pid
		}
	}
	if c.ExitCode != nil {
		st.ExitCode = *c.ExitCode
	}
	if c.MonitorGone {
		st.Dead, st.Error = true, "its monitor was killed: the container ended without an exit status"
	}
	return st
}

// userMount reports the mounts the flags asked for (volumes and binds),
// as podman's Mounts lists them; the runtime's own (proc, /dev, the
// files sandy adds from the container's directory, the init) are left out.
func userMount(m specs.Mount, dir, volRoot string) (InspectMount, bool) {
	if m.Type != "bind" && !slices.Contains(m.Options, "bind") && !slices.Contains(m.Options, "rbind") {
		return InspectMount{}, false
	}
	if strings.HasPrefix(m.Source, dir+"/") || !filepath.IsAbs(m.Source) {
		return InspectMount{}, false
	}
	im := InspectMount{Type: "bind", Source: m.Source, Destination: m.Destination, RW: true, Propagation: "rprivate"}
	for _, o := range m.Options {
		switch o {
		case "ro":
			im.RW = false
		case "private", "rprivate", "shared", "rshared", "slave", "rslave":
			im.Propagation = o
		case "copyup", "chownup", "rchown", "rbind", "bind", "rw":
		default:
			im.Options = append(im.Options, o)
		}
	}
	if im.Options == nil {
		im.Options = []string{}
	}
	if volRoot != "" {
		if rel, ok := strings.CutPrefix(m.Source, volRoot+"/"); ok {
			if name, rest, _ := strings.Cut(rel, "/"); rest == "_data" {
				im.Type, im.Name = "volume", name
			}
		}
	}
	return im, true
}
