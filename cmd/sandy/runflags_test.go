package main

import (
	"io"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	"github.com/sandy-rt/sandy/internal/containers"
	"github.com/sandy-rt/sandy/internal/lifecycle"
)

// TestParseRun: a bundle path ends the flags and the rest is the
// COMMAND; the runc form (an id) keeps flags anywhere and takes no
// command; run's own flags and the podman flags do not clash.
func TestParseRun(t *testing.T) {
	dir := t.TempDir()
	if err := os.Mkdir(filepath.Join(dir, "bdir"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "bdir", "config.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	// The current directory is a bundle, as where runc's form is typed.
	if err := os.WriteFile(filepath.Join(dir, "config.json"), []byte("{}"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Chdir(dir)
	for _, tc := range []struct {
		name             string
		args             []string
		positional, cmd  []string
		bundle, env, wd  string
		tty, detach      bool
		publish, volumes []string
	}{
		{name: "bundle, flags before, command with its own flags", args: []string{"-e", "A=1", "-t", "./b", "ls", "-l", "-e"},
			positional: []string{"./b"}, cmd: []string{"ls", "-l", "-e"}, env: "A=1", tty: true},
		{name: "bundle alone", args: []string{"/abs/b"}, positional: []string{"/abs/b"}, cmd: []string{}},
		{name: "dot", args: []string{"-w", "/x", ".", "true"}, positional: []string{"."}, cmd: []string{"true"}, wd: "/x"},
		{name: "dot dot slash", args: []string{"../b", "sh", "-c", "x"}, positional: []string{"../b"}, cmd: []string{"sh", "-c", "x"}},
		{name: "a directory with config.json", args: []string{"bdir", "id"}, positional: []string{"bdir"}, cmd: []string{"id"}},
		{name: "after --", args: []string{"-d", "--", "./b", "-x"}, positional: []string{"./b"}, cmd: []string{"-x"}, detach: true},
		{name: "runc form: flags after the id", args: []string{"myid", "-p", "80:80", "--bundle", "/b"},
			positional: []string{"myid"}, bundle: "/b", publish: []string{"80:80"}},
		{name: "runc form: --bundle then a path-like id stays an id", args: []string{"--bundle", "/b", "./x", "y"},
			positional: []string{"./x", "y"}, bundle: "/b"},
		{name: "runc form: extra arguments stay arguments", args: []string{"id", "sh"}, positional: []string{"id", "sh"}},
		{name: "an image ends the flags", args: []string{"-e", "A=1", "localhost/img:1", "sh", "-e", "-c"},
			positional: []string{"localhost/img:1"}, cmd: []string{"sh", "-e", "-c"}, env: "A=1"},
		{name: "-v and -p", args: []string{"-v", "/a:/b", "-p", "1:2", "./b"}, positional: []string{"./b"}, cmd: []string{},
			volumes: []string{"/a:/b"}, publish: []string{"1:2"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			o := &lifecycle.RunOptions{}
			co := &containers.Options{}
			fs := createFlags("run", "run", &lifecycle.Global{Stderr: io.Discard}, &o.CreateOptions)
			fs.BoolVarP(&o.Detach, "detach", "d", false, "")
			containerFlags(fs, co)
			pos, cmd, err := parseRun(fs, tc.args, func() bool { return o.Bundle != "" })
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(pos, tc.positional) || len(cmd) != len(tc.cmd) || (len(cmd) > 0 && !reflect.DeepEqual(cmd, tc.cmd)) {
				t.Errorf("positional %q command %q, want %q %q", pos, cmd, tc.positional, tc.cmd)
			}
			env := ""
			if len(co.Env) > 0 {
				env = co.Env[0]
			}
			if o.Bundle != tc.bundle || env != tc.env || co.Workdir != tc.wd || co.Terminal != tc.tty || o.Detach != tc.detach ||
				!reflect.DeepEqual(o.Network.Publish, tc.publish) || !reflect.DeepEqual(co.Volumes, tc.volumes) {
				t.Errorf("flags: bundle %q env %q -w %q -t %v -d %v -p %q -v %q", o.Bundle, co.Env, co.Workdir, co.Terminal, o.Detach, o.Network.Publish, co.Volumes)
			}
		})
	}
}

// TestEnvFileFlag: --env-file reads the file when parsed; a missing one
// is a usage error naming it.
func TestEnvFileFlag(t *testing.T) {
	dir := t.TempDir()
	f := filepath.Join(dir, "a.env")
	if err := os.WriteFile(f, []byte("A=1\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	co := &containers.Options{}
	fs := newFlags("run", "run", io.Discard)
	containerFlags(fs, co)
	if err := fs.Parse([]string{"--env-file", f}); err != nil {
		t.Fatal(err)
	}
	if want := []containers.EnvFile{{Name: f, Content: "A=1\n"}}; !reflect.DeepEqual(co.EnvFiles, want) {
		t.Errorf("EnvFiles = %+v, want %+v", co.EnvFiles, want)
	}
	err := fs.Parse([]string{"--env-file", filepath.Join(dir, "nope")})
	if err == nil || err.Error() != `invalid argument "`+filepath.Join(dir, "nope")+`" for "--env-file" flag: open `+filepath.Join(dir, "nope")+`: no such file or directory` {
		t.Errorf("err = %v", err)
	}
}
