package imagehelper

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os/exec"
	"strings"

	"github.com/sandy-rt/sandy/overlay"
)

// The helper's hidden verbs for `sandy run IMAGE`.
const (
	// CreateRole makes a storage container from an image (pulled first
	// when the policy says so) and prints a Prepared as JSON.
	CreateRole = "_create-container"
	// RemoveRole removes a storage container and its layer.
	RemoveRole = "_remove-container"
)

// Prepared is a storage container made from an image, ready for the
// runtime: what CreateRole prints.
type Prepared struct {
	// ID is the storage container's id, 64 hex digits, which is also the
	// container's id in sandy's runtime state.
	ID   string `json:"id"`
	Name string `json:"name"`
	// ImageID and ImageName are the image's id and the name it was found
	// or pulled by (fully qualified).
	ImageID   string `json:"image_id"`
	ImageName string `json:"image_name"`
	// Config is the image's configuration (OCI; converted from Docker's).
	Config ImageConfig `json:"config"`
	// Layers are the container's root in the store, for the init to mount.
	Layers overlay.Layers `json:"layers"`
	// Rootfs is the path the store mounts the root on (spec.root.path);
	// Dir is the storage container's own directory (podman's userdata),
	// which holds the bundle sandy writes.
	Rootfs string `json:"rootfs"`
	Dir    string `json:"dir"`
	// Passwd and Group are the image's /etc/passwd and /etc/group ("" when
	// it has none), read in the root with every symlink resolved inside it.
	Passwd string `json:"passwd"`
	Group  string `json:"group"`
}

// CreateRequest is what `sandy run IMAGE` asks of CreateRole.
type CreateRequest struct {
	Image string
	Name  string // "" for none
	// Pull is --pull: missing (the default), always, never or newer.
	Pull string
	// Volatile: the container is removed when it exits (--rm).
	Volatile bool
	// Global are sandy's global store flags, passed on
	// (--storage-root, …), and Remote the registry flags of the pull
	// (--tls-verify=false, --creds, …), as the helper's pull takes them.
	Global, Remote []string
}

// Args is the helper's command line for r.
func (r CreateRequest) Args() []string {
	args := append(append([]string(nil), r.Global...), CreateRole)
	if r.Name != "" {
		args = append(args, "--name", r.Name)
	}
	if r.Pull != "" {
		args = append(args, "--pull", r.Pull)
	}
	if r.Volatile {
		args = append(args, "--volatile")
	}
	args = append(args, r.Remote...)
	return append(args, "--", r.Image)
}

// ErrHelperFailed is an error the helper printed itself: its stderr has
// already reached the user.
var ErrHelperFailed = errors.New("image helper failed")

// HelperError is a helper verb that failed, with its exit status (podman's
// statuses: 125 for its own errors; 1 for an image that is not there).
type HelperError struct {
	Verb string
	Code int
}

func (e *HelperError) Error() string {
	return fmt.Sprintf("%s %s exited with status %d", Name, e.Verb, e.Code)
}

func (e *HelperError) Unwrap() error { return ErrHelperFailed }

// Create runs CreateRole: the helper's progress and errors go to stderr
// as they come (a pull's progress); the Prepared comes back.
func Create(ctx context.Context, helper string, r CreateRequest, stderr io.Writer) (*Prepared, error) {
	out, err := run(ctx, helper, r.Args(), stderr)
	if err != nil {
		return nil, err
	}
	var p Prepared
	if err := json.Unmarshal(out, &p); err != nil {
		return nil, fmt.Errorf("%s %s printed %q: %w", Name, CreateRole, out, err)
	}
	if err := p.Layers.Check(); err != nil {
		return nil, fmt.Errorf("%s %s: %w", Name, CreateRole, err)
	}
	return &p, nil
}

// Remove runs RemoveRole for the storage container id.
func Remove(ctx context.Context, helper string, global []string, id string, stderr io.Writer) error {
	args := append(append([]string(nil), global...), RemoveRole, "--", id)
	_, err := run(ctx, helper, args, stderr)
	return err
}

func run(ctx context.Context, helper string, args []string, stderr io.Writer) ([]byte, error) {
	cmd := exec.CommandContext(ctx, helper, args...)
	cmd.Args[0] = Name
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = stderr
	cmd.Stdin = nil
	if err := cmd.Run(); err != nil {
		var ee *exec.ExitError
		if errors.As(err, &ee) && ee.ExitCode() > 0 {
			return nil, &HelperError{Verb: verbOf(args), Code: ee.ExitCode()}
		}
		return nil, fmt.Errorf("running %s: %w", helper, err)
	}
	return out.Bytes(), nil
}

func verbOf(args []string) string {
	for _, a := range args {
		if strings.HasPrefix(a, "_") {
			return a
		}
	}
	return "helper"
}

// ImageConfig is the part of an image's configuration a container is made
// from: the "config" object of the OCI image config (image-spec
// v1.ImageConfig), with its JSON names, so that the helper's answer
// decodes into it. It is declared here rather than imported: image-spec
// links go-digest, whose package init compiles regexps that every sandy
// process, the container's init too, would pay (about 1 ms).
type ImageConfig struct {
	User         string              `json:"User,omitempty"`
	ExposedPorts map[string]struct{} `json:"ExposedPorts,omitempty"`
	Env          []string            `json:"Env,omitempty"`
	Entrypoint   []string            `json:"Entrypoint,omitempty"`
	Cmd          []string            `json:"Cmd,omitempty"`
	Volumes      map[string]struct{} `json:"Volumes,omitempty"`
	WorkingDir   string              `json:"WorkingDir,omitempty"`
	Labels       map[string]string   `json:"Labels,omitempty"`
	StopSignal   string              `json:"StopSignal,omitempty"`
}
