package containers

import (
	"os"
	"path/filepath"
	"reflect"
	"slices"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// bundleSpec is a config.json as `sandy spec` writes it, reduced to what
// ApplyToBundle touches.
func bundleSpec() *specs.Spec {
	return &specs.Spec{
		Process: &specs.Process{
			Args: []string{"sh"},
			Env:  []string{"PATH=/usr/bin:/bin", "TERM=xterm", "A=config"},
			Cwd:  "/",
		},
		Mounts: []specs.Mount{
			{Destination: "/proc", Type: "proc", Source: "proc"},
			{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
			{Destination: "/dev/pts", Type: "devpts", Source: "devpts"},
			{Destination: "/sys", Type: "sysfs", Source: "sysfs"},
			{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
		},
	}
}

// TestApplyToBundle: each flag's change to a bundle's spec, and the
// errors, after which the spec is unchanged.
func TestApplyToBundle(t *testing.T) {
	host := Host{Env: map[string]string{"HOSTVAR": "fromhost", "GOPATH": "/go", "GOROOT": "/goroot"}, Cwd: "/home/me"}
	rw := []string{"rw", "rprivate", "rbind"}
	for _, tc := range []struct {
		name string
		o    Options
		want func(s *specs.Spec) // edits bundleSpec() into the expected spec
		err  string
	}{
		{name: "nothing given changes nothing", want: func(*specs.Spec) {}},
		{name: "command replaces args", o: Options{Command: []string{"echo", "hi"}},
			want: func(s *specs.Spec) { s.Process.Args = []string{"echo", "hi"} }},
		{name: "env: -e sets, overrides in place, K from the host, K* by prefix, unset K dropped",
			o: Options{Env: []string{"A=flag", "NEW=1", "HOSTVAR", "GO*", "UNSET_ON_HOST"}},
			want: func(s *specs.Spec) {
				s.Process.Env = []string{"PATH=/usr/bin:/bin", "TERM=xterm", "A=flag", "NEW=1", "HOSTVAR=fromhost", "GOPATH=/go", "GOROOT=/goroot"}
			}},
		{name: "env: --env-file before -e, in order",
			o: Options{EnvFiles: []EnvFile{{Name: "a.env", Content: "# comment\nF=1\nA=file\n\n"}, {Name: "b.env", Content: "F=2\nHOSTVAR\n"}}, Env: []string{"F=3"}},
			want: func(s *specs.Spec) {
				s.Process.Env = []string{"PATH=/usr/bin:/bin", "TERM=xterm", "A=file", "F=3", "HOSTVAR=fromhost"}
			}},
		{name: "env: bad line names the file and line", o: Options{EnvFiles: []EnvFile{{Name: "a.env", Content: "OK=1\n=nope\n"}}},
			err: `--env-file a.env line 2: invalid environment variable: "=nope"`},
		{name: "env: bad -e", o: Options{Env: []string{"=x"}}, err: `-e: invalid environment variable: "=x"`},
		{name: "-w absolute, cleaned", o: Options{Workdir: "/srv/app/../data/"},
			want: func(s *specs.Spec) { s.Process.Cwd = "/srv/data" }},
		{name: "-w relative", o: Options{Workdir: "src"}, err: `-w "src": the working directory must be an absolute path`},
		{name: "-t sets process.terminal", o: Options{Terminal: true},
			want: func(s *specs.Spec) { s.Process.Terminal = true }},
		{name: "-v, --mount, --tmpfs added, sorted by depth, stable",
			o: Options{
				Volumes: []string{"./src:/work/src:ro", "/data:/data"},
				Mounts:  []string{"type=bind,src=/etc/ssl,dst=/etc/ssl,readonly"},
				Tmpfs:   []string{"/run:size=1m"},
			},
			want: func(s *specs.Spec) {
				s.Mounts = []specs.Mount{
					{Destination: "/proc", Type: "proc", Source: "proc"},
					{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
					{Destination: "/sys", Type: "sysfs", Source: "sysfs"},
					{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m"}},
					{Destination: "/data", Type: "bind", Source: "/data", Options: rw},
					{Destination: "/run", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=1m", "rw", "rprivate", "nosuid", "nodev", "tmpcopyup"}},
					{Destination: "/dev/pts", Type: "devpts", Source: "devpts"},
					{Destination: "/etc/ssl", Type: "bind", Source: "/etc/ssl", Options: []string{"ro", "rprivate", "rbind"}},
					{Destination: "/work/src", Type: "bind", Source: "/home/me/src", Options: []string{"ro", "rprivate", "rbind"}},
				}
			}},
		{name: "a flag's mount replaces the config's at the same destination",
			o: Options{Tmpfs: []string{"/tmp/"}},
			want: func(s *specs.Spec) {
				s.Mounts = []specs.Mount{
					{Destination: "/proc", Type: "proc", Source: "proc"},
					{Destination: "/dev", Type: "tmpfs", Source: "tmpfs"},
					{Destination: "/sys", Type: "sysfs", Source: "sysfs"},
					{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"rw", "rprivate", "nosuid", "nodev", "tmpcopyup"}},
					{Destination: "/dev/pts", Type: "devpts", Source: "devpts"},
				}
			}},
		{name: "all at once",
			o: Options{Command: []string{"make"}, Env: []string{"CI=1"}, Workdir: "/src", Terminal: true, Volumes: []string{"/home/me/p:/src"}},
			want: func(s *specs.Spec) {
				s.Process.Args = []string{"make"}
				s.Process.Env = append(s.Process.Env, "CI=1")
				s.Process.Cwd = "/src"
				s.Process.Terminal = true
				s.Mounts = []specs.Mount{s.Mounts[0], s.Mounts[1], s.Mounts[3], s.Mounts[4],
					{Destination: "/src", Type: "bind", Source: "/home/me/p", Options: rw},
					s.Mounts[2]}
			}},
		{name: "bad -v", o: Options{Volumes: []string{"/a:b"}}, err: `-v /a:b: container path "b" must be absolute`},
		{name: "named volume refused", o: Options{Volumes: []string{"data:/data"}},
			err: "named volume data at /data: volumes belong to containers from images; a bundle takes a host path (-v /dir:/data or -v ./dir:/data)"},
		{name: "anonymous volume refused", o: Options{Volumes: []string{"/cache"}},
			err: "anonymous volume at /cache: volumes belong to containers from images; a bundle takes a host path (-v /dir:/cache or -v ./dir:/cache)"},
		{name: "U refused", o: Options{Volumes: []string{"/a:/b:U"}},
			err: "mount at /b: the U option (chown to the process user) is for containers from images; chown the source yourself"},
		{name: "duplicate destination", o: Options{Volumes: []string{"/a:/b"}, Tmpfs: []string{"/b"}}, err: "--tmpfs /b: duplicate mount destination /b"},
		{name: "image-only flag refused", o: Options{User: "nobody"},
			err: "-u/--user applies to containers from images only: for a bundle, edit process.user in config.json"},
		{name: "an error after good flags changes nothing", o: Options{Command: []string{"x"}, Env: []string{"A=b"}, Workdir: "rel"},
			err: `-w "rel": the working directory must be an absolute path`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s := bundleSpec()
			err := ApplyToBundle(s, tc.o, host)
			want := bundleSpec()
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %q", err, tc.err)
				}
			} else {
				if err != nil {
					t.Fatal(err)
				}
				tc.want(want)
			}
			if !reflect.DeepEqual(s, want) {
				t.Errorf("spec:\n got %+v\n%+v\nwant %+v\n%+v", s.Process, s.Mounts, want.Process, want.Mounts)
			}
		})
	}
}

// TestApplyToBundleNoProcess: a config without a process gets one.
func TestApplyToBundleNoProcess(t *testing.T) {
	s := &specs.Spec{}
	if err := ApplyToBundle(s, Options{Command: []string{"true"}}, Host{}); err != nil {
		t.Fatal(err)
	}
	if s.Process == nil || !reflect.DeepEqual(s.Process.Args, []string{"true"}) || s.Process.Cwd != "/" {
		t.Fatalf("process = %+v", s.Process)
	}
}

// TestEditBundleSource: a -v or --mount source that does not exist is an
// error as podman's (statfs), and the spec is unchanged.
func TestEditBundleSource(t *testing.T) {
	dir := t.TempDir()
	missing := filepath.Join(dir, "nope")
	for _, o := range []Options{
		{Volumes: []string{missing + ":/data"}},
		{Mounts: []string{"type=bind,src=" + missing + ",dst=/data"}},
		{Volumes: []string{"./nope:/data"}},
	} {
		s := bundleSpec()
		err := EditBundle(o, Host{Cwd: dir})(s)
		want := "bind mount source for /data: statfs " + missing + ": no such file or directory"
		if err == nil || err.Error() != want {
			t.Errorf("%+v: err = %v, want %q", o, err, want)
		}
		if !reflect.DeepEqual(s, bundleSpec()) {
			t.Errorf("%+v: spec changed", o)
		}
	}
	if err := os.WriteFile(filepath.Join(dir, "f"), nil, 0o644); err != nil {
		t.Fatal(err)
	}
	s := bundleSpec()
	if err := EditBundle(Options{Volumes: []string{"./f:/f"}, Tmpfs: []string{"/nowhere-on-host"}}, Host{Cwd: dir})(s); err != nil {
		t.Fatal(err)
	}
	if !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return m.Destination == "/f" && m.Source == filepath.Join(dir, "f") }) {
		t.Errorf("mounts = %+v, want ./f at /f", s.Mounts)
	}
}

