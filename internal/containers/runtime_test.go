package containers

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/spec"
)

// TestGeneratedSpecLoads: what Generate writes is a config.json the
// runtime path accepts (spec.Load, the same validation `sandy run ./bundle`
// applies), and under keep-id the process user is mapped.
func TestGeneratedSpecLoads(t *testing.T) {
	n := int64(50)
	for name, o := range map[string]Options{
		"default":    {},
		"keep-id":    {Userns: "keep-id", Volumes: []string{"/src:/src"}, Workdir: "/src"},
		"privileged": {Privileged: true, Init: true},
		"flags": {User: "alice", CapAdd: []string{"net_admin"}, ReadOnly: true, Tmpfs: []string{"/scratch:size=1m"},
			Network: "host", Memory: "64m", CPUs: "0.5", PidsLimit: &n, Terminal: true, Env: []string{"A=1"}},
	} {
		t.Run(name, func(t *testing.T) {
			h := testHost()
			h.Rootfs = "rootfs"
			s, _, err := Generate(imagehelper.ImageConfig{Cmd: []string{"sh"}}, o, testDB(), h)
			if err != nil {
				t.Fatal(err)
			}
			dir := t.TempDir()
			if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
				t.Fatal(err)
			}
			b, err := json.Marshal(s)
			if err != nil {
				t.Fatal(err)
			}
			if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
				t.Fatal(err)
			}
			bundle, err := spec.Load(dir)
			if err != nil {
				t.Fatalf("the runtime refuses the generated spec: %v", err)
			}
			if m := bundle.Spec.Linux.UIDMappings; len(m) > 0 {
				if err := spec.CheckUserMapped(bundle.Spec.Process.User, m, bundle.Spec.Linux.GIDMappings); err != nil {
					t.Error(err)
				}
			}
		})
	}
}
