package spec

import (
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

func TestCheckStartAgrees(t *testing.T) {
	limit := int64(64 << 20)
	other := int64(32 << 20)
	base := func() *specs.Spec {
		return &specs.Spec{
			Process: &specs.Process{Args: []string{"sh"}},
			Root:    &specs.Root{Path: "/store/merged"},
			Linux: &specs.Linux{
				Namespaces: []specs.LinuxNamespace{
					{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace}, {Type: specs.MountNamespace}, {Type: specs.UserNamespace},
				},
				UIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}, {ContainerID: 1, HostID: 100000, Size: 65536}},
				GIDMappings: []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}},
				Resources:   &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}},
			},
		}
	}
	tests := []struct {
		name string
		edit func(*specs.Spec)
		want []string // substrings of the error; none: agrees
	}{
		{"same", func(*specs.Spec) {}, nil},
		{"what only the final spec brings", func(s *specs.Spec) {
			s.Process = &specs.Process{Args: []string{"/bin/app"}, User: specs.User{UID: 1000}, Cwd: "/app"}
			s.Root.Path = "/elsewhere"
			s.Mounts = []specs.Mount{{Destination: "/data", Type: "bind", Source: "/srv"}}
			s.Hostname = "web"
		}, nil},
		{"namespaces in another order", func(s *specs.Spec) {
			ns := s.Linux.Namespaces
			ns[0], ns[3] = ns[3], ns[0]
		}, nil},
		{"equal limits in other pointers", func(s *specs.Spec) {
			l := limit
			s.Linux.Resources = &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &l}}
		}, nil},
		{"a namespace less", func(s *specs.Spec) { s.Linux.Namespaces = s.Linux.Namespaces[:3] },
			[]string{`linux.namespaces: started with ["mount","network","pid","user"], the final spec has ["mount","network","pid"]`}},
		{"a joined namespace instead of a new one", func(s *specs.Spec) { s.Linux.Namespaces[1].Path = "/proc/42/ns/net" },
			[]string{`"network=/proc/42/ns/net"`}},
		{"another uid map", func(s *specs.Spec) { s.Linux.UIDMappings = s.Linux.UIDMappings[:1] }, []string{"linux.uidMappings"}},
		{"another gid map", func(s *specs.Spec) { s.Linux.GIDMappings = nil }, []string{"linux.gidMappings", "the final spec has null"}},
		{"another limit", func(s *specs.Spec) { s.Linux.Resources.Memory.Limit = &other }, []string{"linux.resources", "33554432"}},
		{"no limit", func(s *specs.Spec) { s.Linux.Resources = nil }, []string{"linux.resources"}},
		{"another cgroup", func(s *specs.Spec) { s.Linux.CgroupsPath = "/mine" }, []string{`linux.cgroupsPath: started with "", the final spec has "/mine"`}},
		{"two at once", func(s *specs.Spec) { s.Linux.CgroupsPath = "/mine"; s.Linux.UIDMappings = nil },
			[]string{"linux.uidMappings", "; linux.cgroupsPath"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			final := base()
			tt.edit(final)
			err := CheckStartAgrees(base(), final)
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("refused: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatal("accepted")
			}
			for _, w := range tt.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
	t.Run("empty resources are none", func(t *testing.T) {
		a, b := base(), base()
		a.Linux.Resources, b.Linux.Resources = nil, &specs.LinuxResources{}
		if err := CheckStartAgrees(a, b); err != nil {
			t.Fatal(err)
		}
	})
}
