//go:build containers_image_openpgp

package storehelper

import (
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"slices"

	"github.com/spf13/pflag"
	"go.podman.io/storage/pkg/reexec"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/imagestore"
)

// Program is a storage-only helper's main: sandy-store
// (internal/cmd/sandy-store) and sandy-create (internal/cmd/sandy-create).
// It serves Verbs (all of Verbs() when nil), and hands what it does not
// serve, or a verb that fails with one of HandOverOn before it changes
// the store, to Next, installed beside it: it replaces itself (execve)
// with Next, with the same arguments, stdio and environment, inside the
// store's namespace already.
type Program struct {
	// Name is this program's file name, for messages.
	Name string
	// Next is the helper it hands over to.
	Next string
	// Verbs are the verbs it serves; nil: all of Verbs().
	Verbs []string
	// Names makes the name resolver from --registries-conf; nil:
	// imagestore.ExactNames.
	Names func(registriesConf string) imagestore.Names
	// HandOverOn are the errors a verb hands over on.
	HandOverOn []error
	// Spare: after a _create-container --hold --spare DIR session, the
	// program stays as the spare helper of the next run (spare.go).
	Spare bool
}

// Run is the helper program's main: a child that storage's chrootarchive
// re-executed (this binary, to unpack layers inside a chroot: commit,
// diff) stops in reexec.Init; anything else runs Main on os.Args[1:] and
// exits with its code.
func (p Program) Run() {
	if reexec.Init() {
		return
	}
	code, g := p.main(os.Args[1:], false)
	if code == 0 && p.Spare && g.spare != "" {
		p.linger(g)
	}
	os.Exit(code)
}

// Main runs the helper on args (os.Args[1:]) and returns its exit code.
func (p Program) Main(args []string) int {
	code, _ := p.main(args, false)
	return code
}

// codeHandOver is main's status for a verb a spare would hand over: it
// says so to sandy instead of replacing itself (spare.go).
const codeHandOver = -1

// main is Main, and returns the verb's Env too (its --spare, the
// removals lock it holds). inSpare: a spare runs it, which reports a
// hand-over (codeHandOver) rather than exec Next.
func (p Program) main(args []string, inSpare bool) (int, *Env) {
	g := &Env{Stdin: os.Stdin, Stdout: os.Stdout, Stderr: os.Stderr, spares: p.Spare}
	handOver := func() int {
		if inSpare {
			return codeHandOver
		}
		return p.handOver(args, g)
	}
	fs := pflag.NewFlagSet("sandy", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(g.Stderr)
	g.GlobalFlags(fs)
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0, g
		}
		return 125, g
	}
	rest := fs.Args()
	var verb *Verb
	for _, v := range Verbs() {
		if len(rest) > 0 && v.Name == rest[0] && (p.Verbs == nil || slices.Contains(p.Verbs, v.Name)) {
			verb = &v
		}
	}
	if verb == nil || imagehelper.NeedsNamespace() {
		// Not a verb of this program, or not started in the store's
		// namespace: Next does all of that.
		return handOver(), g
	}
	if p.Names != nil {
		g.Names = p.Names(g.RegistriesConf)
	}
	g.Store.SingleID = os.Getenv(imagehelper.EnvSingleID) == "1"
	g.Store.Warn = g.Stderr
	ctx, stop := CancelOnSignal(g.Stderr, rest[0], func() {})
	err := verb.Run(ctx, g, rest[1:])
	stop()
	for _, h := range p.HandOverOn {
		if errors.Is(err, h) {
			g.Debugf("%v: handing %s to %s", err, rest[0], p.Next)
			return handOver(), g
		}
	}
	if err != nil {
		fmt.Fprintf(g.Stderr, "sandy %s: %v\n", UserVerb(rest[0]), err)
		return ExitCode(err), g
	}
	return 0, g
}

// handOver replaces this process with Next, installed beside it, running
// args.
func (p Program) handOver(args []string, g *Env) int {
	self, err := os.Executable()
	if err == nil {
		full := filepath.Join(filepath.Dir(self), p.Next)
		err = unix.Exec(full, append([]string{p.Next}, args...), os.Environ())
		err = fmt.Errorf("running %s: %w", full, err)
	}
	fmt.Fprintf(g.Stderr, "sandy: %s needs %s, which is installed beside it: %v\nhint: install them together with bash hack/install.sh (docs/troubleshooting.md#sandy-store-needs-sandy-image-which-is-installed-beside-it)\n", p.Name, p.Next, err)
	return 125
}
