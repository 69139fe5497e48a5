package containers

import (
	"slices"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/spec"
)

// TestGenerateStartAgrees: the start spec, from the flags alone, agrees
// with Generate's spec of the same flags, whatever the image says, on
// what the init is started with (spec.CheckStartAgrees); and the Extra
// fields the runtime's options are made of before the image is known
// (network, DNS, seccomp) are Generate's.
func TestGenerateStartAgrees(t *testing.T) {
	pids := int64(100)
	images := []imagehelper.ImageConfig{
		{Cmd: []string{"sh"}},
		{Cmd: []string{"app"}, User: "alice", WorkingDir: "/srv", Env: []string{"A=1"},
			Volumes: map[string]struct{}{"/data": {}}, ExposedPorts: map[string]struct{}{"80/tcp": {}}, StopSignal: "SIGINT"},
	}
	root := testHost()
	root.UID, root.GID, root.SubUIDs, root.SubGIDs = 0, 0, nil, nil
	for _, tc := range []struct {
		name string
		o    Options
		h    Host
	}{
		{"defaults", Options{}, testHost()},
		{"network none", Options{Network: "none"}, testHost()},
		{"network host", Options{Network: "host"}, testHost()},
		{"slirp4netns options and DNS", Options{Network: "slirp4netns:allow_host_loopback=true", DNS: []string{"192.0.2.53"}, DNSSearch: []string{"corp.test"}, AddHost: []string{"db:192.0.2.10"}}, testHost()},
		{"keep-id", Options{Userns: "keep-id"}, testHost()},
		{"limits", Options{Memory: "64m", CPUs: "1.5", PidsLimit: &pids}, testHost()},
		{"terminal, user and privileges", Options{Terminal: true, User: "root", Privileged: true}, testHost()},
		{"seccomp unconfined", Options{SecurityOpt: []string{"seccomp=unconfined", "no-new-privileges"}}, testHost()},
		{"seccomp file", Options{SecurityOpt: []string{"seccomp=profile.json"}}, testHost()},
		{"root", Options{Memory: "1g"}, root},
	} {
		for _, img := range images {
			t.Run(tc.name+"/"+img.User, func(t *testing.T) {
				start, sx, err := GenerateStart(tc.o, tc.h)
				if err != nil {
					t.Fatal(err)
				}
				final, fx, err := Generate(img, tc.o, testDB(), tc.h)
				if err != nil {
					t.Fatal(err)
				}
				if err := spec.CheckStartAgrees(start, final); err != nil {
					t.Fatal(err)
				}
				// The default seccomp profile is made from the bounding
				// set: the host compiles the start spec's.
				if sb, fb := start.Process.Capabilities, final.Process.Capabilities; sb == nil || fb == nil || !slices.Equal(sb.Bounding, fb.Bounding) {
					t.Errorf("bounding set: start %+v, final %+v", sb, fb)
				}
				if start.Process.Terminal != final.Process.Terminal {
					t.Errorf("process.terminal: start %v, final %v", start.Process.Terminal, final.Process.Terminal)
				}
				if sx.Network != fx.Network || sx.Seccomp != fx.Seccomp || sx.SeccompFile != fx.SeccompFile ||
					sx.Hostname != fx.Hostname || len(sx.DNS) != len(fx.DNS) || len(sx.AddHosts) != len(fx.AddHosts) ||
					len(sx.NetworkOptions) != len(fx.NetworkOptions) {
					t.Errorf("extra: start %+v\nfinal %+v", sx, fx)
				}
			})
		}
	}
}

// TestGenerateStartErrors: the flags' own errors come from the start
// spec already, before anything is made, as Generate words them.
func TestGenerateStartErrors(t *testing.T) {
	for _, tc := range []struct {
		o    Options
		want string
	}{
		{Options{Memory: "1x"}, `generating the spec: resources: --memory "1x"`},
		{Options{Network: "bridge"}, `generating the spec: network: --network "bridge": unsupported`},
		{Options{Userns: "auto"}, `generating the spec: user namespace: --userns "auto": unsupported`},
		{Options{SecurityOpt: []string{"label=disable"}}, `generating the spec: security options: --security-opt "label=disable"`},
	} {
		_, _, err := GenerateStart(tc.o, testHost())
		if err == nil || len(err.Error()) < len(tc.want) || err.Error()[:len(tc.want)] != tc.want {
			t.Errorf("%+v: err = %v, want %s…", tc.o, err, tc.want)
		}
	}
}

// TestNewStorageID: ids the store takes (imagehelper.ValidID), whose
// short form, the default hostname, is never all digits, and distinct.
func TestNewStorageID(t *testing.T) {
	seen := map[string]bool{}
	for range 2000 {
		id := newStorageID()
		if !imagehelper.ValidID(id) {
			t.Fatalf("%q: not a storage container id", id)
		}
		if strings.Trim(id[:12], "0123456789") == "" {
			t.Fatalf("%q: an all-digit short id", id)
		}
		if seen[id] {
			t.Fatalf("%q twice", id)
		}
		seen[id] = true
	}
}
