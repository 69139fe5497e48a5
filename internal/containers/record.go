package containers

import (
	"encoding/json"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/specjson"
)

// RecordFile is sandy's file in a storage container's own directory
// (beside the config.json bundle): the container is sandy's, what it
// runs, and how it ended. podman's and buildah's containers have none.
// The held image helper of a sandy run killed before it wrote it removes
// the container (imagehelper.Abandoned).
const RecordFile = imagehelper.RecordFile

// Record is what RecordFile holds.
type Record struct {
	// Name is the container's name in the store ("" for none), kept as the
	// store's by rename; ImageID the image's id. The name index
	// (index.go) reads both; a record without ImageID was written before
	// they existed.
	Name    string    `json:"name,omitempty"`
	ImageID string    `json:"image_id,omitempty"`
	Image   string    `json:"image"`
	Command []string  `json:"command"`
	Created time.Time `json:"created"`
	// Ports are the -p specs with their host ports (chosen for -P and
	// -p CPORT when the container was made).
	Ports []string `json:"ports,omitempty"`
	// Network is the network mode: slirp4netns, none or host.
	Network string `json:"network,omitempty"`
	// Labels are the image's labels and --label's (podman's Config.Labels).
	Labels map[string]string `json:"labels,omitempty"`
	// ExitCode and Finished are set when the container's process ended
	// under a `sandy run` that kept the container.
	ExitCode *int       `json:"exit_code,omitempty"`
	Finished *time.Time `json:"finished,omitempty"`

	// Set by `sandy run -d` (detach.go): the container's monitor, the
	// process that owns it while it runs (monitor.go), and what the verbs
	// that act on it need.
	Detached bool `json:"detached,omitempty"`
	// Monitor is the current (or last) monitor: its pid and start time
	// (against pid reuse); Started when it started the process.
	Monitor *Proc      `json:"monitor,omitempty"`
	Started *time.Time `json:"started,omitempty"`
	// Rm: the monitor removes the container when it exits (run -d --rm).
	Rm bool `json:"rm,omitempty"`
	// StopSignal is the signal `sandy stop` sends first (the image's
	// StopSignal; SIGTERM by default).
	StopSignal string `json:"stop_signal,omitempty"`
	// AnonymousVolumes are the volumes made for this container (-v /dst,
	// an image's VOLUME): --rm removes them with it.
	AnonymousVolumes []string `json:"anonymous_volumes,omitempty"`
	// Volumes are every volume the container mounts, named and
	// anonymous: `volume rm` and `prune` leave a volume in use alone.
	Volumes []string `json:"volumes,omitempty"`
	// LogDriver is k8s-file (the log in LogFile) or none.
	LogDriver string `json:"log_driver,omitempty"`
}

// Proc is a process named so that a reused pid is never taken for it.
type Proc struct {
	Pid   int    `json:"pid"`
	Start uint64 `json:"start"` // /proc/PID/stat starttime
}

// writeRecord writes r into dir, atomically.
func writeRecord(dir string, r Record) error {
	b, err := specjson.Marshal(r)
	if err != nil {
		return err
	}
	if err := writeAtomic(filepath.Join(dir, RecordFile), append(b, '\n')); err != nil {
		return fmt.Errorf("writing the container's record: %w", err)
	}
	return nil
}

// writeAtomic replaces the file p with data (mode 0600): written to a
// temporary file of its own beside p, then renamed over it, so a reader
// sees the old file or the new one and two writers never share a
// temporary file.
func writeAtomic(p string, data []byte) error {
	f, err := os.CreateTemp(filepath.Dir(p), ".new-*")
	if err != nil {
		return err
	}
	_, err = f.Write(data)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(f.Name(), p)
	}
	if err != nil {
		_ = os.Remove(f.Name())
	}
	return err
}

// updateRecord changes dir's record with fn, under the record's lock
// (the monitor and the verbs write it).
func updateRecord(dir string, fn func(*Record)) error {
	unlock, err := lockRecord(dir)
	if err != nil {
		return err
	}
	defer unlock()
	r, ok, err := readRecord(dir)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("%s: %w", filepath.Join(dir, RecordFile), fs.ErrNotExist)
	}
	fn(&r)
	return writeRecord(dir, r)
}

// lockRecord takes the record's lock: an flock(2) on a file of its own
// beside it (the record itself is replaced by rename).
func lockRecord(dir string) (func(), error) {
	f, err := os.OpenFile(filepath.Join(dir, ".sandy.lock"), os.O_RDWR|os.O_CREATE|unix.O_CLOEXEC, 0o600)
	if err != nil {
		return nil, fmt.Errorf("locking the container's record: %w", err)
	}
	if err := unix.Flock(int(f.Fd()), unix.LOCK_EX); err != nil {
		f.Close()
		return nil, fmt.Errorf("locking the container's record: %w", err)
	}
	return func() { f.Close() }, nil
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
