package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sandy-rt/sandy/internal/containers"
	sandyformat "github.com/sandy-rt/sandy/internal/format"
	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/top"
	"github.com/sandy-rt/sandy/internal/volumes"
)

const (
	diffUsage   = "diff [--format json] CONTAINER"
	renameUsage = "rename CONTAINER NAME"
	pruneUsage  = "container prune [-f]"
	topUsage    = "top CONTAINER [DESCRIPTOR...]"

	containerExecUsage = "container exec [-d] [-i] [-t] [-e K[=V]] [--env-file FILE] [-u USER[:GROUP]] [-w DIR] [--detach-keys \"\"] NAME|ID COMMAND [ARG...]"
	cpUsage            = "cp [-a] [--overwrite] SRC DST  (one of them CONTAINER:PATH; - for a tar stream on stdin or stdout)"
)

// cmdCp is podman's cp: files between a container made from an image,
// running or not, and the host, with docker cp's rules for where they
// land (docs/cli/cp.md).
func cmdCp(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("cp", cpUsage, g.Stderr)
	archive := fs.BoolP("archive", "a", false, "files copied into the container keep their owners (mapped into the container's ids); else they are its root's")
	overwrite := fs.Bool("overwrite", false, "let a directory replace a file and a file a directory")
	if err := fs.Parse(args); err != nil {
		return 125, err
	}
	if fs.NArg() != 2 {
		return 125, errors.New("want a source and a destination (sandy " + cpUsage + ")")
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	err = m.Copy(ctx, containers.CopyOptions{
		Src: fs.Arg(0), Dst: fs.Arg(1), Archive: *archive, Overwrite: *overwrite,
		Stdin: os.Stdin, Stdout: os.Stdout,
	})
	if err != nil {
		return 125, err
	}
	return 0, nil
}

// cmdContainerDiff is podman's diff: what a container made from an image
// added (A), changed (C) and deleted (D) over its image, by path.
func cmdContainerDiff(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("diff", diffUsage, g.Stderr)
	format := fs.String("format", "", "json, or the lines (default)")
	if err := parseRefs(ctx, g, fs, args, true); err != nil {
		return 125, err
	}
	if fs.NArg() != 1 {
		return 125, errors.New("want one container (sandy " + diffUsage + ")")
	}
	if *format != "" && *format != "json" {
		return 125, fmt.Errorf("--format %q: want json", *format)
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	c, err := m.Find(ctx, fs.Arg(0))
	if err != nil {
		return 125, err
	}
	changes, err := imagehelper.Diff(ctx, m.Helper, m.Global, c.ID, g.Stderr)
	if err != nil {
		return 125, err
	}
	changes = containers.WithoutRuntimeMounts(changes)
	if *format == "json" {
		// podman's shape: the paths by kind.
		byKind := map[string][]string{}
		for _, ch := range changes {
			key := map[string]string{"A": "added", "C": "changed", "D": "deleted"}[ch.Kind]
			byKind[key] = append(byKind[key], ch.Path)
		}
		b, err := json.MarshalIndent(byKind, "", "    ")
		if err != nil {
			return 125, err
		}
		fmt.Fprintf(os.Stdout, "%s\n", b)
		return 0, nil
	}
	w := bufio.NewWriter(os.Stdout)
	for _, ch := range changes {
		fmt.Fprintf(w, "%s %s\n", ch.Kind, ch.Path)
	}
	return 0, w.Flush()
}

// cmdContainerRename is podman's rename: the container keeps its id,
// layer and state; a name in use (by sandy, podman or buildah) is refused.
func cmdContainerRename(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("rename", renameUsage, g.Stderr)
	if err := fs.Parse(args); err != nil {
		return 125, err
	}
	if fs.NArg() != 2 {
		return 125, errors.New("want a container and its new name (sandy " + renameUsage + ")")
	}
	name := fs.Arg(1)
	if !volumes.MatchesNameRule(name) {
		return 125, fmt.Errorf("%q: names must match [a-zA-Z0-9][a-zA-Z0-9_.-]*", name)
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	if err := m.Rename(ctx, fs.Arg(0), name); err != nil {
		return 125, err
	}
	return 0, nil
}

// cmdContainerPrune is podman's container prune: every container sandy
// made from an image that is not running goes, with its layer, and so do
// the storage containers a killed sandy run left (Listed.Leftover);
// without -f it asks first. It prints the ids removed.
func cmdContainerPrune(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("container prune", pruneUsage, g.Stderr)
	force := fs.BoolP("force", "f", false, "do not ask")
	if err := fs.Parse(args); err != nil {
		return 125, err
	}
	if fs.NArg() != 0 {
		return 125, errors.New("container prune takes no arguments")
	}
	if !*force {
		fmt.Fprint(g.Stderr, "WARNING! This will remove all non running containers.\nAre you sure you want to continue? [y/N] ")
		answer, _ := bufio.NewReader(os.Stdin).ReadString('\n')
		if a := strings.TrimSpace(strings.ToLower(answer)); a != "y" && a != "yes" {
			return 0, nil
		}
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	all, err := m.List(ctx, true)
	if err != nil {
		return 125, err
	}
	var stopped []string
	for _, c := range all {
		// sandy's containers that are not running, and the storage
		// containers a killed sandy run left without a record (never
		// another tool's).
		if !c.External && !c.Running() || c.Leftover() {
			stopped = append(stopped, c.ID)
		}
	}
	removed, err := m.Remove(ctx, stopped, false, false)
	for _, id := range removed {
		fmt.Fprintln(os.Stdout, id)
	}
	if err != nil {
		return 125, err
	}
	return 0, nil
}

const inspectUsage = "inspect [--format json|TEMPLATE] CONTAINER..."

// cmdContainerInspect is podman's container inspect: a JSON array of
// podman's records (Id, State, Config, Mounts, NetworkSettings, …), or a
// Go template per container (--format '{{.State.Status}}').
func cmdContainerInspect(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("inspect", inspectUsage, g.Stderr)
	format := fs.StringP("format", "f", "json", "json, or a Go template per container")
	if err := parseRefs(ctx, g, fs, args, true); err != nil {
		return 125, err
	}
	if fs.NArg() == 0 {
		return 125, errors.New("name at least one container (sandy " + inspectUsage + ")")
	}
	var tmpl *sandyformat.Template
	if *format != "json" {
		var err error
		if tmpl, err = sandyformat.Parse(*format, containers.Inspected{}); err != nil {
			return 125, err
		}
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	records, err := m.Inspect(ctx, fs.Args())
	if err != nil {
		if strings.Contains(err.Error(), "no container with name or id") {
			err = fmt.Errorf("%w (an image? sandy image inspect)", err)
		}
		return 125, err
	}
	if tmpl != nil {
		return 0, sandyformat.Write(os.Stdout, tmpl, records, nil)
	}
	b, err := json.MarshalIndent(records, "", "    ")
	if err != nil {
		return 125, err
	}
	fmt.Fprintf(os.Stdout, "%s\n", b)
	return 0, nil
}

// cmdTop is podman's top: the processes of a running container, by
// ps(1) descriptors (user, pid, ppid, pcpu, etime, tty, time, args when
// none are given), in the container's pids and user names.
func cmdTop(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("top", topUsage, g.Stderr)
	// Descriptors follow the container, and none of them is a flag.
	fs.SetInterspersed(false)
	if err := parseRefs(ctx, g, fs, args, false); err != nil {
		return 125, err
	}
	if fs.NArg() < 1 {
		return 125, errors.New("want a container (sandy " + topUsage + "; descriptors: " + strings.Join(top.Names(), ", ") + ")")
	}
	cols, err := top.Parse(fs.Args()[1:])
	if err != nil {
		return 125, err
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	if err := m.Top(ctx, fs.Arg(0), cols, os.Stdout); err != nil {
		return 125, err
	}
	return 0, nil
}

// parseRefs parses a verb's flags with podman's -l/--latest added: under
// it the id of the container made last (Manage.Latest) becomes the first
// argument, as if typed, so the verb's own checks of its arguments apply.
// With alone, --latest takes the place of every container argument
// (stop, rm, …), as podman's; else the verb's other arguments follow it
// (exec's command, port's port, top's descriptors).
func parseRefs(ctx context.Context, g *lifecycle.Global, fs *pflag.FlagSet, args []string, alone bool) error {
	latest := fs.BoolP("latest", "l", false, "act on the container made last (podman's)")
	if err := fs.Parse(args); err != nil {
		return err
	}
	if !*latest {
		return nil
	}
	if alone && fs.NArg() > 0 {
		return errors.New("--latest and containers cannot be used together")
	}
	m, err := manage(ctx, g)
	if err != nil {
		return err
	}
	id, err := m.Latest(ctx)
	if err != nil {
		return err
	}
	return fs.Parse(append([]string{"--", id}, fs.Args()...))
}
