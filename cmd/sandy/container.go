package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/sandy-rt/sandy/internal/containers"
	sandyformat "github.com/sandy-rt/sandy/internal/format"
	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/lifecycle"
	"github.com/sandy-rt/sandy/userns"
)

// containerCommands are `sandy container`'s subcommands: podman's long
// forms, which do not clash with runc's `ps ID` and `delete ID` that
// engines call.
func containerCommands() []command {
	return []command{
		{"ls", "container ls [-a] [-q] [--no-trunc] [--external] [--format json|table|TEMPLATE]", "list the containers made from images (-a: also those that exited)", cmdContainerLs},
		{"rm", "container rm [-f] [-v] NAME|ID...", "remove containers made from images and their layers (-f: kill a running one first)", cmdContainerRm},
		{"exec", containerExecUsage, "run a process in a running container made from an image (podman's flags)", cmdContainerExec},
		{"commit", "container " + commitUsage, "make an image of a container (as sandy commit)", cmdCommit},
		{"inspect", "container " + inspectUsage, "print containers' records as podman's JSON (or --format TEMPLATE)", cmdContainerInspect},
		{"cp", "container " + cpUsage, "copy files between a container and the host (also: sandy cp)", cmdCp},
		{"diff", "container " + diffUsage, "list what a container added (A), changed (C) and deleted (D) over its image", cmdContainerDiff},
		{"rename", "container " + renameUsage, "give a container a new name", cmdContainerRename},
		{"prune", pruneUsage, "remove every container made from an image that is not running", cmdContainerPrune},
		{"port", "container port NAME|ID [PORT[/PROTO]]", "list the container's published ports (-p, -P)", cmdContainerPort},
		{"start", containerStartUsage, "start containers that are not running again, on the same layer (-a: attach, exit with the status; -i: with stdin)", cmdContainerStart},
		{"attach", "container " + attachUsage, "attach to a running container: its output, your stdin (-i), until it exits or ctrl-p,ctrl-q (also: sandy attach)", cmdAttach},
		{"stop", "container stop [-t SECONDS] NAME|ID...", "stop containers: the stop signal, then SIGKILL after the timeout (also: sandy stop)", cmdStop},
		{"restart", "container restart [-t SECONDS] NAME|ID...", "stop, then start (also: sandy restart)", cmdRestart},
		{"kill", "container kill [-s SIGNAL] NAME|ID...", "send a signal (default SIGKILL) to containers' main process", cmdContainerKill},
		{"logs", "container logs [-f] [-t] [--tail N] [--since T] NAME|ID", "print a container's output (also: sandy logs)", cmdLogs},
		{"wait", "container wait NAME|ID...", "wait for containers to exit, print their statuses (also: sandy wait)", cmdWait},
		{"top", "container " + topUsage, "list a running container's processes as podman top (also: sandy top)", cmdTop},
	}
}

// cmdContainer dispatches `sandy container SUBCOMMAND`; exit codes are
// podman's (125 for an error).
func cmdContainer(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	if len(args) == 0 || args[0] == "-h" || args[0] == "--help" || args[0] == "help" {
		fmt.Fprintf(g.Stderr, "Usage: sandy container COMMAND\n\nCommands:\n")
		for _, c := range containerCommands() {
			fmt.Fprintf(g.Stderr, "  %-8s %s\n", c.name, c.summary)
		}
		if len(args) == 0 {
			return 125, errors.New("missing subcommand")
		}
		return 0, nil
	}
	name := args[0]
	switch name { // podman's other names
	case "list", "ps":
		name = "ls"
	case "remove":
		name = "rm"
	}
	for _, c := range containerCommands() {
		if c.name == name {
			return c.run(ctx, g, args[1:])
		}
	}
	return 125, fmt.Errorf("unknown subcommand %q (ls, rm, exec, start, attach, stop, restart, kill, logs, wait, inspect, top, commit, cp, diff, rename, prune, port)", args[0])
}

func manage(ctx context.Context, g *lifecycle.Global) (containers.Manage, error) {
	helper, err := imagehelper.Locate()
	if err != nil {
		return containers.Manage{}, err
	}
	return containers.Manage{G: g, Helper: helper, Global: storeFlagsOf(ctx), Stderr: g.Stderr}, nil
}

