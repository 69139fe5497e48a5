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
// table and printing; the work is in internal/images.
package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/signal"
	"syscall"

	"github.com/sirupsen/logrus"
	"github.com/spf13/pflag"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/reexec"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/images"
)

// global holds the flags every verb shares (sandy passes them on).
type global struct {
	store    images.StoreOptions
	remote   images.Remote // --registries-conf only; verbs add the rest
	debug    bool
	stdin    io.Reader
	stdout   io.Writer
	stderr   io.Writer
	isTerm   bool // stdout is a terminal (progress bars)
	inIsTerm bool
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

func main() {
	// storage's chrootarchive re-executes this binary to unpack layers
	// inside a chroot: that child must stop here.
	if reexec.Init() {
		return
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
	if needsNamespace() && rest[0] != "login" && rest[0] != "logout" {
		code, err := runInNamespace(args, g.stderr)
		if err != nil {
			fmt.Fprintf(g.stderr, "sandy %s: %v\n", rest[0], err)
		}
		return code
	}
	g.store.SingleID = os.Getenv(envSingleID) == "1"
	g.store.Warn = g.stderr
	ctx, cancel := cancelOnSignal()
	defer cancel()
	for _, v := range verbs() {
		if v.name == rest[0] {
			if err := v.run(ctx, g, rest[1:]); err != nil {
				var quiet errQuiet
				if !errors.As(err, &quiet) {
					fmt.Fprintf(g.stderr, "sandy %s: %v\n", rest[0], err)
				}
				return exitCode(err)
			}
			return 0
		}
	}
	fmt.Fprintf(g.stderr, "sandy-image: unknown verb %q\n", rest[0])
	return 125
}

// cancelOnSignal cancels the context at the first SIGINT or SIGTERM and
// ignores repeats, so a copy in flight stops cleanly (the storage library
// removes what it staged) instead of dying half-way.
func cancelOnSignal() (context.Context, context.CancelFunc) {
	ctx, cancel := context.WithCancel(context.Background())
	sigs := make(chan os.Signal, 4)
	signal.Notify(sigs, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	go func() {
		<-sigs
		cancel()
		for range sigs {
		}
	}()
	return ctx, cancel
}

// exitCode is podman's: 125 for sandy's own errors, 1 when an image is
// not known (rmi, inspect), 2 when one is in use (rmi).
func exitCode(err error) int {
	switch {
	case errors.Is(err, storage.ErrImageUnknown):
		return 1
	case errors.Is(err, storage.ErrImageUsedByContainer):
		return 2
	}
	return 125
}

// openStore opens the store for a verb; the caller shuts it down.
func (g *global) openStore() (storage.Store, error) {
	s, res, err := images.Open(g.store)
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

// cmdProbeStore prints images.Probe as JSON for `sandy doctor`.
func cmdProbeStore(_ context.Context, g *global, _ []string) error {
	return json.NewEncoder(g.stdout).Encode(images.Probe(g.store))
}
