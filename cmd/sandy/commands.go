package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	iofs "io/fs"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"time"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/containers"
	"github.com/sandy-rt/sandy/internal/doctor"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/internal/spec"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/spf13/pflag"
)

func specVersion() string { return specs.Version }

// createFlags registers the flags create and run share.
func createFlags(name, usageLine string, g *lifecycle.Global, o *lifecycle.CreateOptions) *flagSet {
	fs := newFlags(name, usageLine, g.Stderr)
	fs.StringVarP(&o.Bundle, "bundle", "b", "", "bundle directory (default: the current directory)")
	fs.StringVar(&o.PidFile, "pid-file", "", "write the container's pid to this file")
	fs.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket to receive the pty master (process.terminal)")
	fs.StringVar(&o.KeepLayer, "keep-layer", "", "on delete, move the container's writable layer (overlay upper dir) to this new directory, on the state root's filesystem")
	fs.StringVar(&o.RootfsMode, "rootfs-mode", defaultRootfsMode(name, g.RootfsMode), "root filesystem layer: auto, overlay, fuse, bind, copy, or direct (no layer: the container writes the bundle, as with runc); create defaults to direct, run to auto (docs/rootfs.md)")
	fs.StringVar(&o.Seccomp, "seccomp", "", "default: moby's default profile (adjusted for the bounding capabilities) when config.json has none")
	fs.BoolVar(&o.NoSeccomp, "no-seccomp", false, "run without linux.seccomp (the container is NOT filtered)")
	fs.StringVar(&o.Network.Mode, "network", "", "usernet[:OPTIONS], slirp4netns[:OPTIONS], none or host (docs/networking.md); run defaults to usernet (sandy-net), else slirp4netns, when usable; create to none")
	fs.StringArrayVarP(&o.Network.Publish, "publish", "p", nil, "forward [hostIP:]hostPort:containerPort[/tcp|/udp] (repeatable; for an IMAGE also containerPort and hostIP::containerPort: a free host port)")
	fs.StringVar(&o.Cgroup.Manager, "cgroup-manager", g.CgroupManager, "auto, systemd, cgroupfs or none (docs/cgroups.md)")
	fs.BoolVar(&o.Cgroup.AllowUnenforced, "allow-unenforced", g.AllowUnenforced, "run even when linux.resources limits cannot be enforced (one warning line per lost limit)")
	fs.Bool("no-pivot", false, "runc compatibility; sandy always uses pivot_root")
	fs.Bool("no-new-keyring", false, "runc compatibility; sandy does not create a session keyring")
	return fs
}

type flagSet = pflag.FlagSet

// defaultRootfsMode is the default of verb's --rootfs-mode: global, the
// global --rootfs-mode or $SANDY_ROOTFS_MODE, when it is set; else direct
// for create, the engine's verb (an engine hands every container a root of
// its own and reads the container's writes there: podman diff, commit, cp),
// and auto for run, the person's verb (a private copy-on-write layer keeps
// the bundle unchanged).
func defaultRootfsMode(verb, global string) string {
	switch {
	case global != "":
		return global
	case verb == "create":
		return string(overlay.ModeDirect)
	default:
		return string(overlay.ModeAuto)
	}
}

func cmdRun(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	o := &lifecycle.RunOptions{}
	co := &containers.Options{}
	fs := createFlags("run", "run [flags] [BUNDLE [COMMAND [ARG...]] | --bundle DIR ID | IMAGE [COMMAND [ARG...]]]", g, &o.CreateOptions)
	fs.BoolVarP(&o.Detach, "detach", "d", false, "return once the container runs")
	fs.BoolVar(&o.Keep, "keep", false, "don't delete the container when it exits")
	containerFlags(fs, co)
	img := &imageRun{opts: co}
	imageFlags(fs, img)
	rest, command, err := parseRun(fs, args, func() bool { return o.Bundle != "" })
	if err != nil {
		return 2, err
	}
	var first string
	if len(rest) > 0 {
		first = rest[0]
	}
	form, note := classifyRun(first, o.Bundle != "", cwdIsBundle, isBundle)
	if form == formImage {
		return runImage(ctx, g, fs, img, o, append(rest, command...))
	}
	if err := bundleFlagsOnly(fs); err != nil {
		return 2, err
	}
	if note != "" && isTerminalFile(os.Stderr) {
		fmt.Fprintf(g.Stderr, "sandy: note: %s\n", note)
	}
	switch {
	case len(rest) > 1:
		return 2, errors.New("too many arguments: want [BUNDLE [COMMAND [ARG...]]] or --bundle DIR ID")
	case form == formBundle:
		// `sandy run ./bundle [COMMAND [ARG...]]`.
		o.Bundle, co.Command = rest[0], command
	case len(rest) == 1:
		o.ID = rest[0]
	}
	if !reflect.ValueOf(*co).IsZero() { // the runc form, flagless, runs config.json as written
		h, err := callerHost()
		if err != nil {
			return 1, err
		}
		o.EditSpec = containers.EditBundle(*co, h)
	}
	o.Stdin, o.Stdout, o.Stderr = os.Stdin, os.Stdout, os.Stderr
	return lifecycle.Run(ctx, g, o)
}

