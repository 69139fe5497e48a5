//go:build containers_image_openpgp

package images

import (
	"context"
	"fmt"
	"io"
	"strings"

	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"

	"github.com/sandy-rt/sandy/internal/imagenames"
)

// PushOptions are `sandy push`'s flags.
type PushOptions struct {
	Remote
	Progress io.Writer
}

// Push copies a stored image to dest: TRANSPORT:REFERENCE, or a registry
// reference (default: the image's own name, as podman pushes).
func Push(ctx context.Context, s storage.Store, name, dest string, o PushOptions) error {
	sys, err := o.SystemContext()
	if err != nil {
		return err
	}
	img, err := imagenames.Lookup(s, sys, name)
	if err != nil {
		return err
	}
	src, err := istorage.Transport.NewStoreReference(s, nil, img.ID)
	if err != nil {
		return err
	}
	if dest == "" {
		dest = imagenames.MatchedName(s, sys, img, name)
		if isIDOf(img, dest) {
			return fmt.Errorf("push %s: the image has no name to push to: give a destination", name)
		}
	}
	var destRef types.ImageReference
	if hasTransport(dest) {
		destRef, err = alltransports.ParseImageName(dest)
	} else {
		var named reference.Named
		named, err = reference.ParseNormalizedNamed(strings.TrimPrefix(dest, "//"))
		if err == nil {
			destRef, err = docker.NewReference(reference.TagNameOnly(named))
		}
	}
	if err != nil {
		return fmt.Errorf("push destination %q: %w", dest, err)
	}
	_, err = copyImage(ctx, sys, src, destRef, o.Progress)
	return err
}
