//go:build containers_image_openpgp

// Command sandy-image is sandy's image half: `sandy pull`, `images`,
// `rmi`, `tag`, `load`, `save`, `push`, `login`, `logout` and `image …`
// exec it. It is a separate program because the image libraries
// (go.podman.io/storage and go.podman.io/image/v5) cost about 18 ms of
// package initialisation per process and most of its 30 MB; in the sandy
// binary they would slow every `create`, `start`, `run ./bundle` and
// `exec` (measured; see internal/images). It is installed beside sandy
// and never runs container code.
//
// It is wiring only: global flags, entering the user namespace, the verb
// table and printing; the work is in internal/images, and the storage
// verbs sandy calls for containers from images are internal/storehelper's,
// which sandy-store serves without the image library (it hands a pull
// over to this program).
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/imagenames"
	"github.com/sandy-rt/sandy/internal/images"
	"github.com/sandy-rt/sandy/internal/imagestore"
	"github.com/sandy-rt/sandy/internal/storehelper"
)

// global holds the flags every verb shares (sandy passes them on).
type global struct {
	store    imagestore.StoreOptions
	remote   images.Remote // --registries-conf only; verbs add the rest
	debug    bool
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	isTerm   bool // stdout is a terminal (progress bars)
	inIsTerm bool
	// env is the storage verbs' (storehelper), kept for the process's
	// life: it holds the removals lock of a held helper.
	env *storehelper.Env
}

type verb struct {
	name string
	run  func(ctx context.Context, g *global, args []string) error
}

func verbs() []verb {
	return []verb{
		{"pull", cmdPull},
		{"push", cmdPush},
		{"images", cmdImages},
		{"rmi", cmdRmi},
		{"tag", cmdTag},
		{"untag", cmdUntag},
		{"load", cmdLoad},
		{"save", cmdSave},
		{"login", cmdLogin},
		{"logout", cmdLogout},
		{"image", cmdImage},
		{imagehelper.ProbeRole, cmdProbeStore},
	}
}

// storageVerbs are the verbs sandy calls for containers from images,
// shared with sandy-store (storehelper), with the image library added:
// the pull of `run --pull`, the config of any manifest.
func storageVerbs() []verb {
	var out []verb
	for _, sv := range storehelper.Verbs() {
		out = append(out, verb{sv.Name, func(ctx context.Context, g *global, args []string) error {
			g.env = &storehelper.Env{Store: g.store, RegistriesConf: g.remote.RegistriesConf, Debug: g.debug,
				Names: imagenames.ForConf(g.remote.RegistriesConf), Stdin: g.stdin, Stdout: g.stdout, Stderr: g.stderr, Library: library(g)}
			return sv.Run(ctx, g.env, args)
		}})
	}
	return out
}

// library is the image library's part of the storage verbs.
func library(g *global) *storehelper.Library {
	return &storehelper.Library{
		Puller: func(f storehelper.PullFlags, progress io.Writer) (func(context.Context, storage.Store, string) (string, error), error) {
			o := images.PullOptions{Remote: g.remote, Progress: progress}
			o.Remote.CertDir, o.Remote.AuthFile, o.Remote.Creds, o.Remote.PolicyPath = f.CertDir, f.AuthFile, f.Creds, f.PolicyPath
			if f.TLSVerifySet {
				tls := f.TLSVerify
				o.Remote.TLSVerify = &tls
			}
			var err error
			if o.MaxLayerSize, err = storehelper.ParseSize(f.MaxLayerSize); err != nil {
				return nil, err
			}
			return func(ctx context.Context, s storage.Store, name string) (string, error) {
				return images.Pull(ctx, s, name, o)
			}, nil
		},
		Config: images.OCIConfig,
	}
}

func main() {
	// storage's chrootarchive re-executes this binary to unpack layers
	// inside a chroot: that child must stop here.
	if reexec.Init() {
		return
	}
	// The image store's pause process (imagehelper/pause.go), when this
	// binary started it.
	if len(os.Args) == 2 && os.Args[1] == imagehelper.PauseRole {
		os.Exit(imagehelper.PauseMain())
	}
	os.Exit(realMain(os.Args[1:]))
}