func isBundle(p string) bool {
	fi, err := os.Stat(filepath.Join(p, "config.json"))
	return err == nil && fi.Mode().IsRegular()
}

func cmdCreate(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	o := &lifecycle.CreateOptions{}
	fs := createFlags("create", "create [flags] --bundle DIR ID", g, o)
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs.Args(), "sandy create --bundle DIR ID")
	if err != nil {
		return 2, err
	}
	o.ID = id
	o.Stdin, o.Stdout, o.Stderr = os.Stdin, os.Stdout, os.Stderr
	err = lifecycle.Create(ctx, g, o)
	if ie := (*lifecycle.InterruptedError)(nil); errors.As(err, &ie) {
		return 128 + int(ie.Signal), err // as if the signal had killed sandy
	}
	return 0, err
}

func cmdStart(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("start", "start ID (runc's: a created container) | start [-a] [-i] NAME... (podman's: sandy container start --help)", g.Stderr)
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs.Args(), "sandy start ID")
	if err != nil {
		return 2, err
	}
	return 0, lifecycle.Start(ctx, g, id)
}

func cmdExec(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	return execIn(ctx, g, args, "exec")
}

// execIn is runc's exec, the runtime's id named (podman's form, by name
// and with podman's flags, is cmdContainerExec).
func execIn(ctx context.Context, g *lifecycle.Global, args []string, verb string) (int, error) {
	o := &lifecycle.ExecOptions{}
	fs := newFlags(verb, verb+" [flags] ID COMMAND [ARG...] | "+verb+" [flags] --process FILE ID", g.Stderr)
	// Flags end at the container id: the command's own flags follow it.
	fs.SetInterspersed(false)
	fs.StringVarP(&o.ProcessFile, "process", "p", "", "a runtime-spec process JSON to run instead of COMMAND")
	fs.BoolVarP(&o.Detach, "detach", "d", false, "return once the process runs")
	tty := fs.BoolP("tty", "t", false, "allocate a pty (relayed, or sent to --console-socket)")
	fs.StringVar(&o.ConsoleSocket, "console-socket", "", "unix socket to receive the pty master")
	fs.StringVar(&o.PidFile, "pid-file", "", "write the process's pid to this file")
	fs.StringArrayVarP(&o.Env, "env", "e", nil, "set NAME=VALUE in the environment (repeatable)")
	fs.StringVar(&o.Cwd, "cwd", "", "working directory in the container")
	fs.StringVarP(&o.User, "user", "u", "", "UID[:GID] to run as")
	fs.Int64SliceVarP(&o.AdditionalGID, "additional-gids", "g", nil, "additional group ids (repeatable)")
	fs.StringArrayVarP(&o.Caps, "cap", "c", nil, "add a capability to every set (repeatable)")
	nnp := fs.Bool("no-new-privs", false, "set no_new_privs for the process")
	fs.IntVar(&o.PreserveFDs, "preserve-fds", 0, "pass N more fds (3..3+N-1) to the process")
	fs.BoolVar(&o.IgnorePaused, "ignore-paused", false, "exec even if the container is paused")
	fs.String("process-label", "", "runc compatibility (SELinux is not supported: a label is an error)")
	fs.String("apparmor", "", "runc compatibility (AppArmor is not supported: a profile is an error)")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	for _, f := range []string{"process-label", "apparmor"} {
		if v, _ := fs.GetString(f); v != "" {
			return 2, fmt.Errorf("--%s: sandy does not support AppArmor or SELinux", f)
		}
	}
	if fs.Changed("tty") {
		o.Tty = tty
	}
	if fs.Changed("no-new-privs") {
		o.NoNewPrivs = nnp
	}
	rest := fs.Args()
	if len(rest) == 0 {
		return 2, errors.New("usage: sandy exec [flags] ID COMMAND [ARG...]")
	}
	o.ID, o.Args = rest[0], rest[1:]
	if len(o.Args) > 0 && o.Args[0] == "--" {
		o.Args = o.Args[1:]
	}
	if o.ProcessFile != "" && len(o.Args) > 0 {
		return 2, errors.New("give either --process or a command, not both")
	}
	if o.PreserveFDs < 0 {
		return 2, errors.New("--preserve-fds: want a number >= 0")
	}
	o.Stdin, o.Stdout, o.Stderr = os.Stdin, os.Stdout, os.Stderr
	return lifecycle.Exec(ctx, g, o)
}

