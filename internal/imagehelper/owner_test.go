package imagehelper

import (
	"os"
	"path/filepath"
	"testing"
)

// TestAbandoned: the held helper of a sandy gone without a word removes
// a --rm container, and another only when sandy had not written its
// record; a directory it cannot look into keeps the container.
func TestAbandoned(t *testing.T) {
	bare, recorded := t.TempDir(), t.TempDir()
	if err := os.WriteFile(filepath.Join(recorded, RecordFile), []byte("{}\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	notDir := filepath.Join(t.TempDir(), "file")
	if err := os.WriteFile(notDir, nil, 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name     string
		dir      string
		volatile bool
		want     bool
	}{
		{"--rm, no record", bare, true, true},
		{"--rm, its record written", recorded, true, true},
		{"kept, no record", bare, false, true},
		{"kept, its record written", recorded, false, false},
		{"kept, the directory unreadable (ENOTDIR)", notDir, false, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := Abandoned(tc.dir, tc.volatile); got != tc.want {
				t.Errorf("Abandoned(%s, %v) = %v, want %v", tc.dir, tc.volatile, got, tc.want)
			}
		})
	}
}
