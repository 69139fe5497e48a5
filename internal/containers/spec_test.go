package containers

import (
	"errors"
	"reflect"
	"slices"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/imagehelper"
)

func testHost() Host {
	sub := []idmap.SubIDRange{{Start: 100000, Count: 65536}}
	return Host{
		ContainerID: "0123456789abcdef0123456789abcdef0123456789abcdef0123456789abcdef",
		Rootfs:      "/layer/merged",
		UID:         1000, GID: 1000, UserName: "me", GroupName: "me", Gecos: "Me", Home: "/home/me",
		SubUIDs: sub, SubGIDs: sub,
		Env:      map[string]string{"HOSTVAR": "h", "LC_ALL": "C", "LC_TIME": "en"},
		Cwd:      "/home/me/project",
		InitPath: "/usr/libexec/sandy/sandy-init",
	}
}

func strp(s string) *string { return &s }

func generate(t *testing.T, img imagehelper.ImageConfig, o Options) (*specs.Spec, *Extra) {
	t.Helper()
	s, x, err := Generate(img, o, testDB(), testHost())
	if err != nil {
		t.Fatal(err)
	}
	return s, x
}

func generateErr(t *testing.T, img imagehelper.ImageConfig, o Options, want string) {
	t.Helper()
	_, _, err := Generate(img, o, testDB(), testHost())
	if err == nil || err.Error() != want {
		t.Fatalf("err = %v\nwant %s", err, want)
	}
}

// TestArgs: ENTRYPOINT and CMD as podman's makeCommand.
func TestArgs(t *testing.T) {
	img := imagehelper.ImageConfig{Entrypoint: []string{"/entry", "-x"}, Cmd: []string{"serve", "--port=80"}}
	for _, tc := range []struct {
		name string
		img  imagehelper.ImageConfig
		o    Options
		want []string
	}{
		{name: "image entrypoint and cmd", img: img, want: []string{"/entry", "-x", "serve", "--port=80"}},
		{name: "command replaces cmd", img: img, o: Options{Command: []string{"sh"}}, want: []string{"/entry", "-x", "sh"}},
		{name: "entrypoint drops cmd", img: img, o: Options{Entrypoint: strp("/bin/date")}, want: []string{"/bin/date"}},
		{name: "entrypoint and command", img: img, o: Options{Entrypoint: strp("/bin/echo"), Command: []string{"hi"}}, want: []string{"/bin/echo", "hi"}},
		{name: "entrypoint json", img: img, o: Options{Entrypoint: strp(`["/bin/sh","-c"]`), Command: []string{"echo hi"}}, want: []string{"/bin/sh", "-c", "echo hi"}},
		{name: "entrypoint empty clears both", img: img, o: Options{Entrypoint: strp(""), Command: []string{"ls"}}, want: []string{"ls"}},
		{name: "entrypoint [] keeps cmd (podman)", img: img, o: Options{Entrypoint: strp("[]")}, want: []string{"serve", "--port=80"}},
		{name: "cmd only", img: imagehelper.ImageConfig{Cmd: []string{"sh"}}, want: []string{"sh"}},
		{name: "init", img: imagehelper.ImageConfig{Cmd: []string{"sh"}}, o: Options{Init: true}, want: []string{InitDest, "--", "sh"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, _ := generate(t, tc.img, tc.o)
			if !reflect.DeepEqual(s.Process.Args, tc.want) {
				t.Errorf("args = %q, want %q", s.Process.Args, tc.want)
			}
		})
	}
	for _, o := range []Options{{}, {Entrypoint: strp("")}} {
		_, _, err := Generate(imagehelper.ImageConfig{Cmd: nil}, o, testDB(), testHost())
		if !errors.Is(err, ErrNoCommand) || err.Error() != "no command or entrypoint provided, and no CMD or ENTRYPOINT from image" {
			t.Errorf("%+v: err = %v", o, err)
		}
	}
	_, _, err := Generate(imagehelper.ImageConfig{Entrypoint: []string{"x"}}, Options{Entrypoint: strp("")}, testDB(), testHost())
	if !errors.Is(err, ErrNoCommand) {
		t.Errorf("--entrypoint \"\" over an image entrypoint: err = %v", err)
	}
}

// TestInit: the init binary's mount, and its absence.
func TestInit(t *testing.T) {
	s, _ := generate(t, imagehelper.ImageConfig{Cmd: []string{"sh"}}, Options{Init: true})
	want := specs.Mount{Destination: InitDest, Type: "bind", Source: "/usr/libexec/sandy/sandy-init", Options: []string{"bind", "ro", "rprivate"}}
	if !slices.ContainsFunc(s.Mounts, func(m specs.Mount) bool { return reflect.DeepEqual(m, want) }) {
		t.Errorf("no init mount in %+v", s.Mounts)
	}
	h := testHost()
	h.InitPath = ""
	_, _, err := Generate(imagehelper.ImageConfig{Cmd: []string{"sh"}}, Options{Init: true}, testDB(), h)
	if err == nil || err.Error() != "generating the spec: args: --init: no init binary to mount (Host.InitPath is empty)" {
		t.Errorf("err = %v", err)
	}
	generateErr(t, imagehelper.ImageConfig{Cmd: []string{"sh"}}, Options{Init: true, Volumes: []string{"/x:" + InitDest}},
		"generating the spec: mounts: --init: duplicate mount destination /run/sandy-init")
}

