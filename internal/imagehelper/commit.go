package imagehelper

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// CommitRole makes an image of a storage container and prints its id.
const CommitRole = "_commit"

// CommitRequest is `sandy commit`'s: the new image's name ("" for none),
// the history message and author, and the --change instructions.
type CommitRequest struct {
	Name, Message, Author string
	Changes               []string
}

// Args are CommitRole's arguments for the storage container id.
func (r CommitRequest) Args(id string) []string {
	args := []string{CommitRole}
	if r.Message != "" {
		args = append(args, "--message="+r.Message)
	}
	if r.Author != "" {
		args = append(args, "--author="+r.Author)
	}
	for _, c := range r.Changes {
		args = append(args, "--change="+c)
	}
	args = append(args, "--", id)
	if r.Name != "" {
		args = append(args, r.Name)
	}
	return args
}

// Commit runs CommitRole for the storage container id and returns the
// new image's id.
func Commit(ctx context.Context, helper string, global []string, id string, r CommitRequest, stderr io.Writer) (string, error) {
	out, err := run(ctx, helper, append(append([]string(nil), global...), r.Args(id)...), stderr)
	if err != nil {
		return "", err
	}
	return strings.TrimSpace(string(out)), nil
}

// DiffRole prints a storage container's changes over its image as a
// JSON array of Change.
const DiffRole = "_diff"

// Change is one path a container added ("A"), changed ("C") or deleted
// ("D"), as `podman diff` prints it.
type Change struct {
	Path string `json:"path"`
	Kind string `json:"kind"`
}

// Diff runs DiffRole for the storage container id.
func Diff(ctx context.Context, helper string, global []string, id string, stderr io.Writer) ([]Change, error) {
	out, err := run(ctx, helper, append(append([]string(nil), global...), DiffRole, "--", id), stderr)
	if err != nil {
		return nil, err
	}
	var changes []Change
	if err := json.Unmarshal(out, &changes); err != nil {
		return nil, fmt.Errorf("reading %s's answer: %w", DiffRole, err)
	}
	return changes, nil
}

// RenameRole gives a storage container a new name.
const RenameRole = "_rename-container"

// Rename runs RenameRole for the storage container id.
func Rename(ctx context.Context, helper string, global []string, id, name string, stderr io.Writer) error {
	_, err := run(ctx, helper, append(append([]string(nil), global...), RenameRole, "--", id, name), stderr)
	return err
}