func cmdState(_ context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("state", "state ID", g.Stderr)
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs.Args(), "sandy state ID")
	if err != nil {
		return 2, err
	}
	return 0, lifecycle.State(g, id, os.Stdout)
}

func cmdKill(_ context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("kill", "kill [--all] ID [SIGNAL]", g.Stderr)
	all := fs.BoolP("all", "a", false, "signal every process in the container (through its cgroup)")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	rest := fs.Args()
	if len(rest) < 1 || len(rest) > 2 {
		return 2, errors.New("usage: sandy kill [--all] ID [SIGNAL]")
	}
	sig := unix.SIGTERM
	if len(rest) == 2 {
		s, err := parseSignal(rest[1])
		if err != nil {
			return 2, err
		}
		sig = s
	}
	return 0, lifecycle.Kill(g, rest[0], sig, *all)
}

// parseSignal reads kill's SIGNAL: a name with or without SIG, or a number
// from 0 (no signal: only check that it could be sent, as kill(2) and
// runc) to 64.
func parseSignal(s string) (unix.Signal, error) {
	if n, err := strconv.Atoi(s); err == nil {
		if n < 0 || n > 64 {
			return 0, fmt.Errorf("signal %d out of range (0 to 64)", n)
		}
		return unix.Signal(n), nil
	}
	sig := unix.SignalNum("SIG" + trimSig(s))
	if sig == 0 {
		return 0, fmt.Errorf("unknown signal %q", s)
	}
	return sig, nil
}

func cmdDelete(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("delete", "delete [--force] ID", g.Stderr)
	force := fs.BoolP("force", "f", false, "kill the container first if it runs")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs.Args(), "sandy delete [--force] ID")
	if err != nil {
		return 2, err
	}
	return 0, lifecycle.Delete(ctx, g, id, *force)
}

func cmdList(_ context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("list", "list [--format table|json] [-q]", g.Stderr)
	format := fs.StringP("format", "f", "table", "table or json")
	quiet := fs.BoolP("quiet", "q", false, "print only the ids")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	return 0, lifecycle.List(g, os.Stdout, *format, *quiet)
}

func cmdSpec(_ context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("spec", "spec [--rootless] [--writable] [--caps runc|podman] [--bundle DIR]", g.Stderr)
	var o spec.ExampleOptions
	fs.BoolVar(&o.Rootless, "rootless", false, "a config a rootless user can run")
	fs.BoolVar(&o.Writable, "writable", false, "a writable root (root.readonly false), e.g. to install packages")
	fs.StringVar(&o.Caps, "caps", "runc", "capabilities: runc (runc's example: AUDIT_WRITE, KILL, NET_BIND_SERVICE) or podman (podman's defaults, which apt and dpkg need)")
	bundle := fs.StringP("bundle", "b", "", "directory to write config.json into (default: the current directory)")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	s, err := spec.ExampleWith(o)
	if err != nil {
		return 2, err
	}
	data, err := json.MarshalIndent(s, "", "\t")
	if err != nil {
		return 1, err
	}
	path := filepath.Join(*bundle, "config.json")
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if errors.Is(err, iofs.ErrExist) {
		return 1, fmt.Errorf("%s already exists: remove it first", path)
	}
	if err != nil {
		return 1, err
	}
	if _, err := f.Write(append(data, '\n')); err != nil {
		f.Close()
		return 1, err
	}
	return 0, f.Close()
}

