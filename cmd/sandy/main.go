// Command sandy is a rootless-first OCI runtime and sandbox. This package
// is wiring only: flags, the subcommand table, exit codes and help text.
package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/containers"
	"github.com/sandy-rt/sandy/internal/fds"
	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/initproc"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/pid1"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/slirp"
	"github.com/sandy-rt/sandy/userns"
)

// version is set with -ldflags "-X main.version=...".
var version = "0.1.0-dev"

type command struct {
	name    string
	usage   string
	summary string
	run     func(ctx context.Context, g *lifecycle.Global, args []string) (int, error)
}

func commands() []command {
	return []command{
		{"run", "run [flags] [BUNDLE [COMMAND [ARG...]] | --bundle DIR ID]", "create, start and wait for a container, then delete it", cmdRun},
		{"create", "create [flags] --bundle DIR ID", "create a container; its process waits for start", cmdCreate},
		{"start", "start ID | start [-a] [-i] NAME...", "start the process of a created container (runc's); a container made from an image again (podman's)", cmdStartForm},
		{"state", "state ID", "print the runtime-spec state of a container", cmdState},
		{"exec", "exec [flags] ID COMMAND [ARG...] | exec [flags] --process FILE ID | exec [-it] [-u USER] [-w DIR] NAME COMMAND...", "run a new process in a running container (runc's by id; podman's by a container's name)", cmdExecForm},
		{"kill", "kill [--all] ID [SIGNAL] | kill [-s SIGNAL] NAME...", "send a signal to a container (runc's by id, default SIGTERM; podman's by name, default SIGKILL)", cmdKillForm},
		{"delete", "delete [--force] ID", "delete a stopped container (--force: any)", cmdDelete},
		{"list", "list [--format table|json] [-q]", "list containers", cmdList},
		{"ps", "ps [--format table|json] ID [-- PS-ARG...] | ps [-a] [-q] [--format json]", "list a container's processes (runc's, with an id; needs its cgroup); without one, the containers made from images (podman's)", cmdPsForm},
		{"rm", "rm [-f] NAME|ID...", "remove containers made from images and their layers (podman's; runc's is delete)", cmdContainerRm},
		{"pause", "pause ID", "freeze every process of the container (cgroup.freeze)", cmdPause},
		{"resume", "resume ID", "thaw a paused container", cmdResume},
		{"update", "update [-r FILE|-] [--memory N] [--pids-limit N] ID", "change a running container's limits", cmdUpdate},
		{"events", "events [--stats] [--interval D] ID", "print cgroup stats as JSON", cmdEvents},
		{"spec", "spec [--rootless] [--writable] [--caps runc|podman] [--bundle DIR]", "write an example config.json", cmdSpec},
		{"features", "features", "print the runtime-spec features JSON of this build", cmdFeatures},
		{"doctor", "doctor [--json | --fix-script]", "try what sandy needs on this machine; each problem with its consequence and fix", cmdDoctor},
		{"volume", "volume create|ls|inspect|rm|prune|exists ...", "manage named volumes (podman's volume commands)", cmdVolume},
		{"container", "container ls|rm|exec|start|attach|stop|restart|kill|logs|wait|top|commit|cp|diff|rename|prune|port ...", "the containers made from images (podman's container commands)", cmdContainer},
		{"logs", "logs [-f] [-t] [--tail N] [--since T] NAME|ID", "print a container's output (run -d's log)", cmdLogs},
		{"stop", "stop [-t SECONDS] NAME|ID...", "stop running containers: the stop signal, then SIGKILL after the timeout", cmdStop},
		{"wait", "wait NAME|ID...", "wait for containers to exit and print their exit statuses", cmdWait},
		{"attach", attachUsage, "attach to a container run with -d: its output, your stdin (-i), until it exits or ctrl-p,ctrl-q detaches", cmdAttach},
		{"restart", "restart [-t SECONDS] NAME|ID...", "stop containers, then start them again", cmdRestart},
		{"inspect", inspectUsage, "print containers made from images as podman's JSON records (images: sandy image inspect)", cmdContainerInspect},
		{"cp", cpUsage, "copy files between a container made from an image and the host (both ways, running or stopped)", cmdCp},
		{"diff", diffUsage, "list what a container made from an image changed over its image (A, C, D)", cmdContainerDiff},
		{"rename", renameUsage, "give a container made from an image a new name", cmdContainerRename},
		{"port", "port NAME|ID [PORT[/PROTO]]", "list a container's published ports (podman's port)", cmdContainerPort},
		{"top", topUsage, "list a running container's processes by ps descriptors (podman's top; runc's is ps ID)", cmdTop},
		{"system", "system migrate", systemMigrateSummary, cmdSystem},
		{"commit", commitUsage, "make an image of a container made from an image (its layer on top of its image's)", cmdCommit},
	}
}

