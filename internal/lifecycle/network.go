package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/spec"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/slirp"
)

// NetworkOptions are --network and -p.
type NetworkOptions struct {
	Mode    string   // --network as given; "" = the command's default
	Publish []string // -p specs
}

// networkState is what delete needs to end a container's network.
type networkState struct {
	Mode     string `json:"mode"`
	StateDir string `json:"stateDir"`
	// Pid and PidStart are a detached container's sandy-net
	// (--network=usernet: handOverUserNet).
	Pid      int    `json:"pid,omitempty"`
	PidStart uint64 `json:"pidStart,omitempty"`
}

// planNetwork decides the container's network before anything starts.
// When the config asks for a new network namespace, `run` defaults to
// sandy's own network (usernet) where it can run, else to slirp4netns
// where that can, else to loopback only with one warning line
// (DefaultNetwork); `create` (the engine path) adds no network unless
// asked, because engines bring their own.
func (cr *creation) planNetwork(context.Context) error {
	s := cr.bundle.Spec
	no := cr.o.Network
	mode, opts, err := "", slirp.Options{}, error(nil)
	if no.Mode != "" {
		if mode, opts, err = slirp.ParseNetworkFlag(no.Mode); err != nil {
			return err
		}
	}
	netns, hasNetns := spec.Namespace(s, specs.NetworkNamespace)
	newNetns := hasNetns && netns.Path == ""
	if mode == "" {
		switch {
		case !newNetns || !cr.o.owned && !cr.o.detachRun:
			mode = slirp.ModeNone
		default:
			var why error
			if mode, why = DefaultNetwork(); why != nil {
				if len(no.Publish) > 0 {
					return fmt.Errorf("-p needs a network: %w", why)
				}
				cr.g.Warn(slirp.LoopbackWarning(why))
			}
			cr.g.Debugf("network: %s, the default", mode)
		}
	}
	for _, p := range no.Publish {
		ps, err := slirp.ParsePort(p)
		if err != nil {
			return err
		}
		opts.Ports = append(opts.Ports, ps)
	}
	if err := slirp.ValidatePorts(opts.Ports); err != nil {
		return err
	}
	switch mode {
	case slirp.ModeHost:
		if len(opts.Ports) > 0 {
			return errors.New("-p with --network=host: the container already uses the host's ports")
		}
		var kept []specs.LinuxNamespace
		for _, ns := range s.Linux.Namespaces {
			if ns.Type != specs.NetworkNamespace {
				kept = append(kept, ns)
			}
		}
		s.Linux.Namespaces = kept
		cr.g.Debugf("network: the host's network namespace")
	case slirp.ModeNone:
		if len(opts.Ports) > 0 {
			return errors.New("-p needs a network: --network=slirp4netns or usernet")
		}
	case slirp.ModeUsernet:
		if !newNetns {
			return errors.New("--network=usernet needs a new network namespace in config.json (linux.namespaces: {\"type\": \"network\"})")
		}
		if err := cr.planUserNet(opts.HostLoopback, opts.MTU, opts.Ports); err != nil {
			return err
		}
	case slirp.ModeSlirp4netns:
		if !newNetns {
			return errors.New("--network=slirp4netns needs a new network namespace in config.json (linux.namespaces: {\"type\": \"network\"})")
		}
		if pidns, ok := spec.Namespace(s, specs.PIDNamespace); (!ok || pidns.Path != "") && opts.Driver == "" && len(opts.Ports) > 0 {
			// The builtin driver's port child would be visible to, and
			// ptraceable by, a container in the host's pid namespace
			// (slirp/doc.go, Security); slirp refuses it there. A joined
			// pid namespace may be the host's too.
			opts.Driver = slirp.DriverSlirp4netns
			cr.g.Debugf("network: no new pid namespace: the slirp4netns port driver")
		}
		cr.netOpts = &opts
	}
	cr.netMode = mode
	return nil
}

// keepExe keeps the handle on the sealed sandy binary that the init was
// exec'd from, for startNetwork and a foreground run's reaper; release or
// the undo stack closes it.
func (cr *creation) keepExe(exe *os.File) {
	cr.exe = exe
	cr.undo.add(func() { cr.exe.Close() })
}

// startNetwork launches slirp4netns and the port forwarders for the init's
// network namespace; they come up while the init builds the root.
//
// The network's helpers run the same sealed copy of sandy as the init
// (slirp.Options.Exe; slirp refuses anything else): the port child runs
// inside the container's user namespace and the monitor next to the
// container, so neither may be a binary the container's root, the caller's
// uid on the host, could open for writing (CVE-2019-5736).
func (cr *creation) startNetwork(ctx context.Context) error {
	if cr.netOpts == nil || cr.net != nil {
		return nil // none, or started already (startRawInit)
	}
	o := *cr.netOpts
	o.PID = cr.c.Pid
	o.StateDir = cr.root.Path(cr.c.ID)
	o.Exe = cr.exe
	// `sandy run` in the foreground owns the network itself; otherwise a
	// monitor process keeps it for as long as the container runs.
	o.InProcess = cr.o.owned
	o.NetNS, o.UserNS, o.PidNS = cr.rawNetNS, cr.rawUserNS, cr.rawPidNS
	n, err := slirp.Launch(ctx, o)
	if cr.rawNetNS != nil {
		cr.rawNetNS.Close()
		cr.rawUserNS.Close()
		if cr.rawPidNS != nil {
			cr.rawPidNS.Close()
		}
		cr.rawNetNS, cr.rawUserNS, cr.rawPidNS = nil, nil, nil
	}
	if err != nil {
		return err
	}
	cr.net = n
	cr.undo.add(func() { _ = n.Close() })
	data, _ := json.Marshal(networkState{Mode: cr.netMode, StateDir: o.StateDir})
	cr.c.Network = data
	return nil
}

// networkReady waits until tap0 is configured and every port listens
// (slirp4netns), or until the stack serves tap0 (usernet).
func (cr *creation) networkReady(ctx context.Context) error {
	if cr.unet != nil {
		return cr.userNetReady(ctx)
	}
	if cr.net == nil {
		return nil
	}
	return cr.net.Ready(ctx)
}

// stopNetwork ends a container's network from any process.
func stopNetwork(c *state.Container) error {
	if len(c.Network) == 0 {
		return nil
	}
	var ns networkState
	if err := json.Unmarshal(c.Network, &ns); err != nil {
		return err
	}
	if ns.Mode == slirp.ModeUsernet {
		stopUserNet(ns.Pid, ns.PidStart)
		return nil
	}
	if ns.StateDir == "" {
		return nil
	}
	return slirp.Stop(ns.StateDir)
}
