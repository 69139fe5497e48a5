//go:build containers_image_openpgp

package images

import (
	"context"
	"fmt"
	"io"
	"strings"

	"go.podman.io/image/v5/copy"
	"go.podman.io/image/v5/docker"
	"go.podman.io/image/v5/docker/reference"
	"go.podman.io/image/v5/manifest"
	"go.podman.io/image/v5/pkg/shortnames"
	"go.podman.io/image/v5/pkg/sysregistriesv2"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/transports/alltransports"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
)

// PullOptions are `sandy pull`'s flags.
type PullOptions struct {
	Remote
	// Progress receives the copy's progress: bars on a terminal, one line
	// per blob elsewhere; nil (-q) prints nothing.
	Progress io.Writer
	// MaxLayerSize bounds what a layer may decompress to (0: no bound,
	// podman's behaviour; a bound costs one more decompression).
	MaxLayerSize int64
}

// Pull copies the image name refers to into the store and returns its id.
//
// name is either TRANSPORT:REFERENCE (docker://, oci:, oci-archive:,
// docker-archive:, dir:) or a registry reference; a short name is
// resolved through registries.conf (aliases, then the unqualified-search
// registries in order; an ambiguous name asks on a terminal and fails
// elsewhere, listing the candidates), as podman resolves it.
func Pull(ctx context.Context, s storage.Store, name string, o PullOptions) (string, error) {
	sys, err := o.SystemContext()
	if err != nil {
		return "", err
	}
	if src, err := alltransports.ParseImageName(name); err == nil && hasTransport(name) {
		dest, err := destFor(s, src)
		if err != nil {
			return "", err
		}
		return copyInto(ctx, s, sys, boundSource(src, o.MaxLayerSize), dest, o.Progress)
	}
	resolved, err := shortnames.Resolve(sys, name)
	if err != nil {
		return "", explainResolveError(sys, name, err)
	}
	var errs []error
	for _, c := range resolved.PullCandidates {
		src, err := docker.NewReference(c.Value)
		if err != nil {
			return "", err
		}
		dest, err := istorage.Transport.NewStoreReference(s, c.Value, "")
		if err != nil {
			return "", err
		}
		id, err := copyInto(ctx, s, sys, boundSource(src, o.MaxLayerSize), dest, o.Progress)
		if err == nil {
			if rerr := c.Record(); rerr != nil && o.Progress != nil {
				fmt.Fprintf(o.Progress, "sandy: warning: %v\n", rerr)
			}
			return id, nil
		}
		if ctx.Err() != nil || len(resolved.PullCandidates) == 1 {
			return "", err
		}
		errs = append(errs, err)
	}
	return "", resolved.FormatPullErrors(errs)
}

// explainResolveError names the candidates of an ambiguous short name:
// the library, in short-name-mode "enforcing" without a terminal to ask
// on, says only that it cannot prompt.
func explainResolveError(sys *types.SystemContext, name string, err error) error {
	if !strings.Contains(err.Error(), "cannot prompt without a TTY") {
		return fmt.Errorf("resolving %q: %w", name, err)
	}
	var cands []string
	if regs, rerr := sysregistriesv2.UnqualifiedSearchRegistries(sys); rerr == nil {
		for _, r := range regs {
			if n, perr := reference.ParseNormalizedNamed(r + "/" + name); perr == nil {
				cands = append(cands, reference.TagNameOnly(n).String())
			}
		}
	}
	return fmt.Errorf("short name %q is ambiguous: it may be %s, and short-name-mode = \"enforcing\" asks only on a terminal: %w\nhint: name the image fully (sandy pull %s), or add an alias for it under [aliases] in registries.conf",
		name, strings.Join(cands, " or "), err, firstOr(cands, "REGISTRY/"+name))
}

func firstOr(s []string, def string) string {
	if len(s) > 0 {
		return s[0]
	}
	return def
}

