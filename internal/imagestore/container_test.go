//go:build containers_image_openpgp

package imagestore

import (
	"encoding/json"
	"reflect"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	specs "github.com/opencontainers/runtime-spec/specs-go"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/overlay"
)

// TestImageConfigOf: every field of the runtime side's ImageConfig is
// carried from the OCI config, under the same JSON name, so the copy
// and a JSON decode of the OCI config agree.
func TestImageConfigOf(t *testing.T) {
	oci := imgspecv1.ImageConfig{
		User: "app:app", ExposedPorts: map[string]struct{}{"80/tcp": {}}, Env: []string{"A=1"},
		Entrypoint: []string{"/ep"}, Cmd: []string{"-x"}, Volumes: map[string]struct{}{"/data": {}},
		WorkingDir: "/w", Labels: map[string]string{"k": "v"}, StopSignal: "SIGINT",
	}
	got := ImageConfigOf(oci)
	b, err := json.Marshal(oci)
	if err != nil {
		t.Fatal(err)
	}
	var decoded imagehelper.ImageConfig
	if err := json.Unmarshal(b, &decoded); err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(got, decoded) {
		t.Errorf("ImageConfigOf = %+v, JSON decode = %+v", got, decoded)
	}
	v := reflect.ValueOf(got)
	for i := 0; i < v.NumField(); i++ {
		if v.Field(i).IsZero() {
			t.Errorf("field %s is not carried", v.Type().Field(i).Name)
		}
	}
}

// TestWithDiffN: the overlay driver's lower list for a container on an
// id-mapped top layer: each lower diff is followed by the diff1, diff2, …
// beside it that exist (the chowned files UpdateLayerIDMap moved there),
// and the container layer's own come first.
func TestWithDiffN(t *testing.T) {
	have := map[string]bool{"/s/m/diff1": true, "/s/m/diff2": true, "/s/c/diff1": true, "/s/x/diff3": true}
	exists := func(p string) bool { return have[p] }
	got := withDiffN("/s/c/diff", []string{"/s/m/diff", "/s/top/diff", "/s/x/diff"}, exists)
	want := []string{"/s/c/diff1", "/s/m/diff", "/s/m/diff1", "/s/m/diff2", "/s/top/diff", "/s/x/diff"}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("got %q\nwant %q", got, want)
	}
	if got := withDiffN("/s/c/diff", []string{"/s/a/diff"}, func(string) bool { return false }); !reflect.DeepEqual(got, []string{"/s/a/diff"}) {
		t.Errorf("no mapped layers: %q", got)
	}
}

// TestFuseMapOptions: podman's fuse-overlayfs options for its keep-id map
// (drivers/overlay optsAppendMappings), and squash for a single id.
func TestFuseMapOptions(t *testing.T) {
	keepID := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 1, Size: 1001}, {ContainerID: 1001, HostID: 0, Size: 1}, {ContainerID: 1002, HostID: 1002, Size: 64535}}
	if got, want := fuseMapOptions(keepID, keepID), "uidmapping=0:1:1001:1001:0:1:1002:1002:64535,gidmapping=0:1:1001:1001:0:1:1002:1002:64535"; got != want {
		t.Errorf("keep-id: %q, want %q", got, want)
	}
	one := []specs.LinuxIDMapping{{ContainerID: 0, HostID: 7, Size: 1}}
	if got, want := fuseMapOptions(one, one), "squash_to_uid=7,squash_to_gid=7"; got != want {
		t.Errorf("one id: %q, want %q", got, want)
	}
	l := overlay.Layers{Driver: overlay.DriverOverlay, Lowers: []string{"/s/l/diff"}, Upper: "/s/c/diff", Work: "/s/c/work", Program: "/usr/bin/fuse-overlayfs", IDMapOptions: fuseMapOptions(keepID, keepID)}
	if err := l.Check(); err != nil {
		t.Errorf("the init refuses the options: %v", err)
	}
}
