package imagefix

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"sync"
)

// Media types of the OCI image spec (image-spec v1.1 media-types.md).
const (
	MediaTypeIndex     = "application/vnd.oci.image.index.v1+json"
	MediaTypeManifest  = "application/vnd.oci.image.manifest.v1+json"
	MediaTypeConfig    = "application/vnd.oci.image.config.v1+json"
	MediaTypeLayer     = "application/vnd.oci.image.layer.v1.tar"
	MediaTypeLayerGzip = "application/vnd.oci.image.layer.v1.tar+gzip"

	refNameAnnotation = "org.opencontainers.image.ref.name"
)

// Descriptor is an OCI content descriptor.
type Descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
	Platform    *Platform         `json:"platform,omitempty"`
}

// Platform is the platform of a manifest in an index.
type Platform struct {
	Architecture string `json:"architecture"`
	OS           string `json:"os"`
	Variant      string `json:"variant,omitempty"`
}

// Manifest is an OCI image manifest.
type Manifest struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType"`
	Config        Descriptor   `json:"config"`
	Layers        []Descriptor `json:"layers"`
}

// Index is an OCI image index (also the layout's index.json).
type Index struct {
	SchemaVersion int          `json:"schemaVersion"`
	MediaType     string       `json:"mediaType,omitempty"`
	Manifests     []Descriptor `json:"manifests"`
}

type imageConfig struct {
	Created      string          `json:"created"`
	Architecture string          `json:"architecture"`
	Variant      string          `json:"variant,omitempty"`
	OS           string          `json:"os"`
	Config       runtimeConfig   `json:"config"`
	RootFS       rootFS          `json:"rootfs"`
	History      []historyRecord `json:"history,omitempty"`
}

