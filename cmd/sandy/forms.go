package main

import (
	"context"
	"slices"
	"strings"

	"github.com/sandy-rt/sandy/internal/lifecycle"
)

// Some of podman's short commands are runc's too, with another meaning
// (engines call runc's). sandy takes podman's where runc's cannot apply:
//
//   - ps: runc's needs a container id (`ps ID`, its processes); without
//     one it is podman's (`ps [-a] [-q] [--format json]`, the containers);
//   - start: runc's starts a created container the runtime holds; a name
//     or id the runtime does not hold is podman's (`start [-a] NAME…`, a
//     container made from an image started again);
//   - exec: runc's for a container the runtime holds (an engine's id, also
//     the whole id of a container made from an image); podman's (`exec
//     [-it] [-u USER] [-w DIR] NAME CMD`, container exec) for the name or
//     id prefix of a container made from an image, which runc's cannot
//     name;
//   - kill: runc's (`kill [--all] ID [SIGNAL]`, SIGTERM) for an id the
//     runtime holds; podman's (`kill [-s SIGNAL] NAME…`, SIGKILL) for the
//     name or id prefix of a container made from an image;
//   - port: podman's (runc has none).
//   - rm: podman's (runc has delete).

// positional returns the arguments that are not flags, as a flag set with
// valued names would see them ("--format json" takes json).
func positional(args []string, valued ...string) []string {
	var out []string
	for i := 0; i < len(args); i++ {
		a := args[i]
		switch {
		case a == "--":
			return append(out, args[i+1:]...)
		case strings.HasPrefix(a, "-") && len(a) > 1:
			name := strings.TrimLeft(a, "-")
			if !strings.Contains(name, "=") && slices.Contains(valued, name) {
				i++
			}
		default:
			out = append(out, a)
		}
	}
	return out
}

// cmdPsForm is ps: podman's list without a container id, runc's with one.
func cmdPsForm(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	if len(positional(args, "format", "f")) == 0 && !wantsHelp(args) {
		return cmdContainerLs(ctx, g, args)
	}
	return cmdPs(ctx, g, args)
}

// cmdStartForm is start: runc's for a container the runtime holds (or
// any call of runc's shape whose id is no image container), podman's for
// the name or id of a container made from an image that is not running.
func cmdStartForm(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	pos := positional(args)
	if wantsHelp(args) {
		return cmdStart(ctx, g, args)
	}
	if len(pos) == 1 && len(pos) == len(args) && !isImageContainerName(ctx, g, pos[0]) {
		return cmdStart(ctx, g, args) // the runtime's: runc's start and its errors
	}
	return cmdContainerStart(ctx, g, args)
}

// wantsHelp: the usage of both forms is the runc form's.
func wantsHelp(args []string) bool {
	return slices.Contains(args, "-h") || slices.Contains(args, "--help")
}

// execValued are the flags of both exec forms that take a value.
var execValued = []string{"process", "p", "console-socket", "pid-file", "env", "e", "cwd", "user", "u",
	"additional-gids", "g", "cap", "c", "preserve-fds", "process-label", "apparmor", "env-file", "workdir", "w", "detach-keys"}

// execRuncOnly are runc exec's flags that podman's exec has not: an
// engine's call (containerd's shim and conmon pass --process and
// --pid-file) carries some of them.
var execRuncOnly = []string{"process", "p", "console-socket", "pid-file", "process-label", "apparmor",
	"cap", "c", "additional-gids", "g", "no-new-privs", "ignore-paused", "cgroup"}

// cmdExecForm is exec: runc's for an id the runtime holds, podman's
// (container exec) for the name or id prefix of a container made from an
// image that the runtime does not know by that name. A name neither
// knows gets podman's error (status 125) unless the call has runc's
// shape, which an engine's has (--root or --log, or one of runc's own
// exec flags): then runc's (status 255, "container does not exist",
// which engines look for).
func cmdExecForm(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	pos := positional(args, execValued...)
	if wantsHelp(args) || len(pos) == 0 {
		return cmdExec(ctx, g, args)
	}
	switch whose(ctx, g, pos[0]) {
	case heldByRuntime:
		return cmdExec(ctx, g, args)
	case nobodys:
		if g.RuntimeCaller || hasFlag(args, execRuncOnly...) {
			return cmdExec(ctx, g, args)
		}
	}
	return cmdContainerExec(ctx, g, args)
}

// cmdKillForm is kill: runc's for an id the runtime holds, podman's
// (container kill) for the name or id prefix of a container made from an
// image. A name neither knows gets podman's error when the call is
// podman's (-s/--signal, which runc's kill has not, and neither --root
// nor --log), else runc's ("container does not exist", which containerd
// takes for gone).
func cmdKillForm(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	pos := positional(args, "signal", "s")
	if wantsHelp(args) || len(pos) == 0 {
		return cmdKill(ctx, g, args)
	}
	switch whose(ctx, g, pos[0]) {
	case heldByRuntime:
		return cmdKill(ctx, g, args)
	case nobodys:
		if g.RuntimeCaller || !hasFlag(args, "signal", "s") {
			return cmdKill(ctx, g, args)
		}
	}
	return cmdContainerKill(ctx, g, args)
}

// hasFlag reports whether args (up to a "--") carry one of the flags
// named (long or short, with or without "=value").
func hasFlag(args []string, names ...string) bool {
	for _, a := range args {
		if a == "--" {
			return false
		}
		if !strings.HasPrefix(a, "-") || len(a) < 2 {
			continue
		}
		name, _, _ := strings.Cut(strings.TrimLeft(a, "-"), "=")
		if slices.Contains(names, name) {
			return true
		}
	}
	return false
}

// owner is who holds the container a reference names.
type owner int

const (
	nobodys        owner = iota // no container by that name or id
	heldByRuntime               // a container the runtime holds (runc's verbs)
	imageContainer              // a container made from an image (podman's)
)

// whose tells which of the two holds the container ref names. A runtime
// state it cannot read, or no image commands, count as the runtime's, so
// runc's verb says why.
func whose(ctx context.Context, g *lifecycle.Global, ref string) owner {
	if held, err := lifecycle.Holds(g, ref); err != nil || held {
		return heldByRuntime
	}
	m, err := manage(ctx, g)
	if err != nil {
		return heldByRuntime // without the image commands, runc's form is all there is
	}
	if _, err := m.Find(ctx, ref); err != nil {
		return nobodys
	}
	return imageContainer
}

// isImageContainerName reports whether ref names no container the runtime
// holds and names a container made from an image (by name or id prefix).
func isImageContainerName(ctx context.Context, g *lifecycle.Global, ref string) bool {
	return whose(ctx, g, ref) == imageContainer
}
