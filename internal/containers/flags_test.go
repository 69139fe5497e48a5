package containers

import (
	units "github.com/docker/go-units"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestParseVolume: -v forms and their errors.
func TestParseVolume(t *testing.T) {
	for _, tc := range []struct {
		name, v string
		mount   *specs.Mount
		volume  *NamedVolume
		chown   bool
		err     string
	}{
		{name: "bind", v: "/src:/dst", mount: &specs.Mount{Destination: "/dst", Type: "bind", Source: "/src", Options: []string{"rw", "rprivate", "rbind"}}},
		{name: "bind ro, cleaned", v: "/src/:/dst/x/../y:ro", mount: &specs.Mount{Destination: "/dst/y", Type: "bind", Source: "/src", Options: []string{"ro", "rprivate", "rbind"}}},
		{name: "z Z dropped, U chowns", v: "/src:/dst:Z,U,nosuid", chown: true, mount: &specs.Mount{Destination: "/dst", Type: "bind", Source: "/src", Options: []string{"nosuid", "rw", "rprivate", "rbind"}}},
		{name: "propagation and bind kept", v: "/src:/dst:rshared,bind", mount: &specs.Mount{Destination: "/dst", Type: "bind", Source: "/src", Options: []string{"rshared", "bind", "rw"}}},
		{name: "relative ./", v: "./work:/w", mount: &specs.Mount{Destination: "/w", Type: "bind", Source: "/home/me/work", Options: []string{"rw", "rprivate", "rbind"}}},
		{name: "relative ..", v: "..:/w", mount: &specs.Mount{Destination: "/w", Type: "bind", Source: "/home", Options: []string{"rw", "rprivate", "rbind"}}},
		{name: "cached dropped", v: "/a:/b:cached", mount: &specs.Mount{Destination: "/b", Type: "bind", Source: "/a", Options: []string{"rw", "rprivate", "rbind"}}},
		{name: "named", v: "data:/var/lib/data:ro", volume: &NamedVolume{Name: "data", Dest: "/var/lib/data", Options: []string{"ro"}}},
		{name: "anonymous", v: "/cache", volume: &NamedVolume{Dest: "/cache"}},
		{name: "relative without ./", v: "src/dir:/x", err: `-v src/dir:/x: "src/dir" is neither an absolute host path nor a volume name (write ./src/dir for a path relative to the current directory)`},
		{name: "relative dst", v: "/a:b", err: `-v /a:b: container path "b" must be absolute`},
		{name: "empty dst", v: "/a:", err: `-v /a:: container path cannot be empty`},
		{name: "empty src", v: ":/b", err: `-v :/b: host directory cannot be empty`},
		{name: "too many parts", v: "/a:/b:ro:x", err: `-v /a:/b:ro:x: incorrect volume format, should be [host-dir:]ctr-dir[:option]`},
		{name: "unknown option", v: "/a:/b:rx", err: `-v /a:/b:rx: invalid option "rx"`},
		{name: "ro and rw", v: "/a:/b:ro,rw", err: `-v /a:/b:ro,rw: options "ro" and "rw": only one rw/ro option`},
		{name: "overlay refused", v: "/a:/b:O", err: `-v /a:/b:O: overlay volumes (option "O") are not supported by sandy`},
		{name: "idmap refused", v: "/a:/b:idmap", err: `-v /a:/b:idmap: option "idmap": an idmapped mount needs privilege in the initial user namespace (docs/troubleshooting.md#idmap)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s mountSet
			err := parseVolume(tc.v, "/home/me", &s)
			checkParsed(t, err, tc.err, s, tc.mount, tc.volume, tc.chown)
		})
	}
	t.Run("relative without cwd", func(t *testing.T) {
		var s mountSet
		err := parseVolume("./a:/b", "", &s)
		if err == nil || err.Error() != `-v ./a:/b: relative host path "./a" needs the current directory, which is unknown` {
			t.Fatalf("err = %v", err)
		}
	})
	t.Run("duplicate destination", func(t *testing.T) {
		var s mountSet
		if err := parseVolume("/a:/b", "/", &s); err != nil {
			t.Fatal(err)
		}
		err := parseVolume("vol:/b", "/", &s)
		if err == nil || err.Error() != "-v vol:/b: duplicate mount destination /b" {
			t.Fatalf("err = %v", err)
		}
	})
}

func checkParsed(t *testing.T, err error, wantErr string, s mountSet, m *specs.Mount, v *NamedVolume, chown bool) {
	t.Helper()
	if wantErr != "" {
		if err == nil || err.Error() != wantErr {
			t.Fatalf("err = %v\nwant %s", err, wantErr)
		}
		return
	}
	if err != nil {
		t.Fatal(err)
	}
	if m != nil && (len(s.mounts) != 1 || !reflect.DeepEqual(s.mounts[0], *m)) {
		t.Errorf("mounts = %+v, want %+v", s.mounts, *m)
	}
	if v != nil && (len(s.volumes) != 1 || !reflect.DeepEqual(s.volumes[0], *v)) {
		t.Errorf("volumes = %+v, want %+v", s.volumes, *v)
	}
	if chown != (len(s.chown) == 1) {
		t.Errorf("chown = %v", s.chown)
	}
}

// TestParseMount: --mount forms and their errors.
func TestParseMount(t *testing.T) {
	for _, tc := range []struct {
		name, v string
		mount   *specs.Mount
		volume  *NamedVolume
		chown   bool
		err     string
	}{
		{name: "bind", v: "type=bind,src=/a,dst=/b", mount: &specs.Mount{Destination: "/b", Type: "bind", Source: "/a", Options: []string{"rw", "rprivate", "rbind"}}},
		{name: "bind readonly", v: "type=bind,source=/a,target=/b,readonly", mount: &specs.Mount{Destination: "/b", Type: "bind", Source: "/a", Options: []string{"ro", "rprivate", "rbind"}}},
		{name: "bind rw=false", v: "type=bind,src=/a,destination=/b,rw=false,bind-propagation=rslave,U", chown: true, mount: &specs.Mount{Destination: "/b", Type: "bind", Source: "/a", Options: []string{"ro", "rslave", "rbind"}}},
		{name: "bind nonrecursive, relabel", v: "type=bind,src=/a,dst=/b,bind-nonrecursive,relabel=shared", mount: &specs.Mount{Destination: "/b", Type: "bind", Source: "/a", Options: []string{"bind", "rw", "rprivate"}}},
		{name: "tmpfs", v: "type=tmpfs,dst=/t,tmpfs-size=64m,tmpfs-mode=1777", mount: &specs.Mount{Destination: "/t", Type: "tmpfs", Source: "tmpfs", Options: []string{"size=64m", "mode=1777", "rw", "rprivate", "nosuid", "nodev", "tmpcopyup"}}},
		{name: "volume", v: "type=volume,src=data,dst=/d,ro", volume: &NamedVolume{Name: "data", Dest: "/d", Options: []string{"ro"}}},
		{name: "anonymous volume", v: "type=volume,dst=/d", volume: &NamedVolume{Dest: "/d"}},
		{name: "no type", v: "src=/a,dst=/b", err: "--mount src=/a,dst=/b: missing type= (bind, tmpfs or volume)"},
		{name: "no dst", v: "type=bind,src=/a", err: "--mount type=bind,src=/a: must set the destination (target=)"},
		{name: "bind without src", v: "type=bind,dst=/b", err: "--mount type=bind,dst=/b: a bind mount needs src="},
		{name: "tmpfs with src", v: "type=tmpfs,src=/a,dst=/b", err: "--mount type=tmpfs,src=/a,dst=/b: source is not supported with tmpfs mounts"},
		{name: "unknown type", v: "type=image,src=x,dst=/b", err: `--mount type=image,src=x,dst=/b: unsupported mount type "image" (bind, tmpfs or volume)`},
		{name: "unknown key", v: "type=bind,src=/a,dst=/b,foo=bar", err: `--mount type=bind,src=/a,dst=/b,foo=bar: unknown option "foo=bar"`},
		{name: "unknown flag", v: "type=bind,src=/a,dst=/b,foo", err: `--mount type=bind,src=/a,dst=/b,foo: invalid option "foo"`},
		{name: "bad ro value", v: "type=bind,src=/a,dst=/b,ro=maybe", err: `--mount type=bind,src=/a,dst=/b,ro=maybe: ro must be true or false, not "maybe"`},
		{name: "bad volume name", v: "type=volume,src=a/b,dst=/b", err: `--mount type=volume,src=a/b,dst=/b: invalid volume name "a/b"`},
		{name: "bad tmpfs size", v: "type=tmpfs,dst=/t,tmpfs-size=1x", err: `--mount type=tmpfs,dst=/t,tmpfs-size=1x: size=1x: invalid suffix: 'x'`},
		{name: "csv error", v: `type=bind,"src=/a`, err: `--mount type=bind,"src=/a: incorrect mount format: should be --mount type=<bind|tmpfs|volume>,[src=<host-dir|volume-name>,]target=<ctr-dir>[,options]`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s mountSet
			err := parseMount(tc.v, "/home/me", &s)
			checkParsed(t, err, tc.err, s, tc.mount, tc.volume, tc.chown)
		})
	}
}

// TestParseTmpfs: --tmpfs gets podman's defaults.
func TestParseTmpfs(t *testing.T) {
	for _, tc := range []struct {
		name, v string
		want    []string
		err     string
	}{
		{name: "plain", v: "/run", want: []string{"rw", "rprivate", "nosuid", "nodev", "tmpcopyup"}},
		{name: "size", v: "/run:size=64m,exec", want: []string{"size=64m", "exec", "rw", "rprivate", "nosuid", "nodev", "tmpcopyup"}},
		{name: "notmpcopyup and ro", v: "/x:notmpcopyup,ro,suid,dev", want: []string{"ro", "suid", "dev", "rprivate"}},
		{name: "uid gid mode", v: "/x:uid=1000,gid=1000,mode=700", want: []string{"uid=1000", "gid=1000", "mode=700", "rw", "rprivate", "nosuid", "nodev", "tmpcopyup"}},
		{name: "unknown", v: "/x:bind", err: `--tmpfs /x:bind: unknown tmpfs option "bind"`},
		{name: "twice", v: "/x:size=1m,size=2m", err: `--tmpfs /x:size=1m,size=2m: options "size=1m" and "size=2m": only one size option`},
		{name: "relative", v: "x", err: `--tmpfs x: container path "x" must be absolute`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var s mountSet
			err := parseTmpfs(tc.v, &s)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v\nwant %s", err, tc.err)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if !reflect.DeepEqual(s.mounts[0].Options, tc.want) {
				t.Errorf("options = %q, want %q", s.mounts[0].Options, tc.want)
			}
		})
	}
}

func TestVolumeMount(t *testing.T) {
	got := VolumeMount(NamedVolume{Name: "data", Dest: "/d", Options: []string{"ro", "U"}}, "/home/me/.local/share/sandy/volumes/data/_data")
	want := specs.Mount{Destination: "/d", Type: "bind", Source: "/home/me/.local/share/sandy/volumes/data/_data", Options: []string{"ro", "rprivate", "rbind"}}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %+v", got)
	}
}

func TestParseMemoryCPUs(t *testing.T) {
	for _, tc := range []struct {
		v    string
		want int64
		err  string
	}{
		{v: "512m", want: 512 << 20},
		{v: "1g", want: 1 << 30},
		{v: "1G", want: 1 << 30},
		{v: "10485760", want: 10 << 20},
		{v: "1x", err: `--memory "1x": invalid suffix: 'x' (write e.g. 512m or 1g)`},
		{v: "1k", err: `--memory "1k": the minimum memory limit is 6m`},
	} {
		got, err := parseMemory(tc.v)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: err = %v, want %s", tc.v, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %d, %v", tc.v, got, err)
		}
	}
	for _, tc := range []struct {
		v    string
		want int64
		err  string
	}{
		{v: "1.5", want: 150000},
		{v: "2", want: 200000},
		{v: "0.01", want: 1000},
		{v: "0", err: `--cpus "0": not a positive number of CPUs (e.g. 1.5)`},
		{v: "many", err: `--cpus "many": not a positive number of CPUs (e.g. 1.5)`},
		{v: "0.001", err: `--cpus "0.001": below the kernel's minimum CFS quota of 1ms per 100ms (0.01 CPUs)`},
	} {
		got, err := parseCPUs(tc.v)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: err = %v, want %s", tc.v, err, tc.err)
			}
			continue
		}
		if err != nil || got != tc.want {
			t.Errorf("%s: %d, %v", tc.v, got, err)
		}
	}
}

