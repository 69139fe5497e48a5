package imagefix

import (
	"archive/tar"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"io"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// layerHeaders reads the tar headers of layer i of l (gzip or plain) and
// checks its diff ID.
func layerHeaders(t *testing.T, l Layout, i int) map[string]*tar.Header {
	t.Helper()
	f, err := os.Open(l.BlobPath(l.Layers[i].Digest))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	var r io.Reader = f
	if l.Layers[i].MediaType == MediaTypeLayerGzip {
		zr, err := gzip.NewReader(f)
		if err != nil {
			t.Fatal(err)
		}
		r = zr
	}
	h := sha256.New()
	tr := tar.NewReader(io.TeeReader(r, h))
	out := map[string]*tar.Header{}
	for {
		hdr, err := tr.Next()
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			t.Fatalf("reading layer %d: %v", i, err)
		}
		out[hdr.Name] = hdr
	}
	_, _ = io.Copy(io.Discard, r)
	if got := "sha256:" + hex.EncodeToString(h.Sum(nil)); got != l.DiffIDs[i] {
		t.Errorf("layer %d: diff ID in config %s, content hashes to %s", i, l.DiffIDs[i], got)
	}
	return out
}

func TestBusyboxLayers(t *testing.T) {
	dir := t.TempDir()
	WriteLayout(t, dir, BusyboxWithChanges(t))
	l, err := ReadLayout(dir, "latest")
	if err != nil {
		t.Fatal(err)
	}
	if len(l.Layers) != 2 {
		t.Fatalf("got %d layers, want 2", len(l.Layers))
	}
	base := layerHeaders(t, l, 0)
	for _, name := range []string{"bin/busybox", "bin/sh", "bin/ls", "bin/cat", "bin/echo", "bin/id", "bin/stat", "bin/true", "etc/passwd", "etc/group", "etc/motd"} {
		if base[name] == nil {
			t.Errorf("base layer has no %s", name)
		}
	}
	if h := base["bin/sh"]; h != nil && (h.Typeflag != tar.TypeSymlink || h.Linkname != "busybox") {
		t.Errorf("bin/sh: type %c → %q, want a symlink to busybox", h.Typeflag, h.Linkname)
	}
	top := layerHeaders(t, l, 1)
	rel := func(p string) string { return strings.TrimPrefix(p, "/") }
	checks := []struct {
		name string
		ok   func(h *tar.Header) bool
	}{
		{"etc/.wh.motd", func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg && h.Size == 0 }},
		{"opt/data/.wh..wh..opq", func(h *tar.Header) bool { return h.Typeflag == tar.TypeReg }},
		{rel(OwnedFile), func(h *tar.Header) bool { return h.Uid == AppUID && h.Gid == AppGID && h.Mode == 0o640 }},
		{rel(SetuidFile), func(h *tar.Header) bool { return h.Mode == 0o4755 }},
		{rel(HardLink), func(h *tar.Header) bool { return h.Typeflag == tar.TypeLink && h.Linkname == rel(HardLinkTarget) }},
		{rel(AbsSymlink), func(h *tar.Header) bool { return h.Typeflag == tar.TypeSymlink && h.Linkname == AbsSymlinkTarget }},
		{rel(CapFile), func(h *tar.Header) bool {
			return h.PAXRecords["SCHILY.xattr.security.capability"] == string(CapNetRawEP())
		}},
	}
	for _, c := range checks {
		h := top[c.name]
		if h == nil {
			t.Errorf("top layer has no %s", c.name)
		} else if !c.ok(h) {
			t.Errorf("top layer %s: wrong header %+v", c.name, h)
		}
	}
	want := []byte{0, 0, 0, 2, 0, 0x20, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0}
	want[0] = 1 // magic_etc 0x02000001 little endian
	if got := CapNetRawEP(); string(got) != string(want) {
		t.Errorf("CapNetRawEP = % x, want % x", got, want)
	}
}