func cmdPs(_ context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("ps", "ps [--format table|json] ID [-- PS-ARG...] (runc's: its processes) | ps [-a] [-q] [--format json] (podman's: sandy container ls --help)", g.Stderr)
	format := fs.StringP("format", "f", "table", "table or json")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if len(fs.Args()) < 1 {
		return 2, errors.New("usage: sandy ps [--format table|json] ID")
	}
	return 0, lifecycle.Ps(g, fs.Args()[0], *format, fs.Args()[1:], os.Stdout)
}

func cmdPause(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("pause", "pause ID", g.Stderr)
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs.Args(), "sandy pause ID")
	if err != nil {
		return 2, err
	}
	return 0, lifecycle.Pause(ctx, g, id, true)
}

func cmdResume(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("resume", "resume ID", g.Stderr)
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs.Args(), "sandy resume ID")
	if err != nil {
		return 2, err
	}
	return 0, lifecycle.Pause(ctx, g, id, false)
}

func cmdUpdate(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("update", "update [-r FILE|-] [--memory N] [--pids-limit N] ID", g.Stderr)
	file := fs.StringP("resources", "r", "", "an OCI linux.resources JSON file (- for stdin)")
	memory := fs.Int64("memory", 0, "memory limit in bytes")
	pids := fs.Int64("pids-limit", 0, "maximum number of processes")
	allow := fs.Bool("allow-unenforced", g.AllowUnenforced, "warn instead of failing for limits that cannot be enforced")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs.Args(), "sandy update [flags] ID")
	if err != nil {
		return 2, err
	}
	r := &specs.LinuxResources{}
	if *file != "" {
		var data []byte
		if *file == "-" {
			data, err = io.ReadAll(os.Stdin)
		} else {
			data, err = os.ReadFile(*file)
		}
		if err != nil {
			return 1, err
		}
		if r, err = lifecycle.ParseResources(data); err != nil {
			return 1, err
		}
	}
	if *memory != 0 {
		r.Memory = &specs.LinuxMemory{Limit: memory}
	}
	if *pids != 0 {
		r.Pids = &specs.LinuxPids{Limit: pids}
	}
	return 0, lifecycle.Update(ctx, g, id, r, *allow)
}

func cmdEvents(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("events", "events [--stats] [--interval D] ID", g.Stderr)
	stats := fs.Bool("stats", false, "print the stats once and exit")
	interval := fs.Duration("interval", 5*time.Second, "time between stats")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	id, err := oneID(fs.Args(), "sandy events [--stats] ID")
	if err != nil {
		return 2, err
	}
	return 0, lifecycle.Events(ctx, g, id, *interval, *stats, os.Stdout)
}

func cmdFeatures(_ context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("features", "features", g.Stderr)
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if len(fs.Args()) != 0 {
		return 2, errors.New("features takes no arguments")
	}
	return 0, lifecycle.Features(os.Stdout)
}

func cmdDoctor(_ context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("doctor", "doctor [--json | --fix-script]", g.Stderr)
	asJSON := fs.Bool("json", false, "print the report as JSON (schema in docs/cli/doctor.md)")
	fixScript := fs.Bool("fix-script", false, "print only the root fixes for what is not ok, as one `sudo sh -eux` block (nothing when none needs root)")
	if err := fs.Parse(args); err != nil {
		return 2, err
	}
	if len(fs.Args()) != 0 {
		return 2, errors.New("doctor takes no arguments")
	}
	if *asJSON && *fixScript {
		return 2, errors.New("--json and --fix-script exclude each other (the JSON has the script in fix_script)")
	}
	r := doctor.Run(doctor.Options{Version: version, Root: g.Root})
	write := r.WriteText
	switch {
	case *asJSON:
		write = r.WriteJSON
	case *fixScript:
		write = r.WriteFixScript
	}
	if err := write(os.Stdout); err != nil {
		return 1, err
	}
	return r.ExitCode(), nil
}