// hasTransport reports whether name starts with a transport prefix the
// user typed (a registry reference such as localhost:5000/x also parses
// as TRANSPORT:REST, so the known names decide).
func hasTransport(name string) bool {
	t, _, ok := strings.Cut(name, ":")
	if !ok {
		return false
	}
	return alltransports.TransportFromImageName(name) != nil && t != "" && !strings.Contains(t, "/") && !strings.Contains(t, ".")
}

// destFor names the stored copy of src as podman does: the reference's
// own name when it has one (docker://, docker-archive with a tag,
// oci:DIR:NAME), else the image is stored by id only.
func destFor(s storage.Store, src types.ImageReference) (types.ImageReference, error) {
	if named := src.DockerReference(); named != nil {
		return istorage.Transport.NewStoreReference(s, named, "")
	}
	if t := src.Transport().Name(); t == "oci" || t == "oci-archive" {
		// oci:DIR:NAME — NAME as a repository under localhost/, podman's rule.
		if _, image, ok := strings.Cut(src.StringWithinTransport(), ":"); ok && image != "" {
			if named, err := reference.ParseNormalizedNamed(image); err == nil {
				if !strings.Contains(image, "/") && !strings.Contains(image, ".") {
					named, err = reference.ParseNormalizedNamed("localhost/" + image)
				}
				if err == nil {
					return istorage.Transport.NewStoreReference(s, reference.TagNameOnly(named), "")
				}
			}
		}
	}
	return unnamedDest(context.Background(), s, nil, src)
}

// unnamedDest is the store reference of an image without a name: the
// storage library wants the id up front, and an unnamed image's id is its
// config digest (as podman stores it).
func unnamedDest(ctx context.Context, s storage.Store, sys *types.SystemContext, src types.ImageReference) (types.ImageReference, error) {
	img, err := src.NewImage(ctx, sys)
	if err != nil {
		return nil, explainCopyError(transportName(src), err)
	}
	defer img.Close()
	return istorage.Transport.NewStoreReference(s, nil, img.ConfigInfo().Digest.Encoded())
}

// copyInto copies src into the store (dest) and returns the stored id.
func copyInto(ctx context.Context, s storage.Store, sys *types.SystemContext, src, dest types.ImageReference, progress io.Writer) (string, error) {
	out, err := copyImage(ctx, sys, src, dest, progress)
	if err != nil {
		return "", err
	}
	return storedID(s, dest, out)
}

// copyImage copies src to dest under the signature policy and returns the
// manifest written.
func copyImage(ctx context.Context, sys *types.SystemContext, src, dest types.ImageReference, progress io.Writer) ([]byte, error) {
	pc, err := PolicyContext(sys)
	if err != nil {
		return nil, err
	}
	defer func() { _ = pc.Destroy() }()
	out, err := copy.Image(ctx, pc, dest, src, &copy.Options{
		ReportWriter:   progress,
		SourceCtx:      sys,
		DestinationCtx: sys,
	})
	if err != nil {
		return nil, explainCopyError(transportName(src), err)
	}
	return out, nil
}

func transportName(r types.ImageReference) string {
	return r.Transport().Name() + ":" + r.StringWithinTransport()
}

// storedID finds the id of the image just committed: by name when dest
// has one, else by the config digest of the manifest that was written.
func storedID(s storage.Store, dest types.ImageReference, manifestBlob []byte) (string, error) {
	if dest.DockerReference() != nil {
		_, img, err := istorage.ResolveReference(dest)
		if err != nil {
			return "", err
		}
		return img.ID, nil
	}
	m, err := manifest.FromBlob(manifestBlob, manifest.GuessMIMEType(manifestBlob))
	if err != nil {
		return "", fmt.Errorf("reading the copied manifest: %w", err)
	}
	id := m.ConfigInfo().Digest.Encoded()
	if _, err := s.Image(id); err != nil {
		return "", fmt.Errorf("image %s not in the store after the copy: %w", id, err)
	}
	return id, nil
}