// TestLayoutValidates proves the layouts are valid OCI: skopeo parses
// them and, copying them, checks every blob against its digest.
func TestLayoutValidates(t *testing.T) {
	testutil.RequireBinary(t, "skopeo", "apt-get install skopeo")
	for name, img := range map[string]func(testing.TB) Image{
		"busybox": Busybox, "changes": BusyboxWithChanges, "device": BusyboxWithDevice,
	} {
		t.Run(name, func(t *testing.T) {
			dir := filepath.Join(t.TempDir(), "layout")
			i := img(t)
			i.RefName = "v1"
			digest := WriteLayout(t, dir, i)
			raw := Skopeo(t, "inspect", "--raw", "oci:"+dir+":v1")
			var m Manifest
			if err := json.Unmarshal([]byte(raw), &m); err != nil {
				t.Fatalf("parsing manifest: %v\n%s", err, raw)
			}
			if sum := sha256.Sum256([]byte(raw)); "sha256:"+hex.EncodeToString(sum[:]) != digest {
				t.Errorf("manifest digest %s does not match the manifest skopeo read", digest)
			}
			if len(m.Layers) != len(i.Layers) {
				t.Errorf("manifest has %d layers, want %d", len(m.Layers), len(i.Layers))
			}
			Skopeo(t, "copy", "--quiet", "oci:"+dir+":v1", "dir:"+filepath.Join(t.TempDir(), "copy"))
			var cfg imageConfig
			out := Skopeo(t, "inspect", "--config", "oci:"+dir+":v1")
			if err := json.Unmarshal([]byte(out), &cfg); err != nil {
				t.Fatal(err)
			}
			if cfg.Architecture != runtime.GOARCH || cfg.OS != "linux" || len(cfg.Config.Cmd) == 0 {
				t.Errorf("config: %s", out)
			}
		})
	}
}

func TestMultiPlatform(t *testing.T) {
	testutil.RequireBinary(t, "skopeo", "apt-get install skopeo")
	dir := t.TempDir()
	if _, err := MultiPlatform(dir, "multi", MultiArch(t)...); err != nil {
		t.Fatal(err)
	}
	var idx Index
	raw := Skopeo(t, "inspect", "--raw", "oci:"+dir+":multi")
	if err := json.Unmarshal([]byte(raw), &idx); err != nil {
		t.Fatal(err)
	}
	if len(idx.Manifests) != 2 || idx.Manifests[0].Platform.Architecture != runtime.GOARCH ||
		idx.Manifests[1].Platform.Architecture != OtherArch() {
		t.Fatalf("index: %s", raw)
	}
	for _, arch := range []string{runtime.GOARCH, OtherArch()} {
		out := Skopeo(t, "--override-arch", arch, "inspect", "--config", "oci:"+dir+":multi")
		var cfg imageConfig
		if err := json.Unmarshal([]byte(out), &cfg); err != nil {
			t.Fatal(err)
		}
		if cfg.Architecture != arch {
			t.Errorf("--override-arch %s picked %s", arch, cfg.Architecture)
		}
		Skopeo(t, "--override-arch", arch, "copy", "--quiet", "oci:"+dir+":multi", "dir:"+filepath.Join(t.TempDir(), arch))
	}
}

func TestArchives(t *testing.T) {
	testutil.RequireBinary(t, "skopeo", "apt-get install skopeo")
	img := BusyboxWithChanges(t)
	for _, gz := range []bool{false, true} {
		name := map[bool]string{false: "plain", true: "gzip"}[gz]
		t.Run("docker-"+name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "image.tar")
			id, err := DockerArchive(p, "localhost/imagefix:v1", img, gz)
			if err != nil {
				t.Fatal(err)
			}
			if gz {
				// skopeo 1.9 and podman 4.3 (c/image 5.23) read only an
				// uncompressed docker-archive: check what the gzip holds.
				p = gunzip(t, p)
			}
			out := Skopeo(t, "inspect", "docker-archive:"+p)
			if !strings.Contains(out, `"Architecture": "`+runtime.GOARCH) {
				t.Errorf("skopeo inspect: %s", out)
			}
			cfg := Skopeo(t, "inspect", "--config", "--raw", "docker-archive:"+p)
			if sum := sha256.Sum256([]byte(cfg)); "sha256:"+hex.EncodeToString(sum[:]) != id {
				t.Errorf("image ID %s is not the config's digest", id)
			}
			Skopeo(t, "copy", "--quiet", "docker-archive:"+p, "oci:"+filepath.Join(t.TempDir(), "copy")+":v1")
			if err := Truncate(p); err != nil {
				t.Fatal(err)
			}
			if out, err := SkopeoCmd(t, "copy", "--quiet", "docker-archive:"+p, "dir:"+filepath.Join(t.TempDir(), "bad")).CombinedOutput(); err == nil {
				t.Errorf("truncated docker-archive copied without error:\n%s", out)
			}
		})
		t.Run("oci-"+name, func(t *testing.T) {
			p := filepath.Join(t.TempDir(), "image.tar")
			if _, err := OCIArchive(p, "v1", img, gz); err != nil {
				t.Fatal(err)
			}
			Skopeo(t, "inspect", "oci-archive:"+p+":v1")
			Skopeo(t, "copy", "--quiet", "oci-archive:"+p+":v1", "dir:"+filepath.Join(t.TempDir(), "copy"))
			if err := Truncate(p); err != nil {
				t.Fatal(err)
			}
			if out, err := SkopeoCmd(t, "copy", "--quiet", "oci-archive:"+p+":v1", "dir:"+filepath.Join(t.TempDir(), "bad")).CombinedOutput(); err == nil {
				t.Errorf("truncated oci-archive copied without error:\n%s", out)
			}
		})
	}
}

