//go:build containers_image_openpgp

package imagestore

import (
	"encoding/json"
	"os"
	"path/filepath"
	"testing"

	"github.com/sandy-rt/sandy/internal/imagehelper"
)

func TestOwnerOf(t *testing.T) {
	mark := &imagehelper.Creator{Pid: 42, Start: 7}
	for _, tc := range []struct {
		name     string
		metadata string // the storage container's metadata as stored
		buildah  bool   // buildah.json in its directory
		want     string
		creator  bool
	}{
		{"sandy's", `{"image-id":"i","created-at":1,"sandy-creator":{"pid":42,"start":7}}`, false, imagehelper.OwnerSandy, true},
		{"podman's shape", `{"image-name":"n","image-id":"i","name":"web","created-at":1,"mountlabel":""}`, false, "", false},
		{"no metadata", ``, false, "", false},
		{"not json", `buildah`, false, "", false},
		{"buildah's", ``, true, imagehelper.OwnerBuildah, false},
		{"buildah's over a mark", `{"sandy-creator":{"pid":42,"start":7}}`, true, imagehelper.OwnerBuildah, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			dir := t.TempDir()
			if tc.buildah {
				if err := os.WriteFile(filepath.Join(dir, buildahStateFile), []byte("{}"), 0o600); err != nil {
					t.Fatal(err)
				}
			}
			var meta containerMeta
			if json.Unmarshal([]byte(tc.metadata), &meta) != nil {
				meta = containerMeta{}
			}
			owner, creator := ownerOf(meta, dir)
			if owner != tc.want || (creator != nil) != tc.creator {
				t.Fatalf("ownerOf = %q, %v; want %q, creator %v", owner, creator, tc.want, tc.creator)
			}
			if creator != nil && *creator != *mark {
				t.Errorf("creator %+v, want %+v", *creator, *mark)
			}
		})
	}
}

// TestCreatorMark: the mark names this process's parent, alive.
func TestCreatorMark(t *testing.T) {
	c := creatorMark()
	if c == nil || c.Pid != os.Getppid() || c.Start == 0 {
		t.Fatalf("creatorMark() = %+v, want the parent %d with its start time", c, os.Getppid())
	}
}
