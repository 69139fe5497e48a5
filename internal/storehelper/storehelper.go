//go:build containers_image_openpgp

// Package storehelper is the image helpers' storage verbs, the hidden
// ones sandy calls for containers from images: _create-container (with
// its --hold protocol), _remove-container, _list-containers, _commit,
// _diff and _rename-container, and the storage-only helpers' main
// (Program). Three helpers serve them from this code: sandy-create
// (internal/cmd/sandy-create: _create-container of an image named as it
// is stored, with no image library at all; the rest it hands to
// sandy-store), sandy-store (internal/cmd/sandy-store), which links the
// image store (internal/imagestore) and the name parser
// (internal/imagenames) and not the image library's copy stack, and
// sandy-image, which adds the library (Library: the pull of
// `run --pull`, the config of an image whose manifest imagestore does not
// read itself). In sandy-store a verb that needs the library fails with
// imagestore.ErrNeedsImageLibrary before it changes the store, and
// sandy-store hands the verb to sandy-image.
//
// It runs inside the store's user and mount namespace, on stdio that
// sandy reads (imagehelper's side of each verb).
package storehelper

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"sync/atomic"
	"syscall"
	"time"

	units "github.com/docker/go-units"
	"github.com/spf13/pflag"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/imagestore"
	"github.com/sandy-rt/sandy/internal/spare"
)

// Env is what a verb runs with: the global flags (sandy passes them on),
// stdio, and the image library where the helper links it.
type Env struct {
	Store imagestore.StoreOptions
	// RegistriesConf is --registries-conf: the unqualified-search
	// registries a short name is looked up under (by Names).
	RegistriesConf string
	// Names resolves image names: internal/imagenames in sandy-store and
	// sandy-image; nil (imagestore.ExactNames) in sandy-create, which
	// hands every other name over (imagestore.ErrNeedsNames).
	Names          imagestore.Names
	Debug          bool
	Stdin          io.Reader
	Stdout, Stderr io.Writer
	// Library is sandy-image's part; nil in sandy-store.
	Library *Library
	// removals is the removals lock this process holds (holdContainer's
	// remove-behind; kept here, not to be closed by a finalizer;
	// Store.HoldsRemovals is set with it).
	removals *os.File
	// spare is _create-container's --spare: the directory where the
	// helper waits as a spare after its session (spare.go), and place
	// the spare's place once it has taken it.
	spare string
	place *spare.Listener
	// spares: this program may stay as a spare (Program.Spare).
	spares bool
}

// Library is what sandy-image adds to the storage verbs.
type Library struct {
	// Puller makes the pull of _create-container from its registry flags,
	// its progress going to progress.
	Puller func(f PullFlags, progress io.Writer) (func(ctx context.Context, s storage.Store, name string) (string, error), error)
	// Config reads an image's config where imagestore leaves it to the
	// library.
	Config imagestore.ConfigFunc
}

// PullFlags are _create-container's registry flags (podman's names), for
// the pull; sandy-store parses them and leaves them unused.
type PullFlags struct {
	TLSVerify    bool
	TLSVerifySet bool // --tls-verify was given
	CertDir      string
	AuthFile     string
	Creds        string
	PolicyPath   string
	MaxLayerSize string
}

func (f *PullFlags) add(fs *pflag.FlagSet) {
	fs.BoolVar(&f.TLSVerify, "tls-verify", true, "require HTTPS and a trusted certificate (false: plain HTTP or any certificate)")
	fs.StringVar(&f.CertDir, "cert-dir", "", "directory with the registry's ca.crt (and client cert/key)")
	fs.StringVar(&f.AuthFile, "authfile", os.Getenv("REGISTRY_AUTH_FILE"), "auth file (default: $XDG_RUNTIME_DIR/containers/auth.json)")
	fs.StringVar(&f.Creds, "creds", "", "USER[:PASSWORD] for the registry")
	fs.StringVar(&f.PolicyPath, "signature-policy", "", "policy.json to use instead of the system's")
	fs.StringVar(&f.MaxLayerSize, "max-layer-size", os.Getenv(EnvMaxLayerSize), maxLayerUsage)
}

// Verb is one storage verb.
type Verb struct {
	Name string
	Run  func(ctx context.Context, g *Env, args []string) error
}

// Verbs are the storage verbs.
func Verbs() []Verb {
	return []Verb{
		{imagehelper.CreateRole, cmdCreateContainer},
		{imagehelper.RemoveRole, cmdRemoveContainer},
		{imagehelper.ListRole, cmdListContainers},
		{imagehelper.CommitRole, cmdCommit},
		{imagehelper.DiffRole, cmdDiff},
		{imagehelper.RenameRole, cmdRenameContainer},
	}
}

// GlobalFlags adds the global flags both helpers take to fs.
func (g *Env) GlobalFlags(fs *pflag.FlagSet) {
	fs.StringVar(&g.Store.Root, "storage-root", "", "image store root (default: containers-storage.conf's graphroot)")
	fs.StringVar(&g.Store.RunRoot, "storage-runroot", "", "image store run root (default: containers-storage.conf's runroot)")
	fs.StringVar(&g.Store.Driver, "storage-driver", "", "image store driver: overlay or vfs (default: containers-storage.conf's, else the ladder)")
	fs.StringArrayVar(&g.Store.DriverOpts, "storage-opt", nil, "image store driver option, e.g. overlay.mount_program=/usr/bin/fuse-overlayfs (repeatable)")
	fs.StringVar(&g.RegistriesConf, "registries-conf", "", "registries.conf to use instead of the system's")
	fs.BoolVar(&g.Debug, "debug", false, "print debug lines")
}

