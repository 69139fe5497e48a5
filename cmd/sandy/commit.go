package main

import (
	"context"
	"errors"
	"fmt"
	"os"

	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/internal/lifecycle"
)

const commitUsage = "commit [-a AUTHOR] [-c INSTRUCTION]... [-m MESSAGE] [-q] CONTAINER [IMAGE]"

// cmdCommit is podman's commit (also `sandy container commit`): an image
// of a container sandy made from an image, its layer on top of its
// image's, named IMAGE (a short name goes under localhost/). It prints the
// new image's id; exit status 125 on an error.
func cmdCommit(ctx context.Context, g *lifecycle.Global, args []string) (int, error) {
	fs := newFlags("commit", commitUsage, g.Stderr)
	var r imagehelper.CommitRequest
	fs.StringVarP(&r.Author, "author", "a", "", "the image's author")
	fs.StringArrayVarP(&r.Changes, "change", "c", nil, "apply a Dockerfile instruction to the config: CMD, ENTRYPOINT, ENV, EXPOSE, LABEL, STOPSIGNAL, USER, VOLUME, WORKDIR (repeatable)")
	fs.StringVarP(&r.Message, "message", "m", "", "the history entry's comment")
	fs.BoolP("quiet", "q", false, "print nothing but the image id (sandy prints no progress anyway)")
	pause := fs.BoolP("pause", "p", false, "pause the container while committing (not supported)")
	format := fs.StringP("format", "f", "oci", "the image format: oci")
	squash := fs.Bool("squash", false, "squash the image's layers into one (not supported)")
	if err := fs.Parse(args); err != nil {
		return 125, err
	}
	switch {
	case fs.NArg() < 1 || fs.NArg() > 2:
		return 125, errors.New("want a container and at most one image name (sandy " + commitUsage + ")")
	case *pause:
		return 125, errors.New("--pause is not supported: commit reads the container's layer as it is, running or not")
	case *format != "oci":
		return 125, fmt.Errorf("--format %q: sandy writes OCI images only", *format)
	case *squash:
		return 125, errors.New("--squash is not supported: the image keeps its layers, and the container's changes become one more")
	}
	r.Name = fs.Arg(1)
	m, err := manage(ctx, g)
	if err != nil {
		return 125, err
	}
	c, err := m.Find(ctx, fs.Arg(0))
	if err != nil {
		return 125, err
	}
	id, err := imagehelper.Commit(ctx, m.Helper, m.Global, c.ID, r, g.Stderr)
	if err != nil {
		return 125, err // a helper's error is printed already (HelperError.Printed)
	}
	fmt.Fprintln(os.Stdout, id)
	return 0, nil
}