// TestMergeCaps: common/pkg/capabilities.MergeCapabilities.
func TestMergeCaps(t *testing.T) {
	all := []string{"CAP_A_ONE", "CAP_CHOWN", "CAP_KILL"}
	for _, tc := range []struct {
		name             string
		base, add, drops []string
		want             []string
		err              string
	}{
		{name: "nothing", base: []string{"CAP_KILL", "CAP_CHOWN"}, want: []string{"CAP_CHOWN", "CAP_KILL"}},
		{name: "add lower case, no prefix", base: []string{"CAP_KILL"}, add: []string{"net_admin"}, want: []string{"CAP_KILL", "CAP_NET_ADMIN"}},
		{name: "drop", base: []string{"CAP_KILL", "CAP_CHOWN"}, drops: []string{"CAP_KILL"}, want: []string{"CAP_CHOWN"}},
		{name: "add all", base: []string{"CAP_KILL"}, add: []string{"all"}, drops: []string{"kill"}, want: []string{"CAP_A_ONE", "CAP_CHOWN"}},
		{name: "drop all keeps adds", base: []string{"CAP_KILL"}, add: []string{"chown"}, drops: []string{"ALL"}, want: []string{"CAP_CHOWN"}},
		{name: "add and drop all", add: []string{"ALL"}, drops: []string{"ALL"}, err: "--cap-add=ALL and --cap-drop=ALL: adding all caps and removing all caps not allowed"},
		{name: "same both", add: []string{"kill"}, drops: []string{"CAP_KILL"}, err: `capability "CAP_KILL" cannot be dropped and added`},
		{name: "unknown", add: []string{"fly"}, err: `--cap-add: unknown capability "CAP_FLY" (names as in capabilities(7), e.g. NET_ADMIN)`},
	} {
		t.Run(tc.name, func(t *testing.T) {
			got, err := mergeCaps(tc.base, tc.add, tc.drops, all)
			if tc.err != "" {
				if err == nil || err.Error() != tc.err {
					t.Fatalf("err = %v, want %s", err, tc.err)
				}
				return
			}
			if err != nil || !reflect.DeepEqual(got, tc.want) {
				t.Errorf("got %q, %v; want %q", got, err, tc.want)
			}
		})
	}
}

