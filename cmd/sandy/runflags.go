package main

import (
	"fmt"
	"os"
	"strings"

	"github.com/spf13/pflag"

	"github.com/sandy-rt/sandy/internal/containers"
)

// containerFlags registers run's podman flags on o: the container's
// process and mounts, for a bundle (containers.ApplyToBundle) as for an
// image. The names and shorthands are podman's.
func containerFlags(fs *pflag.FlagSet, o *containers.Options) {
	fs.StringArrayVarP(&o.Env, "env", "e", nil, "set an environment variable: K=V, K (the host's value), K* (every host variable starting with K) (repeatable)")
	fs.Var(&envFileFlag{o: o}, "env-file", "read environment variables from a file, one K=V or K a line (repeatable)")
	fs.StringArrayVarP(&o.Volumes, "volume", "v", nil, "bind mount HOST-DIR:CONTAINER-DIR[:OPTIONS] (ro, rw, nosuid, nodev, noexec, rshared, ...) (repeatable)")
	fs.StringArrayVar(&o.Mounts, "mount", nil, "mount type=bind,src=HOST-DIR,dst=CONTAINER-DIR[,ro] or type=tmpfs,dst=CONTAINER-DIR[,tmpfs-size=N] (repeatable)")
	fs.StringArrayVar(&o.Tmpfs, "tmpfs", nil, "mount a tmpfs at CONTAINER-DIR[:OPTIONS] (repeatable)")
	fs.StringVarP(&o.Workdir, "workdir", "w", "", "working directory of the process (absolute)")
	fs.BoolVarP(&o.Terminal, "tty", "t", false, "give the process a pseudo-terminal (process.terminal)")
}

// envFileFlag is --env-file: each file is read when the flag is parsed,
// so that a missing file is a usage error naming it.
type envFileFlag struct{ o *containers.Options }

func (f *envFileFlag) Set(name string) error {
	data, err := os.ReadFile(name)
	if err != nil {
		return err
	}
	f.o.EnvFiles = append(f.o.EnvFiles, containers.EnvFile{Name: name, Content: string(data)})
	return nil
}

func (f *envFileFlag) String() string {
	names := make([]string, len(f.o.EnvFiles))
	for i, e := range f.o.EnvFiles {
		names[i] = e.Name
	}
	return strings.Join(names, ",")
}

func (f *envFileFlag) Type() string { return "file" }

// callerHost is what ApplyToBundle needs about the caller: its
// environment (-e K) and working directory (-v ./dir:...).
func callerHost() (containers.Host, error) {
	cwd, err := os.Getwd()
	if err != nil {
		return containers.Host{}, fmt.Errorf("reading the current directory: %w", err)
	}
	env := map[string]string{}
	for _, kv := range os.Environ() {
		if k, v, ok := strings.Cut(kv, "="); ok {
			env[k] = v
		}
	}
	return containers.Host{Env: env, Cwd: cwd}, nil
}

// isBundlePath: the argument is a bundle by its form, "." or a path
// starting with "/", "./" or "../", or it names a directory holding
// config.json. Only this form takes a COMMAND; anything else is the runc
// form's container id.
func isBundlePath(p string, isBundleDir func(string) bool) bool {
	return p == "." || p == ".." || strings.HasPrefix(p, "/") || strings.HasPrefix(p, "./") ||
		strings.HasPrefix(p, "../") || isBundleDir(p)
}

// parseRun parses run's arguments. Flags may come anywhere until a bundle
// path: what follows it is the COMMAND [ARG...] (as after podman's IMAGE),
// flags included. Without one (the runc form, run [--bundle DIR] ID),
// flags may come anywhere, as pflag's default has always allowed. After
// "--" nothing is a flag.
func parseRun(fs *pflag.FlagSet, args []string, bundleGiven func() bool) (positional, command []string, err error) {
	fs.SetInterspersed(false)
	for {
		if err := fs.Parse(args); err != nil {
			return nil, nil, err
		}
		rest := fs.Args()
		if len(rest) > 0 && len(positional) == 0 {
			// A bundle path or an image ends the flags: what follows is
			// the command's.
			if form, _ := classifyRun(rest[0], bundleGiven(), cwdIsBundle, isBundle); form != formRuncID {
				return rest[:1], rest[1:], nil
			}
		}
		if fs.ArgsLenAtDash() >= 0 || len(rest) == 0 {
			return append(positional, rest...), nil, nil
		}
		positional = append(positional, rest[0])
		args = rest[1:]
	}
}
