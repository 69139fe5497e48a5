//go:build containers_image_openpgp

package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/imagenames"
	"github.com/sandy-rt/sandy/internal/images"
	"github.com/sandy-rt/sandy/internal/imagestore"
	"github.com/sandy-rt/sandy/internal/storehelper"
)

func unixIoctlGetTermios(fd int) (*unix.Termios, error) {
	return unix.IoctlGetTermios(fd, unix.TCGETS)
}

// flags is a verb's flag set with podman's habits: interspersed flags,
// --help, errors to stderr.
func (g *global) flags(usage string) *pflag.FlagSet {
	fs := pflag.NewFlagSet(usage, pflag.ContinueOnError)
	fs.SetOutput(g.stderr)
	fs.Usage = func() {
		fmt.Fprintf(g.stderr, "Usage: sandy %s\n\nFlags:\n%s", usage, fs.FlagUsages())
	}
	return fs
}

// remoteFlags adds the flags that reach a registry to fs.
func (g *global) remoteFlags(fs *pflag.FlagSet, r *images.Remote) func() {
	*r = g.remote
	tls := fs.Bool("tls-verify", true, "require HTTPS and a trusted certificate (false: plain HTTP or any certificate)")
	fs.StringVar(&r.CertDir, "cert-dir", "", "directory with the registry's ca.crt (and client cert/key)")
	fs.StringVar(&r.AuthFile, "authfile", os.Getenv("REGISTRY_AUTH_FILE"), "auth file (default: $XDG_RUNTIME_DIR/containers/auth.json)")
	fs.StringVar(&r.Creds, "creds", "", "USER[:PASSWORD] for the registry")
	fs.StringVar(&r.PolicyPath, "signature-policy", "", "policy.json to use instead of the system's")
	return func() {
		if fs.Changed("tls-verify") {
			r.TLSVerify = tls
		}
	}
}