func TestParseAddHost(t *testing.T) {
	for _, tc := range []struct{ v, name, ip, err string }{
		{v: "db:10.0.0.5", name: "db", ip: "10.0.0.5"},
		{v: "v6:fd00::1", name: "v6", ip: "fd00::1"},
		{v: "v6b:[fd00::2]", name: "v6b", ip: "fd00::2"},
		{v: "nocolon", err: `--add-host "nocolon": should be HOST:IP`},
		{v: ":1.2.3.4", err: `--add-host ":1.2.3.4": should be HOST:IP`},
		{v: "db:1.2.3", err: `--add-host "db:1.2.3": invalid IP address "1.2.3"`},
	} {
		e, err := parseAddHost(tc.v)
		if tc.err != "" {
			if err == nil || err.Error() != tc.err {
				t.Errorf("%s: err = %v, want %s", tc.v, err, tc.err)
			}
			continue
		}
		if err != nil || e.Name != tc.name || e.IP.String() != tc.ip {
			t.Errorf("%s: %+v %v", tc.v, e, err)
		}
	}
}

func FuzzParseVolume(f *testing.F) {
	for _, s := range []string{"/a:/b:ro", "vol:/x", "./a:/b:Z,U", "/x", "a:b:c:d"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var s mountSet
		if err := parseVolume(v, "/cwd", &s); err != nil {
			return
		}
		for _, m := range s.mounts {
			if !strings.HasPrefix(m.Destination, "/") || !strings.HasPrefix(m.Source, "/") {
				t.Fatalf("%q gave %+v", v, m)
			}
		}
	})
}