// TestEnv: defaults < the caller's (proxies, or all with --env-host) <
// image < --env-file < -e; -e K from the host or dropped; HOSTNAME and
// HOME last unless set.
func TestEnv(t *testing.T) {
	img := imagehelper.ImageConfig{Cmd: []string{"sh"}, Env: []string{"PATH=/image/bin", "IMG=1", "OVER=image"}}
	for _, tc := range []struct {
		name string
		img  imagehelper.ImageConfig
		host map[string]string // the caller's environment, when not testHost's
		o    Options
		want []string
	}{
		{name: "defaults", img: imagehelper.ImageConfig{Cmd: []string{"sh"}}, want: []string{"PATH=" + defaultPath, "TERM=xterm", "container=podman", "HOME=/root", "HOSTNAME=0123456789ab"}},
		{name: "image overrides PATH in place", img: img, want: []string{"PATH=/image/bin", "TERM=xterm", "container=podman", "IMG=1", "OVER=image", "HOME=/root", "HOSTNAME=0123456789ab"}},
		{name: "file then -e", img: img, o: Options{
			EnvFiles: []EnvFile{{Name: "a.env", Content: "# c\n\nOVER=file\n  FILE=1\r\nHOSTVAR\n"}},
			Env:      []string{"OVER=flag", "HOSTVAR", "UNSET", "LC_*", "EMPTY=", "HOME=/h", "HOSTNAME=x"},
		}, want: []string{"PATH=/image/bin", "TERM=xterm", "container=podman", "IMG=1", "OVER=flag", "FILE=1", "HOSTVAR=h", "LC_ALL=C", "LC_TIME=en", "EMPTY=", "HOME=/h", "HOSTNAME=x"}},
		{name: "hostname flag", img: imagehelper.ImageConfig{Cmd: []string{"sh"}}, o: Options{Hostname: "web"}, want: []string{"PATH=" + defaultPath, "TERM=xterm", "container=podman", "HOME=/root", "HOSTNAME=web"}},
		{name: "proxies by default", img: img, host: map[string]string{"https_proxy": "http://p:3128", "NO_PROXY": "localhost", "OTHER": "x"},
			want: []string{"PATH=/image/bin", "TERM=xterm", "container=podman", "https_proxy=http://p:3128", "NO_PROXY=localhost", "IMG=1", "OVER=image", "HOME=/root", "HOSTNAME=0123456789ab"}},
		{name: "--http-proxy=false", img: img, host: map[string]string{"https_proxy": "http://p:3128"}, o: Options{NoHTTPProxy: true},
			want: []string{"PATH=/image/bin", "TERM=xterm", "container=podman", "IMG=1", "OVER=image", "HOME=/root", "HOSTNAME=0123456789ab"}},
		{name: "--env-host under the image, -e over it", img: img, host: map[string]string{"PATH": "/host/bin", "OVER": "host", "B": "2", "A": "1", "HOME": "/home/me"},
			o:    Options{EnvHost: true, NoHTTPProxy: true, Env: []string{"B=flag"}},
			want: []string{"PATH=/image/bin", "TERM=xterm", "container=podman", "A=1", "B=flag", "HOME=/home/me", "OVER=image", "IMG=1", "HOSTNAME=0123456789ab"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := testHost()
			if tc.host != nil {
				h.Env = tc.host
			}
			s, _, err := Generate(tc.img, tc.o, testDB(), h)
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.Process.Env, tc.want) {
				t.Errorf("env = %q\nwant %q", s.Process.Env, tc.want)
			}
		})
	}
	generateErr(t, img, Options{Env: []string{"=x"}}, `generating the spec: env: -e: invalid environment variable: "=x"`)
	generateErr(t, img, Options{EnvFiles: []EnvFile{{Name: "b.env", Content: "A=1\n=oops\n"}}}, `generating the spec: env: --env-file b.env line 2: invalid environment variable: "=oops"`)
}

// TestWorkdir: -w, else the image's, else /.
func TestWorkdir(t *testing.T) {
	for _, tc := range []struct {
		img, flag, want string
	}{
		{want: "/"}, {img: "/app", want: "/app"}, {img: "/app", flag: "/src/", want: "/src"},
	} {
		s, _ := generate(t, imagehelper.ImageConfig{Cmd: []string{"sh"}, WorkingDir: tc.img}, Options{Workdir: tc.flag})
		if s.Process.Cwd != tc.want {
			t.Errorf("%+v: cwd %q", tc, s.Process.Cwd)
		}
	}
	generateErr(t, imagehelper.ImageConfig{Cmd: []string{"sh"}}, Options{Workdir: "src"}, `generating the spec: workdir: workdir "src": must be an absolute path`)
}

