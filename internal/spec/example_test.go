package spec

import (
	"reflect"
	"testing"
)

// TestExampleWith: --writable and --caps change only root.readonly and
// the capability sets; the default is runc's example.
func TestExampleWith(t *testing.T) {
	base := Example(true)
	if got, err := ExampleWith(ExampleOptions{Rootless: true, Caps: "runc"}); err != nil || !reflect.DeepEqual(got, base) {
		t.Errorf("--caps runc differs from the default: %v", err)
	}
	got, err := ExampleWith(ExampleOptions{Rootless: true, Writable: true, Caps: "podman"})
	if err != nil {
		t.Fatal(err)
	}
	if got.Root.Readonly {
		t.Error("--writable: root.readonly is true")
	}
	c := got.Process.Capabilities
	for name, set := range map[string][]string{"bounding": c.Bounding, "effective": c.Effective, "permitted": c.Permitted} {
		if !reflect.DeepEqual(set, PodmanCaps) {
			t.Errorf("%s = %q, want podman's", name, set)
		}
	}
	if c.Inheritable != nil || c.Ambient != nil {
		t.Errorf("inheritable %q ambient %q: podman gives root neither", c.Inheritable, c.Ambient)
	}
	got.Root.Readonly, got.Process.Capabilities = base.Root.Readonly, base.Process.Capabilities
	if !reflect.DeepEqual(got, base) {
		t.Error("--writable --caps podman changed more than root.readonly and the capabilities")
	}
	if _, err := ExampleWith(ExampleOptions{Caps: "all"}); err == nil || err.Error() != `--caps "all": want runc or podman` {
		t.Errorf("err = %v", err)
	}
}