func cmdContainerLs(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("container ls", containerCommands()[0].usage, g.Stderr)
	all := fs.BoolP("all", "a", false, "also the containers that are not running")
	quiet := fs.BoolP("quiet", "q", false, "print the ids only")
	noTrunc := fs.Bool("no-trunc", false, "print whole ids and commands")
	external := fs.Bool("external", false, "also the store's containers without a record of sandy's: podman's, buildah's, and those a killed sandy run left (state storage)")
	format := fs.String("format", "", "json, table, or a Go template of podman's fields ({{.ID}} {{.Names}} {{.Status}} …; \"table …\" adds a header)")
	if err := fs.Parse(args); err != nil {
		return 125, err
	}
	var tmpl *sandyformat.Template
	if *format != "" && *format != "json" && *format != "table" && !*quiet {
		var err error
		if tmpl, err = sandyformat.Parse(*format, psRow{}); err != nil {
			return 125, err
		}
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	list, err := m.List(ctx, *external)
	if err != nil {
		return 125, err
	}
	var shown []containers.Listed
	for _, c := range list {
		if *all || c.Running() {
			shown = append(shown, c)
		}
	}
	out := os.Stdout
	if *format == "json" && !*quiet {
		if shown == nil {
			shown = []containers.Listed{}
		}
		b, err := json.MarshalIndent(shown, "", "    ")
		if err != nil {
			return 125, err
		}
		fmt.Fprintf(out, "%s\n", b)
		return 0, nil
	}
	now := time.Now()
	rows := make([]psRow, len(shown))
	for i, c := range shown {
		rows[i] = newPsRow(now, c, *noTrunc)
	}
	switch {
	case *quiet:
		for _, r := range rows {
			fmt.Fprintln(out, r.ID)
		}
		return 0, nil
	case tmpl != nil:
		return 0, sandyformat.Write(out, tmpl, rows, psHeaders)
	}
	tw := tabwriter.NewWriter(out, 0, 8, 2, ' ', 0)
	fmt.Fprintln(tw, "CONTAINER ID\tIMAGE\tCOMMAND\tCREATED\tSTATUS\tPORTS\tNAMES")
	for _, r := range rows {
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\n", r.ID, r.Image, r.Command, r.CreatedHuman, r.Status, r.Ports, r.Names)
	}
	return 0, tw.Flush()
}

// psRow is one container as `ps --format TEMPLATE` sees it: podman's
// field names (its psReporter's), each a string as podman prints it.
type psRow struct {
	ID, Image, ImageID, Command            string
	CreatedAt, CreatedHuman, Created       string // CreatedAt: the time; the others: "N minutes ago"
	RunningFor                             string
	Status, State, Ports, Names, StartedAt string
	ExitCode                               int
	Exited                                 bool
	Labels                                 map[string]string
}

// Label is podman's {{.Label "key"}}.
func (r psRow) Label(k string) string { return r.Labels[k] }

// psHeaders are the column titles of `--format "table …"`.
var psHeaders = map[string]string{"ID": "CONTAINER ID", "Image": "IMAGE", "ImageID": "IMAGE ID", "Command": "COMMAND",
	"CreatedAt": "CREATED AT", "CreatedHuman": "CREATED", "Created": "CREATED", "RunningFor": "CREATED", "Status": "STATUS",
	"State": "STATE", "Ports": "PORTS", "Names": "NAMES", "StartedAt": "STARTED AT", "ExitCode": "EXIT CODE", "Exited": "EXITED",
	"Labels": "LABELS"}

func newPsRow(now time.Time, c containers.Listed, noTrunc bool) psRow {
	short := func(s string) string {
		if noTrunc {
			return s
		}
		return s[:min(12, len(s))]
	}
	cmd := strings.Join(c.Command, " ")
	if !noTrunc && len(cmd) > 20 {
		cmd = cmd[:17] + "..."
	}
	r := psRow{ID: short(c.ID), Image: c.Image, ImageID: short(c.ImageID), Command: cmd,
		CreatedAt: c.Created.String(), CreatedHuman: ago(now, c.Created), Status: status(now, c), State: c.State,
		Ports: portsColumn(c.Ports), Names: strings.Join(c.Names, ","), Labels: c.Labels, Exited: c.State == "exited"}
	r.Created, r.RunningFor = r.CreatedHuman, r.CreatedHuman
	if c.Started != nil {
		r.StartedAt = c.Started.String()
	}
	if c.ExitCode != nil {
		r.ExitCode = *c.ExitCode
	}
	return r
}

// portsColumn is podman's PORTS column: "0.0.0.0:8080->80/tcp, …".
func portsColumn(ports []containers.PortMapping) string {
	cols := make([]string, 0, len(ports))
	for _, p := range ports {
		host := p.HostIP
		if host == "" {
			host = "0.0.0.0"
		}
		cols = append(cols, fmt.Sprintf("%s->%d/%s", net.JoinHostPort(host, strconv.Itoa(p.HostPort)), p.ContainerPort, p.Protocol))
	}
	return strings.Join(cols, ", ")
}

// status is podman's STATUS column.
func status(now time.Time, c containers.Listed) string {
	switch {
	case c.External:
		return externalStatus(c)
	case c.State == "running" && c.Started != nil:
		return "Up " + ago(now, *c.Started)
	case c.State == "running":
		return "Up"
	case c.MonitorGone:
		return "Exited (unknown: its monitor was killed)"
	case c.State == "exited" && c.ExitCode != nil && c.Finished != nil:
		return fmt.Sprintf("Exited (%d) %s", *c.ExitCode, ago(now, *c.Finished))
	case c.State == "exited":
		return "Exited"
	}
	return strings.ToUpper(c.State[:1]) + c.State[1:]
}

// externalStatus is the STATUS of a storage container without a record
// of sandy's: podman's "Storage", with whose it is when that is known.
func externalStatus(c containers.Listed) string {
	switch {
	case c.Leftover():
		return "Storage (left by a killed sandy run: sandy rm removes it)"
	case c.Owner == imagehelper.OwnerSandy:
		return "Storage (being made by sandy)"
	case c.Owner == imagehelper.OwnerBuildah:
		return "Storage (buildah)"
	}
	return "Storage"
}

// ago is podman's "2 minutes ago": docker/go-units' HumanDuration (the
// image helper's dependency, which sandy does not link), then "ago".
func ago(now, t time.Time) string {
	d := now.Sub(t)
	seconds, minutes, hours := int(d.Seconds()), int(d.Minutes()), int(d.Hours()+0.5)
	var s string
	switch {
	case seconds < 1:
		s = "Less than a second"
	case seconds == 1:
		s = "1 second"
	case seconds < 60:
		s = fmt.Sprintf("%d seconds", seconds)
	case minutes == 1:
		s = "About a minute"
	case minutes < 60:
		s = fmt.Sprintf("%d minutes", minutes)
	case hours == 1:
		s = "About an hour"
	case hours < 48:
		s = fmt.Sprintf("%d hours", hours)
	case hours < 24*7*2:
		s = fmt.Sprintf("%d days", hours/24)
	case hours < 24*30*2:
		s = fmt.Sprintf("%d weeks", hours/24/7)
	case hours < 24*365*2:
		s = fmt.Sprintf("%d months", hours/24/30)
	default:
		s = fmt.Sprintf("%d years", int(d.Hours())/24/365)
	}
	return s + " ago"
}

func cmdContainerRm(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("container rm", containerCommands()[1].usage, g.Stderr)
	force := fs.BoolP("force", "f", false, "kill a running container first")
	vols := fs.BoolP("volumes", "v", false, "also remove the container's anonymous volumes (-v /dst, an image's VOLUME); named ones stay")
	if err := parseRefs(ctx, g, fs, args, true); err != nil {
		return 125, err
	}
	if fs.NArg() == 0 {
		return 125, errors.New("name at least one container (sandy container rm [-f] NAME|ID...)")
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	removed, err := m.Remove(ctx, fs.Args(), *force, *vols)
	for _, id := range removed {
		fmt.Fprintln(os.Stdout, id)
	}
	if err != nil {
		return 125, err
	}
	return 0, nil
}

// cmdContainerExec is exec with the container named as podman names it:
// its name, its id or a unique id prefix.
func cmdContainerExec(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	o := &lifecycle.ExecOptions{}
	r := containers.ExecRequest{HostEnv: os.Environ()}
	fs := newFlags("container exec", containerExecUsage, g.Stderr)
	// Flags end at the container: the command's own flags follow it.
	fs.SetInterspersed(false)
	fs.BoolVarP(&o.Detach, "detach", "d", false, "run the process in the background (its stdio: /dev/null)")
	interactive := fs.BoolP("interactive", "i", false, "pass stdin to the process (without: /dev/null)")
	tty := fs.BoolP("tty", "t", false, "allocate a pty")
	fs.StringArrayVarP(&r.Env, "env", "e", nil, "set K=V, or K to the host's value, K* to the host's by prefix (repeatable)")
	fs.StringArrayVar(&r.EnvFiles, "env-file", nil, "read variables from a file, one K=V per line (repeatable)")
	fs.StringVarP(&r.User, "user", "u", "", "USER[:GROUP] or UID[:GID], names from the container's /etc/passwd and /etc/group")
	fs.StringVarP(&o.Cwd, "workdir", "w", "", "working directory in the container")
	fs.StringVar(&o.Cwd, "cwd", "", "the same as --workdir (sandy exec's name)")
	_ = fs.MarkHidden("cwd")
	fs.IntVar(&o.PreserveFDs, "preserve-fds", 0, "pass N more fds (3..3+N-1) to the process")
	fs.BoolVar(&r.Privileged, "privileged", false, "give the process every capability (to a non-root user: the bounding set only)")
	detachKeys := fs.String("detach-keys", "", `only "" (no keys detach, sandy's exec's way): an exec session cannot be detached from`)
	if err := parseRefs(ctx, g, fs, args, false); err != nil {
		return 125, err
	}
	if *detachKeys != "" {
		// podman's conmon holds an exec session's terminal, so a
		// detached one goes on; sandy's exec relays it itself, and the
		// process would lose it.
		return 125, fmt.Errorf("--detach-keys %q: an exec session cannot be detached from (nothing would hold its terminal); sandy exec never takes keys for itself, as --detach-keys \"\" asks (for a session to leave and come back to: sandy run -d, then sandy attach)", *detachKeys)
	}
	if fs.NArg() < 2 {
		return 125, errors.New("want a container and a command (sandy " + containerExecUsage + ")")
	}
	if o.PreserveFDs < 0 {
		return 125, errors.New("--preserve-fds: want a number >= 0")
	}
	r.Ref, o.Args = fs.Arg(0), fs.Args()[1:]
	if fs.Changed("tty") {
		o.Tty = tty
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	if err := m.PrepareExec(ctx, r, o); err != nil {
		return 125, err
	}
	o.Stdin, o.Stdout, o.Stderr = os.Stdin, os.Stdout, os.Stderr
	if o.Detach || !*interactive {
		// podman's: stdin only with -i; under -d, no stdio of the
		// caller's at all, so `id=$(sandy container exec -d …)` returns.
		null, err := os.OpenFile(os.DevNull, os.O_RDWR, 0)
		if err != nil {
			return 125, err
		}
		defer null.Close()
		o.Stdin = null
		if o.Detach {
			o.Stdout, o.Stderr = null, null
		}
	}
	code, err := lifecycle.Exec(ctx, g, o)
	if code == lifecycle.ExecFailed {
		// podman's statuses: 126/127 for a command that cannot be
		// executed or is not found, 125 for sandy's own errors.
		if st := userns.ExitStatus(err); st == 126 || st == 127 {
			return st, err
		}
		return 125, err
	}
	return code, err
}

// cmdContainerPort is podman's port: the published ports of a container,
// running or not, as "80/tcp -> 0.0.0.0:41234"; with PORT, only that one
// (an error when it is not published).
func cmdContainerPort(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("container port", "container port NAME|ID [PORT[/PROTO]]", g.Stderr)
	if err := parseRefs(ctx, g, fs, args, false); err != nil {
		return 125, err
	}
	if fs.NArg() < 1 || fs.NArg() > 2 {
		return 125, errors.New("want a container and at most one port (sandy container port NAME|ID [PORT[/PROTO]])")
	}
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	c, err := m.Find(ctx, fs.Arg(0))
	if err != nil {
		return 125, err
	}
	lines := containers.PortLines(c.Ports, fs.Arg(1))
	if fs.Arg(1) != "" && len(lines) == 0 {
		return 125, fmt.Errorf("container %s publishes no port %s", fs.Arg(0), fs.Arg(1))
	}
	for _, l := range lines {
		fmt.Fprintln(os.Stdout, l)
	}
	return 0, nil
}