// TestUser: -u and the image's User through the image's passwd and group.
func TestUser(t *testing.T) {
	for _, tc := range []struct {
		name, img, flag string
		uid, gid        uint32
		gids            []uint32
		home            string
		passwd, group   string
	}{
		{name: "default root", uid: 0, gid: 0, home: "/root"},
		{name: "image user", img: "alice", uid: 1000, gid: 1000, gids: []uint32{1000, 10, 20}, home: "/home/alice"},
		{name: "flag over image", img: "alice", flag: "bob", uid: 1001, gid: 1001, gids: []uint32{1001, 20}, home: "/home/bob"},
		{name: "user:group", flag: "alice:staff", uid: 1000, gid: 50, gids: []uint32{50}, home: "/home/alice"},
		// podman adds a group named after a numeric user without a group.
		{name: "numeric known", flag: "1001", uid: 1001, gid: 1001, gids: []uint32{1001, 20}, home: "/home/bob", group: "1001:x:1001:1001\n"},
		{name: "numeric unknown", flag: "4242", uid: 4242, gid: 0, gids: []uint32{0}, home: "/",
			passwd: "4242:*:4242:0:container user:/:/bin/sh\n", group: "4242:x:4242:4242\n"},
		{name: "numeric unknown with gid", flag: "4242:4343", uid: 4242, gid: 4343, gids: []uint32{4343}, home: "/",
			passwd: "4242:*:4242:4343:container user:/:/bin/sh\n", group: "4343:x:4343:4242\n"},
		{name: "numeric known gid", flag: "4242:10", uid: 4242, gid: 10, gids: []uint32{10}, home: "/",
			passwd: "4242:*:4242:10:container user:/:/bin/sh\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			s, x := generate(t, imagehelper.ImageConfig{Cmd: []string{"sh"}, User: tc.img}, Options{User: tc.flag})
			u := s.Process.User
			if u.UID != tc.uid || u.GID != tc.gid || !slices.Equal(u.AdditionalGids, tc.gids) {
				t.Errorf("user = %+v, want %d:%d %v", u, tc.uid, tc.gid, tc.gids)
			}
			if !slices.Contains(s.Process.Env, "HOME="+tc.home) {
				t.Errorf("env %q has no HOME=%s", s.Process.Env, tc.home)
			}
			if x.PasswdEntry != tc.passwd || x.GroupEntry != tc.group {
				t.Errorf("passwd %q group %q", x.PasswdEntry, x.GroupEntry)
			}
		})
	}
	generateErr(t, imagehelper.ImageConfig{Cmd: []string{"sh"}}, Options{User: "mallory"}, `generating the spec: user: user "mallory": unable to find user mallory: no matching entries in passwd file`)
	generateErr(t, imagehelper.ImageConfig{Cmd: []string{"sh"}, User: "ghost:wheel"}, Options{}, `generating the spec: user: user "ghost:wheel": unable to find user ghost: no matching entries in passwd file`)
}

// TestCapabilities: podman's defaults, --cap-add/--cap-drop, a non-root
// user's sets, --privileged.
func TestCapabilities(t *testing.T) {
	img := imagehelper.ImageConfig{Cmd: []string{"sh"}}
	s, _ := generate(t, img, Options{})
	if c := s.Process.Capabilities; !slices.Equal(c.Bounding, defaultCaps) || !slices.Equal(c.Effective, defaultCaps) || !slices.Equal(c.Permitted, defaultCaps) || c.Inheritable != nil || c.Ambient != nil {
		t.Errorf("default caps %+v", c)
	}
	s, _ = generate(t, img, Options{CapAdd: []string{"net_admin"}, CapDrop: []string{"CAP_CHOWN", "setfcap"}})
	want := []string{"CAP_DAC_OVERRIDE", "CAP_FOWNER", "CAP_FSETID", "CAP_KILL", "CAP_NET_ADMIN", "CAP_NET_BIND_SERVICE", "CAP_SETGID", "CAP_SETPCAP", "CAP_SETUID", "CAP_SYS_CHROOT"}
	if c := s.Process.Capabilities; !slices.Equal(c.Bounding, want) || !slices.Equal(c.Effective, want) {
		t.Errorf("add/drop caps %+v", c)
	}
	// A non-root user (podman 4.3.1: -u 1234:5 --cap-add net_admin) has
	// only the added caps in its sets; the bounding set is the same.
	s, _ = generate(t, img, Options{User: "1234:5", CapAdd: []string{"net_admin"}, CapDrop: []string{"chown"}})
	c := s.Process.Capabilities
	one := []string{"CAP_NET_ADMIN"}
	if !slices.Contains(c.Bounding, "CAP_NET_ADMIN") || slices.Contains(c.Bounding, "CAP_CHOWN") ||
		!slices.Equal(c.Effective, one) || !slices.Equal(c.Permitted, one) || !slices.Equal(c.Inheritable, one) || !slices.Equal(c.Ambient, one) {
		t.Errorf("non-root caps %+v", c)
	}
	s, _ = generate(t, img, Options{User: "alice"})
	if c := s.Process.Capabilities; len(c.Bounding) != len(defaultCaps) || c.Effective != nil || c.Permitted != nil {
		t.Errorf("non-root without cap-add %+v", c)
	}
	s, _ = generate(t, img, Options{User: "0:0"})
	if !slices.Equal(s.Process.Capabilities.Effective, defaultCaps) {
		t.Error("user 0:0 is not root")
	}
	// --privileged: every capability (podman 4.3.1 on Linux 6: 41).
	s, x := generate(t, img, Options{Privileged: true})
	if c := s.Process.Capabilities; len(c.Bounding) != 41 || !slices.Equal(c.Bounding, c.Effective) || !slices.Contains(c.Bounding, "CAP_SYS_ADMIN") {
		t.Errorf("privileged caps %d: %v", len(c.Bounding), c.Bounding)
	}
	if x.Seccomp != "unconfined" || s.Linux.MaskedPaths != nil || s.Linux.ReadonlyPaths != nil {
		t.Errorf("privileged: seccomp %q masked %v readonly %v", x.Seccomp, s.Linux.MaskedPaths, s.Linux.ReadonlyPaths)
	}
	for _, m := range s.Mounts {
		if (m.Destination == "/sys" || m.Destination == "/sys/fs/cgroup") && !slices.Contains(m.Options, "rw") {
			t.Errorf("privileged %s not rw: %v", m.Destination, m.Options)
		}
	}
	h := testHost()
	h.AllCaps = []string{"CAP_CHOWN", "CAP_KILL"}
	s, _, _ = Generate(img, Options{Privileged: true}, testDB(), h)
	if !slices.Equal(s.Process.Capabilities.Bounding, h.AllCaps) {
		t.Errorf("privileged with a bounding set: %v", s.Process.Capabilities.Bounding)
	}
	generateErr(t, img, Options{CapAdd: []string{"fly"}}, `generating the spec: capabilities: --cap-add: unknown capability "CAP_FLY" (names as in capabilities(7), e.g. NET_ADMIN)`)
}

