package main

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/containers"
	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/lifecycle"
)

// imageRun holds the flags of `sandy run IMAGE` that the bundle form
// does not take (podman's names); containerFlags registers them.
type imageRun struct {
	opts                 *containers.Options // with containerFlags' fields
	name, pull           string
	logDriver            string
	logOpts              []string
	rm, interactive      bool
	publishAll           bool
	entrypoint, pids     string
	readOnlyTmpfs        bool
	httpProxy            bool
	tlsVerify            bool
	creds, authfile, crt string
}

// imageFlags registers the flags only `sandy run IMAGE` takes (podman's
// names); containerFlags has those the bundle form takes too.
func imageFlags(fs *pflag.FlagSet, r *imageRun) {
	o := r.opts
	fs.BoolVar(&r.rm, "rm", false, "IMAGE: remove the container (its layer) when it exits")
	fs.StringVar(&r.name, "name", "", "IMAGE: the container's name")
	fs.BoolVarP(&r.publishAll, "publish-all", "P", false, "IMAGE: publish every port the image exposes on a free host port")
	fs.StringArrayVar(&r.logOpts, "log-opt", nil, "IMAGE, with -d: max-size=SIZE: rotate the log past SIZE (10mb), keeping one older part")
	fs.StringVar(&r.logDriver, "log-driver", "", "IMAGE, with -d: k8s-file (default: the container's output in its log, for sandy logs) or none")
	fs.StringVar(&r.pull, "pull", "missing", "IMAGE: pull the image: missing, always, never or newer")
	fs.BoolVarP(&r.interactive, "interactive", "i", false, "IMAGE: keep stdin open (without it, stdin is /dev/null)")
	fs.StringVarP(&o.User, "user", "u", "", "IMAGE: USER|UID[:GROUP|GID], names from the image's /etc/passwd and /etc/group")
	fs.StringVar(&o.ImageVolume, "image-volume", "bind", "IMAGE: what the image's VOLUME paths get: bind (an anonymous volume), tmpfs or ignore")
	fs.BoolVar(&o.EnvHost, "env-host", false, "IMAGE: pass your whole environment (the image's, --env-file and -e win)")
	fs.BoolVar(&r.httpProxy, "http-proxy", true, "IMAGE: pass your http_proxy, https_proxy, ftp_proxy and no_proxy (either case)")
	fs.StringVar(&r.entrypoint, "entrypoint", "", "IMAGE: override the image's entrypoint (\"\" clears it; a JSON array is the argv)")
	fs.StringVar(&o.Hostname, "hostname", "", "IMAGE: the container's hostname (default: its short id)")
	fs.BoolVar(&o.ReadOnly, "read-only", false, "IMAGE: mount the root read-only")
	fs.BoolVar(&r.readOnlyTmpfs, "read-only-tmpfs", true, "IMAGE: with --read-only, tmpfs on /tmp, /var/tmp and /run")
	fs.StringArrayVar(&o.CapAdd, "cap-add", nil, "IMAGE: add a capability (repeatable; ALL)")
	fs.StringArrayVar(&o.CapDrop, "cap-drop", nil, "IMAGE: drop a capability (repeatable; ALL)")
	fs.StringArrayVar(&o.SecurityOpt, "security-opt", nil, "IMAGE: no-new-privileges, seccomp=unconfined (repeatable)")
	fs.BoolVar(&o.Init, "init", false, "IMAGE: run a small init as pid 1 (sandy's own) that passes signals on and reaps orphans")
	fs.BoolVar(&o.Privileged, "privileged", false, "IMAGE: every capability the user namespace allows, no seccomp, no masked paths")
	fs.StringArrayVarP(&o.Labels, "label", "l", nil, "IMAGE: set a label K=V (repeatable)")
	fs.StringArrayVar(&o.Annotations, "annotation", nil, "IMAGE: set an annotation K=V (repeatable)")
	fs.StringVarP(&o.Memory, "memory", "m", "", "IMAGE: memory limit (e.g. 512m)")
	fs.StringVar(&o.CPUs, "cpus", "", "IMAGE: CPU limit (e.g. 1.5)")
	fs.StringVar(&r.pids, "pids-limit", "", "IMAGE: process limit")
	fs.StringArrayVar(&o.DNS, "dns", nil, "IMAGE: DNS server for /etc/resolv.conf (repeatable)")
	fs.StringArrayVar(&o.DNSSearch, "dns-search", nil, "IMAGE: DNS search domain (repeatable)")
	fs.StringArrayVar(&o.DNSOption, "dns-option", nil, "IMAGE: DNS resolver option (repeatable)")
	fs.StringArrayVar(&o.AddHost, "add-host", nil, "IMAGE: add HOST:IP to /etc/hosts (repeatable)")
	fs.StringVar(&o.Userns, "userns", "", "IMAGE: user namespace mode (keep-id: your uid and gid inside)")
	fs.BoolVar(&r.tlsVerify, "tls-verify", true, "IMAGE: pulling requires HTTPS and a trusted certificate")
	fs.StringVar(&r.creds, "creds", "", "IMAGE: USER[:PASSWORD] for the registry of a pull")
	fs.StringVar(&r.authfile, "authfile", "", "IMAGE: auth file for a pull")
	fs.StringVar(&r.crt, "cert-dir", "", "IMAGE: directory with the registry's certificates, for a pull")
}

