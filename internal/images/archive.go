//go:build containers_image_openpgp

package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"path/filepath"

	imgspecv1 "github.com/opencontainers/image-spec/specs-go/v1"
	dockerarchive "go.podman.io/image/v5/docker/archive"
	"go.podman.io/image/v5/docker/reference"
	ociarchive "go.podman.io/image/v5/oci/archive"
	ocilayout "go.podman.io/image/v5/oci/layout"
	istorage "go.podman.io/image/v5/storage"
	"go.podman.io/image/v5/types"
	"go.podman.io/storage"
	"go.podman.io/storage/pkg/archive"

	"github.com/sandy-rt/sandy/internal/imagenames"
)

// LoadOptions are `sandy load`'s flags.
type LoadOptions struct {
	Progress io.Writer
	// TmpDir holds a copy of standard input (archives are read with
	// seeks; "" is the store's run root) and the staged blobs ("" is
	// $TMPDIR, else /var/tmp).
	TmpDir string
	// MaxLayerSize bounds what a layer may decompress to (0: no bound).
	MaxLayerSize int64
}

// Load reads a docker-archive (`docker save`, `podman save`) or an
// oci-archive, plain or compressed, from path ("-": standard input, copied
// to a temporary file first) and stores every image in it under the names
// it carries. It returns the stored names (ids for unnamed images).
func Load(ctx context.Context, s storage.Store, path string, stdin io.Reader, o LoadOptions) ([]string, error) {
	if path == "-" || path == "" {
		tmp, cleanup, err := spool(stdin, o.TmpDir, s.RunRoot())
		if err != nil {
			return nil, err
		}
		defer cleanup()
		path = tmp
	}
	if _, err := os.Stat(path); err != nil {
		return nil, fmt.Errorf("loading: %w", err)
	}
	sys := &types.SystemContext{BigFilesTemporaryDir: bigFilesDir(o.TmpDir)}
	names, dockerErr := loadDockerArchive(ctx, s, sys, path, o)
	if dockerErr == nil {
		return names, nil
	}
	if errors.Is(dockerErr, ErrBlobTooBig) || ctx.Err() != nil {
		return nil, dockerErr // a docker-archive, refused or interrupted
	}
	names, ociErr := loadOCIArchive(ctx, s, sys, path, o)
	if ociErr == nil {
		return names, nil
	}
	return nil, fmt.Errorf("loading %s: neither a docker-archive (%v) nor an oci-archive (%v)", path, dockerErr, ociErr)
}

// spool copies r to a private temporary file.
func spool(r io.Reader, dirs ...string) (string, func(), error) {
	dir := ""
	for _, d := range dirs {
		if d != "" {
			dir = d
			break
		}
	}
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	f, err := os.CreateTemp(dir, "sandy-load-*.tar")
	if err != nil {
		return "", nil, fmt.Errorf("spooling standard input: %w", err)
	}
	cleanup := func() { _ = os.Remove(f.Name()) }
	_, err = io.Copy(f, r)
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err != nil {
		cleanup()
		return "", nil, fmt.Errorf("spooling standard input: %w", err)
	}
	return f.Name(), cleanup, nil
}

func loadDockerArchive(ctx context.Context, s storage.Store, sys *types.SystemContext, path string, o LoadOptions) ([]string, error) {
	r, err := dockerarchive.NewReader(sys, path)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	list, err := r.List()
	if err != nil {
		return nil, err
	}
	var names []string
	for _, refs := range list {
		if len(refs) == 0 {
			continue
		}
		var tags []string
		for _, ref := range refs {
			if named := ref.DockerReference(); named != nil {
				tags = append(tags, named.String())
			}
		}
		// The first reference copies; the others add names.
		var dest types.ImageReference
		if len(tags) > 0 {
			named, _ := reference.ParseNormalizedNamed(tags[0])
			dest, err = istorage.Transport.NewStoreReference(s, named, "")
		} else {
			dest, err = unnamedDest(ctx, s, sys, refs[0])
		}
		if err != nil {
			return names, err
		}
		id, err := copyInto(ctx, s, sys, boundSource(refs[0], o.MaxLayerSize), dest, o.Progress)
		if err != nil {
			return names, err
		}
		if len(tags) > 1 {
			if err := s.AddNames(id, tags[1:]); err != nil {
				return names, err
			}
		}
		if len(tags) == 0 {
			names = append(names, "sha256:"+id)
		}
		names = append(names, tags...)
	}
	if len(list) == 0 {
		return nil, errors.New("the archive holds no image")
	}
	return names, nil
}