// TestSecurityOpt: no-new-privileges and seccomp.
func TestSecurityOpt(t *testing.T) {
	img := imagehelper.ImageConfig{Cmd: []string{"sh"}}
	for _, tc := range []struct {
		opts          []string
		nnp           bool
		seccomp, file string
	}{
		{seccomp: "default"},
		{opts: []string{"no-new-privileges"}, nnp: true, seccomp: "default"},
		{opts: []string{"no-new-privileges=false"}, seccomp: "default"},
		{opts: []string{"no-new-privileges:true"}, nnp: true, seccomp: "default"},
		{opts: []string{"seccomp=unconfined"}, seccomp: "unconfined"},
		{opts: []string{"seccomp=/etc/p.json"}, seccomp: "file", file: "/etc/p.json"},
		{opts: []string{"seccomp=p.json"}, seccomp: "file", file: "/home/me/project/p.json"},
	} {
		s, x := generate(t, img, Options{SecurityOpt: tc.opts})
		if s.Process.NoNewPrivileges != tc.nnp || x.Seccomp != tc.seccomp || x.SeccompFile != tc.file {
			t.Errorf("%q: nnp %v seccomp %q %q", tc.opts, s.Process.NoNewPrivileges, x.Seccomp, x.SeccompFile)
		}
	}
	s, x := generate(t, img, Options{Privileged: true, SecurityOpt: []string{"seccomp=/p.json"}})
	if x.Seccomp != "file" || s == nil {
		t.Errorf("privileged keeps an explicit profile: %q", x.Seccomp)
	}
	generateErr(t, img, Options{SecurityOpt: []string{"label=disable"}}, `generating the spec: security options: --security-opt "label=disable": not supported by sandy (no SELinux or AppArmor handling)`)
	generateErr(t, img, Options{SecurityOpt: []string{"bogus"}}, `generating the spec: security options: --security-opt "bogus": unknown option (sandy has no-new-privileges, seccomp=unconfined, seccomp=FILE)`)
	generateErr(t, img, Options{SecurityOpt: []string{"no-new-privileges=maybe"}}, `generating the spec: security options: --security-opt "no-new-privileges=maybe": want true or false`)
}

func mountAt(s *specs.Spec, dst string) *specs.Mount {
	for i := range s.Mounts {
		if s.Mounts[i].Destination == dst {
			return &s.Mounts[i]
		}
	}
	return nil
}

