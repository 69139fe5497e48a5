//go:build containers_image_openpgp

package images

import (
	"context"
	"errors"
	"fmt"
	"io"
	"sync/atomic"

	units "github.com/docker/go-units"
	"go.podman.io/image/v5/pkg/compression"
	"go.podman.io/image/v5/types"
)

// ErrBlobTooBig is returned when a blob decompresses to more than the
// bound set with --max-layer-size (a decompression bomb, or a layer
// larger than the user allows).
var ErrBlobTooBig = errors.New("blob decompresses to more than --max-layer-size")

// The image library has no hook on a layer's decompressed size, and the
// storage library applies whatever the stream holds. So the bound sits on
// the source side: every blob the copy reads is passed on unchanged and,
// at the same time, decompressed once more into a counter, which stops
// the read with ErrBlobTooBig when the count passes the bound. The copy
// then fails like any read error: the destination discards the layer and
// no image is stored. The extra decompression costs CPU, so the bound is
// off unless asked for.

// boundedRef is a source reference whose blobs are bounded.
type boundedRef struct {
	types.ImageReference
	max int64
}

// boundSource wraps ref so that no blob read from it may decompress to
// more than max bytes; max <= 0 leaves ref as it is.
func boundSource(ref types.ImageReference, max int64) types.ImageReference {
	if max <= 0 {
		return ref
	}
	return boundedRef{ImageReference: ref, max: max}
}

func (r boundedRef) NewImageSource(ctx context.Context, sys *types.SystemContext) (types.ImageSource, error) {
	src, err := r.ImageReference.NewImageSource(ctx, sys)
	if err != nil {
		return nil, err
	}
	return boundedSource{ImageSource: src, max: r.max}, nil
}

type boundedSource struct {
	types.ImageSource
	max int64
}

func (s boundedSource) Reference() types.ImageReference {
	return boundedRef{ImageReference: s.ImageSource.Reference(), max: s.max}
}

func (s boundedSource) GetBlob(ctx context.Context, info types.BlobInfo, cache types.BlobInfoCache) (io.ReadCloser, int64, error) {
	rc, size, err := s.ImageSource.GetBlob(ctx, info, cache)
	if err != nil {
		return rc, size, err
	}
	return newBoundedReader(rc, s.max, info.Digest.String()), size, nil
}

// boundedReader passes src through and feeds the same bytes to a
// decompressing counter through a pipe; the counter's verdict comes back
// as the error of the write into the pipe.
type boundedReader struct {
	src  io.ReadCloser
	pw   *io.PipeWriter
	done chan struct{}
	err  atomic.Pointer[error]
}

func newBoundedReader(src io.ReadCloser, max int64, what string) *boundedReader {
	pr, pw := io.Pipe()
	b := &boundedReader{src: src, pw: pw, done: make(chan struct{})}
	go func() {
		defer close(b.done)
		// Decompression errors are the real consumer's to report;
		// the counter only drains what it cannot read.
		defer func() { _, _ = io.Copy(io.Discard, pr) }()
		d, _, err := compression.AutoDecompress(pr)
		if err != nil {
			return
		}
		defer d.Close()
		n, _ := io.Copy(io.Discard, io.LimitReader(d, max+1))
		if n > max {
			err := fmt.Errorf("blob %s: %w (%s): refused as a decompression bomb; no image stored", what, ErrBlobTooBig, units.BytesSize(float64(max)))
			b.err.Store(&err)
			pr.CloseWithError(err)
		}
	}()
	return b
}

func (b *boundedReader) Read(p []byte) (int, error) {
	if e := b.err.Load(); e != nil {
		return 0, *e
	}
	n, err := b.src.Read(p)
	if n > 0 {
		if _, werr := b.pw.Write(p[:n]); werr != nil {
			if e := b.err.Load(); e != nil {
				return 0, *e
			}
		}
	}
	if errors.Is(err, io.EOF) {
		// A small compressed blob can be read whole before the counter
		// has decompressed it: the verdict must come before EOF, or a
		// bomb passes.
		_ = b.pw.Close()
		<-b.done
		if e := b.err.Load(); e != nil {
			return n, *e
		}
	}
	return n, err
}

func (b *boundedReader) Close() error {
	_ = b.pw.Close()
	<-b.done
	return b.src.Close()
}
