package initproc

import (
	"encoding/json"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/overlay"
)

// warmDecoder decodes a config of the shape the host sends, so that the
// init's first decode of the real one finds encoding/json's per-type
// field lists built and its code paged in. The init (and the exec init)
// starts it on a goroutine before its hello: it runs while the init's
// main goroutine is parked on the sync socket (the netpoller frees the
// init's one P, GOMAXPROCS=1) and the host, on its own CPU, answers; the
// real decode then takes about 0.1 ms instead of 2.5-3.3 (a first
// encoding/json decode of a runtime-spec config, on this project's 2-core
// machine). A config that comes while it still runs waits for it, which
// costs what the decode would have. Nothing it makes is kept; a type it
// misses costs only time.
func warmDecoder() error {
	data, err := json.Marshal(warmSample())
	if err != nil {
		return err
	}
	var cfg Config
	if err := json.Unmarshal(data, &cfg); err != nil {
		return err
	}
	var ec ExecConfig
	return json.Unmarshal(data, &ec)
}

// warmSample has one of each part of a config that a rootless bundle, an
// image's spec or an engine's uses.
func warmSample() *Config {
	one := []string{"x"}
	hook := []specs.Hook{{Path: "/x", Args: one, Env: one, Timeout: new(int)}}
	caps := &specs.LinuxCapabilities{Bounding: one, Effective: one, Inheritable: one, Permitted: one, Ambient: one}
	idmap := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1, Size: 1}}
	limit := int64(1)
	return &Config{
		Spec: &specs.Spec{
			Version: specs.Version,
			Process: &specs.Process{
				Terminal: true, ConsoleSize: &specs.Box{Height: 1, Width: 1},
				User: specs.User{UID: 1, GID: 1, Umask: new(uint32), AdditionalGids: []uint32{1}},
				Args: one, Env: one, Cwd: "/", Capabilities: caps,
				Rlimits:         []specs.POSIXRlimit{{Type: "RLIMIT_NOFILE", Hard: 1, Soft: 1}},
				NoNewPrivileges: true, OOMScoreAdj: new(int),
			},
			Root:     &specs.Root{Path: "rootfs", Readonly: true},
			Hostname: "x",
			Mounts: []specs.Mount{{
				Destination: "/x", Type: "bind", Source: "/x", Options: one,
				UIDMappings: idmap, GIDMappings: idmap,
			}},
			Hooks: &specs.Hooks{
				CreateRuntime: hook, CreateContainer: hook,
				StartContainer: hook, Poststart: hook, Poststop: hook,
			},
			Annotations: map[string]string{"x": "x"},
			Linux: &specs.Linux{
				UIDMappings: idmap, GIDMappings: idmap,
				Sysctl: map[string]string{"x": "x"},
				Resources: &specs.LinuxResources{
					Devices: []specs.LinuxDeviceCgroup{{Allow: true, Access: "rwm"}},
					Memory:  &specs.LinuxMemory{Limit: &limit},
					CPU:     &specs.LinuxCPU{Quota: &limit},
					Pids:    &specs.LinuxPids{Limit: &limit},
					Unified: map[string]string{"x": "x"},
				},
				CgroupsPath: "x",
				Namespaces:  []specs.LinuxNamespace{{Type: specs.PIDNamespace}},
				Devices:     []specs.LinuxDevice{{Path: "/dev/x", Type: "c", FileMode: new(os.FileMode), UID: new(uint32), GID: new(uint32)}},
				Seccomp: &specs.LinuxSeccomp{
					DefaultAction: specs.ActErrno, DefaultErrnoRet: new(uint), Architectures: []specs.Arch{specs.ArchX86_64},
					Flags: []specs.LinuxSeccompFlag{specs.LinuxSeccompFlagLog},
					Syscalls: []specs.LinuxSyscall{{
						Names: one, Action: specs.ActAllow, ErrnoRet: new(uint),
						Args: []specs.LinuxSeccompArg{{Index: 1, Value: 1, ValueTwo: 1, Op: specs.OpEqualTo}},
					}},
				},
				RootfsPropagation: "private",
				MaskedPaths:       one,
				ReadonlyPaths:     one,
			},
		},
		ID: "x", Bundle: "/x", Rootfs: "/x",
		Layers: &overlay.Layers{Driver: "overlay", Lowers: one, Upper: "/x"},
	}
}
