//go:build containers_image_openpgp

package images

import (
	"bytes"
	"compress/gzip"
	"errors"
	"io"
	"testing"
)

func gzipped(t *testing.T, data []byte) []byte {
	t.Helper()
	var b bytes.Buffer
	w := gzip.NewWriter(&b)
	if _, err := w.Write(data); err != nil {
		t.Fatal(err)
	}
	if err := w.Close(); err != nil {
		t.Fatal(err)
	}
	return b.Bytes()
}

func TestBoundedReader(t *testing.T) {
	zeros := make([]byte, 4<<20)
	for _, tc := range []struct {
		name    string
		blob    []byte
		max     int64
		tooBig  bool
		passAll bool
	}{
		{name: "gzip under the bound", blob: gzipped(t, zeros), max: 8 << 20, passAll: true},
		{name: "gzip exactly the bound", blob: gzipped(t, zeros), max: 4 << 20, passAll: true},
		{name: "gzip over the bound", blob: gzipped(t, zeros), max: 1 << 20, tooBig: true},
		{name: "uncompressed over the bound", blob: zeros, max: 1 << 20, tooBig: true},
		{name: "garbage is passed on for the consumer to refuse", blob: []byte("\x1f\x8b\x08not gzip at all"), max: 1 << 20, passAll: true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := newBoundedReader(io.NopCloser(bytes.NewReader(tc.blob)), tc.max, "sha256:x")
			got, err := io.ReadAll(r)
			if cerr := r.Close(); cerr != nil {
				t.Fatalf("close: %v", cerr)
			}
			if tc.tooBig != errors.Is(err, ErrBlobTooBig) {
				t.Fatalf("read error %v, want ErrBlobTooBig: %v", err, tc.tooBig)
			}
			if tc.passAll && !bytes.Equal(got, tc.blob) {
				t.Fatalf("passed on %d bytes, want the %d of the blob unchanged (err %v)", len(got), len(tc.blob), err)
			}
		})
	}
}