// FuzzApplyToBundle: any flags either apply or leave the spec exactly as
// it was (all or nothing), and never panic.
func FuzzApplyToBundle(f *testing.F) {
	f.Add("A=1", "/a:/b:ro", "type=tmpfs,dst=/t", "/run:size=1m", "/w", "echo")
	f.Add("", "data:/d", "type=bind,src=./x,dst=/x", "", "rel", "")
	f.Add("=x", "/a:/b:U", "type=volume,dst=/v", "/t:nosuch", "", "")
	f.Fuzz(func(t *testing.T, env, vol, mount, tmpfs, wd, cmd string) {
		o := Options{Workdir: wd}
		for _, f := range []struct {
			v   string
			dst *[]string
		}{{env, &o.Env}, {vol, &o.Volumes}, {mount, &o.Mounts}, {tmpfs, &o.Tmpfs}, {cmd, &o.Command}} {
			if f.v != "" {
				*f.dst = []string{f.v}
			}
		}
		s := bundleSpec()
		if err := ApplyToBundle(s, o, Host{Cwd: "/home/me", Env: map[string]string{"A": "1"}}); err != nil && !reflect.DeepEqual(s, bundleSpec()) {
			t.Fatalf("%+v: error %v, and the spec changed", o, err)
		}
	})
}