// TestMounts: read-only root and its tmpfs, user mounts superseding the
// defaults, sorting, volumes and chown handed back.
func TestMounts(t *testing.T) {
	img := imagehelper.ImageConfig{Cmd: []string{"sh"}}
	s, _ := generate(t, img, Options{ReadOnly: true})
	if !s.Root.Readonly {
		t.Error("root not read-only")
	}
	for _, d := range []string{"/tmp", "/var/tmp", "/run"} {
		m := mountAt(s, d)
		if m == nil || m.Type != "tmpfs" || !slices.Equal(m.Options, []string{"rw", "rprivate", "nosuid", "nodev", "tmpcopyup"}) {
			t.Errorf("%s: %+v", d, m)
		}
	}
	s, _ = generate(t, img, Options{ReadOnly: true, NoReadOnlyTmpfs: true})
	if mountAt(s, "/tmp") != nil {
		t.Error("--read-only-tmpfs=false still mounts /tmp")
	}
	s, _ = generate(t, img, Options{ReadOnly: true, Tmpfs: []string{"/run:size=1m"}})
	if m := mountAt(s, "/run"); m == nil || m.Options[0] != "size=1m" {
		t.Errorf("--tmpfs /run lost to the read-only tmpfs: %+v", m)
	}
	s, x := generate(t, img, Options{
		Volumes: []string{"/data:/srv/data/deep:U", "cache:/var/cache", "/host-shm:/dev/shm"},
		Mounts:  []string{"type=tmpfs,dst=/srv"},
	})
	var dsts []string
	for _, m := range s.Mounts {
		dsts = append(dsts, m.Destination)
	}
	want := []string{"/srv", "/proc", "/dev", "/sys", "/dev/shm", "/dev/pts", "/dev/mqueue", "/srv/data/deep", "/sys/fs/cgroup"}
	if !slices.Equal(dsts, want) {
		t.Errorf("mounts %q\nwant %q", dsts, want)
	}
	if m := mountAt(s, "/dev/shm"); m.Type != "bind" {
		t.Errorf("-v over /dev/shm did not replace it: %+v", m)
	}
	if !reflect.DeepEqual(x.Volumes, []NamedVolume{{Name: "cache", Dest: "/var/cache"}}) || !slices.Equal(x.Chown, []string{"/srv/data/deep"}) {
		t.Errorf("volumes %+v chown %v", x.Volumes, x.Chown)
	}
	s, _ = generate(t, img, Options{Mounts: []string{"type=tmpfs,dst=/dev"}})
	for _, m := range s.Mounts {
		if strings.HasPrefix(m.Destination, "/dev/") {
			t.Errorf("a user /dev keeps %s", m.Destination)
		}
	}
	generateErr(t, img, Options{Volumes: []string{"/a:/x"}, Tmpfs: []string{"/x"}}, "generating the spec: mounts: --tmpfs /x: duplicate mount destination /x")
	generateErr(t, img, Options{Volumes: []string{"rel/path:/x"}}, `generating the spec: mounts: -v rel/path:/x: "rel/path" is neither an absolute host path nor a volume name (write ./rel/path for a path relative to the current directory)`)
}

// TestImageVolumes: the image's VOLUME paths get anonymous volumes
// (--image-volume=bind, the default), tmpfs or nothing; -v, --mount and
// --tmpfs at the same path win; the image's paths are cleaned absolute.
func TestImageVolumes(t *testing.T) {
	img := imagehelper.ImageConfig{Cmd: []string{"sh"}, Volumes: map[string]struct{}{"/data": {}, "/cache/": {}, "../../logs": {}, "/": {}}}
	_, x := generate(t, img, Options{})
	want := []NamedVolume{{Dest: "/cache"}, {Dest: "/data"}, {Dest: "/logs"}}
	if !reflect.DeepEqual(x.Volumes, want) {
		t.Errorf("default: volumes %+v, want %+v", x.Volumes, want)
	}
	s, x := generate(t, img, Options{Volumes: []string{"named:/data"}, Tmpfs: []string{"/logs"}})
	if want := []NamedVolume{{Name: "named", Dest: "/data"}, {Dest: "/cache"}}; !reflect.DeepEqual(x.Volumes, want) {
		t.Errorf("with -v and --tmpfs over them: volumes %+v, want %+v", x.Volumes, want)
	}
	if m := mountAt(s, "/logs"); m == nil || m.Type != "tmpfs" {
		t.Errorf("--tmpfs /logs: %+v", m)
	}
	s, x = generate(t, img, Options{ImageVolume: "tmpfs"})
	if len(x.Volumes) != 0 || mountAt(s, "/data") == nil || mountAt(s, "/data").Type != "tmpfs" {
		t.Errorf("--image-volume=tmpfs: volumes %+v, /data %+v", x.Volumes, mountAt(s, "/data"))
	}
	s, x = generate(t, img, Options{ImageVolume: "ignore"})
	if len(x.Volumes) != 0 || mountAt(s, "/data") != nil {
		t.Errorf("--image-volume=ignore: volumes %+v, /data %+v", x.Volumes, mountAt(s, "/data"))
	}
	generateErr(t, img, Options{ImageVolume: "copy"}, `generating the spec: mounts: --image-volume "copy": want bind, tmpfs or ignore`)
}

// The runtime's default network, as this package's tests see it (what
// lifecycle.DefaultNetwork finds depends on the machine).
func init() { defaultNetwork = func() (string, error) { return "usernet", nil } }