// names is Names, or ExactNames where it is nil.
func (g *Env) names() imagestore.Names {
	if g.Names == nil {
		return imagestore.ExactNames{}
	}
	return g.Names
}

// flags is a verb's flag set with podman's habits: interspersed flags,
// --help, errors to stderr.
func (g *Env) flags(usage string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(usage, pflag.ContinueOnError)
	fs.SetOutput(g.Stderr)
	fs.Usage = func() {
		fmt.Fprintf(g.Stderr, "Usage: sandy %s\n\nFlags:\n%s", usage, fs.FlagUsages())
	}
	return fs
}

func parse(fs *pflag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return errHelp
		}
		return err
	}
	return nil
}

var errHelp = errors.New("help shown")

func helpOK(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}

// Debugf prints a debug line under --debug, as sandy's own.
func (g *Env) Debugf(format string, args ...any) {
	if g.Debug {
		fmt.Fprintf(g.Stderr, "sandy: debug: image helper: "+format+"\n", args...)
	}
}

// openStore opens the store for a verb; the caller shuts it down.
// imagestore.Open first waits for the removals a `run --rm` left behind
// (holdContainer): what the verb sees of the store is what that run
// left, removed.
func (g *Env) openStore() (storage.Store, error) {
	s, res, err := imagestore.Open(g.Store)
	if err != nil {
		return nil, err
	}
	if g.Debug {
		fmt.Fprintf(g.Stderr, "sandy: debug: image store %s (run root %s, driver %s %v)\n", res.GraphRoot, res.RunRoot, res.Driver, res.DriverOpts)
	}
	return s, nil
}

// EnvMaxLayerSize is the default of --max-layer-size.
const EnvMaxLayerSize = "SANDY_MAX_LAYER_SIZE"

// MaxLayerFlag adds --max-layer-size to a verb that stores layers.
func MaxLayerFlag(fs *pflag.FlagSet) *string {
	return fs.String("max-layer-size", os.Getenv(EnvMaxLayerSize), maxLayerUsage)
}

const maxLayerUsage = "refuse a layer that decompresses to more than SIZE (e.g. 20GB, 512MiB; default $" + EnvMaxLayerSize + ", else no bound): a guard against decompression bombs, at the cost of one more decompression"

// ParseSize reads a --max-layer-size value: "" or "0" is no bound.
func ParseSize(v string) (int64, error) {
	if v == "" || v == "0" {
		return 0, nil
	}
	n, err := units.RAMInBytes(v)
	if err != nil || n < 0 {
		return 0, fmt.Errorf("--max-layer-size %q (or $%s): want a size such as 20GB or 512MiB", v, EnvMaxLayerSize)
	}
	return n, nil
}

// ExitCode is podman's: 125 for sandy's own errors, 1 when an image is
// not known (rmi, inspect, run --pull=never), 2 when one is in use (rmi).
func ExitCode(err error) int {
	switch {
	case errors.Is(err, storage.ErrImageUnknown):
		return 1
	case errors.Is(err, storage.ErrImageUsedByContainer):
		return 2
	}
	return 125
}

// UserVerb is the command the user typed for a helper verb: the hidden
// verbs serve `sandy run IMAGE`.
func UserVerb(v string) string {
	switch v {
	case imagehelper.CreateRole:
		return "run"
	case imagehelper.RemoveRole, imagehelper.ListRole:
		return "container"
	}
	return v
}

// StopGrace bounds how long a cancelled verb may take to stop. The
// library stops a download at once, but not the extraction of a layer
// already under way (storage's ApplyDiff takes no context); past the
// grace the helper exits. (A second signal is no "force": a terminal's
// Ctrl-C reaches this process twice, from the terminal and forwarded by
// the parent outside the namespace.) The storage library
// marks a layer "incomplete" until it is whole and deletes such layers
// the next time the store is opened, so the next pull starts clean.
const StopGrace = 5 * time.Second

type sigKey struct{}

// CancelOnSignal cancels the context at the first SIGINT, SIGTERM or
// SIGHUP, so a copy in flight stops cleanly (the image library removes
// what it staged) instead of dying half-way; SignalOf(ctx) then says
// which signal. StopGrace without the verb returning ends the process
// with 128+signal, as a shell reports a process killed by it.
// cleanup runs before that exit (the staged blobs; the storage library
// itself removes a partial layer the next time the store is opened).
func CancelOnSignal(stderr io.Writer, verb string, cleanup func()) (context.Context, func()) {
	var got atomic.Int32
	ctx, cancel := context.WithCancel(context.WithValue(context.Background(), sigKey{}, &got))
	sigs := make(chan os.Signal, 4)
	done := make(chan struct{})
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		var first syscall.Signal
		select {
		case s := <-sigs:
			first, _ = s.(syscall.Signal)
		case <-done:
			return
		}
		got.Store(int32(first))
		cancel()
		select {
		case <-time.After(StopGrace):
		case <-done:
			// The verb returned within the grace (a spare goes on).
			return
		}
		cleanup()
		fmt.Fprintf(stderr, "sandy %s: interrupted (%v); stopped before the copy finished cleaning up: the next command on the store removes the partial layer\n", verb, unix.SignalName(first))
		os.Exit(128 + int(first))
	}()
	return ctx, func() { signal.Stop(sigs); close(done); cancel() }
}

// SignalOf is the signal that cancelled ctx, or 0.
func SignalOf(ctx context.Context) syscall.Signal {
	if got, ok := ctx.Value(sigKey{}).(*atomic.Int32); ok {
		return syscall.Signal(got.Load())
	}
	return 0
}
