package imagefix

import (
	"bytes"
	"encoding/binary"
	"fmt"
	"math/rand/v2"
	"os"
	"os/exec"
	"runtime"
	"sort"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// AppUID and AppGID are the ids of the user "app" in the busybox images'
// /etc/passwd and /etc/group.
const (
	AppUID = 1000
	AppGID = 1000
)

// Paths that BusyboxWithChanges changes, for tests to assert on inside a
// container or in the store.
const (
	// WhitedOut exists in the base layer and is deleted by a whiteout.
	WhitedOut = "/etc/motd"
	// Replaced holds ReplacedBefore in the base layer, ReplacedAfter on top.
	Replaced       = "/etc/issue"
	ReplacedBefore = "imagefix base\n"
	ReplacedAfter  = "imagefix changed\n"
	// OpaqueDir holds a and b in the base layer; the top layer makes it
	// opaque and adds c, so only c remains.
	OpaqueDir = "/opt/data"
	// OwnedFile is owned by AppUID:AppGID, mode 0640.
	OwnedFile = "/home/app/owned"
	// SetuidFile has mode 04755 (owned by 0:0).
	SetuidFile = "/usr/local/bin/suid"
	// HardLink is a hard link to HardLinkTarget (same layer).
	HardLink       = "/opt/data/c-link"
	HardLinkTarget = "/opt/data/c"
	// AbsSymlink is a symbolic link with the absolute target /etc/passwd.
	AbsSymlink       = "/etc/passwd.link"
	AbsSymlinkTarget = "/etc/passwd"
	// CapFile is a copy of busybox (so it runs as `ping`) carrying the
	// security.capability xattr CapNetRawEP.
	CapFile = "/usr/local/bin/ping"
	// ArchFile holds the image's architecture (GOARCH name) and a newline,
	// to tell which image of a MultiArch index was picked.
	ArchFile = "/etc/imagefix-arch"
	// DeviceFile is the character device 1:3 of BusyboxWithDevice.
	DeviceFile = "/dev/imagefix-null"
)

// CapNetRawEP returns the security.capability xattr value for
// cap_net_raw+ep: a struct vfs_cap_data, revision 2 (capability(7),
// include/uapi/linux/capability.h), little endian: magic_etc =
// VFS_CAP_REVISION_2|VFS_CAP_FLAGS_EFFECTIVE, then permitted/inheritable
// for capabilities 0-31 and 32-63. CAP_NET_RAW is 13.
func CapNetRawEP() []byte {
	const (
		vfsCapRevision2     = 0x02000000
		vfsCapFlagsEffectve = 0x000001
		capNetRaw           = 13
	)
	var b bytes.Buffer
	for _, v := range []uint32{vfsCapRevision2 | vfsCapFlagsEffectve, 1 << capNetRaw, 0, 0, 0} {
		_ = binary.Write(&b, binary.LittleEndian, v)
	}
	return b.Bytes()
}

// OtherArch is an architecture that is not the host's (arm64 on amd64,
// amd64 elsewhere), for multi-platform indexes.
func OtherArch() string {
	if runtime.GOARCH == "amd64" {
		return "arm64"
	}
	return "amd64"
}

// Busybox is a one-layer image with Debian's busybox-static (from the
// host's /bin/busybox) at /bin/busybox and a symlink in /bin for each of
// its applets (sh, ls, cat, echo, id, stat, true, ...), /etc/passwd and
// /etc/group with root and app (AppUID:AppGID, home /home/app owned by
// it), and the base files that BusyboxWithChanges changes. Cmd is
// ["/bin/sh"]. It skips the test (fails on CI) without busybox-static.
func Busybox(t testing.TB) Image {
	t.Helper()
	return busyboxFor(t, runtime.GOARCH)
}

func busyboxFor(t testing.TB, arch string) Image {
	t.Helper()
	bb := readBusybox(t)
	applets := busyboxApplets(t)
	var variant string
	if arch == "arm64" {
		variant = "v8"
	}
	entries := []Entry{
		Dir("bin/", 0o755), Dir("dev/", 0o755), Dir("etc/", 0o755), Dir("home/", 0o755),
		Dir("home/app/", 0o755).Owner(AppUID, AppGID), Dir("opt/", 0o755), Dir("opt/data/", 0o755),
		Dir("proc/", 0o555), Dir("root/", 0o700), Dir("run/", 0o755), Dir("sys/", 0o555),
		Dir("tmp/", 0o1777), Dir("usr/", 0o755), Dir("usr/bin/", 0o755), Dir("usr/local/", 0o755),
		Dir("usr/local/bin/", 0o755), Dir("var/", 0o755),
		BinaryFile("bin/busybox", 0o755, bb),
	}
	for _, a := range applets {
		entries = append(entries, Symlink("bin/"+a, "busybox"))
	}
	entries = append(entries,
		File("etc/passwd", 0o644, "root:x:0:0:root:/root:/bin/sh\napp:x:1000:1000:app:/home/app:/bin/sh\nnobody:x:65534:65534:nobody:/:/bin/false\n"),
		File("etc/group", 0o644, "root:x:0:\napp:x:1000:\nnogroup:x:65534:\n"),
		File("etc/hosts", 0o644, "127.0.0.1 localhost\n"),
		File(strings.TrimPrefix(ArchFile, "/"), 0o644, arch+"\n"),
		File(strings.TrimPrefix(WhitedOut, "/"), 0o644, "imagefix motd\n"),
		File(strings.TrimPrefix(Replaced, "/"), 0o644, ReplacedBefore),
		File("opt/data/a", 0o644, "a\n"),
		File("opt/data/b", 0o644, "b\n"),
	)
	return Image{
		Layers: []Layer{{Entries: entries}},
		Config: Config{
			Env:    []string{"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin"},
			Cmd:    []string{"/bin/sh"},
			Labels: map[string]string{"org.sandy.imagefix": "busybox"},
		},
		Arch: arch, Variant: variant,
	}
}

func readBusybox(t testing.TB) []byte {
	t.Helper()
	data, err := os.ReadFile(testutil.BusyboxPath)
	if err != nil {
		testutil.Skip(t, "reading %s: %v (apt-get install busybox-static)", testutil.BusyboxPath, err)
	}
	return data
}

func busyboxApplets(t testing.TB) []string {
	t.Helper()
	out, err := exec.Command(testutil.BusyboxPath, "--list").Output()
	if err != nil {
		testutil.Skip(t, "%s --list: %v (apt-get install busybox-static)", testutil.BusyboxPath, err)
	}
	var applets []string
	have := map[string]bool{}
	for _, a := range strings.Fields(string(out)) {
		if a != "busybox" && !strings.Contains(a, "/") {
			applets = append(applets, a)
			have[a] = true
		}
	}
	for _, need := range []string{"sh", "ls", "cat", "echo", "id", "stat", "true", "ping"} {
		if !have[need] {
			t.Fatalf("%s has no applet %q (busybox-static from Debian has it)", testutil.BusyboxPath, need)
		}
	}
	sort.Strings(applets)
	return applets
}

// BusyboxWithChanges is Busybox plus a second layer that deletes WhitedOut
// (whiteout), replaces Replaced, makes OpaqueDir opaque and adds c to it,
// adds OwnedFile (AppUID:AppGID), SetuidFile (04755), HardLink (to
// HardLinkTarget), AbsSymlink (→ /etc/passwd) and CapFile (busybox with
// security.capability = CapNetRawEP()).
func BusyboxWithChanges(t testing.TB) Image {
	t.Helper()
	img := Busybox(t)
	rel := func(p string) string { return strings.TrimPrefix(p, "/") }
	changes := Layer{Entries: []Entry{
		Dir("etc/", 0o755),
		Whiteout(rel(WhitedOut)),
		File(rel(Replaced), 0o644, ReplacedAfter),
		Dir("opt/data/", 0o755),
		Opaque(rel(OpaqueDir)),
		File(rel(HardLinkTarget), 0o644, "c\n"),
		Hardlink(rel(HardLink), rel(HardLinkTarget)),
		Dir("home/app/", 0o755).Owner(AppUID, AppGID),
		File(rel(OwnedFile), 0o640, "owned by app\n").Owner(AppUID, AppGID),
		Dir("usr/local/bin/", 0o755),
		File(rel(SetuidFile), 0o4755, "#!/bin/sh\nid -u\n"),
		BinaryFile(rel(CapFile), 0o755, readBusybox(t)).Xattr("security.capability", CapNetRawEP()),
		Symlink(rel(AbsSymlink), AbsSymlinkTarget),
	}}
	img.Layers = append(img.Layers, changes)
	img.Config.Labels = map[string]string{"org.sandy.imagefix": "busybox-with-changes"}
	return img
}

// BusyboxWithDevice is Busybox plus a layer with the character device
// DeviceFile (1:3, mode 0666), which a rootless store cannot mknod.
func BusyboxWithDevice(t testing.TB) Image {
	t.Helper()
	return Busybox(t).WithLayers(Layer{Entries: []Entry{
		Dir("dev/", 0o755),
		CharDevice(strings.TrimPrefix(DeviceFile, "/"), 0o666, 1, 3),
	}})
}

// MultiArch returns two busybox images for an index: the host's
// architecture first, then OtherArch() (its busybox binary is the host's;
// only ArchFile and the platform say arm64, so it must not be run).
func MultiArch(t testing.TB) []Image {
	t.Helper()
	return []Image{busyboxFor(t, runtime.GOARCH), busyboxFor(t, OtherArch())}
}

// WriteLayout is WriteOCILayout that fails the test on error.
func WriteLayout(t testing.TB, dir string, img Image) (digest string) {
	t.Helper()
	d, err := WriteOCILayout(dir, img)
	if err != nil {
		t.Fatalf("writing OCI layout %s: %v", dir, err)
	}
	return d
}

// EscapeName is the file name that the escaping layers try to create
// outside the root.
const EscapeName = "imagefix-escape"

// EscapeDotDotLayer has the entries ../imagefix-escape and
// ../../imagefix-escape: a safe extractor refuses them or keeps them
// inside the root.
func EscapeDotDotLayer() Layer {
	return Layer{Entries: []Entry{
		File("../"+EscapeName, 0o644, "escaped through ..\n"),
		File("../../"+EscapeName, 0o644, "escaped through ../..\n"),
	}}
}

// EscapeAbsoluteLayer has the entry /abs/imagefix-escape (an absolute
// name; tar extractors strip the / and keep it in the root).
func EscapeAbsoluteLayer() Layer {
	return Layer{Entries: []Entry{
		Dir("/abs/", 0o755),
		File("/abs/"+EscapeName, 0o644, "escaped through an absolute name\n"),
	}}
}

// EscapeSymlinkLayer has the symlink link → target ("/" when empty),
// then the file link/imagefix-escape written through it: an extractor
// that follows the link outside the root writes target/imagefix-escape.
// Pass a directory the test user can write (and then check) to make the
// escape observable.
func EscapeSymlinkLayer(target string) Layer {
	if target == "" {
		target = "/"
	}
	return Layer{Entries: []Entry{
		Symlink("link", target),
		File("link/"+EscapeName, 0o644, "escaped through a symlink\n"),
	}}
}

// EscapeHardlinkLayer has the hard link imagefix-escape → target
// ("../../outside" when empty): a safe extractor refuses a link whose
// target is outside the root. Pass an absolute path of a file the test
// owns to make the escape observable (its link count must stay 1).
func EscapeHardlinkLayer(target string) Layer {
	if target == "" {
		target = "../../outside"
	}
	return Layer{Entries: []Entry{Hardlink(EscapeName, target)}}
}

// BombSize is the uncompressed size of the gzip bomb of WriteBad.
const BombSize = 2 << 30

// GzipBombLayer is a gzip layer with one file of size zero bytes: a few
// KiB per MiB compressed (2 GiB → about 2 MiB), written in about a
// second per GiB (only the diff ID's hashing costs).
func GzipBombLayer(size int64) Layer {
	return Layer{Entries: []Entry{ZeroFile("bomb", 0o644, size)}}
}

// noiseLayer is a layer with one file, name, of incompressible bytes
// seeded by name: each name gives its own blob, so broken images in one
// layout do not share (and repair) each other's blobs.
func noiseLayer(name string, size int) Layer {
	var seed [32]byte
	copy(seed[:], "imagefix "+name)
	r := rand.New(rand.NewChaCha8(seed))
	body := make([]byte, size)
	for i := range body {
		body[i] = byte(r.Uint32())
	}
	return Layer{Entries: []Entry{BinaryFile(name, 0o644, body)}}
}

// Bad names a broken image that WriteBad writes.
type Bad string

// The broken images. Each is Busybox plus one bad top layer, so a store
// that applies layers one by one has something to clean up.
const (
	BadDotDot          Bad = "dotdot"           // EscapeDotDotLayer
	BadAbsolute        Bad = "absolute"         // EscapeAbsoluteLayer
	BadSymlinkWrite    Bad = "symlink-write"    // EscapeSymlinkLayer("/")
	BadHardlinkOutside Bad = "hardlink-outside" // EscapeHardlinkLayer("../../outside")
	BadGzipBomb        Bad = "gzip-bomb"        // GzipBombLayer(BombSize)
	BadDigestMismatch  Bad = "digest-mismatch"  // top layer blob changed after writing (same size)
	BadMissingBlob     Bad = "missing-blob"     // top layer blob removed
	BadTruncatedLayer  Bad = "truncated-layer"  // top layer gzip cut in half (digest matches the cut blob)
)

// AllBad lists every Bad.
func AllBad() []Bad {
	return []Bad{BadDotDot, BadAbsolute, BadSymlinkWrite, BadHardlinkOutside, BadGzipBomb,
		BadDigestMismatch, BadMissingBlob, BadTruncatedLayer}
}

// WriteBad writes the broken image kind into the OCI layout dir, tagged
// with string(kind), and returns that ref name (use oci:DIR:REF).
func WriteBad(t testing.TB, dir string, kind Bad) (refName string) {
	t.Helper()
	img := Busybox(t)
	img.RefName = string(kind)
	var top Layer
	switch kind {
	case BadDotDot:
		top = EscapeDotDotLayer()
	case BadAbsolute:
		top = EscapeAbsoluteLayer()
	case BadSymlinkWrite:
		top = EscapeSymlinkLayer("/")
	case BadHardlinkOutside:
		top = EscapeHardlinkLayer("")
	case BadGzipBomb:
		top = GzipBombLayer(BombSize)
	case BadDigestMismatch, BadMissingBlob:
		// Uncompressed: the changed byte leaves a valid tar, so only
		// the digest is wrong.
		top = noiseLayer(string(kind), 64<<10)
		top.Compression = "none"
	case BadTruncatedLayer:
		top = noiseLayer(string(kind), 256<<10)
		top.Truncated = true
	default:
		t.Fatalf("imagefix: unknown bad image %q", kind)
	}
	WriteLayout(t, dir, img.WithLayers(top))
	l, err := ReadLayout(dir, img.RefName)
	if err != nil {
		t.Fatal(err)
	}
	blob := l.BlobPath(l.Layers[len(l.Layers)-1].Digest)
	switch kind {
	case BadDigestMismatch:
		err = CorruptFile(blob)
	case BadMissingBlob:
		err = os.Remove(blob)
	}
	if err != nil {
		t.Fatalf("breaking %s: %v", kind, err)
	}
	return img.RefName
}

// CorruptFile inverts the byte in the middle of the file at p: same size,
// different digest.
func CorruptFile(p string) error {
	f, err := os.OpenFile(p, os.O_RDWR, 0)
	if err != nil {
		return fmt.Errorf("corrupting %s: %w", p, err)
	}
	defer f.Close()
	fi, err := f.Stat()
	if err != nil {
		return err
	}
	if fi.Size() == 0 {
		return fmt.Errorf("corrupting %s: empty file", p)
	}
	b := make([]byte, 1)
	off := fi.Size() / 2
	if _, err := f.ReadAt(b, off); err != nil {
		return fmt.Errorf("corrupting %s: %w", p, err)
	}
	b[0] ^= 0xff
	if _, err := f.WriteAt(b, off); err != nil {
		return fmt.Errorf("corrupting %s: %w", p, err)
	}
	return nil
}

// Truncate cuts the file at p (an archive, a blob) to half its size.
func Truncate(p string) error {
	fi, err := os.Stat(p)
	if err != nil {
		return fmt.Errorf("truncating %s: %w", p, err)
	}
	if err := os.Truncate(p, fi.Size()/2); err != nil {
		return fmt.Errorf("truncating %s: %w", p, err)
	}
	return nil
}
