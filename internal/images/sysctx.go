//go:build containers_image_openpgp

package images

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"strings"

	"go.podman.io/image/v5/signature"
	"go.podman.io/image/v5/types"
)

// Remote holds the flags that reach a registry, with podman's names:
// --tls-verify, --cert-dir, --authfile, --creds, --platform/--os/--arch/--variant.
type Remote struct {
	// TLSVerify: nil keeps registries.conf's setting (insecure = true
	// there turns verification off), false turns it off.
	TLSVerify         *bool
	CertDir           string
	AuthFile          string
	Creds             string // USER[:PASSWORD]
	Platform          string // OS/ARCH[/VARIANT]
	OS, Arch, Variant string
	// PolicyPath: --signature-policy; "" reads policy.json where podman does.
	PolicyPath string
	// RegistriesConf: --registries-conf (tests); "" reads registries.conf
	// where podman does.
	RegistriesConf string
	// TmpDir is where blobs are staged before they become layers; ""
	// is $TMPDIR, else /var/tmp (podman's image_copy_tmp_dir default).
	// The helper gives each process a private one (PrivateTmpDir), so
	// that what a stopped copy staged can be removed without touching
	// the staging of other processes.
	TmpDir string
}

// PrivateTmpDir makes a directory for one process's staged blobs under
// $TMPDIR, else /var/tmp; the caller removes it.
func PrivateTmpDir() (string, error) {
	base := os.Getenv("TMPDIR")
	if base == "" {
		base = "/var/tmp"
	}
	d, err := os.MkdirTemp(base, "sandy-image-")
	if err != nil {
		return "", fmt.Errorf("making a staging directory for blobs: %w (set TMPDIR to a writable directory on a disk with room)", err)
	}
	return d, nil
}

// bigFilesDir is where the image library stages blobs for r.
func bigFilesDir(tmp string) string {
	if tmp != "" {
		return tmp
	}
	return os.Getenv("TMPDIR")
}

// SystemContext turns r into the library's SystemContext.
func (r Remote) SystemContext() (*types.SystemContext, error) {
	sys := &types.SystemContext{
		DockerCertPath:           r.CertDir,
		AuthFilePath:             r.AuthFile,
		SignaturePolicyPath:      r.PolicyPath,
		SystemRegistriesConfPath: r.RegistriesConf,
		OSChoice:                 r.OS,
		ArchitectureChoice:       r.Arch,
		VariantChoice:            r.Variant,
		// podman's user agent shape, so registry logs make sense.
		DockerRegistryUserAgent: "sandy",
		// Blobs are staged here before they become layers.
		BigFilesTemporaryDir: bigFilesDir(r.TmpDir),
	}
	if r.TLSVerify != nil {
		sys.DockerInsecureSkipTLSVerify = types.NewOptionalBool(!*r.TLSVerify)
		sys.OCIInsecureSkipTLSVerify = !*r.TLSVerify
	}
	if r.Platform != "" {
		goos, arch, variant, err := ParsePlatform(r.Platform)
		if err != nil {
			return nil, err
		}
		sys.OSChoice, sys.ArchitectureChoice, sys.VariantChoice = goos, arch, variant
	}
	if r.Creds != "" {
		user, pass, _ := strings.Cut(r.Creds, ":")
		if user == "" {
			return nil, fmt.Errorf("--creds %q: no user name (USER[:PASSWORD])", r.Creds)
		}
		sys.DockerAuthConfig = &types.DockerAuthConfig{Username: user, Password: pass}
	}
	return sys, nil
}

// ParsePlatform splits OS/ARCH[/VARIANT], as podman's --platform.
func ParsePlatform(p string) (os, arch, variant string, err error) {
	parts := strings.Split(p, "/")
	if len(parts) < 2 || len(parts) > 3 || parts[0] == "" || parts[1] == "" {
		return "", "", "", fmt.Errorf("--platform %q: want OS/ARCH[/VARIANT], e.g. linux/arm64/v8", p)
	}
	if len(parts) == 3 {
		variant = parts[2]
	}
	return parts[0], parts[1], variant, nil
}

// defaultPolicy is what Debian's and Fedora's containers-common ship in
// /etc/containers/policy.json. A static sandy must work on a machine that
// has no containers-common; a policy.json found anywhere podman looks
// (CONTAINERS_POLICY_JSON, ~/.config/containers, /etc/containers) always
// wins, signed-image rules included.
const defaultPolicy = `{"default":[{"type":"insecureAcceptAnything"}],"transports":{"docker-daemon":{"":[{"type":"insecureAcceptAnything"}]}}}`

// PolicyContext is the signature policy for a copy.
func PolicyContext(sys *types.SystemContext) (*signature.PolicyContext, error) {
	p, err := signature.DefaultPolicy(sys)
	if errors.Is(err, fs.ErrNotExist) && sys.SignaturePolicyPath == "" {
		p, err = signature.NewPolicyFromBytes([]byte(defaultPolicy))
	}
	if err != nil {
		return nil, fmt.Errorf("reading the signature policy (policy.json): %w", err)
	}
	return signature.NewPolicyContext(p)
}
