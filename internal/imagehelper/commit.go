package imagehelper

import (
	"context"
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