// imageOnly are the flags that only `sandy run IMAGE` takes.
var imageOnly = []string{"rm", "name", "publish-all", "log-driver", "log-opt", "pull", "interactive", "user", "env-host", "http-proxy", "image-volume", "entrypoint",
	"hostname", "read-only", "read-only-tmpfs", "cap-add", "cap-drop", "security-opt",
	"privileged", "init", "label", "annotation", "memory", "cpus", "pids-limit", "dns", "dns-search", "dns-option", "add-host",
	"userns", "tls-verify", "creds", "authfile", "cert-dir"}

// bundleFlagsOnly refuses image flags on the bundle form.
func bundleFlagsOnly(fs *pflag.FlagSet) error {
	for _, n := range imageOnly {
		if fs.Changed(n) {
			return fmt.Errorf("--%s is a flag of `sandy run IMAGE`, not of the bundle form", n)
		}
	}
	return nil
}

// runImage is `sandy run [flags] IMAGE [COMMAND [ARG...]]`.
func runImage(ctx context.Context, g *lifecycle.Global, fs *pflag.FlagSet, r *imageRun, o *lifecycle.RunOptions, args []string) (int, error) {
	for _, n := range []string{"rootfs-mode", "keep-layer", "bundle"} {
		if fs.Changed(n) {
			return containers.ExitSandyError, fmt.Errorf("--%s is a flag of the bundle form: an image's root is its layer in the store", n)
		}
	}
	helper, err := imagehelper.Locate()
	if err != nil {
		return containers.ExitSandyError, err
	}
	o.Stdin, o.Stdout, o.Stderr = os.Stdin, os.Stdout, os.Stderr
	req := containers.RunRequest{Image: args[0], Name: r.name, Pull: r.pull, Rm: r.rm, PublishAll: r.publishAll, LogDriver: r.logDriver, Interactive: r.interactive, Options: *r.opts, Runtime: *o,
		Helper: helper, HelperGlobal: storeFlagsOf(ctx), Stderr: g.Stderr}
	req.Options.Command = args[1:]
	if req.LogMaxSize, err = containers.ParseLogOpts(r.logOpts); err != nil {
		return containers.ExitSandyError, err
	}
	// --network is the runtime's flag (createFlags); Generate reads it
	// from Options (the network decides mounts and the hostname).
	req.Options.Network = o.Network.Mode
	if fs.Changed("entrypoint") {
		req.Options.Entrypoint = &r.entrypoint
	}
	if r.pids != "" {
		var n int64
		if _, err := fmt.Sscan(r.pids, &n); err != nil {
			return containers.ExitSandyError, fmt.Errorf("--pids-limit %q: not a number", r.pids)
		}
		req.Options.PidsLimit = &n
	}
	req.Options.NoReadOnlyTmpfs = !r.readOnlyTmpfs
	req.Options.NoHTTPProxy = !r.httpProxy
	if fs.Changed("tls-verify") {
		req.HelperRemote = append(req.HelperRemote, fmt.Sprintf("--tls-verify=%v", r.tlsVerify))
	}
	for flag, v := range map[string]string{"creds": r.creds, "authfile": r.authfile, "cert-dir": r.crt} {
		if v != "" {
			req.HelperRemote = append(req.HelperRemote, "--"+flag+"="+v)
		}
	}
	if !r.interactive {
		null, err := os.Open(os.DevNull)
		if err != nil {
			return containers.ExitSandyError, err
		}
		defer null.Close()
		req.Runtime.Stdin = null
	}
	return containers.Run(ctx, g, req)
}

// runForm is how `sandy run` reads its first argument.
type runForm int

const (
	formRuncID runForm = iota // run [--bundle DIR] ID: the runc form, bundle in DIR or "."
	formBundle                // run ./bundle: a directory holding config.json
	formImage                 // run IMAGE [COMMAND...]
)

// classifyRun decides between the three forms. A path (".", "..",
// "/…", "./…", "../…") or a directory holding config.json is a bundle;
// --bundle, or no argument, is runc's form; a plain word while the
// current directory holds a config.json is runc's form too (engines and
// runc's tests run `run ID` there), and note says so when a person could
// have meant an image; anything else is an image.
func classifyRun(arg string, bundleFlag bool, cwdIsBundle func() bool, isBundleDir func(string) bool) (form runForm, note string) {
	switch {
	case arg == "" || bundleFlag:
		return formRuncID, ""
	case isBundlePath(arg, isBundleDir):
		return formBundle, ""
	case cwdIsBundle() && !strings.ContainsAny(arg, "/:@"):
		return formRuncID, fmt.Sprintf("%q is taken as a container id for the bundle in the current directory (./config.json); to run the image %s, run it from another directory or name it fully (localhost/%s:latest)", arg, arg, arg)
	}
	return formImage, ""
}

// cwdIsBundle reports whether the current directory holds a config.json.
func cwdIsBundle() bool { return isBundle(".") }

// isTerminalFile reports whether f is a terminal (the note of an
// ambiguous run argument is for a person, not an engine's log).
func isTerminalFile(f *os.File) bool {
	_, err := unix.IoctlGetTermios(int(f.Fd()), unix.TCGETS)
	return err == nil
}

type storeFlagsKey struct{}

// withStoreFlags carries the global image store flags to the commands
// that call the image helper themselves (run IMAGE).
func withStoreFlags(ctx context.Context, flags []string) context.Context {
	return context.WithValue(ctx, storeFlagsKey{}, flags)
}

func storeFlagsOf(ctx context.Context) []string {
	f, _ := ctx.Value(storeFlagsKey{}).([]string)
	return f
}
