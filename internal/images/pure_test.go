//go:build containers_image_openpgp

package images

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"testing"
)

func TestParsePlatform(t *testing.T) {
	for _, tc := range []struct {
		in                string
		os, arch, variant string
		bad               bool
	}{
		{in: "linux/amd64", os: "linux", arch: "amd64"},
		{in: "linux/arm64/v8", os: "linux", arch: "arm64", variant: "v8"},
		{in: "linux", bad: true},
		{in: "/amd64", bad: true},
		{in: "linux/", bad: true},
		{in: "a/b/c/d", bad: true},
	} {
		os, arch, variant, err := ParsePlatform(tc.in)
		if (err != nil) != tc.bad || os != tc.os || arch != tc.arch || variant != tc.variant {
			t.Errorf("ParsePlatform(%q) = %q %q %q %v", tc.in, os, arch, variant, err)
		}
	}
}

func TestSplitName(t *testing.T) {
	for in, want := range map[string][2]string{
		"docker.io/library/alpine:3": {"docker.io/library/alpine", "3"},
		"localhost:5000/a:latest":    {"localhost:5000/a", "latest"},
		"quay.io/a@sha256:0123456789012345678901234567890123456789012345678901234567890123": {"quay.io/a", "<none>"},
	} {
		r, tag := SplitName(in)
		if r != want[0] || tag != want[1] {
			t.Errorf("SplitName(%q) = %q %q, want %q", in, r, tag, want)
		}
	}
}

func TestHasTransport(t *testing.T) {
	for in, want := range map[string]bool{
		"docker://quay.io/a":     true,
		"oci:/tmp/dir:name":      true,
		"oci-archive:/tmp/a.tar": true,
		"docker-archive:/x.tar":  true,
		"dir:/tmp/x":             true,
		"localhost:5000/a":       false,
		"alpine":                 false,
		"alpine:3":               false,
		"quay.io/a:1":            false,
		"containers-storage:a:b": true,
		"nosuchtransport:/tmp/x": false,
	} {
		if got := hasTransport(in); got != want {
			t.Errorf("hasTransport(%q) = %v, want %v", in, got, want)
		}
	}
}

func TestCopyHint(t *testing.T) {
	for _, tc := range []struct {
		err  error
		want string
	}{
		{errors.New("reading manifest latest in 127.0.0.1:5000/x: manifest unknown"), "no such repository or tag"},
		{errors.New("unauthorized: authentication required"), "sandy login"},
		{errors.New("tls: failed to verify certificate: x509: certificate signed by unknown authority"), "certs.d"},
		{errors.New("http: server gave HTTP response to HTTPS client"), "--tls-verify=false"},
		{fmt.Errorf("pinging container registry: %w", syscall.ECONNREFUSED), "nothing listens"},
		{fmt.Errorf("writing blob: %w", syscall.ENOSPC), "disk"},
		{errors.New("Digest did not match, expected sha256:1, got sha256:2"), "does not match its digest"},
		{errors.New("choosing an image from manifest list docker://x/m:1: no image found in image index for architecture \"s390x\", variant \"\", OS \"linux\""), "--platform"},
		{errors.New("something else"), ""},
	} {
		got := copyHint(tc.err)
		if (tc.want == "") != (got == "") || !strings.Contains(got, tc.want) {
			t.Errorf("copyHint(%q) = %q, want it to mention %q", tc.err, got, tc.want)
		}
	}
}