// TestNetwork: the default, slirp4netns, none, host.
func TestNetwork(t *testing.T) {
	img := imagehelper.ImageConfig{Cmd: []string{"sh"}}
	hasNet := func(s *specs.Spec) bool {
		return slices.ContainsFunc(s.Linux.Namespaces, func(n specs.LinuxNamespace) bool { return n.Type == specs.NetworkNamespace })
	}
	s, x := generate(t, img, Options{Network: "slirp4netns:port_handler=slirp4netns,mtu=1500"})
	if !hasNet(s) || x.Network != "slirp4netns" || !slices.Equal(x.NetworkOptions, []string{"port_handler=slirp4netns", "mtu=1500"}) || s.Linux.Sysctl["net.ipv4.ping_group_range"] != "0 0" {
		t.Errorf("slirp4netns: %+v %+v", s.Linux, x)
	}
	s, x = generate(t, img, Options{})
	if !hasNet(s) || x.Network != "usernet" {
		t.Errorf("the default: %+v", x)
	}
	defer func(d func() (string, error)) { defaultNetwork = d }(defaultNetwork)
	defaultNetwork = func() (string, error) { return "none", errors.New("neither") }
	s, x = generate(t, img, Options{})
	if !hasNet(s) || x.Network != "" {
		t.Errorf("no default network here: %+v, want the runtime's fallback (\"\")", x)
	}
	s, x = generate(t, img, Options{Network: "none"})
	if !hasNet(s) || x.Network != "none" {
		t.Errorf("none: %+v", x)
	}
	s, x = generate(t, img, Options{Network: "host"})
	if hasNet(s) || x.Network != "host" || s.Linux.Sysctl != nil || mountAt(s, "/sys/fs/cgroup") != nil ||
		mountAt(s, "/sys").Type != "bind" || !slices.Contains(s.Linux.MaskedPaths, "/sys/kernel") {
		t.Errorf("host: %+v %+v", s.Linux, s.Mounts)
	}
	s, x = generate(t, img, Options{DNS: []string{"1.1.1.1", "fd00::53"}, DNSSearch: []string{"corp"}, DNSOption: []string{"ndots:2"}, AddHost: []string{"db:10.0.0.5"}, Hostname: "web"})
	if s.Hostname != "web" || x.Hostname != "web" || !slices.Equal(x.DNS, []string{"1.1.1.1", "fd00::53"}) || x.DNSSearch[0] != "corp" || x.DNSOptions[0] != "ndots:2" || x.AddHosts[0].Name != "db" {
		t.Errorf("dns: %+v", x)
	}
	generateErr(t, img, Options{Network: "bridge"}, `generating the spec: network: --network "bridge": unsupported (sandy has slirp4netns, usernet, none and host)`)
	generateErr(t, img, Options{Network: "none:x"}, `generating the spec: network: --network none:x takes no options`)
	generateErr(t, img, Options{DNS: []string{"dns.example"}}, `generating the spec: network: --dns "dns.example": not an IP address`)
	generateErr(t, img, Options{AddHost: []string{"db"}}, `generating the spec: network: --add-host "db": should be HOST:IP`)
}

// TestResources: --memory, --cpus, --pids-limit.
func TestResources(t *testing.T) {
	img := imagehelper.ImageConfig{Cmd: []string{"sh"}}
	s, _ := generate(t, img, Options{})
	if s.Linux.Resources != nil {
		t.Errorf("resources without flags: %+v", s.Linux.Resources)
	}
	n := int64(100)
	s, _ = generate(t, img, Options{Memory: "512m", CPUs: "1.5", PidsLimit: &n})
	r := s.Linux.Resources
	if *r.Memory.Limit != 512<<20 || *r.CPU.Quota != 150000 || *r.CPU.Period != 100000 || *r.Pids.Limit != 100 {
		t.Errorf("resources %+v", r)
	}
	for _, v := range []int64{0, -1} {
		s, _ = generate(t, img, Options{PidsLimit: &v})
		if s.Linux.Resources != nil {
			t.Errorf("--pids-limit %d set %+v", v, s.Linux.Resources)
		}
	}
	generateErr(t, img, Options{Memory: "1x"}, `generating the spec: resources: --memory "1x": invalid suffix: 'x' (write e.g. 512m or 1g)`)
	bad := int64(-5)
	generateErr(t, img, Options{PidsLimit: &bad}, "generating the spec: resources: --pids-limit -5: want a positive number, or 0 or -1 for no limit")
}

// TestMetadata: stop signal, exposed ports, labels, annotations.
func TestMetadata(t *testing.T) {
	img := imagehelper.ImageConfig{Cmd: []string{"sh"}, StopSignal: "sigquit",
		ExposedPorts: map[string]struct{}{"8080/tcp": {}, "53/udp": {}},
		Labels:       map[string]string{"maintainer": "x", "keep": "y"}}
	s, x := generate(t, img, Options{Labels: []string{"maintainer=me", "new"}, Annotations: []string{"a=b"}})
	if x.StopSignal != "SIGQUIT" || !slices.Equal(x.ExposedPorts, []string{"53/udp", "8080/tcp"}) {
		t.Errorf("extra %+v", x)
	}
	if !reflect.DeepEqual(x.Labels, map[string]string{"maintainer": "me", "keep": "y", "new": ""}) || s.Annotations["a"] != "b" {
		t.Errorf("labels %v annotations %v", x.Labels, s.Annotations)
	}
	for sig, want := range map[string]string{"": "SIGTERM", "9": "SIGKILL", "SIGRTMIN+3": "", "37": "37", "INT": "SIGINT"} {
		got, err := signalName(sig)
		if want == "" {
			if err == nil {
				t.Errorf("%q: no error", sig)
			}
			continue
		}
		if err != nil || got != want {
			t.Errorf("%q: %q %v", sig, got, err)
		}
	}
	generateErr(t, imagehelper.ImageConfig{Cmd: []string{"sh"}, StopSignal: "SIGNOPE"}, Options{}, `generating the spec: metadata: image StopSignal: invalid signal "SIGNOPE"`)
	generateErr(t, img, Options{Annotations: []string{"novalue"}}, `generating the spec: metadata: --annotation "novalue": want KEY=VALUE`)
}