func loadOCIArchive(ctx context.Context, s storage.Store, sys *types.SystemContext, path string, o LoadOptions) ([]string, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	dir, err := os.MkdirTemp(s.RunRoot(), "sandy-oci-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(dir)
	// The image library unpacks an oci-archive the same way (oci/archive).
	if err := archive.NewDefaultArchiver().Untar(f, dir, &archive.TarOptions{NoLchown: true}); err != nil {
		return nil, fmt.Errorf("unpacking the oci-archive: %w", err)
	}
	list, err := ocilayout.List(dir)
	if err != nil {
		return nil, fmt.Errorf("reading the oci-archive's index.json: %w", err)
	}
	if len(list) == 0 {
		return nil, errors.New("the archive holds no image")
	}
	var names []string
	for _, item := range list {
		var dest types.ImageReference
		if full, nerr := imagenames.NormalizeName(item.ManifestDescriptor.Annotations[imgspecv1.AnnotationRefName]); nerr == nil {
			named, _ := reference.ParseNormalizedNamed(full)
			dest, err = istorage.Transport.NewStoreReference(s, named, "")
		} else {
			dest, err = unnamedDest(ctx, s, sys, item.Reference)
		}
		if err != nil {
			return names, err
		}
		id, err := copyInto(ctx, s, sys, boundSource(item.Reference, o.MaxLayerSize), dest, o.Progress)
		if err != nil {
			return names, err
		}
		if named := dest.DockerReference(); named != nil {
			names = append(names, named.String())
		} else {
			names = append(names, "sha256:"+id)
		}
	}
	return names, nil
}

// SaveOptions are `sandy save`'s flags.
type SaveOptions struct {
	Format   string // "docker-archive" (default) or "oci-archive"
	Progress io.Writer
}

// Save writes images to path: a docker-archive may hold several, an
// oci-archive one. The file is written next to path and renamed into
// place, so a failed save leaves no half archive.
func Save(ctx context.Context, s storage.Store, sys *types.SystemContext, path string, names []string, o SaveOptions) error {
	if len(names) == 0 {
		return errors.New("save: no image named")
	}
	format := o.Format
	if format == "" {
		format = "docker-archive"
	}
	tmp := filepath.Join(filepath.Dir(path), "."+filepath.Base(path)+".sandy-tmp")
	_ = os.Remove(tmp)
	defer os.Remove(tmp)
	switch format {
	case "docker-archive":
		w, err := dockerarchive.NewWriter(sys, tmp)
		if err != nil {
			return err
		}
		for _, n := range names {
			img, err := imagenames.Lookup(s, sys, n)
			if err != nil {
				_ = w.Close()
				return err
			}
			src, err := istorage.Transport.NewStoreReference(s, nil, img.ID)
			if err != nil {
				_ = w.Close()
				return err
			}
			var tagged reference.NamedTagged
			if name := imagenames.MatchedName(s, sys, img, n); name != "" {
				if r, err := reference.ParseNormalizedNamed(name); err == nil {
					tagged, _ = r.(reference.NamedTagged)
				}
			}
			if tagged == nil && len(img.Names) > 0 {
				if r, err := reference.ParseNormalizedNamed(img.Names[0]); err == nil {
					tagged, _ = r.(reference.NamedTagged)
				}
			}
			dest, err := w.NewReference(tagged)
			if err != nil {
				_ = w.Close()
				return err
			}
			if _, err := copyImage(ctx, sys, src, dest, o.Progress); err != nil {
				_ = w.Close()
				return err
			}
		}
		if err := w.Close(); err != nil {
			return err
		}
	case "oci-archive":
		if len(names) != 1 {
			return errors.New("save --format oci-archive: one image per archive (use docker-archive for several)")
		}
		img, err := imagenames.Lookup(s, sys, names[0])
		if err != nil {
			return err
		}
		src, err := istorage.Transport.NewStoreReference(s, nil, img.ID)
		if err != nil {
			return err
		}
		refName := ""
		if len(img.Names) > 0 {
			refName = imagenames.MatchedName(s, sys, img, names[0])
		}
		dest, err := ociarchive.NewReference(tmp, refName)
		if err != nil {
			return err
		}
		if _, err := copyImage(ctx, sys, src, dest, o.Progress); err != nil {
			return err
		}
	default:
		return fmt.Errorf("save --format %q: want docker-archive or oci-archive", format)
	}
	return os.Rename(tmp, path)
}