type runtimeConfig struct {
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

type rootFS struct {
	Type    string   `json:"type"`
	DiffIDs []string `json:"diff_ids"`
}

type historyRecord struct {
	Created   string `json:"created"`
	CreatedBy string `json:"created_by"`
}

// Layout is what ReadLayout finds for one ref name of an OCI layout.
type Layout struct {
	Dir      string
	Manifest Descriptor // the ref's manifest (or index, for MultiPlatform)
	Config   Descriptor // empty for an index
	Layers   []Descriptor
	DiffIDs  []string
}

// BlobPath is the path of the blob with digest ("sha256:HEX") in the layout.
func (l Layout) BlobPath(digest string) string {
	return filepath.Join(l.Dir, "blobs", "sha256", strings.TrimPrefix(digest, "sha256:"))
}

// WriteOCILayout writes img into the OCI image layout dir (created if
// needed; an existing layout gains the image, and a ref of the same name is
// replaced) and returns the manifest digest ("sha256:HEX").
func WriteOCILayout(dir string, img Image) (digest string, err error) {
	if err := initLayout(dir); err != nil {
		return "", err
	}
	desc, err := writeImage(dir, img)
	if err != nil {
		return "", err
	}
	desc.Annotations = map[string]string{refNameAnnotation: img.refName()}
	if err := addToIndex(dir, desc); err != nil {
		return "", err
	}
	return desc.Digest, nil
}

// MultiPlatform writes imgs (each with its own OS/Arch) and an OCI image
// index that lists them with their platforms, tagged refName in the layout
// dir; it returns the index digest. The images' own RefName is ignored.
func MultiPlatform(dir, refName string, imgs ...Image) (digest string, err error) {
	if err := initLayout(dir); err != nil {
		return "", err
	}
	idx := Index{SchemaVersion: 2, MediaType: MediaTypeIndex}
	for _, img := range imgs {
		desc, err := writeImage(dir, img)
		if err != nil {
			return "", err
		}
		goos, arch, variant := img.platform()
		desc.Platform = &Platform{OS: goos, Architecture: arch, Variant: variant}
		idx.Manifests = append(idx.Manifests, desc)
	}
	desc, err := writeJSONBlob(dir, MediaTypeIndex, idx)
	if err != nil {
		return "", err
	}
	if refName == "" {
		refName = "latest"
	}
	desc.Annotations = map[string]string{refNameAnnotation: refName}
	if err := addToIndex(dir, desc); err != nil {
		return "", err
	}
	return desc.Digest, nil
}

// ReadLayout finds refName in the layout dir and reads its manifest and
// config (for an index, only the index descriptor is filled in).
func ReadLayout(dir, refName string) (Layout, error) {
	l := Layout{Dir: dir}
	var idx Index
	if err := readJSON(filepath.Join(dir, "index.json"), &idx); err != nil {
		return l, err
	}
	found := false
	for _, d := range idx.Manifests {
		if d.Annotations[refNameAnnotation] == refName {
			l.Manifest, found = d, true
		}
	}
	if !found {
		return l, fmt.Errorf("reading layout %s: no ref name %q", dir, refName)
	}
	if l.Manifest.MediaType != MediaTypeManifest {
		return l, nil
	}
	var m Manifest
	if err := readJSON(l.BlobPath(l.Manifest.Digest), &m); err != nil {
		return l, err
	}
	l.Config, l.Layers = m.Config, m.Layers
	var c imageConfig
	if err := readJSON(l.BlobPath(m.Config.Digest), &c); err != nil {
		return l, err
	}
	l.DiffIDs = c.RootFS.DiffIDs
	return l, nil
}

func initLayout(dir string) error {
	if err := os.MkdirAll(filepath.Join(dir, "blobs", "sha256"), 0o755); err != nil {
		return fmt.Errorf("creating layout %s: %w", dir, err)
	}
	p := filepath.Join(dir, "oci-layout")
	if _, err := os.Stat(p); err == nil {
		return nil
	}
	if err := os.WriteFile(p, []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// addToIndex adds desc to the layout's index.json, replacing a descriptor
// with the same ref name.
func addToIndex(dir string, desc Descriptor) error {
	p := filepath.Join(dir, "index.json")
	idx := Index{SchemaVersion: 2, MediaType: MediaTypeIndex}
	if err := readJSON(p, &idx); err != nil && !errors.Is(err, os.ErrNotExist) {
		return err
	}
	ref := desc.Annotations[refNameAnnotation]
	kept := idx.Manifests[:0]
	for _, d := range idx.Manifests {
		if d.Annotations[refNameAnnotation] != ref {
			kept = append(kept, d)
		}
	}
	idx.Manifests = append(kept, desc)
	data, err := json.Marshal(idx)
	if err != nil {
		return err
	}
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return fmt.Errorf("writing %s: %w", p, err)
	}
	return nil
}

// writeImage writes img's layers, config and manifest as blobs and returns
// the manifest's descriptor.
func writeImage(dir string, img Image) (Descriptor, error) {
	var layers []Descriptor
	var diffIDs []string
	for i, l := range img.Layers {
		desc, diffID, err := writeLayerBlob(dir, l)
		if err != nil {
			return Descriptor{}, fmt.Errorf("writing layer %d: %w", i, err)
		}
		layers = append(layers, desc)
		diffIDs = append(diffIDs, diffID)
	}
	cfg, err := writeJSONBlob(dir, MediaTypeConfig, configJSON(img, diffIDs))
	if err != nil {
		return Descriptor{}, err
	}
	return writeJSONBlob(dir, MediaTypeManifest, Manifest{
		SchemaVersion: 2, MediaType: MediaTypeManifest, Config: cfg, Layers: layers,
	})
}

func configJSON(img Image, diffIDs []string) imageConfig {
	goos, arch, variant := img.platform()
	c := img.Config
	rc := runtimeConfig{
		User: c.User, Env: c.Env, Entrypoint: c.Entrypoint, Cmd: c.Cmd,
		WorkingDir: c.WorkingDir, Labels: c.Labels, StopSignal: c.StopSignal,
		ExposedPorts: set(c.ExposedPorts), Volumes: set(c.Volumes),
	}
	created := Epoch().Format("2006-01-02T15:04:05Z")
	cfg := imageConfig{
		Created: created, Architecture: arch, Variant: variant, OS: goos, Config: rc,
		RootFS: rootFS{Type: "layers", DiffIDs: diffIDs},
	}
	if cfg.RootFS.DiffIDs == nil {
		cfg.RootFS.DiffIDs = []string{}
	}
	for i := range diffIDs {
		cfg.History = append(cfg.History, historyRecord{Created: created, CreatedBy: fmt.Sprintf("imagefix layer %d", i)})
	}
	return cfg
}

func set(keys []string) map[string]struct{} {
	if len(keys) == 0 {
		return nil
	}
	m := make(map[string]struct{}, len(keys))
	for _, k := range keys {
		m[k] = struct{}{}
	}
	return m
}

func writeJSONBlob(dir, mediaType string, v any) (Descriptor, error) {
	data, err := json.Marshal(v)
	if err != nil {
		return Descriptor{}, err
	}
	return writeBlob(dir, mediaType, data)
}

func writeBlob(dir, mediaType string, data []byte) (Descriptor, error) {
	sum := sha256.Sum256(data)
	d := Descriptor{MediaType: mediaType, Digest: "sha256:" + hex.EncodeToString(sum[:]), Size: int64(len(data))}
	p := filepath.Join(dir, "blobs", "sha256", hex.EncodeToString(sum[:]))
	if err := os.WriteFile(p, data, 0o644); err != nil {
		return Descriptor{}, fmt.Errorf("writing blob %s: %w", p, err)
	}
	return d, nil
}

// writeLayerBlob streams layer l into a blob of the layout dir and returns
// its descriptor and diff ID (the digest of the uncompressed tar).
func writeLayerBlob(dir string, l Layer) (desc Descriptor, diffID string, err error) {
	blobs := filepath.Join(dir, "blobs", "sha256")
	f, err := os.CreateTemp(blobs, ".layer-")
	if err != nil {
		return desc, "", fmt.Errorf("creating layer blob: %w", err)
	}
	defer func() {
		if err != nil {
			_ = f.Close()
			_ = os.Remove(f.Name())
		}
	}()
	diffID, mediaType, err := writeLayer(f, l)
	if err != nil {
		return desc, "", err
	}
	if l.Truncated {
		fi, err := f.Stat()
		if err != nil {
			return desc, "", err
		}
		if err := f.Truncate(fi.Size() / 2); err != nil {
			return desc, "", fmt.Errorf("truncating layer blob: %w", err)
		}
	}
	if _, err := f.Seek(0, io.SeekStart); err != nil {
		return desc, "", err
	}
	h := sha256.New()
	n, err := io.Copy(h, f)
	if err != nil {
		return desc, "", fmt.Errorf("hashing layer blob: %w", err)
	}
	if err := f.Close(); err != nil {
		return desc, "", err
	}
	sum := hex.EncodeToString(h.Sum(nil))
	if err := os.Chmod(f.Name(), 0o644); err != nil {
		return desc, "", err
	}
	if err := os.Rename(f.Name(), filepath.Join(blobs, sum)); err != nil {
		return desc, "", fmt.Errorf("renaming layer blob: %w", err)
	}
	return Descriptor{MediaType: mediaType, Digest: "sha256:" + sum, Size: n}, diffID, nil
}

// writeLayer writes the tar of l to w, compressed as l asks, and returns
// the diff ID and the media type.
func writeLayer(w io.Writer, l Layer) (diffID, mediaType string, err error) {
	diff := sha256.New()
	var sink *layerSink
	switch l.Compression {
	case "", "gzip":
		sink = &layerSink{out: w, diff: diff}
		mediaType = MediaTypeLayerGzip
	case "none":
		sink = &layerSink{out: w, diff: diff, plain: true}
		mediaType = MediaTypeLayer
	default:
		return "", "", fmt.Errorf("layer compression %q: want gzip or none", l.Compression)
	}
	if err := writeTar(sink, l.Entries); err != nil {
		return "", "", err
	}
	if err := sink.Close(); err != nil {
		return "", "", err
	}
	return "sha256:" + hex.EncodeToString(diff.Sum(nil)), mediaType, nil
}

func writeTar(sink *layerSink, entries []Entry) error {
	tw := tar.NewWriter(sink)
	for _, e := range entries {
		hdr := e.Header
		if hdr.ModTime.IsZero() {
			hdr.ModTime = Epoch()
		}
		if hdr.Typeflag == tar.TypeReg {
			hdr.Size = int64(len(e.Body))
			if e.Zeros > 0 {
				hdr.Size = e.Zeros
			}
		}
		if err := tw.WriteHeader(&hdr); err != nil {
			return fmt.Errorf("writing tar header %q: %w", hdr.Name, err)
		}
		if e.Zeros > 0 {
			if err := sink.writeZeros(tw, e.Zeros); err != nil {
				return fmt.Errorf("writing %q: %w", hdr.Name, err)
			}
		} else if _, err := tw.Write(e.Body); err != nil {
			return fmt.Errorf("writing %q: %w", hdr.Name, err)
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("closing tar: %w", err)
	}
	return nil
}

// zeroChunk is the unit in which zero-filled files are streamed, and
// zeroMember is one gzip member holding zeroChunk zero bytes.
const zeroChunk = 1 << 20

var zeroMember = sync.OnceValue(func() []byte {
	var b bytes.Buffer
	zw, _ := gzip.NewWriterLevel(&b, gzip.BestCompression)
	_, _ = zw.Write(make([]byte, zeroChunk))
	_ = zw.Close()
	return b.Bytes()
})

// layerSink receives the tar stream: it hashes it (the diff ID) and writes
// it to out, gzip-compressed unless plain. Zero-filled file bodies are
// written as repeated precompressed gzip members (RFC 1952 allows a gzip
// file to be several members; every gzip reader reads them as one stream),
// so a 2 GiB file of zeros costs only its hashing.
type layerSink struct {
	out   io.Writer
	diff  hash.Hash
	plain bool
	zw    *gzip.Writer
	zeros bool // the next writes are zeroChunk-sized zero chunks
}

func (s *layerSink) Write(p []byte) (int, error) {
	s.diff.Write(p)
	if s.plain {
		return s.out.Write(p)
	}
	if s.zeros && len(p) == zeroChunk {
		if s.zw != nil {
			if err := s.zw.Close(); err != nil {
				return 0, err
			}
			s.zw = nil
		}
		if _, err := s.out.Write(zeroMember()); err != nil {
			return 0, err
		}
		return len(p), nil
	}
	if s.zw == nil {
		s.zw = gzip.NewWriter(s.out)
	}
	return s.zw.Write(p)
}

func (s *layerSink) writeZeros(tw *tar.Writer, n int64) error {
	s.zeros = true
	defer func() { s.zeros = false }()
	chunk := make([]byte, zeroChunk)
	for n > 0 {
		c := int64(len(chunk))
		if n < c {
			c = n
		}
		if _, err := tw.Write(chunk[:c]); err != nil {
			return err
		}
		n -= c
	}
	return nil
}

func (s *layerSink) Close() error {
	if s.plain {
		return nil
	}
	if s.zw == nil {
		s.zw = gzip.NewWriter(s.out)
	}
	return s.zw.Close()
}

func readJSON(p string, v any) error {
	data, err := os.ReadFile(p)
	if err != nil {
		return fmt.Errorf("reading %s: %w", p, err)
	}
	if err := json.Unmarshal(data, v); err != nil {
		return fmt.Errorf("parsing %s: %w", p, err)
	}
	return nil
}

// sortedFiles lists the regular files and directories under dir, relative
// to it, in lexical order (for reproducible archives).
func sortedFiles(dir string) ([]string, error) {
	var out []string
	err := filepath.WalkDir(dir, func(p string, d os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, p)
		if err != nil || rel == "." {
			return err
		}
		out = append(out, rel)
		return nil
	})
	sort.Strings(out)
	return out, err
}
