// Package imagefix makes the images and the registry that the tests of
// sandy's image commands (pull, load, save, push, images, rmi, run IMAGE)
// use: images built in the test from an in-memory description, never
// downloaded, and a local registry on 127.0.0.1. Nothing here reaches the
// internet.
//
// It is test support only: no sandy code imports it. It deliberately does
// not use go.podman.io/image or go.podman.io/storage (the code under test):
// the OCI layout, the layer tars and the archives are written with the
// standard library (archive/tar, compress/gzip, crypto/sha256) against the
// OCI image spec (image-layout.md, manifest.md, layer.md), and checked in
// this package's tests by Debian's skopeo, an independent reader that
// verifies every digest.
//
// # Images
//
// An Image is layers of tar Entries (File, Dir, Symlink, Hardlink,
// CharDevice, Whiteout, Opaque, ZeroFile; Owner and Xattr adjust one) plus
// a Config and a platform. Writers:
//
//   - WriteOCILayout (WriteLayout in a test) writes an OCI image layout
//     (oci-layout, index.json, blobs/sha256) that skopeo, podman and
//     go.podman.io/image read as oci:DIR:REF.
//   - MultiPlatform writes an image index of several platforms under one
//     ref name (MultiArch gives the host's architecture and OtherArch()).
//   - DockerArchive writes what `docker save` writes (manifest.json, config,
//     uncompressed layer tars), OCIArchive a tar of a layout; both
//     optionally gzip-compressed as a whole. Note: skopeo 1.9 and podman 4.3
//     (Debian 12) cannot read a gzip-compressed docker-archive; newer
//     go.podman.io/image can.
//
// Every entry has the modification time Epoch(), so a description always
// gives the same digests.
//
// The ready-made images, and what each lets a test prove:
//
//   - Busybox: the smallest image that runs: Debian's busybox-static with
//     all its applet links, /etc/passwd and /etc/group with root and app
//     (AppUID:AppGID). Pull, load, run, images, rmi.
//   - BusyboxWithChanges: a second layer that exercises layer application:
//     WhitedOut is deleted (whiteout), Replaced is rewritten, OpaqueDir is
//     opaque (only c and c-link remain), OwnedFile is owned by 1000:1000,
//     SetuidFile keeps 04755, HardLink shares an inode with HardLinkTarget,
//     AbsSymlink points to /etc/passwd (resolved inside the root), and
//     CapFile carries security.capability = cap_net_raw+ep (CapNetRawEP).
//     (Checked once by hand: podman 4.3.1 loading its docker-archive into a
//     vfs store gives exactly these files.)
//   - BusyboxWithDevice: a character device node, which a rootless store
//     cannot create.
//
// # Broken images
//
// WriteBad(t, dir, kind) writes Busybox plus one bad top layer, tagged
// string(kind), for each Bad in AllBad(); several kinds can share a layout.
// Each is broken only the way its name says (this package's TestBad proves
// it with skopeo):
//
//   - BadDotDot, BadAbsolute, BadSymlinkWrite, BadHardlinkOutside: valid
//     images whose layer entries try to leave the root (../imagefix-escape,
//     /abs/imagefix-escape, link → / then link/imagefix-escape, a hard link
//     to ../../outside). The Escape*Layer constructors take the target, so a
//     test can aim the escape at a directory it then checks stayed empty.
//   - BadGzipBomb: a valid image whose 2 MiB gzip layer holds a 2 GiB file
//     of zeros (BombSize; GzipBombLayer for other sizes). Written in about
//     1.5 s: the zeros are repeated precompressed gzip members.
//   - BadDigestMismatch: the top layer blob differs from its digest (same
//     size, a valid tar: only the digest check can catch it).
//   - BadMissingBlob: the manifest lists a layer blob that is absent.
//   - BadTruncatedLayer: the gzip layer is cut in half but its digest and
//     size describe the cut blob: only decompression finds it.
//
// Truncate halves a file (a truncated archive), CorruptFile flips a byte.
//
// # Registry
//
// StartRegistry runs Debian's docker-registry (distribution 2.8) on a free
// port of 127.0.0.1 with its storage in t.TempDir(), as whatever user runs
// the test (it works as the unprivileged test user), and stops it at the
// end of the test. RegistryOptions picks TLS (a CA and a server
// certificate for 127.0.0.1 and localhost made with crypto/x509; clients
// trust it with --cert-dir Registry.CertDir, or through the certs.d tree
// filepath.Dir(CertDir)) or plain HTTP (--tls-verify=false), and basic auth
// (htpasswd, bcrypt) with Registry.User and Registry.Password. Registry.Stop
// takes it down early (a "registry down" test); CorruptBlob and RemoveBlob
// damage what it serves. PushOCILayout and PushOCILayoutZstd fill it with
// `skopeo copy` (the second recompresses the layers as zstd; an index is
// pushed whole). RegistriesConf and AuthJSON give a registries.conf (the
// registry as unqualified-search registry, insecure when plain HTTP) and an
// auth.json for it, to test the client's own configuration rather than
// flags. SkopeoFlags gives the flags that reach it.
//
// # Use from an integration test
//
//	func TestPullWhiteouts(t *testing.T) {
//		if testutil.AsUser(t) {
//			return
//		}
//		reg := imagefix.StartRegistry(t, imagefix.RegistryOptions{TLS: true, Auth: true})
//		layout := t.TempDir()
//		imagefix.WriteLayout(t, layout, imagefix.BusyboxWithChanges(t))
//		ref := imagefix.PushOCILayout(t, reg, layout, "latest", "test/changes:v1")
//		// sandy login -u reg.User -p reg.Password --cert-dir reg.CertDir ...
//		// sandy pull --cert-dir reg.CertDir ref, then sandy run ref cat /etc/issue
//		// and compare with imagefix.ReplacedAfter.
//	}
//
// Helpers that need a tool skip through testutil.RequireBinary (a failure
// under CI=true): docker-registry and skopeo (hack/test.sh installs them),
// busybox-static for the busybox images.
package imagefix
