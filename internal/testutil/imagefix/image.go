package imagefix

import (
	"archive/tar"
	"path"
	"runtime"
	"time"
)

// Epoch is the modification time of every entry and the creation time of
// every image (2026-01-01T00:00:00Z), so that the same description always
// gives the same digests.
func Epoch() time.Time { return time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC) }

// Image describes an image to write: its layers (bottom first), its
// configuration and its platform.
type Image struct {
	Layers []Layer
	Config Config
	// OS, Arch and Variant are the platform (GOOS/GOARCH names); empty OS
	// and Arch mean linux and the host's architecture.
	OS, Arch, Variant string
	// RefName is the tag in an OCI layout's index.json
	// (org.opencontainers.image.ref.name); empty means "latest".
	RefName string
}

// Config is the part of the image configuration that a runtime reads
// (the "config" object of the OCI image config).
type Config struct {
	Env          []string
	Entrypoint   []string
	Cmd          []string
	WorkingDir   string
	User         string
	Labels       map[string]string
	ExposedPorts []string // e.g. "80/tcp"
	Volumes      []string
	StopSignal   string
}

// Layer is one layer: tar entries in order, compressed or not.
type Layer struct {
	Entries []Entry
	// Compression is "gzip" (the default when empty) or "none".
	Compression string
	// Truncated cuts the written blob in half. The digest and size in the
	// manifest describe the cut blob, so only decompression and tar
	// parsing find the damage (a truncated layer, not a digest mismatch).
	Truncated bool
}

// Entry is one tar entry: a header and its content. Header.Size is set
// from Body or Zeros when the entry is written.
type Entry struct {
	tar.Header
	// Body is the content of a regular file.
	Body []byte
	// Zeros, when positive, is the size of a regular file made of zero
	// bytes; it is streamed, never held in memory (large files, bombs).
	Zeros int64
}

// File is a regular file owned by 0:0.
func File(name string, mode int64, body string) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, Body: []byte(body)}
}

// BinaryFile is a regular file with binary content, owned by 0:0.
func BinaryFile(name string, mode int64, body []byte) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, Body: body}
}

// ZeroFile is a regular file of size zero bytes, streamed when written.
func ZeroFile(name string, mode, size int64) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeReg, Name: name, Mode: mode}, Zeros: size}
}

// Dir is a directory; name may end in "/".
func Dir(name string, mode int64) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeDir, Name: name, Mode: mode}}
}

// Symlink is a symbolic link name → target (target is stored as given,
// absolute or relative).
func Symlink(name, target string) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeSymlink, Name: name, Linkname: target, Mode: 0o777}}
}

// Hardlink is a hard link name → target, target being a path in the
// layer's root, as tar stores it.
func Hardlink(name, target string) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeLink, Name: name, Linkname: target, Mode: 0o644}}
}

// CharDevice is a character device node.
func CharDevice(name string, mode, major, minor int64) Entry {
	return Entry{Header: tar.Header{Typeflag: tar.TypeChar, Name: name, Mode: mode, Devmajor: major, Devminor: minor}}
}

// Whiteout deletes p (a file or a directory of a lower layer): the empty
// file DIR/.wh.NAME of the OCI layer format.
func Whiteout(p string) Entry {
	dir, name := path.Split(p)
	return File(dir+".wh."+name, 0o644, "")
}

// Opaque hides everything that lower layers have in dir: the empty file
// DIR/.wh..wh..opq. The layer should also carry dir itself.
func Opaque(dir string) Entry {
	return File(path.Join(dir, ".wh..wh..opq"), 0o644, "")
}

// Owner returns e owned by uid:gid.
func (e Entry) Owner(uid, gid int) Entry {
	e.Uid, e.Gid = uid, gid
	return e
}

// Xattr returns e with the extended attribute name (e.g.
// "security.capability") set to value, as a SCHILY.xattr PAX record.
func (e Entry) Xattr(name string, value []byte) Entry {
	recs := make(map[string]string, len(e.PAXRecords)+1)
	for k, v := range e.PAXRecords {
		recs[k] = v
	}
	recs["SCHILY.xattr."+name] = string(value)
	e.PAXRecords = recs
	return e
}

// WithLayers returns a copy of img with layers appended on top.
func (img Image) WithLayers(layers ...Layer) Image {
	img.Layers = append(append([]Layer(nil), img.Layers...), layers...)
	return img
}

func (img Image) platform() (goos, arch, variant string) {
	goos, arch, variant = img.OS, img.Arch, img.Variant
	if goos == "" {
		goos = "linux"
	}
	if arch == "" {
		arch = runtime.GOARCH
	}
	return goos, arch, variant
}

func (img Image) refName() string {
	if img.RefName == "" {
		return "latest"
	}
	return img.RefName
}