// TestBad proves each broken image is broken the way its name says, and
// only that way.
func TestBad(t *testing.T) {
	testutil.RequireBinary(t, "skopeo", "apt-get install skopeo")
	// All in one layout, written first: one broken image must not repair
	// or break another.
	dir := t.TempDir()
	refs := map[Bad]string{}
	for _, kind := range AllBad() {
		refs[kind] = WriteBad(t, dir, kind)
	}
	for _, kind := range AllBad() {
		t.Run(string(kind), func(t *testing.T) {
			ref := refs[kind]
			src := "oci:" + dir + ":" + ref
			copyTo := func(extra ...string) (string, error) {
				args := append([]string{"copy", "--quiet"}, extra...)
				args = append(args, src, "dir:"+filepath.Join(t.TempDir(), "copy"))
				out, err := SkopeoCmd(t, args...).CombinedOutput()
				t.Logf("skopeo %s: %v: %s", strings.Join(args, " "), err, out)
				return string(out), err
			}
			l, err := ReadLayout(dir, ref)
			if err != nil {
				t.Fatal(err)
			}
			top := len(l.Layers) - 1
			switch kind {
			case BadDigestMismatch:
				out, err := copyTo()
				if err == nil || !strings.Contains(out, "igest") {
					t.Errorf("skopeo copy of %s: err %v, want a digest error:\n%s", kind, err, out)
				}
				return
			case BadMissingBlob:
				out, err := copyTo()
				if err == nil || !strings.Contains(out, "no such file") {
					t.Errorf("skopeo copy of %s: err %v, want a missing blob:\n%s", kind, err, out)
				}
				return
			case BadTruncatedLayer:
				if out, err := copyTo(); err != nil {
					t.Fatalf("the digests of %s should match: %v\n%s", kind, err, out)
				}
				out, err := copyTo("--dest-decompress")
				if err == nil {
					t.Errorf("decompressing %s succeeded:\n%s", kind, out)
				}
				return
			}
			// The escapes and the bomb are valid images: only their
			// content is hostile.
			if out, err := copyTo(); err != nil {
				t.Fatalf("skopeo copy of %s: %v\n%s", kind, err, out)
			}
			if kind == BadGzipBomb {
				if l.Layers[top].Size > 4<<20 {
					t.Errorf("bomb blob is %d bytes, want a few MiB", l.Layers[top].Size)
				}
				return // its content and diff ID are checked by TestGzipBombSmall
			}
			hdrs := layerHeaders(t, l, top)
			want := map[Bad]string{
				BadDotDot: "../" + EscapeName, BadAbsolute: "/abs/" + EscapeName,
				BadSymlinkWrite: "link/" + EscapeName, BadHardlinkOutside: EscapeName,
			}[kind]
			if hdrs[want] == nil {
				t.Errorf("%s: no entry %q in %v", kind, want, hdrs)
			}
		})
	}
}

