package lifecycle

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/state"
	"github.com/sandy-rt/sandy/overlay"
)

// TestAwaitBundle: a pending bundle is loaded, checked and planned once
// written, and refused unless it agrees with the start spec the steps
// before it ran on; an error of the wait is the step's.
func TestAwaitBundle(t *testing.T) {
	limit := int64(1 << 30)
	startSpec := func() *specs.Spec {
		return &specs.Spec{
			Process: &specs.Process{},
			Linux: &specs.Linux{
				Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.NetworkNamespace},
					{Type: specs.MountNamespace}, {Type: specs.UserNamespace}},
				Resources: &specs.LinuxResources{Memory: &specs.LinuxMemory{Limit: &limit}},
			},
		}
	}
	// writeBundle writes the bundle as the image path does: a spec of
	// the same namespaces and limits, with the process and the root.
	writeBundle := func(t *testing.T, edit func(*specs.Spec)) string {
		t.Helper()
		dir := t.TempDir()
		if err := os.Mkdir(filepath.Join(dir, "rootfs"), 0o755); err != nil {
			t.Fatal(err)
		}
		s := startSpec()
		s.Process = &specs.Process{Args: []string{"/bin/app"}, Cwd: "/", User: specs.User{UID: 0}}
		s.Root = &specs.Root{Path: "rootfs"}
		s.Annotations = map[string]string{"from": "bundle"}
		if edit != nil {
			edit(s)
		}
		b, err := json.Marshal(s)
		if err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(filepath.Join(dir, "config.json"), b, 0o644); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	layers := &overlay.Layers{Driver: "overlay"}
	newCreation := func(wait func(context.Context) (*ReadyBundle, error)) *creation {
		o := &CreateOptions{Pending: &PendingBundle{Spec: startSpec(), Wait: wait},
			Network: NetworkOptions{Mode: "none"}}
		cr := &creation{g: &Global{}, o: o, c: &state.Container{}}
		if err := cr.loadBundle(context.Background()); err != nil {
			t.Fatal(err)
		}
		return cr
	}

	t.Run("agrees", func(t *testing.T) {
		dir := writeBundle(t, nil)
		cr := newCreation(func(context.Context) (*ReadyBundle, error) {
			return &ReadyBundle{Dir: dir, Layers: layers}, nil
		})
		if cr.bundle.Dir != "" || len(cr.bundle.Spec.Process.Args) != 0 {
			t.Fatalf("before the wait, the start spec: %+v", cr.bundle)
		}
		if err := cr.awaitBundle(context.Background()); err != nil {
			t.Fatal(err)
		}
		if cr.bundle.Dir != dir || cr.bundle.Spec.Process.Args[0] != "/bin/app" || cr.o.Layers != layers {
			t.Errorf("the bundle was not taken: %+v, layers %v", cr.bundle, cr.o.Layers)
		}
		if cr.c.Bundle != dir || cr.c.Rootfs != filepath.Join(dir, "rootfs") || cr.c.Annotations["from"] != "bundle" {
			t.Errorf("the state: %+v", cr.c)
		}
	})
	t.Run("refused when it disagrees", func(t *testing.T) {
		dir := writeBundle(t, func(s *specs.Spec) {
			other := int64(1 << 20)
			s.Linux.Resources.Memory.Limit = &other
		})
		cr := newCreation(func(context.Context) (*ReadyBundle, error) { return &ReadyBundle{Dir: dir, Layers: layers}, nil })
		err := cr.awaitBundle(context.Background())
		if err == nil || !strings.Contains(err.Error(), "linux.resources: started with") {
			t.Fatalf("error %v, want the resources named", err)
		}
	})
	t.Run("process.user checked on the bundle", func(t *testing.T) {
		dir := writeBundle(t, func(s *specs.Spec) {
			s.Linux.UIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
			s.Linux.GIDMappings = []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
			s.Process.User.UID = 4242
		})
		cr := newCreation(func(context.Context) (*ReadyBundle, error) { return &ReadyBundle{Dir: dir, Layers: layers}, nil })
		one := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1000, Size: 1}}
		cr.bundle.Spec.Linux.UIDMappings, cr.bundle.Spec.Linux.GIDMappings = one, one
		cr.plan = &idmap.Plan{UIDs: one, GIDs: one} // as resolveIDMaps makes it
		if err := cr.checkUserIDs(context.Background()); err != nil {
			t.Fatalf("before the bundle: %v", err)
		}
		err := cr.awaitBundle(context.Background())
		if err == nil || !strings.Contains(err.Error(), "4242") {
			t.Fatalf("error %v, want process.user 4242 refused", err)
		}
	})
	t.Run("the wait's error", func(t *testing.T) {
		boom := errors.New("the helper failed")
		cr := newCreation(func(context.Context) (*ReadyBundle, error) { return nil, boom })
		if err := cr.awaitBundle(context.Background()); !errors.Is(err, boom) {
			t.Fatalf("error %v, want %v", err, boom)
		}
	})
	t.Run("no EditSpec", func(t *testing.T) {
		o := &CreateOptions{Pending: &PendingBundle{Spec: startSpec()}, EditSpec: func(*specs.Spec) error { return nil }}
		cr := &creation{g: &Global{}, o: o}
		if err := cr.loadBundle(context.Background()); err == nil {
			t.Fatal("a pending bundle with EditSpec was taken")
		}
	})
	t.Run("no pending bundle: nothing to do", func(t *testing.T) {
		cr := &creation{g: &Global{}, o: &CreateOptions{}}
		if err := cr.awaitBundle(context.Background()); err != nil {
			t.Fatal(err)
		}
	})
}