// TestKeepIDMap: podman's keep-id shape from the host, over several
// ranges and for a uid beyond the subordinate ids.
func TestKeepIDMap(t *testing.T) {
	for _, tc := range []struct {
		name   string
		own    uint32
		ranges []idmap.SubIDRange
		want   []specs.LinuxIDMapping
	}{
		{name: "one range", own: 1000, ranges: []idmap.SubIDRange{{Start: 100000, Count: 65536}}, want: []specs.LinuxIDMapping{
			{ContainerID: 0, HostID: 100000, Size: 1000}, {ContainerID: 1000, HostID: 1000, Size: 1}, {ContainerID: 1001, HostID: 101000, Size: 64536}}},
		{name: "split ranges", own: 5, ranges: []idmap.SubIDRange{{Start: 200, Count: 3}, {Start: 500, Count: 10}}, want: []specs.LinuxIDMapping{
			{ContainerID: 0, HostID: 200, Size: 3}, {ContainerID: 3, HostID: 500, Size: 2}, {ContainerID: 5, HostID: 5, Size: 1}, {ContainerID: 6, HostID: 502, Size: 8}}},
		{name: "uid beyond the ranges", own: 70000, ranges: []idmap.SubIDRange{{Start: 100000, Count: 65536}}, want: []specs.LinuxIDMapping{
			{ContainerID: 0, HostID: 100000, Size: 65536}, {ContainerID: 70000, HostID: 70000, Size: 1}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := keepIDMap(tc.own, tc.ranges)
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %+v %v\nwant %+v", got, err, tc.want)
			}
			if err := idmap.ValidateMappings("uidMappings", got); err != nil {
				t.Error(err)
			}
		})
	}
}

// TestKeepIDStoreMap: the storage container's map is podman's own (the
// maps podman 4.3.1 wrote for its keep-id container, relative to its
// rootless namespace), and composed with the store's namespace (0 → the
// caller, k → the k-th subordinate id) it is the map the runtime writes.
func TestKeepIDStoreMap(t *testing.T) {
	podman := podmanSpec(t, "podman-4.3.1-keepid.json")
	if got := keepIDStoreMap(1001, 65536); !reflect.DeepEqual(got, podman.Linux.UIDMappings) {
		t.Errorf("got %+v\nwant podman's %+v", got, podman.Linux.UIDMappings)
	}
	// expand lists every container id of m with f of its mapped id.
	expand := func(m []specs.LinuxIDMapping, f func(uint32) uint32) map[uint32]uint32 {
		out := map[uint32]uint32{}
		for _, l := range m {
			for i := uint32(0); i < l.Size; i++ {
				out[l.ContainerID+i] = f(l.HostID + i)
			}
		}
		return out
	}
	for _, tc := range []struct {
		own    uint32
		ranges []idmap.SubIDRange
	}{
		{1000, []idmap.SubIDRange{{Start: 100000, Count: 3000}}},
		{5, []idmap.SubIDRange{{Start: 200, Count: 3}, {Start: 500, Count: 10}}},
		{7000, []idmap.SubIDRange{{Start: 100000, Count: 4000}}},
		{3, []idmap.SubIDRange{{Start: 10, Count: 3}}},
	} {
		store := keepIDStoreMap(tc.own, subTotal(tc.ranges))
		if err := idmap.ValidateMappings("store map", store); err != nil {
			t.Errorf("own %d: %v", tc.own, err)
		}
		host, err := keepIDMap(tc.own, tc.ranges)
		if err != nil {
			t.Fatal(err)
		}
		storeToHost := func(k uint32) uint32 { // the store's namespace
			if k == 0 {
				return tc.own
			}
			k--
			for _, r := range tc.ranges {
				if k < r.Count {
					return r.Start + k
				}
				k -= r.Count
			}
			t.Fatalf("store id %d beyond the ranges", k)
			return 0
		}
		if got, want := expand(store, storeToHost), expand(host, func(h uint32) uint32 { return h }); !reflect.DeepEqual(got, want) {
			t.Errorf("own %d %v: the store map composed differs from keepIDMap", tc.own, tc.ranges)
		}
	}
	if u, g, err := storeMaps(Options{}); u != nil || g != nil || err != nil {
		t.Errorf("without keep-id: %v %v %v", u, g, err)
	}
	h := testHost()
	h.UID = 0
	if _, _, err := keepIDStoreMaps(h); err == nil || !strings.Contains(err.Error(), "rootless") {
		t.Errorf("root: %v", err)
	}
}

