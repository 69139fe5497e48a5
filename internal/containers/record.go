package containers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"
)

// RecordFile is sandy's file in a storage container's own directory
// (beside the config.json bundle): the container is sandy's, what it
// runs, and how it ended. podman's and buildah's containers have none.
const RecordFile = "sandy.json"

// Record is what RecordFile holds.
type Record struct {
	Image   string    `json:"image"`
	Command []string  `json:"command"`
	Created time.Time `json:"created"`
	// Ports are the -p specs with their host ports (chosen for -P and
	// -p CPORT when the container was made).
	Ports []string `json:"ports,omitempty"`
	// ExitCode and Finished are set when the container's process ended
	// under a `sandy run` that kept the container.
	ExitCode *int       `json:"exit_code,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`
}

// writeRecord writes r into dir, atomically.
func writeRecord(dir string, r Record) error {
	b, err := json.Marshal(r)
	if err != nil {
		return err
	}
	tmp := filepath.Join(dir, "."+RecordFile+".tmp")
	if err := os.WriteFile(tmp, append(b, '\n'), 0o600); err != nil {
		return fmt.Errorf("writing the container's record: %w", err)
	}
	if err := os.Rename(tmp, filepath.Join(dir, RecordFile)); err != nil {
		return fmt.Errorf("writing the container's record: %w", err)
	}
	return nil
}

// readRecord reads dir's record; ok is false for a container sandy did
// not make.
func readRecord(dir string) (r Record, ok bool, err error) {
	b, err := os.ReadFile(filepath.Join(dir, RecordFile))
	if errors.Is(err, fs.ErrNotExist) {
		return r, false, nil
	}
	if err != nil {
		return r, false, err
	}
	if err := json.Unmarshal(b, &r); err != nil {
		return r, false, fmt.Errorf("%s: %w", filepath.Join(dir, RecordFile), err)
	}
	return r, true, nil
}
