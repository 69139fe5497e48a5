package main

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/sandy-rt/sandy/internal/containers"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/volumes"
)

// volumeCommands are `sandy volume`'s subcommands, podman's names first.
func volumeCommands() []command {
	return []command{
		{"create", "volume create [-l KEY=VALUE] [-o KEY=VALUE] [--ignore] [NAME]", "create a volume (a random name when NAME is not given)", cmdVolumeCreate},
		{"ls", "volume ls [-q] [--format json|TEMPLATE] [--filter KEY=VALUE]", "list volumes", cmdVolumeLs},
		{"inspect", "volume inspect [--format json|TEMPLATE] [--all] NAME...", "print volumes as JSON", cmdVolumeInspect},
		{"rm", "volume rm [-f] [--all] NAME...", "remove volumes and their data", cmdVolumeRm},
		{"prune", "volume prune [-f] [--filter KEY=VALUE]", "remove every volume no container uses", cmdVolumePrune},
		{"exists", "volume exists NAME", "exit 0 if the volume exists, 1 if not", cmdVolumeExists},
	}
}

// cmdVolume dispatches `sandy volume SUBCOMMAND`. Exit codes are
// podman's: 125 for an error, volume rm 1 (no such volume) and 2 (in
// use), volume exists 1 (absent).
func cmdVolume(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(g.Stderr, "Usage: sandy volume COMMAND\n\nCommands:\n")
		for _, c := range volumeCommands() {
			fmt.Fprintf(g.Stderr, "  %-8s %s\n", c.name, c.summary)
		}
		if len(args) == 0 {
			return 125, errors.New("missing subcommand")
		}
		return 0, nil
	}
	name := args[0]
	switch name { // podman's other names
	case "list":
		name = "ls"
	case "remove":
		name = "rm"
	}
	for _, c := range volumeCommands() {
		if c.name == name {
			return c.run(ctx, g, args[1:])
		}
	}
	return 125, fmt.Errorf("unknown subcommand %q (create, ls, inspect, rm, prune, exists)", args[0])
}

// openVolumes opens sandy's volume store with its hooks, which know the
// containers that use each volume.
// Without sandy-image there are no containers from images, so none uses
// a volume.
func openVolumes(ctx context.Context, g *lifecycle.Global) (*volumes.Store, error) {
	m, err := manage(ctx, g)
	if err != nil {
		return containers.OpenVolumes()
	}
	return m.Volumes(ctx)
}

func cmdVolumeCreate(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	c := volumeCommands()[0]
	fs := newFlags("volume create", c.usage, g.Stderr)
	labels := fs.StringArrayP("label", "l", nil, "set a label KEY[=VALUE] (repeatable)")
	opts := fs.StringArrayP("opt", "o", nil, "set a local driver option: type=none,o=bind,device=DIR (a bind volume) or nocopy; see docs/cli/volume.md (repeatable)")
	driver := fs.StringP("driver", "d", volumes.Driver, "volume driver (only local)")
	ignore := fs.Bool("ignore", false, "print the name of an existing volume of that name instead of failing")
	if err := fs.Parse(args); err != nil {
		return 125, err
	}
	if *driver != volumes.Driver {
		return 125, fmt.Errorf("volume driver %q: sandy has only the local driver", *driver)
	}
	if fs.NArg() > 1 {
		return 125, errors.New("too many arguments: want at most one volume name")
	}
	o := volumes.CreateOptions{Ignore: *ignore}
	var err error
	if o.Labels, err = volumes.ParseLabels(*labels); err != nil {
		return 125, err
	}
	if o.Options, err = volumes.ParseOpts(*opts); err != nil {
		return 125, err
	}
	s, err := openVolumes(ctx, g)
	if err != nil {
		return 125, err
	}
	v, err := s.Create(fs.Arg(0), o)
	if err != nil {
		return 125, err
	}
	fmt.Fprintln(os.Stdout, v.Name)
	return 0, nil
}

func cmdVolumeLs(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("volume ls", volumeCommands()[1].usage, g.Stderr)
	quiet := fs.BoolP("quiet", "q", false, "print only the names")
	format := fs.String("format", "", "json, or a Go template over Name, Driver, Mountpoint, Labels, Options, Scope, CreatedAt (\"table ...\" adds a header)")
	filters := fs.StringArrayP("filter", "f", nil, "name=REGEXP, label=KEY[=VALUE], label!=..., driver=, scope=, opt=, dangling=true|false, until=TIME (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 125, err
	}
	if fs.NArg() > 0 {
		return 125, errors.New("volume ls takes no arguments (use --filter name=REGEXP)")
	}
	f, err := volumes.ParseFilters(*filters, time.Now())
	if err != nil {
		return 125, err
	}
	if *format != "" && *format != "json" {
		if err := volumes.ParseTemplate(*format); err != nil {
			return 125, err
		}
	}
	s, err := openVolumes(ctx, g)
	if err != nil {
		return 125, err
	}
	vols, err := s.List(f)
	if err != nil {
		return 125, err
	}
	if err := volumes.WriteList(os.Stdout, vols, *format, *quiet); err != nil {
		return 125, err
	}
	return 0, nil
}

