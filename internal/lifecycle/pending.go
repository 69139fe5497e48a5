package lifecycle

import (
	"context"
	"errors"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/spec"
	"github.com/sandy-rt/sandy/overlay"
)

// PendingBundle is a bundle that does not exist yet when create starts:
// `sandy run IMAGE`'s, which goes into the storage container the image
// helper makes meanwhile (containers.Run). create's steps up to the init's
// hello run on Spec, the container's spec as far as run's flags decide
// it; "waiting for the bundle" (awaitBundle) then waits for the bundle,
// loads it, checks and plans it as the first steps check and plan a
// bundle, and refuses it unless it agrees with Spec on what the init was
// started with (spec.CheckStartAgrees: namespaces, id maps, cgroup). From
// there on the container is made from the bundle alone, as any other.
type PendingBundle struct {
	// Spec is the start spec: its namespaces, id maps, linux.resources
	// and linux.cgroupsPath are the final spec's; process.terminal, the
	// seccomp choice and the network's are the flags', as the options'
	// are. Its process, root and mounts are not used: process.user is
	// checked (checkUserIDs) and the root is known on the bundle only.
	Spec *specs.Spec
	// Wait returns the bundle once it is written; create calls it once,
	// after the init's hello. It must return when ctx ends (an interrupt
	// during the set-up), with ctx's cause.
	Wait func(ctx context.Context) (*ReadyBundle, error)
	// GoInit is why the flags alone need the Go init ("" where the
	// final bundle may take the raw init): such a container's init starts
	// beside the helper, as it must, instead of waiting for the bundle
	// only to be refused (rawCandidate).
	GoInit string
}

// ReadyBundle is a PendingBundle once written.
type ReadyBundle struct {
	Dir string // the bundle directory: config.json is written
	// Layers is the root's layers (CreateOptions.Layers).
	Layers *overlay.Layers
	// Publish, when not nil, is -p's final list (NetworkOptions.Publish):
	// run's -P adds the ports the image exposes, which the flags alone do
	// not know.
	Publish []string
}

// startBundle is the bundle the first steps of create work on while the
// real one is pending: the start spec, no directory and no root yet.
func startBundle(p *PendingBundle, edit func(*specs.Spec) error) (*spec.Bundle, error) {
	if edit != nil {
		return nil, errors.New("a pending bundle takes no EditSpec: its spec is written final")
	}
	s := p.Spec
	if s.Process == nil {
		s.Process = &specs.Process{}
	}
	if s.Linux == nil {
		s.Linux = &specs.Linux{}
	}
	return &spec.Bundle{Spec: s}, nil
}

// imageRoot reports whether the container's root is an image's layers
// (sandy run IMAGE), now or once its pending bundle is written.
func (cr *creation) imageRoot() bool {
	return cr.o.Layers != nil || cr.o.Pending != nil
}

// awaitBundle waits for a pending bundle (CreateOptions.Pending) while
// the init waits for its config: it is the storage container's, which
// the image helper makes while the first steps run and the init starts.
// Then it does for the bundle what loadBundle, checkConfig, planNetwork
// and checkUserIDs do for any bundle, checks that it agrees with the
// start spec on what the init was started with, and puts its directory,
// root, annotations and hooks in the state. Nothing to do for a bundle
// that was there from the start.
func (cr *creation) awaitBundle(ctx context.Context) error {
	p := cr.o.Pending
	if p == nil {
		return nil
	}
	rb, err := p.Wait(ctx)
	if err != nil {
		return err
	}
	start := cr.bundle.Spec
	cr.o.Bundle, cr.o.Layers = rb.Dir, rb.Layers
	b, err := spec.Load(rb.Dir)
	if err != nil {
		return err
	}
	cr.bundle = b
	cr.catchForHooks()
	if err := cr.checkConfig(ctx); err != nil {
		return err
	}
	if rb.Publish != nil {
		cr.o.Network.Publish = rb.Publish
	}
	if err := cr.planNetwork(ctx); err != nil {
		return err
	}
	if err := spec.CheckStartAgrees(start, b.Spec); err != nil {
		return err
	}
	cr.c.Bundle, cr.c.Rootfs = b.Dir, b.Rootfs
	cr.c.Annotations, cr.c.Hooks = b.Spec.Annotations, b.Spec.Hooks
	cr.pendingChecked = true
	return cr.checkUserIDs(ctx)
}