func FuzzParseMount(f *testing.F) {
	for _, s := range []string{"type=bind,src=/a,dst=/b", "type=tmpfs,dst=/t,tmpfs-size=1m", "type=volume,src=v,dst=/v,ro"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, v string) {
		var s mountSet
		if err := parseMount(v, "/cwd", &s); err != nil {
			return
		}
		for _, m := range s.mounts {
			if !strings.HasPrefix(m.Destination, "/") {
				t.Fatalf("%q gave %+v", v, m)
			}
		}
	})
}

// TestRAMInBytes: the hand-written parser agrees with go-units'
// RAMInBytes (podman's parser), which the test imports, on every input:
// accepted or not, and the value.
func TestRAMInBytes(t *testing.T) {
	for _, in := range []string{
		"512m", "1g", "1G", "64M", "100", "10b", "2k", "1.5g", "1gb", "1GiB", "1 g", "3t", "1p", "0", "1 ", "1ib", "7B",
		"", "1x", "m", "-1m", "1.m", ".5m", "1..5m", "1.2.3m", "1mm", "1  m", "0x10", "1e3", " 1m", "1m ", "1kib", "1KIB", "1.25k", "1 b", "5 ", " ", "1bb", "1kbb", "1e", "Inf", "NaN", "1E3k", ".", "-0",
	} {
		want, werr := units.RAMInBytes(in)
		got, err := ramInBytes(in)
		if (err != nil) != (werr != nil) || (err == nil && got != want) {
			t.Errorf("ramInBytes(%q) = %d, %v; go-units: %d, %v", in, got, err, want, werr)
		}
	}
}
