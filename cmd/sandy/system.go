package main

import (
	"context"
	"errors"
	"fmt"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/spare"
)

// cmdSystem dispatches `sandy system SUBCOMMAND` (podman's names); migrate
// is the only one.
func cmdSystem(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(g.Stderr, "Usage: sandy system COMMAND\n\nCommands:\n  %-8s %s\n", "migrate", systemMigrateSummary)
		if len(args) == 0 {
			return 125, errors.New("missing subcommand")
		}
		return 0, nil
	}
	if args[0] != "migrate" {
		return 125, fmt.Errorf("unknown subcommand %q (migrate)", args[0])
	}
	fs := newFlags("system migrate", "system migrate", g.Stderr)
	if err := fs.Parse(args[1:]); err != nil {
		return 125, err
	}
	if fs.NArg() > 0 {
		return 125, fmt.Errorf("system migrate takes no arguments, got %q", fs.Args())
	}
	// The spares first (image helpers, which are in the pause's
	// namespace, and sandy-nets).
	if n := spare.StopAll(spare.Dir()); n > 0 {
		g.Debugf("ended %d spare helpers", n)
	}
	pid, err := imagehelper.StopPause()
	if err != nil {
		return 125, fmt.Errorf("ending the image store's pause process: %w", err)
	}
	if pid != 0 {
		g.Debugf("ended the image store's pause process %d", pid)
	} else {
		g.Debugf("no pause process to end")
	}
	return 0, nil
}

const systemMigrateSummary = "end the image store's pause process (podman's) and the spare image helpers: the next image command makes a new user namespace, with /etc/subuid's ranges as they are then"