func main() {
	// `run --init`'s pid 1 is this binary, bound at /run/sandy-init in
	// the container: its argv is the container's, not sandy's.
	if filepath.Base(os.Args[0]) == pid1.Name {
		os.Exit(pid1.Main(os.Args[1:]))
	}
	// The init role comes first, before any flag parsing: it is the
	// re-exec'd container init, and its argv is sandy's own.
	if len(os.Args) > 1 {
		switch os.Args[1] {
		case "init":
			initproc.Main()
			return
		case initproc.ExecRole:
			initproc.ExecMain(os.Args[2:])
			return
		case userns.SpawnRole:
			os.Exit(hiddenRole(userns.SpawnMain(os.Args[2:])))
		case lifecycle.RemoveLayerRole:
			os.Exit(lifecycle.RemoveLayerMain(os.Args[2:]))
		case containers.CopyRole:
			os.Exit(containers.CopyWorkerMain(os.Args[2:]))
		case containers.MonitorRole:
			os.Exit(containers.MonitorMain(os.Args[2:]))
		case lifecycle.ReapRole:
			os.Exit(lifecycle.ReapMain(os.Args[2:]))
		case imagehelper.PauseRole:
			os.Exit(imagehelper.PauseMain())
		case lifecycle.SentinelRole:
			os.Exit(lifecycle.SentinelMain())
		case overlay.ProbeRole:
			os.Exit(hiddenRole(overlay.ProbeMain(os.Args[2:])))
		case slirp.TunProbeRole:
			os.Exit(hiddenRole(slirp.TunProbeMain(os.Args[2:])))
		case slirp.MonitorCommand:
			os.Exit(hiddenRole(slirp.RunMonitor(os.Args[2:])))
		case slirp.PortChildCommand:
			os.Exit(hiddenRole(slirp.RunPortChild(os.Args[2:])))
		}
	}
	// The CLI: what the caller left open without close-on-exec reaches
	// none of the processes sandy starts (internal/fds).
	if err := fds.CloexecFrom(3); err != nil {
		fmt.Fprintf(os.Stderr, "sandy: marking inherited fds close-on-exec: %v\n", err)
		os.Exit(125)
	}
	os.Exit(realMain(os.Args[1:], os.Stdout, os.Stderr))
}

// hiddenRole turns a hidden role's error into its exit status.
func hiddenRole(err error) int {
	if err != nil {
		fmt.Fprintf(os.Stderr, "sandy %s: %v\n", os.Args[1], err)
		return 1
	}
	return 0
}

func realMain(args []string, stdout, stderr io.Writer) int {
	fs := pflag.NewFlagSet("sandy", pflag.ContinueOnError)
	fs.SetInterspersed(false)
	fs.SetOutput(stderr)
	g := &lifecycle.Global{Stderr: stderr}
	var logFile, logFormat string
	var showVersion bool
	fs.StringVar(&g.Root, "root", "", "state root (default $XDG_RUNTIME_DIR/sandy, else /run/sandy for root, else $TMPDIR/sandy-UID)")
	fs.StringVar(&logFile, "log", "", "also write log lines to this file")
	fs.StringVar(&logFormat, "log-format", "text", "log format: text or json")
	fs.BoolVar(&g.Debug, "debug", false, "print debug lines")
	var systemdCgroup bool
	fs.BoolVar(&systemdCgroup, "systemd-cgroup", false, "use the systemd cgroup manager (runc compatibility; same as --cgroup-manager=systemd)")
	fs.String("rootless", "auto", "runc compatibility: auto, true or false (sandy is always rootless-capable)")
	fs.BoolVarP(&showVersion, "version", "v", false, "print the version")
	// The image store's flags, passed on to the image helper (podman's names).
	var storeFlags []string
	for _, name := range []string{"storage-root", "storage-runroot", "storage-driver", "registries-conf"} {
		fs.String(name, "", imageFlagUsage[name])
	}
	fs.StringArray("storage-opt", nil, imageFlagUsage["storage-opt"])
	// Defaults for create and run that an engine, which cannot pass
	// sandy's own flags to them, can set once: podman --runtime-flag, or
	// the environment of containerd's shim.
	fs.StringVar(&g.RootfsMode, "rootfs-mode", os.Getenv("SANDY_ROOTFS_MODE"), "default of create/run --rootfs-mode ($SANDY_ROOTFS_MODE; unset: direct for create, auto for run)")
	fs.BoolVar(&g.AllowUnenforced, "allow-unenforced", os.Getenv("SANDY_ALLOW_UNENFORCED") == "1", "default of create/run --allow-unenforced ($SANDY_ALLOW_UNENFORCED=1)")
	fs.Usage = func() { usage(stderr, fs) }
	if err := fs.Parse(args); err != nil {
		if errors.Is(err, pflag.ErrHelp) {
			return 0
		}
		return 2
	}
	g.RuntimeCaller = fs.Changed("root") || fs.Changed("log")
	g.CgroupManager = "auto"
	if m := os.Getenv("SANDY_CGROUP_MANAGER"); m != "" {
		g.CgroupManager = m // checked by cgroupv2.New, as the flag's value
	}
	if systemdCgroup {
		g.CgroupManager = "systemd"
	}
	if showVersion {
		fmt.Fprintf(stdout, "sandy version %s\nspec: %s\n", version, specVersion())
		return 0
	}
	if logFile != "" {
		f, err := os.OpenFile(logFile, os.O_WRONLY|os.O_APPEND|os.O_CREATE|unix.O_CLOEXEC, 0o644)
		if err != nil {
			fmt.Fprintf(stderr, "sandy: opening --log: %v\n", err)
			return 1
		}
		defer f.Close()
		l, err := lifecycle.NewLogger(f, logFormat, g.Debug)
		if err != nil {
			fmt.Fprintf(stderr, "sandy: %v\n", err)
			return 2
		}
		g.Logger, g.LogOnly = l, true
	}
	rest := fs.Args()
	if len(rest) == 0 {
		usage(stderr, fs)
		return 2
	}
	fs.Visit(func(f *pflag.Flag) {
		if _, ok := imageFlagUsage[f.Name]; ok {
			if sa, ok := f.Value.(pflag.SliceValue); ok {
				for _, v := range sa.GetSlice() {
					storeFlags = append(storeFlags, "--"+f.Name+"="+v)
				}
			} else {
				storeFlags = append(storeFlags, "--"+f.Name+"="+f.Value.String())
			}
		}
	})
	if g.Debug {
		storeFlags = append(storeFlags, "--debug")
	}
	if imagehelper.IsVerb(rest[0]) {
		return execImageHelper(g, rest[0], append(storeFlags, rest...), stderr)
	}
	for _, c := range commands() {
		if c.name != rest[0] {
			continue
		}
		// Commands handle signals themselves (run forwards them).
		code, err := c.run(withStoreFlags(context.Background(), storeFlags), g, rest[1:])
		if err != nil {
			if errors.Is(err, pflag.ErrHelp) {
				return 0
			}
			var printed interface{ Printed() bool }
			if !errors.As(err, &printed) || !printed.Printed() {
				fmt.Fprintf(stderr, "sandy %s: %v\n", c.name, err)
			}
			if g.Logger != nil {
				g.Logger.Error(err.Error())
			}
			if code == 0 {
				code = 1
			}
		}
		return code
	}
	fmt.Fprintf(stderr, "sandy: unknown command %q (see sandy --help)\n", rest[0])
	return 2
}

