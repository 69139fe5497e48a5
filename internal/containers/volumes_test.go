package containers

import (
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
)

// TestFirstUseDone: once a kept container ran, its config.json no longer
// asks for the volumes' first use; the other options stay.
func TestFirstUseDone(t *testing.T) {
	dir := t.TempDir()
	s := &specs.Spec{Version: specs.Version, Mounts: []specs.Mount{
		{Destination: "/data", Type: "bind", Source: "/v/_data", Options: []string{"rw", "rprivate", "rbind", "copyup", "rchown"}},
		{Destination: "/logs", Type: "bind", Source: "/w/_data", Options: []string{"ro", "rbind", "chownup"}},
		{Destination: "/tmp", Type: "tmpfs", Source: "tmpfs", Options: []string{"tmpcopyup"}},
	}}
	if err := writeBundle(dir, s); err != nil {
		t.Fatal(err)
	}
	if err := firstUseDone(dir); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	var got specs.Spec
	if err := json.Unmarshal(b, &got); err != nil {
		t.Fatal(err)
	}
	want := [][]string{{"rw", "rprivate", "rbind", "rchown"}, {"ro", "rbind"}, {"tmpcopyup"}}
	for i, m := range got.Mounts {
		if !reflect.DeepEqual(m.Options, want[i]) {
			t.Errorf("mounts[%d]: %v, want %v", i, m.Options, want[i])
		}
	}
	if err := firstUseDone(dir); err != nil {
		t.Errorf("a second call: %v", err)
	}
}