// progress is where a copy reports: the terminal (bars) or one line per
// blob, nothing with -q.
func (g *global) progress(quiet bool) io.Writer {
	if quiet {
		return nil
	}
	return g.stderr
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

// errDeclined ends a verb whose question was answered no (image prune),
// with success and the store untouched.
var errDeclined = errors.New("declined")

// withStore is the shape of a verb on the store: it parses args into fs
// (--help ends the verb with success), checks the operands and flags
// with check (nil: none to check; errDeclined: stop with success), opens
// the store (openStore), runs fn on it and the operands, and shuts the
// store down. Nothing touches the store before the command line is found
// good.
func (g *global) withStore(fs *pflag.FlagSet, args []string, check func(ops []string) error, fn func(s storage.Store, ops []string) error) error {
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	if check != nil {
		if err := check(fs.Args()); err != nil {
			if errors.Is(err, errDeclined) {
				return nil
			}
			return err
		}
	}
	s, err := g.openStore()
	if err != nil {
		return err
	}
	defer imagestore.Shutdown(s)
	return fn(s, fs.Args())
}

// withSession is withStore for a verb that works on stored images: fn
// gets the system context of the global flags too (registries.conf for
// short names), made after check and before the store is opened.
func (g *global) withSession(fs *pflag.FlagSet, args []string, check func(ops []string) error, fn func(s storage.Store, sys *types.SystemContext, ops []string) error) error {
	var sys *types.SystemContext
	return g.withStore(fs, args, func(ops []string) (err error) {
		if check != nil {
			if err := check(ops); err != nil {
				return err
			}
		}
		sys, err = g.remote.SystemContext()
		return err
	}, func(s storage.Store, ops []string) error {
		return fn(s, sys, ops)
	})
}

func cmdPull(ctx context.Context, g *global, args []string) error {
	var o images.PullOptions
	fs := g.flags("pull [flags] IMAGE")
	done := g.remoteFlags(fs, &o.Remote)
	quiet := fs.BoolP("quiet", "q", false, "print only the image id")
	fs.StringVar(&o.Platform, "platform", "", "OS/ARCH[/VARIANT] to pull from a multi-platform image")
	fs.StringVar(&o.OS, "os", "", "OS to pull (default: this one)")
	fs.StringVar(&o.Arch, "arch", "", "architecture to pull (default: this one)")
	fs.StringVar(&o.Variant, "variant", "", "architecture variant to pull")
	maxLayer := storehelper.MaxLayerFlag(fs)
	check := func(ops []string) (err error) {
		done()
		if o.MaxLayerSize, err = storehelper.ParseSize(*maxLayer); err != nil {
			return err
		}
		if len(ops) != 1 {
			return errors.New("want exactly one image: sandy pull [flags] IMAGE")
		}
		return nil
	}
	return g.withStore(fs, args, check, func(s storage.Store, ops []string) error {
		o.Progress = g.progress(*quiet)
		id, err := images.Pull(ctx, s, ops[0], o)
		if err != nil {
			return err
		}
		fmt.Fprintln(g.stdout, id)
		return nil
	})
}

func cmdPush(ctx context.Context, g *global, args []string) error {
	var o images.PushOptions
	fs := g.flags("push [flags] IMAGE [DESTINATION]")
	done := g.remoteFlags(fs, &o.Remote)
	quiet := fs.BoolP("quiet", "q", false, "print nothing but errors")
	check := func(ops []string) error {
		done()
		if len(ops) < 1 || len(ops) > 2 {
			return errors.New("want an image and at most one destination: sandy push [flags] IMAGE [DESTINATION]")
		}
		return nil
	}
	return g.withStore(fs, args, check, func(s storage.Store, _ []string) error {
		o.Progress = g.progress(*quiet)
		return images.Push(ctx, s, fs.Arg(0), fs.Arg(1), o)
	})
}

func cmdRmi(_ context.Context, g *global, args []string) error {
	fs := g.flags("rmi [flags] IMAGE [IMAGE...]")
	var o images.RemoveOptions
	fs.BoolVarP(&o.Force, "force", "f", false, "also remove the containers that use the image, and every name of an image given by id")
	all := fs.BoolP("all", "a", false, "remove every image")
	check := func(ops []string) error {
		if len(ops) == 0 && !*all {
			return errors.New("want at least one image (or --all): sandy rmi [flags] IMAGE [IMAGE ...]")
		}
		return nil
	}
	return g.withSession(fs, args, check, func(s storage.Store, sys *types.SystemContext, names []string) error {
		if *all {
			list, err := s.Images()
			if err != nil {
				return err
			}
			for _, img := range list {
				names = append(names, img.ID)
			}
		}
		var firstErr error
		for _, n := range names {
			r, err := images.Remove(s, sys, n, o)
			for _, c := range r.Containers {
				// The storage is gone; an engine's own record (podman's
				// database, buildah's) is not sandy's to edit.
				fmt.Fprintf(g.stderr, "sandy rmi: removed the storage of container %s; podman or buildah keep their record of it until `podman rm` / `buildah rm`\n", c)
			}
			for _, u := range r.Untagged {
				fmt.Fprintf(g.stdout, "Untagged: %s\n", u)
			}
			for _, d := range r.Deleted {
				fmt.Fprintf(g.stdout, "Deleted: %s\n", d)
			}
			if err != nil {
				if firstErr == nil {
					firstErr = err
				} else {
					fmt.Fprintf(g.stderr, "sandy rmi: %v\n", err)
				}
			}
		}
		return firstErr
	})
}

func cmdTag(_ context.Context, g *global, args []string) error {
	check := func(ops []string) error {
		if len(ops) < 2 {
			return errors.New("want an image and at least one new name: sandy tag IMAGE NAME [NAME ...]")
		}
		return nil
	}
	return g.withSession(g.flags("tag IMAGE NAME [NAME...]"), args, check, func(s storage.Store, sys *types.SystemContext, ops []string) error {
		return images.Tag(s, sys, ops[0], ops[1:])
	})
}

func cmdUntag(_ context.Context, g *global, args []string) error {
	check := func(ops []string) error {
		if len(ops) < 1 {
			return errors.New("want an image: sandy untag IMAGE [NAME...]")
		}
		return nil
	}
	return g.withSession(g.flags("untag IMAGE [NAME...]"), args, check, func(s storage.Store, sys *types.SystemContext, ops []string) error {
		return images.Untag(s, sys, ops[0], ops[1:])
	})
}

func cmdLoad(ctx context.Context, g *global, args []string) error {
	fs := g.flags("load [-i FILE]")
	input := fs.StringP("input", "i", "", "archive to read (docker-archive or oci-archive, plain or compressed; default: standard input)")
	quiet := fs.BoolP("quiet", "q", false, "print only the names loaded")
	maxLayer := storehelper.MaxLayerFlag(fs)
	var maxSize int64
	check := func(ops []string) (err error) {
		if maxSize, err = storehelper.ParseSize(*maxLayer); err != nil {
			return err
		}
		if len(ops) > 0 {
			return errors.New("load takes no arguments: sandy load -i FILE, or the archive on standard input")
		}
		if *input == "" {
			if g.inIsTerm {
				return errors.New("no archive: pass -i FILE, or pipe one in (sandy load < image.tar)")
			}
			*input = "-"
		}
		return nil
	}
	return g.withStore(fs, args, check, func(s storage.Store, _ []string) error {
		names, err := images.Load(ctx, s, *input, g.stdin, images.LoadOptions{Progress: g.progress(*quiet), TmpDir: g.remote.TmpDir, MaxLayerSize: maxSize})
		if err != nil {
			return err
		}
		for _, n := range names {
			fmt.Fprintf(g.stdout, "Loaded image: %s\n", n)
		}
		return nil
	})
}

func cmdSave(ctx context.Context, g *global, args []string) error {
	fs := g.flags("save -o FILE [--format docker-archive|oci-archive] IMAGE [IMAGE...]")
	out := fs.StringP("output", "o", "", "archive to write")
	var o images.SaveOptions
	fs.StringVar(&o.Format, "format", "docker-archive", "docker-archive or oci-archive")
	quiet := fs.BoolP("quiet", "q", false, "print nothing but errors")
	check := func(ops []string) error {
		if len(ops) == 0 {
			return errors.New("want at least one image: sandy save -o FILE IMAGE [IMAGE ...]")
		}
		if *out == "" {
			return errors.New("no output file: pass -o FILE")
		}
		return nil
	}
	return g.withSession(fs, args, check, func(s storage.Store, sys *types.SystemContext, names []string) error {
		o.Progress = g.progress(*quiet)
		return images.Save(ctx, s, sys, *out, names, o)
	})
}

func cmdLogin(ctx context.Context, g *global, args []string) error {
	var r images.Remote
	fs := g.flags("login [flags] REGISTRY")
	done := g.remoteFlags(fs, &r)
	user := fs.StringP("username", "u", "", "user name")
	pass := fs.StringP("password", "p", "", "password (visible in ps: prefer --password-stdin)")
	passStdin := fs.Bool("password-stdin", false, "read the password from standard input")
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	done()
	if fs.NArg() != 1 {
		return errors.New("want one registry: sandy login [flags] REGISTRY")
	}
	if *passStdin {
		line, err := bufio.NewReader(g.stdin).ReadString('\n')
		if err != nil && !errors.Is(err, io.EOF) {
			return fmt.Errorf("reading the password from standard input: %w", err)
		}
		*pass = strings.TrimRight(line, "\r\n")
	}
	if err := images.Login(ctx, r, fs.Arg(0), *user, *pass); err != nil {
		return err
	}
	fmt.Fprintln(g.stdout, "Login Succeeded!")
	return nil
}

func cmdLogout(_ context.Context, g *global, args []string) error {
	var r images.Remote
	fs := g.flags("logout [--all] [REGISTRY]")
	done := g.remoteFlags(fs, &r)
	all := fs.BoolP("all", "a", false, "remove the credentials of every registry")
	if err := parse(fs, args); err != nil {
		return helpOK(err)
	}
	done()
	if (fs.NArg() != 1) != *all {
		if *all {
			return errors.New("logout --all takes no registry")
		}
		return errors.New("want one registry: sandy logout [--all] [REGISTRY]")
	}
	if err := images.Logout(r, fs.Arg(0), *all); err != nil {
		return err
	}
	if *all {
		fmt.Fprintln(g.stdout, "Removed login credentials for all registries")
	} else {
		fmt.Fprintf(g.stdout, "Removed login credentials for %s\n", fs.Arg(0))
	}
	return nil
}

// cmdImage is `sandy image VERB`, podman's long forms.
func cmdImage(ctx context.Context, g *global, args []string) error {
	if len(args) == 0 {
		return errors.New("want a verb: sandy image ls|inspect|rm|prune|tag|untag|pull|push|load|save|exists")
	}
	switch args[0] {
	case "ls", "list":
		return cmdImages(ctx, g, args[1:])
	case "rm":
		return cmdRmi(ctx, g, args[1:])
	case "inspect":
		return cmdInspect(ctx, g, args[1:])
	case "prune":
		return cmdPrune(ctx, g, args[1:])
	case "exists":
		return cmdExists(ctx, g, args[1:])
	}
	for _, v := range verbs() {
		if v.name == args[0] && v.name != "image" && v.name != "images" {
			return v.run(ctx, g, args[1:])
		}
	}
	return fmt.Errorf("unknown verb %q: sandy image ls|inspect|rm|prune|tag|untag|pull|push|load|save|exists", args[0])
}

func cmdInspect(ctx context.Context, g *global, args []string) error {
	fs := g.flags("image inspect [--format TEMPLATE] IMAGE [IMAGE...]")
	format := fs.StringP("format", "f", "json", "json or a Go template, e.g. {{.Id}}")
	check := func(ops []string) error {
		if len(ops) == 0 {
			return errors.New("want at least one image: sandy image inspect IMAGE [IMAGE ...]")
		}
		return nil
	}
	return g.withSession(fs, args, check, func(s storage.Store, sys *types.SystemContext, names []string) error {
		var out []*images.Inspect
		var firstErr error
		for _, n := range names {
			img, err := imagenames.Lookup(s, sys, n)
			if err == nil {
				var in *images.Inspect
				if in, err = images.InspectImage(ctx, s, img); err == nil {
					out = append(out, in)
					continue
				}
			}
			if firstErr == nil {
				firstErr = err
			} else {
				fmt.Fprintf(g.stderr, "sandy image inspect: %v\n", err)
			}
		}
		if *format == "json" || *format == "" {
			enc := json.NewEncoder(g.stdout)
			enc.SetIndent("", "     ")
			enc.SetEscapeHTML(false)
			if out == nil {
				out = []*images.Inspect{}
			}
			if err := enc.Encode(out); err != nil {
				return err
			}
			return firstErr
		}
		for _, in := range out {
			// Templates see the JSON keys ({{.Id}}, {{.GraphDriver.Data.UpperDir}}),
			// as podman's do.
			var m map[string]any
			b, err := json.Marshal(in)
			if err == nil {
				err = json.Unmarshal(b, &m)
			}
			if err != nil {
				return err
			}
			if err := printTemplate(g.stdout, *format, m); err != nil {
				return err
			}
		}
		return firstErr
	})
}

func cmdPrune(_ context.Context, g *global, args []string) error {
	fs := g.flags("image prune [-a] [-f]")
	all := fs.BoolP("all", "a", false, "remove every image no container uses, not only unnamed ones (layers no image uses go either way)")
	force := fs.BoolP("force", "f", false, "do not ask")
	confirm := func([]string) error {
		if *force {
			return nil
		}
		what := "all dangling images and the layers no image uses"
		if *all {
			what = "all images without at least one container associated with them"
		}
		fmt.Fprintf(g.stderr, "WARNING! This command removes %s.\nAre you sure you want to continue? [y/N] ", what)
		line, _ := bufio.NewReader(g.stdin).ReadString('\n')
		if a := strings.ToLower(strings.TrimSpace(line)); a != "y" && a != "yes" {
			return errDeclined
		}
		return nil
	}
	return g.withStore(fs, args, confirm, func(s storage.Store, _ []string) error {
		gone, layers, err := images.Prune(s, *all)
		for _, id := range gone {
			fmt.Fprintln(g.stdout, id)
		}
		if len(layers) > 0 {
			fmt.Fprintf(g.stderr, "sandy image prune: removed %d layer(s) no image or container used\n", len(layers))
		}
		return err
	})
}

func cmdExists(_ context.Context, g *global, args []string) error {
	check := func(ops []string) error {
		if len(ops) != 1 {
			return errors.New("want one image: sandy image exists IMAGE")
		}
		return nil
	}
	return g.withSession(g.flags("image exists IMAGE"), args, check, func(s storage.Store, sys *types.SystemContext, ops []string) error {
		if _, err := imagenames.Lookup(s, sys, ops[0]); err != nil {
			return errQuiet{err}
		}
		return nil
	})
}

// errQuiet is an error whose exit status speaks for it (image exists).
type errQuiet struct{ error }

func (e errQuiet) Unwrap() error { return e.error }

func helpOK(err error) error {
	if errors.Is(err, errHelp) {
		return nil
	}
	return err
}