func TestGzipBombSmall(t *testing.T) {
	dir := t.TempDir()
	const size = 64<<20 + 12345 // not a whole number of chunks
	WriteLayout(t, dir, Image{Layers: []Layer{GzipBombLayer(size)}})
	l, err := ReadLayout(dir, "latest")
	if err != nil {
		t.Fatal(err)
	}
	if l.Layers[0].Size > size/500 {
		t.Errorf("compressed %d bytes to %d", size, l.Layers[0].Size)
	}
	hdrs := layerHeaders(t, l, 0) // checks the diff ID over the whole stream
	if h := hdrs["bomb"]; h == nil || h.Size != size {
		t.Errorf("bomb entry: %+v", h)
	}
}

func skopeoInspect(t *testing.T, args ...string) (string, error) {
	t.Helper()
	out, err := SkopeoCmd(t, append([]string{"inspect", "--raw"}, args...)...).CombinedOutput()
	return string(out), err
}

// TestRegistryAuth runs as the test user (as the integration tests will)
// and proves the registry with auth refuses anonymous pulls and accepts
// the credentials.
func TestRegistryAuth(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "skopeo", "apt-get install skopeo")
	reg := StartRegistry(t, RegistryOptions{Auth: true})
	layout := t.TempDir()
	WriteLayout(t, layout, Busybox(t))
	ref := PushOCILayout(t, reg, layout, "latest", "imagefix/busybox:v1")
	out, err := skopeoInspect(t, "--tls-verify=false", "--no-creds", "docker://"+ref)
	t.Logf("anonymous: %v: %s", err, out)
	if err == nil || !(strings.Contains(out, "unauthorized") || strings.Contains(out, "authentication required")) {
		t.Errorf("anonymous inspect: err %v, want unauthorized:\n%s", err, out)
	}
	out, err = skopeoInspect(t, "--tls-verify=false", "--creds", reg.User+":wrong", "docker://"+ref)
	if err == nil {
		t.Errorf("inspect with a wrong password succeeded:\n%s", out)
	}
	if out, err := skopeoInspect(t, append(reg.SkopeoFlags(""), "docker://"+ref)...); err != nil {
		t.Errorf("inspect with the credentials: %v\n%s", err, out)
	}
}

// TestRegistryTLS proves the TLS registry's certificate is checked: refused
// without the CA, accepted with --cert-dir.
func TestRegistryTLS(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "skopeo", "apt-get install skopeo")
	reg := StartRegistry(t, RegistryOptions{TLS: true})
	if filepath.Base(reg.CertDir) != reg.Addr || reg.CAFile != filepath.Join(reg.CertDir, "ca.crt") {
		t.Errorf("CertDir %s, CAFile %s", reg.CertDir, reg.CAFile)
	}
	layout := t.TempDir()
	WriteLayout(t, layout, Busybox(t))
	ref := PushOCILayout(t, reg, layout, "latest", "imagefix/busybox:v1")
	out, err := skopeoInspect(t, "--tls-verify=true", "docker://"+ref)
	t.Logf("without the CA: %v: %s", err, out)
	if err == nil || !strings.Contains(out, "x509") {
		t.Errorf("inspect without the CA: err %v, want an x509 error:\n%s", err, out)
	}
	if out, err := skopeoInspect(t, "--cert-dir", reg.CertDir, "docker://"+ref); err != nil {
		t.Errorf("inspect with --cert-dir: %v\n%s", err, out)
	}
	out, err = skopeoInspect(t, "--tls-verify=false", "docker://"+ref)
	if err != nil {
		t.Errorf("inspect with --tls-verify=false: %v\n%s", err, out)
	}
}

