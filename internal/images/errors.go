//go:build containers_image_openpgp

package images

import (
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"go.podman.io/image/v5/docker"
)

// explainCopyError adds what happened, in the user's words, and the fix
// to a copy error: one message per failure a registry or an archive can
// produce, so `sandy pull` never prints a bare library error.
func explainCopyError(src string, err error) error {
	if hint := copyHint(err); hint != "" {
		return fmt.Errorf("copying %s: %w\nhint: %s", src, err, hint)
	}
	return fmt.Errorf("copying %s: %w", src, err)
}

// copyHint is the cause and fix for err, or "".
func copyHint(err error) string {
	var unauth docker.ErrUnauthorizedForCredentials
	var x509Unknown x509.UnknownAuthorityError
	var x509Host x509.HostnameError
	var x509Invalid x509.CertificateInvalidError
	var opErr *net.OpError
	msg := err.Error()
	switch {
	case errors.As(err, &unauth) || strings.Contains(msg, "unauthorized") || strings.Contains(msg, "authentication required"):
		return "the registry refused the credentials or wants some: sandy login REGISTRY (or --creds USER:PASSWORD, --authfile FILE)"
	case errors.As(err, &x509Unknown) || errors.As(err, &x509Invalid) || strings.Contains(msg, "certificate signed by unknown authority"):
		return "the registry's TLS certificate is not trusted: put its CA in ~/.config/containers/certs.d/HOST:PORT/ca.crt (or pass --cert-dir DIR); for a test registry only, --tls-verify=false"
	case errors.As(err, &x509Host):
		return "the registry's certificate is for another name: use the name it was issued for"
	case strings.Contains(msg, "server gave HTTP response to HTTPS client"):
		return "the registry speaks plain HTTP: --tls-verify=false, or insecure = true for it in registries.conf"
	case errors.Is(err, syscall.ECONNREFUSED):
		return "nothing listens at that address: is the registry running, and is the port right?"
	case errors.As(err, &opErr) && opErr.Op == "dial":
		return "the registry cannot be reached: check the name, the network and any proxy (HTTPS_PROXY)"
	case strings.Contains(msg, "manifest unknown") || strings.Contains(msg, "name unknown") || strings.Contains(msg, "not found"):
		return "the registry has no such repository or tag: check the name (sandy search is not implemented; the registry's web page or skopeo list-tags lists tags)"
	case strings.Contains(msg, "no image found in") || strings.Contains(msg, "choosing an image from manifest list"):
		return "the image has no variant for this platform: --platform OS/ARCH picks another (it will not run here without emulation)"
	case errors.Is(err, ErrBlobTooBig):
		return "a layer decompresses to more than --max-layer-size allows (a decompression bomb, or a big layer): if you trust the image, raise --max-layer-size or SANDY_MAX_LAYER_SIZE"
	case errors.Is(err, syscall.ENOSPC):
		return "the disk holding the image store is full: free space (sandy image prune, sandy rmi) or move the store (--storage-root, storage.conf graphroot)"
	case strings.Contains(msg, "Digest did not match") || strings.Contains(msg, "digest mismatch") || strings.Contains(msg, "does not match"):
		return "a blob's content does not match its digest: the registry or the archive is corrupt or was tampered with; nothing was stored"
	}
	return ""
}
