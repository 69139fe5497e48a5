//go:build containers_image_openpgp

package images

import (
	"encoding/json"
	"reflect"
	"testing"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"

	"github.com/sandy-rt/sandy/internal/imagehelper"
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