func cmdVolumeInspect(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("volume inspect", volumeCommands()[2].usage, g.Stderr)
	format := fs.StringP("format", "f", "json", "json, or a Go template over Name, Driver, Mountpoint, Labels, Options, Scope, CreatedAt")
	all := fs.BoolP("all", "a", false, "inspect every volume")
	if err := fs.Parse(args); err != nil {
		return 125, err
	}
	if *all == (fs.NArg() > 0) {
		return 125, errors.New("give one or more volume names, or --all")
	}
	if err := volumes.ParseTemplate(*format); *format != "json" && err != nil {
		return 125, err
	}
	s, err := openVolumes(ctx, g)
	if err != nil {
		return 125, err
	}
	var vols []*volumes.Volume
	var errs []error
	if *all {
		vols, err = s.List(nil)
		errs = append(errs, err)
	}
	for _, name := range fs.Args() {
		v, err := s.Get(name)
		if err != nil {
			errs = append(errs, fmt.Errorf("inspecting object: %w", err))
			continue
		}
		vols = append(vols, v)
	}
	// As podman: the volumes found are printed, then the error.
	if err := volumes.WriteInspect(os.Stdout, vols, *format); err != nil {
		return 125, err
	}
	if err := errors.Join(errs...); err != nil {
		return 125, err
	}
	return 0, nil
}

func cmdVolumeRm(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("volume rm", volumeCommands()[3].usage, g.Stderr)
	force := fs.BoolP("force", "f", false, "remove the containers using a volume first")
	all := fs.BoolP("all", "a", false, "remove every volume")
	if err := fs.Parse(args); err != nil {
		return 125, err
	}
	if *all == (fs.NArg() > 0) {
		return 125, errors.New("choose either one or more volumes or --all")
	}
	s, err := openVolumes(ctx, g)
	if err != nil {
		return 125, err
	}
	names := fs.Args()
	if *all {
		vols, err := s.List(nil)
		if err != nil {
			return 125, err
		}
		for _, v := range vols {
			names = append(names, v.Name)
		}
	}
	var errs []error
	code := 0
	for _, name := range names {
		err := s.Remove(name, *force)
		switch {
		case err == nil:
			fmt.Fprintln(os.Stdout, name)
			continue
		case errors.Is(err, volumes.ErrInUse):
			code = 2
		case errors.Is(err, volumes.ErrNotFound) && code == 0:
			code = 1
		case !errors.Is(err, volumes.ErrNotFound):
			code = 125
		}
		errs = append(errs, err)
	}
	return code, errors.Join(errs...)
}

func cmdVolumePrune(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("volume prune", volumeCommands()[4].usage, g.Stderr)
	force := fs.BoolP("force", "f", false, "do not ask for confirmation")
	filters := fs.StringArray("filter", nil, "prune only the volumes that match: label=KEY[=VALUE], label!=..., until=TIME, name=REGEXP (repeatable)")
	if err := fs.Parse(args); err != nil {
		return 125, err
	}
	if fs.NArg() > 0 {
		return 125, errors.New("volume prune takes no arguments")
	}
	f, err := volumes.ParseFilters(*filters, time.Now())
	if err != nil {
		return 125, err
	}
	s, err := openVolumes(ctx, g)
	if err != nil {
		return 125, err
	}
	if !*force {
		ok, err := confirmPrune(s, f, os.Stdin, os.Stdout)
		if err != nil {
			return 125, err
		}
		if !ok {
			return 0, nil
		}
	}
	names, err := s.Prune(f)
	for _, n := range names {
		fmt.Fprintln(os.Stdout, n)
	}
	if err != nil {
		return 125, err
	}
	return 0, nil
}

// confirmPrune asks as podman does, listing what would go.
func confirmPrune(s *volumes.Store, f volumes.Filters, in io.Reader, out io.Writer) (bool, error) {
	f2 := volumes.Filters{"dangling": {"true"}}
	for k, v := range f {
		f2[k] = v
	}
	vols, err := s.List(f2)
	if err != nil {
		return false, err
	}
	fmt.Fprintln(out, "WARNING! This will remove all volumes not used by at least one container. The following volumes will be removed:")
	for _, v := range vols {
		fmt.Fprintln(out, v.Name)
	}
	fmt.Fprint(out, "Are you sure you want to continue? [y/N] ")
	answer, err := bufio.NewReader(in).ReadString('\n')
	if err != nil && !errors.Is(err, io.EOF) {
		return false, fmt.Errorf("reading the answer: %w", err)
	}
	a := strings.ToLower(strings.TrimSpace(answer))
	return a == "y" || a == "yes", nil
}

func cmdVolumeExists(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("volume exists", volumeCommands()[5].usage, g.Stderr)
	if err := fs.Parse(args); err != nil {
		return 125, err
	}
	if fs.NArg() != 1 {
		return 125, errors.New("want exactly one volume name")
	}
	s, err := openVolumes(ctx, g)
	if err != nil {
		return 125, err
	}
	_, err = s.Get(fs.Arg(0))
	switch {
	case err == nil:
		return 0, nil
	case errors.Is(err, volumes.ErrNotFound):
		return 1, nil
	}
	return 125, err
}
