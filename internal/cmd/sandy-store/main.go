//go:build containers_image_openpgp

// Command sandy-store is the image helper's storage half: the hidden
// verbs sandy calls for containers from images (_create-container,
// _remove-container, _list-containers, _commit, _diff, _rename-container;
// internal/storehelper) with the image store (go.podman.io/storage) and
// without the image library's copy stack (registries, signatures,
// ocicrypt, and the gRPC and protobuf it brings), which sandy-image links:
// about a quarter of sandy-image's size and half its start (docs/images.md
// "Two programs, one install"). It is installed beside sandy-image, which
// sandy falls back to when it is missing.
//
// A verb that needs the image library (a pull, an image whose manifest
// imagestore does not read itself) fails with
// imagestore.ErrNeedsImageLibrary before it changes the store, and this
// program then execs sandy-image, from its own directory, with the same
// arguments, stdio and environment: inside the store's namespace already,
// sandy-image does the verb as if sandy had started it. sandy starts
// sandy-image directly for `run --pull=always`.
package main

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"

	"github.com/spf13/pflag"
	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/imagestore"
	"github.com/sandy-rt/sandy/internal/storehelper"
)

func main() {
	// storage's chrootarchive re-executes this binary to unpack layers
	// inside a chroot (commit, diff): that child must stop here.
	if reexec.Init() {
		return
	}
	os.Exit(realMain(os.Args[1:]))
}

func realMain(args []string) int {
	g := &storehelper.Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr}
	fs := pflag.NewFlagSet("sandy", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(g.Stderr)
	g.GlobalFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 125
	}
	rest := fs.Args()
	var verb *storehelper.Verb
	for _, v := range storehelper.Verbs() {
		if len(rest) > 0 && v.Name == rest[0] {
			verb = &v
		}
	}
	if verb == nil || imagehelper.NeedsNamespace() {
		// Not a storage verb, or not started in the store's namespace:
		// sandy-image does all of that.
		return handOver(args, g)
	}
	g.Store.SingleID = os.Getenv(imagehelper.EnvSingleID) == "1"
	g.Store.Warn = g.Stderr
	ctx, stop := storehelper.CancelOnSignal(g.Stderr, rest[0], func() {})
	err := verb.Run(ctx, g, rest[1:])
	stop()
	if errors.Is(err, imagestore.ErrNeedsImageLibrary) {
		g.Debugf("%v: handing %s to %s", err, rest[0], imagehelper.Name)
		return handOver(args, g)
	}
	if err != nil {
		fmt.Fprintf(g.Stderr, "sandy %s: %v\n", storehelper.UserVerb(rest[0]), err)
		return storehelper.ExitCode(err)
	}
	return 0
}

// handOver replaces this process with sandy-image, installed beside it,
// running args.
func handOver(args []string, g *storehelper.Env) int {
	self, err := os.Executable()
	if err == nil {
		full := filepath.Join(filepath.Dir(self), imagehelper.Name)
		err = unix.Exec(full, append([]string{imagehelper.Name}, args...), os.Environ())
		err = fmt.Errorf("running %s: %w", full, err)
	}
	fmt.Fprintf(g.Stderr, "sandy: %s needs %s, which is installed beside it: %v\nhint: install both with bash hack/install.sh (docs/troubleshooting.md#sandy-store-needs-sandy-image-which-is-installed-beside-it)\n", imagehelper.StoreName, imagehelper.Name, err)
	return 125
}
