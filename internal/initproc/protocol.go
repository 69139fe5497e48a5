package initproc

import (
	"encoding/json"
	"fmt"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/specjson"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/userns"
)

// Messages of the host↔init protocol, in order:
//
//	init → host  MsgHello    first thing: the host learns the init's pid from
//	                         the message's SCM_CREDENTIALS (it may run behind
//	                         nsenter and the spawn helper, in another pid
//	                         namespace)
//	host → init  MsgMaps     the uid/gid maps are written (by the clone or
//	                         before the /bin/sh gate opened, or just now for
//	                         the pid of the hello): re-exec to gain caps if
//	                         the init has none
//	host → init  MsgConfig   Config
//	init → host  MsgWarn     a warning line (a rung down the ladder), any number
//	init → host  MsgDebug    a --debug line (a step's duration), any number
//	init → host  MsgRootfs   the root filesystem rung used
//	init → host  MsgHooks    before pivot_root, when the config has prestart or
//	                         createRuntime hooks: the host runs them
//	host → init  MsgHooksDone  with the state JSON; the init then runs the
//	                         createContainer hooks itself
//	init → host  MsgPty      the pty master (one fd), when process.terminal
//	init → host  MsgRlimits  when process.rlimits is not empty, before the
//	                         id switch: the host sets them with prlimit(2)
//	                         (after the seccomp pair when no_new_privs is
//	                         false, which loads the profile first)
//	host → init  MsgRlimitsDone  they are set
//	init → host  MsgSeccomp  the seccomp notify listener (one fd), when asked
//	host → init  MsgSeccompDone  the listener is with the agent
//	init → host  MsgReady    set up; waiting on the exec fifo
//	init → host  error       a userns.ChildError, instead of any of the above
//
// The exec init (exec.go) speaks a subset: hello, config (an ExecConfig),
// pty, seccomp, rlimits, ready, then host → init MsgStart; error at any
// point.
const (
	MsgHello  = "hello"
	MsgMaps   = "maps"
	MsgConfig = "config"
	MsgWarn   = "warn"
	MsgDebug  = "debug" // init → host: a --debug line (a step's duration)
	MsgRootfs = "rootfs"
	MsgPty    = "pty"
	MsgReady  = "ready"

	MsgHooks     = "hooks"
	MsgHooksDone = "hooks-done"

	MsgSeccomp     = "seccomp"
	MsgSeccompDone = "seccomp-done"

	MsgRlimits     = "rlimits"
	MsgRlimitsDone = "rlimits-done"

	// MsgStart (host → exec init): exec the process.
	MsgStart = "start"
)

// The bytes the init writes to the exec fifo once `start` opens it. The
// host reads on until EOF, which comes when the last write end closes:
// normally the init's, close-on-exec, at its execve of the process.
const (
	// FifoReleased is the first byte: start released the init.
	FifoReleased = 0
	// FifoFailed follows when the init fails before execve (a
	// startContainer hook, execve itself).
	FifoFailed = 1
	// FifoHandedOn comes just before an execve of sandy's own pid 1
	// (`run --init`'s /run/sandy-init, internal/pid1), which keeps the
	// fifo open across it and closes it once its signal handlers exist:
	// the EOF then says that, and the host waits for it at most
	// InitReadyTimeout.
	FifoHandedOn = 2
)

// InitReadyTimeout bounds the wait for sandy's pid 1 to close the exec
// fifo after FifoHandedOn: its Go runtime's start, a few milliseconds.
const InitReadyTimeout = 10 * time.Second

// Fixed fds of the init (the host passes them as ExtraFiles in this order).
const (
	SyncFD = 3 // the sync socket
	FifoFD = 4 // the exec fifo, opened O_PATH by the host (or, with Config.StartSocket, a socket)
)

// SendConfig sends the init its Config, or the exec init its ExecConfig,
// encoded with specjson, the codec recvConfig decodes it with: the
// config's decode is the first of the init's process, where a first
// encoding/json decode of a runtime-spec config costs twice specjson's
// (see internal/specjson), and on the host's side the config's types are
// specjson's already (spec.Decode, state.SaveSpec).
func SendConfig(conn *userns.Conn, cfg any) error {
	data, err := specjson.Marshal(cfg)
	if err != nil {
		return fmt.Errorf("encoding the %q message: %w", MsgConfig, err)
	}
	return conn.Send(MsgConfig, json.RawMessage(data))
}

// recvConfig receives SendConfig's message into cfg.
func recvConfig(conn *userns.Conn, cfg any) error {
	m, err := conn.Expect(MsgConfig)
	if err != nil {
		return err
	}
	if len(m.Data) == 0 {
		return nil
	}
	if err := specjson.Unmarshal(m.Data, cfg); err != nil {
		return fmt.Errorf("decoding %q message: %w", m.Type, err)
	}
	return nil
}

// Config is everything the init needs, sent by the host after the maps.
type Config struct {
	Spec     *specs.Spec `json:"spec"`
	ID       string      `json:"id"`
	Bundle   string      `json:"bundle"`
	Rootfs   string      `json:"rootfs"`
	LayerDir string      `json:"layerDir,omitempty"`
	// Layers is an image container's root in the store (sandy run
	// IMAGE): mounted instead of a layer over Rootfs, which is unused.
	Layers *overlay.Layers `json:"layers,omitempty"`
	// MountNS is a mount namespace to join (linux.namespaces path) instead
	// of the new one the init would have been cloned into.
	MountNS    string `json:"mountNS,omitempty"`
	RootfsMode string `json:"rootfsMode,omitempty"`
	// SetgroupsDenied: the single-id fallback wrote "deny" to setgroups.
	SetgroupsDenied bool   `json:"setgroupsDenied,omitempty"`
	Pdeathsig       int    `json:"pdeathsig,omitempty"`
	ResolvConf      string `json:"resolvConf,omitempty"`
	Hosts           string `json:"hosts,omitempty"`
	NoSeccomp       bool   `json:"noSeccomp,omitempty"`
	// SeccompFilter is the container's seccomp filter, compiled by the
	// host from linux.seccomp (seccomp.Filter's binary form), which the
	// spec above then lacks; nil: not filtered.
	SeccompFilter []byte `json:"seccompFilter,omitempty"`
	// NoProcess: config.json has no process; the init sets up the
	// container and waits, and start refuses to release it.
	NoProcess bool `json:"noProcess,omitempty"`
	// UnshareCgroupNS: the init creates its cgroup namespace itself, now
	// that the host has put it into its cgroup (not cloned into it).
	UnshareCgroupNS bool `json:"unshareCgroupNS,omitempty"`
	// CgroupOwned: the container has a cgroup sandy made for it (systemd
	// or cgroupfs manager) and a new cgroup namespace rooted there, so a
	// cgroup mount may be writable when its options say "rw".
	CgroupOwned bool `json:"cgroupOwned,omitempty"`
	// StartSocket: FifoFD is the init's end of a socket pair whose other
	// end the process that created the container holds (`sandy run`,
	// which starts it itself): the init waits for one byte from it
	// instead of the exec fifo's open, and writes the fifo's bytes to it.
	// No exec fifo is made on disk then.
	StartSocket bool `json:"startSocket,omitempty"`
	Debug       bool `json:"debug,omitempty"`
	// Tap: make tap0 for sandy's network (--network=usernet) and hand
	// its fd to the host, as the raw init does (rawtap.go), on inherited
	// fds.
	Tap *RawTap `json:"tap,omitempty"`
}

// EnvMarker is set by GainCaps' re-exec.
const EnvMarker = "_SANDY_INIT_CAPS"