// TestKeepID: the caller's ids, its passwd entry, HOME, no gid=5 when
// gid 5 is unmapped, the error without subordinate ids.
func TestKeepID(t *testing.T) {
	img := imagehelper.ImageConfig{Cmd: []string{"sh"}}
	h := testHost()
	h.UID, h.GID = 1500, 1500
	s, x, err := Generate(img, Options{Userns: "keep-id", Volumes: []string{"/home/me:/home/me"}}, testDB(), h)
	if err != nil {
		t.Fatal(err)
	}
	if u := s.Process.User; u.UID != 1500 || u.GID != 1500 || !slices.Equal(u.AdditionalGids, []uint32{1500}) {
		t.Errorf("user %+v", u)
	}
	if x.PasswdEntry != "me:*:1500:1500:Me:/home/me:/bin/sh\n" || x.GroupEntry != "me:x:1500:me\n" {
		t.Errorf("passwd %q group %q", x.PasswdEntry, x.GroupEntry)
	}
	if !slices.Contains(s.Process.Env, "HOME=/home/me") {
		t.Errorf("env %q", s.Process.Env)
	}
	// Home not mounted: the working directory, as podman.
	s, x, _ = Generate(img, Options{Userns: "keep-id", Workdir: "/src"}, testDB(), h)
	if !slices.Contains(s.Process.Env, "HOME=/src") || !strings.Contains(x.PasswdEntry, ":/src:") {
		t.Errorf("env %q passwd %q", s.Process.Env, x.PasswdEntry)
	}
	// The image knows the caller's uid (alice is 1000): no entry, its home.
	s, x = generate(t, img, Options{Userns: "keep-id"})
	if x.PasswdEntry != "" || !slices.Contains(s.Process.Env, "HOME=/home/alice") {
		t.Errorf("env %q passwd %q", s.Process.Env, x.PasswdEntry)
	}
	// -u wins over keep-id's user; the map stays.
	s, _ = generate(t, img, Options{Userns: "keep-id", User: "root"})
	if s.Process.User.UID != 0 || len(s.Linux.UIDMappings) != 3 {
		t.Errorf("keep-id -u root: %+v %+v", s.Process.User, s.Linux.UIDMappings)
	}
	h = testHost()
	h.GID, h.SubGIDs = 1, []idmap.SubIDRange{{Start: 100000, Count: 3}}
	s, _, err = Generate(img, Options{Userns: "keep-id"}, testDB(), h)
	if err != nil {
		t.Fatal(err)
	}
	if slices.Contains(mountAt(s, "/dev/pts").Options, "gid=5") {
		t.Error("devpts keeps gid=5 without gid 5 in the map")
	}
	h = testHost()
	h.SubUIDs = nil
	_, _, err = Generate(img, Options{Userns: "keep-id"}, testDB(), h)
	if err == nil || err.Error() != "generating the spec: id maps: --userns=keep-id needs subordinate ids: add ranges for the user to /etc/subuid and /etc/subgid (docs/troubleshooting.md#subuid)" {
		t.Errorf("err = %v", err)
	}
	h = testHost()
	h.UID = 0
	_, _, err = Generate(img, Options{Userns: "keep-id"}, testDB(), h)
	if err == nil || err.Error() != "generating the spec: id maps: --userns=keep-id: keep-id is only supported in rootless mode (the caller is root)" {
		t.Errorf("err = %v", err)
	}
	generateErr(t, img, Options{Userns: "auto"}, `generating the spec: user namespace: --userns "auto": unsupported (sandy has the default map and keep-id)`)
}

// TestRootful: root gets no user namespace (its store's overlay metadata
// is in trusted.* xattrs, which only the initial namespace may use), as
// rootful podman, and devpts keeps gid=5.
func TestRootful(t *testing.T) {
	h := testHost()
	h.UID, h.GID, h.SubUIDs, h.SubGIDs = 0, 0, nil, nil
	s, _, err := Generate(imagehelper.ImageConfig{Cmd: []string{"sh"}}, Options{}, testDB(), h)
	if err != nil {
		t.Fatal(err)
	}
	for _, ns := range s.Linux.Namespaces {
		if ns.Type == specs.UserNamespace {
			t.Errorf("root's container has a user namespace: %v", s.Linux.Namespaces)
		}
	}
	if len(s.Linux.UIDMappings) != 0 {
		t.Errorf("root's container has id maps: %v", s.Linux.UIDMappings)
	}
	for _, m := range s.Mounts {
		if m.Type == "devpts" && !slices.Contains(m.Options, "gid=5") {
			t.Errorf("devpts without gid=5: %v", m.Options)
		}
	}
	s, _, err = Generate(imagehelper.ImageConfig{Cmd: []string{"sh"}}, Options{}, testDB(), testHost())
	if err != nil {
		t.Fatal(err)
	}
	if s.Linux.Namespaces[len(s.Linux.Namespaces)-1].Type != specs.UserNamespace {
		t.Errorf("a user's container has no user namespace: %v", s.Linux.Namespaces)
	}
}