func realMain(args []string) int {
	g := &global{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, isTerm: isTerminal(os.Stderr), inIsTerm: isTerminal(os.Stdin)}
	fs := pflag.NewFlagSet("sandy", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(g.stderr)
	fs.StringVar(&g.store.Root, "storage-root", "", "image store root (default: containers-storage.conf's graphroot)")
	fs.StringVar(&g.store.RunRoot, "storage-runroot", "", "image store run root (default: containers-storage.conf's runroot)")
	fs.StringVar(&g.store.Driver, "storage-driver", "", "image store driver: overlay or vfs (default: containers-storage.conf's, else the ladder)")
	fs.StringArrayVar(&g.store.DriverOpts, "storage-opt", nil, "image store driver option, e.g. overlay.mount_program=/usr/bin/fuse-overlayfs (repeatable)")
	fs.StringVar(&g.remote.RegistriesConf, "registries-conf", "", "registries.conf to use instead of the system's")
	fs.BoolVar(&g.debug, "debug", false, "print debug lines")
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 125
	}
	// The libraries log through logrus: warnings and errors by default,
	// everything with --debug.
	logrus.SetOutput(g.stderr)
	logrus.SetLevel(logrus.WarnLevel)
	if g.debug {
		logrus.SetLevel(logrus.DebugLevel)
	}
	rest := fs.Args()
	if len(rest) == 0 {
		fmt.Fprintln(g.stderr, "sandy-image: no verb (pull, push, images, rmi, tag, untag, load, save, login, logout, image)")
		return 125
	}
	if imagehelper.NeedsNamespace() && rest[0] != "login" && rest[0] != "logout" {
		code, err := runInNamespace(args, g)
		if err != nil {
			fmt.Fprintf(g.stderr, "sandy %s: %v\n", rest[0], err)
		}
		return code
	}
	g.store.SingleID = os.Getenv(imagehelper.EnvSingleID) == "1"
	g.store.Warn = g.stderr
	tmp, err := images.PrivateTmpDir()
	if err != nil {
		fmt.Fprintf(g.stderr, "sandy %s: %v\n", rest[0], err)
		return 125
	}
	defer os.RemoveAll(tmp)
	g.remote.TmpDir = tmp
	ctx, stop := storehelper.CancelOnSignal(g.stderr, rest[0], func() { _ = os.RemoveAll(tmp) })
	defer stop()
	for _, v := range append(verbs(), storageVerbs()...) {
		if v.name == rest[0] {
			err := v.run(ctx, g, rest[1:])
			if sig := storehelper.SignalOf(ctx); sig != 0 && err != nil {
				// The error is the cancellation's echo ("context
				// canceled"): say what happened instead. (A verb that
				// finished despite the signal succeeded: its result is
				// stored and printed.)
				fmt.Fprintf(g.stderr, "sandy %s: interrupted (%v)%s\n", rest[0], unix.SignalName(sig), interruptNote(rest))
				return 128 + int(sig)
			}
			if err != nil {
				var quiet errQuiet
				if !errors.As(err, &quiet) {
					fmt.Fprintf(g.stderr, "sandy %s: %v\n", storehelper.UserVerb(rest[0]), err)
				}
				return storehelper.ExitCode(err)
			}
			return 0
		}
	}
	fmt.Fprintf(g.stderr, "sandy-image: unknown verb %q\n", rest[0])
	return 125
}

// interruptNote says, for a verb that copies into the store, what an
// interrupted copy leaves: no image, and the layers it completed, which
// the next try reuses.
func interruptNote(args []string) string {
	verb := args[0]
	if verb == "image" && len(args) > 1 {
		verb = args[1]
	}
	switch verb {
	case "pull", "load":
		return "; no image was stored (layers completed so far stay for the next try; sandy image prune removes them)"
	}
	return ""
}

// debugf prints a debug line under --debug, as sandy's own.
func (g *global) debugf(format string, args ...any) {
	if g.debug {
		fmt.Fprintf(g.stderr, "sandy: debug: image helper: "+format+"\n", args...)
	}
}

// openStore opens the store for a verb; the caller shuts it down.
// imagestore.Open first waits for the removals a `run --rm` left behind
// (holdContainer): what the verb sees of the store is what that run
// left, removed.
func (g *global) openStore() (storage.Store, error) {
	s, res, err := imagestore.Open(g.store)
	if err != nil {
		return nil, err
	}
	if g.debug {
		fmt.Fprintf(g.stderr, "sandy: debug: image store %s (run root %s, driver %s %v)\n", res.GraphRoot, res.RunRoot, res.Driver, res.DriverOpts)
	}
	return s, nil
}

func isTerminal(f *os.File) bool {
	_, err := unixIoctlGetTermios(int(f.Fd()))
	return err == nil
}

// cmdProbeStore prints imagestore.Probe as JSON for `sandy doctor`.
func cmdProbeStore(_ context.Context, g *global, _ []string) error {
	return json.NewEncoder(g.stdout).Encode(imagestore.Probe(g.store))
}