// imageFlagUsage are the global flags only the image commands read.
var imageFlagUsage = map[string]string{
	"storage-root":    "image store root (default: containers-storage.conf's graphroot, as podman)",
	"storage-runroot": "image store run root (default: containers-storage.conf's runroot)",
	"storage-driver":  "image store driver: overlay or vfs (default: storage.conf's, else the store's own, else overlay → fuse-overlayfs → vfs)",
	"storage-opt":     "image store driver option, e.g. overlay.mount_program=/usr/bin/fuse-overlayfs (repeatable)",
	"registries-conf": "registries.conf to use instead of the system's",
}

// execImageHelper hands an image command to sandy-image (this process
// becomes it); it returns only when that fails.
func execImageHelper(g *lifecycle.Global, verb string, args []string, stderr io.Writer) int {
	path, err := imagehelper.Locate()
	if err == nil {
		err = imagehelper.Exec(path, verb, args, func(line string) { g.Debugf("%s", line) })
	}
	fmt.Fprintf(stderr, "sandy %s: %v\n", verb, err)
	return 125
}

func usage(w io.Writer, fs *pflag.FlagSet) {
	fmt.Fprintf(w, "sandy — a rootless OCI runtime\n\nUsage: sandy [global flags] COMMAND [flags]\n\nCommands:\n")
	for _, c := range commands() {
		fmt.Fprintf(w, "  %-10s %s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nImage commands (run by %s, installed beside sandy):\n", imagehelper.Name)
	for _, v := range imagehelper.Verbs() {
		fmt.Fprintf(w, "  %-10s %s\n", v.Name, v.Summary)
	}
	fmt.Fprintf(w, "\nGlobal flags:\n%s", fs.FlagUsages())
}

// newFlags makes a subcommand's flag set with a usage line.
func newFlags(name, usageLine string, stderr io.Writer) *pflag.FlagSet {
	fs := pflag.NewFlagSet(name, pflag.ContinueOnError)
	fs.SetOutput(stderr)
	fs.Usage = func() {
		fmt.Fprintf(stderr, "Usage: sandy %s\n\nFlags:\n%s", usageLine, fs.FlagUsages())
	}
	return fs
}

func oneID(args []string, what string) (string, error) {
	if len(args) != 1 {
		return "", fmt.Errorf("want exactly one container id (%s)", what)
	}
	return args[0], nil
}

func trimSig(s string) string { return strings.TrimPrefix(strings.ToUpper(s), "SIG") }