// TestRegistryZstdAndDamage pushes a zstd copy and proves the registry's
// blob corruption helpers break pulls.
func TestRegistryZstdAndDamage(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "skopeo", "apt-get install skopeo")
	reg := StartRegistry(t, RegistryOptions{})
	layout := t.TempDir()
	WriteLayout(t, layout, BusyboxWithChanges(t))
	ref := PushOCILayoutZstd(t, reg, layout, "latest", "imagefix/zstd:v1")
	raw, err := skopeoInspect(t, "--tls-verify=false", "docker://"+ref)
	if err != nil {
		t.Fatalf("inspect: %v\n%s", err, raw)
	}
	var m Manifest
	if err := json.Unmarshal([]byte(raw), &m); err != nil {
		t.Fatal(err)
	}
	for _, l := range m.Layers {
		if l.MediaType != "application/vnd.oci.image.layer.v1.tar+zstd" {
			t.Errorf("layer %s has media type %s, want tar+zstd", l.Digest, l.MediaType)
		}
	}
	pull := func() (string, error) {
		out, err := SkopeoCmd(t, "copy", "--quiet", "--src-tls-verify=false", "docker://"+ref, "dir:"+filepath.Join(t.TempDir(), "pull")).CombinedOutput()
		return string(out), err
	}
	if out, err := pull(); err != nil {
		t.Fatalf("pull: %v\n%s", err, out)
	}
	if err := reg.CorruptBlob(m.Layers[1].Digest); err != nil {
		t.Fatal(err)
	}
	out, err := pull()
	t.Logf("corrupted blob: %v: %s", err, out)
	if err == nil || !strings.Contains(out, "igest") {
		t.Errorf("pull of a corrupted blob: err %v, want a digest error:\n%s", err, out)
	}
	if err := reg.RemoveBlob(m.Layers[1].Digest); err != nil {
		t.Fatal(err)
	}
	out, err = pull()
	t.Logf("removed blob: %v: %s", err, out)
	if err == nil {
		t.Errorf("pull of a removed blob succeeded:\n%s", out)
	}
	reg.Stop()
	out, err = pull()
	t.Logf("stopped registry: %v: %s", err, out)
	if err == nil || !strings.Contains(out, "connection refused") {
		t.Errorf("pull from a stopped registry: err %v, want connection refused:\n%s", err, out)
	}
}

func gunzip(t *testing.T, p string) string {
	t.Helper()
	f, err := os.Open(p)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	zr, err := gzip.NewReader(f)
	if err != nil {
		t.Fatalf("%s is not gzip: %v", p, err)
	}
	out := p + ".plain"
	o, err := os.OpenFile(out, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		t.Fatal(err)
	}
	defer o.Close()
	if _, err := io.Copy(o, zr); err != nil {
		t.Fatalf("decompressing %s: %v", p, err)
	}
	return out
}

// TestRegistryMultiPlatformAndConf pushes an index whole, and proves the
// registries.conf and auth file that Registry writes reach a plain-HTTP
// registry with auth without any flag.
func TestRegistryMultiPlatformAndConf(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "skopeo", "apt-get install skopeo")
	reg := StartRegistry(t, RegistryOptions{Auth: true, User: "alice", Password: "s3cret"})
	if reg.User != "alice" || reg.Password != "s3cret" {
		t.Errorf("credentials %s:%s, want alice:s3cret", reg.User, reg.Password)
	}
	layout := t.TempDir()
	if _, err := MultiPlatform(layout, "multi", MultiArch(t)...); err != nil {
		t.Fatal(err)
	}
	ref := PushOCILayout(t, reg, layout, "multi", "imagefix/multi:v1")

	dir := t.TempDir()
	conf, auth := filepath.Join(dir, "registries.conf"), filepath.Join(dir, "auth.json")
	if err := os.WriteFile(conf, []byte(reg.RegistriesConf()), 0o644); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(auth, []byte(reg.AuthJSON()), 0o600); err != nil {
		t.Fatal(err)
	}
	// skopeo 1.9 ignores CONTAINERS_REGISTRIES_CONF; its hidden
	// --registries-conf does the same.
	out, err := SkopeoCmd(t, "--registries-conf", conf, "inspect", "--raw", "--authfile", auth, "docker://"+ref).CombinedOutput()
	if err != nil {
		t.Fatalf("inspect through registries.conf and auth.json: %v\n%s", err, out)
	}
	var idx Index
	if err := json.Unmarshal(out, &idx); err != nil {
		t.Fatal(err)
	}
	if idx.MediaType != MediaTypeIndex || len(idx.Manifests) != 2 {
		t.Errorf("pushed %s is not the two-platform index:\n%s", ref, out)
	}
	out, err = SkopeoCmd(t, "--registries-conf", conf, "--override-arch", OtherArch(), "inspect", "--config", "--authfile", auth, "docker://"+ref).CombinedOutput()
	var cfg imageConfig
	if err != nil || json.Unmarshal(out, &cfg) != nil || cfg.Architecture != OtherArch() {
		t.Errorf("inspect of the %s image: %v\n%s", OtherArch(), err, out)
	}
}
