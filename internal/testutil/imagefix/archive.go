package imagefix

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"os"
	"path/filepath"
	"strings"
)

// dockerManifestItem is one image in a docker-archive's manifest.json.
type dockerManifestItem struct {
	Config   string
	RepoTags []string
	Layers   []string
}

// DockerArchive writes img as a docker-archive tar at path (a new file), as
// `docker save` (before Docker 25) and `podman save --format
// docker-archive` write it: manifest.json, the config as HEX.json and each
// layer as an uncompressed HEX.tar (without the legacy per-layer
// directories and repositories file, which readers ignore; a layer's
// Compression and Truncated are ignored). ref ("localhost/name:tag") is the
// RepoTag; empty writes an untagged image. gz compresses the whole archive
// (`docker save | gzip`). It returns the image ID (the config digest).
func DockerArchive(path, ref string, img Image, gz bool) (imageID string, err error) {
	tmp, err := os.MkdirTemp("", "imagefix-docker-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if err := os.MkdirAll(filepath.Join(tmp, "blobs", "sha256"), 0o755); err != nil {
		return "", err
	}

	var layerFiles, diffIDs []string
	for i, l := range img.Layers {
		l.Compression, l.Truncated = "none", false
		desc, diffID, err := writeLayerBlob(tmp, l)
		if err != nil {
			return "", fmt.Errorf("writing layer %d: %w", i, err)
		}
		name := strings.TrimPrefix(diffID, "sha256:") + ".tar"
		if err := os.Rename(filepath.Join(tmp, "blobs", "sha256", strings.TrimPrefix(desc.Digest, "sha256:")), filepath.Join(tmp, name)); err != nil {
			return "", err
		}
		layerFiles = append(layerFiles, name)
		diffIDs = append(diffIDs, diffID)
	}
	cfg, err := json.Marshal(configJSON(img, diffIDs))
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(cfg)
	cfgName := hex.EncodeToString(sum[:]) + ".json"
	item := dockerManifestItem{Config: cfgName, Layers: layerFiles}
	files := map[string][]byte{cfgName: cfg}
	if ref != "" {
		item.RepoTags = []string{ref}
	}
	if files["manifest.json"], err = json.Marshal([]dockerManifestItem{item}); err != nil {
		return "", err
	}
	for name, data := range files {
		if err := os.WriteFile(filepath.Join(tmp, name), data, 0o644); err != nil {
			return "", err
		}
	}
	if err := os.RemoveAll(filepath.Join(tmp, "blobs")); err != nil {
		return "", err
	}
	if err := tarDir(path, tmp, gz); err != nil {
		return "", err
	}
	return "sha256:" + hex.EncodeToString(sum[:]), nil
}

// OCIArchive writes img as an oci-archive at path (a new file): the tar of
// an OCI layout in which img is tagged refName (empty: img.RefName, else
// "latest"), gzip-compressed if gz. It returns the manifest digest.
func OCIArchive(path, refName string, img Image, gz bool) (digest string, err error) {
	tmp, err := os.MkdirTemp("", "imagefix-oci-")
	if err != nil {
		return "", err
	}
	defer os.RemoveAll(tmp)
	if refName != "" {
		img.RefName = refName
	}
	digest, err = WriteOCILayout(tmp, img)
	if err != nil {
		return "", err
	}
	return digest, tarDir(path, tmp, gz)
}

// TarDir writes the tree under dir (regular files and directories) as a tar
// at path (a new file), gzip-compressed if gz: e.g. an oci-archive of a
// layout that a test has damaged.
func TarDir(path, dir string, gz bool) error { return tarDir(path, dir, gz) }

func tarDir(path, dir string, gz bool) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return fmt.Errorf("creating archive: %w", err)
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			_ = os.Remove(path)
		}
	}()
	var w io.Writer = f
	var zw *gzip.Writer
	if gz {
		zw = gzip.NewWriter(f)
		w = zw
	}
	names, err := sortedFiles(dir)
	if err != nil {
		return fmt.Errorf("listing %s: %w", dir, err)
	}
	tw := tar.NewWriter(w)
	for _, name := range names {
		if err := addFile(tw, filepath.Join(dir, name), filepath.ToSlash(name)); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return fmt.Errorf("writing archive %s: %w", path, err)
	}
	if zw != nil {
		if err := zw.Close(); err != nil {
			return fmt.Errorf("writing archive %s: %w", path, err)
		}
	}
	return nil
}

func addFile(tw *tar.Writer, p, name string) error {
	fi, err := os.Lstat(p)
	if err != nil {
		return err
	}
	hdr := &tar.Header{Name: name, ModTime: Epoch(), Mode: 0o644, Typeflag: tar.TypeReg, Size: fi.Size()}
	if fi.IsDir() {
		hdr = &tar.Header{Name: name + "/", ModTime: Epoch(), Mode: 0o755, Typeflag: tar.TypeDir}
	}
	if err := tw.WriteHeader(hdr); err != nil {
		return fmt.Errorf("writing archive entry %s: %w", name, err)
	}
	if fi.IsDir() {
		return nil
	}
	f, err := os.Open(p)
	if err != nil {
		return err
	}
	defer f.Close()
	if _, err := io.Copy(tw, f); err != nil {
		return fmt.Errorf("writing archive entry %s: %w", name, err)
	}
	return nil
}
