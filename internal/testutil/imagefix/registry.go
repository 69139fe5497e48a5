package imagefix

import (
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/tls"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"math/big"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"golang.org/x/crypto/bcrypt"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// RegistryOptions says how StartRegistry configures the registry.
type RegistryOptions struct {
	// TLS serves HTTPS with a certificate for 127.0.0.1 and localhost
	// signed by a CA made for this registry (Registry.CAFile); otherwise
	// plain HTTP (clients need --tls-verify=false or registries.conf
	// insecure = true).
	TLS bool
	// Auth requires HTTP basic auth (htpasswd, bcrypt) as User/Password;
	// empty ones become "sandy" and a random password.
	Auth           bool
	User, Password string
}

// Registry is a running docker-registry (distribution 2.8) for one test.
type Registry struct {
	// Addr is "127.0.0.1:PORT"; images are ADDR/NAME:TAG.
	Addr string
	// CertDir holds ca.crt (TLS only), as --cert-dir of skopeo and podman
	// expects; it is named after Addr inside a certs.d tree, so
	// filepath.Dir(CertDir) works as a certs.d directory
	// (containers-certs.d(5)). CAFile is CertDir/ca.crt.
	CertDir, CAFile string
	// User and Password are the credentials (Auth only).
	User, Password string
	// Root is the registry's storage directory.
	Root string

	logPath string
	cmd     *exec.Cmd
	done    chan struct{} // closed when the process has exited
	stop    sync.Once
}

// StartRegistry starts Debian's docker-registry on a free port of
// 127.0.0.1 with its storage in a temporary directory, waits until GET
// /v2/ answers (200, or 401 with Auth), and stops it when the test ends. It
// skips (fails on CI) when docker-registry is missing, and fails with the
// registry's log when it does not come up.
func StartRegistry(t testing.TB, o RegistryOptions) *Registry {
	t.Helper()
	bin := testutil.RequireBinary(t, "docker-registry", "apt-get install docker-registry")
	dir := t.TempDir()
	r := &Registry{Root: filepath.Join(dir, "storage")}
	var tlsFiles *tlsFiles
	if o.TLS {
		var err error
		if tlsFiles, err = writeTLS(filepath.Join(dir, "tls")); err != nil {
			t.Fatalf("making registry certificates: %v", err)
		}
	}
	var htpasswd string
	if o.Auth {
		r.User, r.Password = o.User, o.Password
		if r.User == "" {
			r.User = "sandy"
		}
		if r.Password == "" {
			r.Password = randomHex(12)
		}
		htpasswd = filepath.Join(dir, "htpasswd")
		if err := writeHtpasswd(htpasswd, r.User, r.Password); err != nil {
			t.Fatalf("writing htpasswd: %v", err)
		}
	}
	// The port is picked by binding :0 and closing it, then handed to the
	// registry; another process may take it in between, so retry.
	var lastErr error
	for attempt := 0; attempt < 3; attempt++ {
		addr, err := freePort()
		if err != nil {
			t.Fatalf("finding a free port: %v", err)
		}
		r.Addr = addr
		r.logPath = filepath.Join(dir, fmt.Sprintf("registry-%d.log", attempt))
		cfg := filepath.Join(dir, "config.yml")
		if err := os.WriteFile(cfg, []byte(registryConfig(addr, r.Root, tlsFiles, htpasswd)), 0o644); err != nil {
			t.Fatal(err)
		}
		if lastErr = r.start(bin, cfg); lastErr != nil {
			t.Fatalf("starting %s: %v", bin, lastErr)
		}
		if lastErr = r.waitReady(tlsFiles, 15*time.Second); lastErr == nil {
			break
		}
		r.Stop()
		if !strings.Contains(r.Log(), "address already in use") {
			break
		}
	}
	if lastErr != nil {
		t.Fatalf("docker-registry on %s did not come up: %v\nregistry log:\n%s", r.Addr, lastErr, r.Log())
	}
	t.Cleanup(r.Stop)
	if o.TLS {
		r.CertDir = filepath.Join(dir, "certs.d", r.Addr)
		r.CAFile = filepath.Join(r.CertDir, "ca.crt")
		if err := os.MkdirAll(r.CertDir, 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(r.CAFile, tlsFiles.caPEM, 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *Registry) start(bin, cfg string) error {
	logf, err := os.OpenFile(r.logPath, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer logf.Close()
	cmd := exec.Command(bin, "serve", cfg)
	cmd.Stdout, cmd.Stderr = logf, logf
	// Pdeathsig kills the registry when the test binary dies (a timeout's
	// panic), but it fires when the starting *thread* exits: start and wait
	// on a goroutine locked to its thread, which lives as long as the
	// registry does (PR_SET_PDEATHSIG in prctl(2)).
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
	done := make(chan struct{})
	started := make(chan error, 1)
	go func() {
		runtime.LockOSThread()
		defer runtime.UnlockOSThread()
		if err := cmd.Start(); err != nil {
			started <- err
			close(done)
			return
		}
		started <- nil
		_ = cmd.Wait()
		close(done)
	}()
	if err := <-started; err != nil {
		return err
	}
	r.cmd, r.done, r.stop = cmd, done, sync.Once{}
	return nil
}

func (r *Registry) waitReady(tf *tlsFiles, timeout time.Duration) error {
	client := &http.Client{Timeout: 2 * time.Second}
	scheme := "http"
	if tf != nil {
		pool := x509.NewCertPool()
		pool.AppendCertsFromPEM(tf.caPEM)
		client.Transport = &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
		scheme = "https"
	}
	defer client.CloseIdleConnections()
	deadline := time.Now().Add(timeout)
	var lastErr error
	for time.Now().Before(deadline) {
		select {
		case <-r.done:
			return fmt.Errorf("docker-registry exited: %v", r.cmd.ProcessState)
		default:
		}
		// Only our registry counts: another process may have taken the
		// port between freePort and the registry's bind.
		if !strings.Contains(r.Log(), "listening on "+r.Addr) {
			lastErr = errors.New("not listening yet")
			time.Sleep(50 * time.Millisecond)
			continue
		}
		resp, err := client.Get(scheme + "://" + r.Addr + "/v2/")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == http.StatusOK || resp.StatusCode == http.StatusUnauthorized {
				return nil
			}
			err = fmt.Errorf("GET /v2/: %s", resp.Status)
		}
		lastErr = err
		time.Sleep(50 * time.Millisecond)
	}
	return fmt.Errorf("no answer within %v: %v", timeout, lastErr)
}

// Stop stops the registry (SIGTERM, then SIGKILL after 5 s) and waits for
// it; it is safe to call more than once. Tests of "registry down" call it
// early; t.Cleanup calls it anyway.
func (r *Registry) Stop() {
	r.stop.Do(func() {
		if r.cmd == nil || r.cmd.Process == nil {
			return
		}
		_ = r.cmd.Process.Signal(syscall.SIGTERM)
		select {
		case <-r.done:
		case <-time.After(5 * time.Second):
			_ = r.cmd.Process.Kill()
			<-r.done
		}
	})
}

// Log returns what the registry has logged so far.
func (r *Registry) Log() string {
	data, err := os.ReadFile(r.logPath)
	if err != nil {
		return fmt.Sprintf("(reading %s: %v)", r.logPath, err)
	}
	return string(data)
}

// Ref returns ADDR/name (name is NAME:TAG or NAME@DIGEST).
func (r *Registry) Ref(name string) string { return r.Addr + "/" + name }

// SkopeoFlags returns the skopeo flags that reach this registry, for the
// side prefix ("dest" or "src"; "" for inspect): TLS verification with
// CertDir for a TLS registry, --tls-verify=false for plain HTTP, and the
// credentials with Auth.
func (r *Registry) SkopeoFlags(prefix string) []string {
	p := "--"
	if prefix != "" {
		p += prefix + "-"
	}
	var flags []string
	if r.CertDir != "" {
		flags = append(flags, p+"tls-verify=true", p+"cert-dir="+r.CertDir)
	} else {
		flags = append(flags, p+"tls-verify=false")
	}
	if r.User != "" {
		flags = append(flags, p+"creds="+r.User+":"+r.Password)
	}
	return flags
}

// BlobPath is where the registry stores the blob with digest
// ("sha256:HEX"): distribution's filesystem driver layout
// docker/registry/v2/blobs/sha256/HE/HEX/data.
func (r *Registry) BlobPath(digest string) string {
	hex := strings.TrimPrefix(digest, "sha256:")
	if len(hex) < 2 {
		return ""
	}
	return filepath.Join(r.Root, "docker", "registry", "v2", "blobs", "sha256", hex[:2], hex, "data")
}

// CorruptBlob changes one byte of a stored blob (same size): a pull then
// gets content that does not match its digest.
func (r *Registry) CorruptBlob(digest string) error { return CorruptFile(r.BlobPath(digest)) }

// RemoveBlob deletes a stored blob: a manifest then points at a blob the
// registry answers 404 for.
func (r *Registry) RemoveBlob(digest string) error {
	if err := os.Remove(r.BlobPath(digest)); err != nil {
		return fmt.Errorf("removing blob %s from the registry: %w", digest, err)
	}
	return nil
}

// RegistriesConf returns a registries.conf (containers-registries.conf(5),
// version 2) that makes this registry the only unqualified-search registry
// and, for plain HTTP, marks it insecure; write it where the client under
// test reads it (CONTAINERS_REGISTRIES_CONF for go.podman.io/image; skopeo
// 1.9 ignores that variable and takes a hidden --registries-conf).
func (r *Registry) RegistriesConf() string {
	insecure := r.CertDir == ""
	return fmt.Sprintf("unqualified-search-registries = [%q]\n\n[[registry]]\nlocation = %q\ninsecure = %t\n", r.Addr, r.Addr, insecure)
}

// AuthJSON returns an auth file (containers-auth.json(5)) with this
// registry's credentials, for --authfile or REGISTRY_AUTH_FILE; "" without
// Auth.
func (r *Registry) AuthJSON() string {
	if r.User == "" {
		return ""
	}
	auth := base64.StdEncoding.EncodeToString([]byte(r.User + ":" + r.Password))
	return fmt.Sprintf("{\"auths\":{%q:{\"auth\":%q}}}\n", r.Addr, auth)
}

// PushOCILayout copies refName of the OCI layout layoutDir into the
// registry as dest (NAME:TAG) with `skopeo copy`, and returns ADDR/dest.
// An index (MultiPlatform) is copied whole (--all). It skips (fails on CI)
// without skopeo and fails with skopeo's output.
func PushOCILayout(t testing.TB, reg *Registry, layoutDir, refName, dest string) string {
	t.Helper()
	return push(t, reg, layoutDir, refName, dest)
}

// PushOCILayoutZstd is PushOCILayout with every layer recompressed as zstd
// (an OCI manifest with tar+zstd layers).
func PushOCILayoutZstd(t testing.TB, reg *Registry, layoutDir, refName, dest string) string {
	t.Helper()
	return push(t, reg, layoutDir, refName, dest, "--format=oci", "--dest-compress-format=zstd")
}

func push(t testing.TB, reg *Registry, layoutDir, refName, dest string, extra ...string) string {
	t.Helper()
	args := append([]string{"copy", "--quiet"}, reg.SkopeoFlags("dest")...)
	l, err := ReadLayout(layoutDir, refName)
	if err != nil {
		t.Fatalf("pushing %s:%s: %v", layoutDir, refName, err)
	}
	if l.Manifest.MediaType == MediaTypeIndex {
		args = append(args, "--all")
	}
	args = append(args, extra...)
	args = append(args, "oci:"+layoutDir+":"+refName, "docker://"+reg.Ref(dest))
	Skopeo(t, args...)
	return reg.Ref(dest)
}

// Skopeo runs skopeo with args (after --insecure-policy, so that no
// policy.json is needed) and returns its output; a failure fails the test
// with the output and the registry-independent argv.
func Skopeo(t testing.TB, args ...string) string {
	t.Helper()
	out, err := SkopeoCmd(t, args...).CombinedOutput()
	if err != nil {
		t.Fatalf("skopeo %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// SkopeoCmd returns the command skopeo --insecure-policy ARGS, for tests
// that expect it to fail. It skips (fails on CI) without skopeo.
func SkopeoCmd(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	bin := testutil.RequireBinary(t, "skopeo", "apt-get install skopeo")
	return exec.Command(bin, append([]string{"--insecure-policy"}, args...)...)
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	addr := l.Addr().String()
	return addr, l.Close()
}

func registryConfig(addr, root string, tf *tlsFiles, htpasswd string) string {
	var b strings.Builder
	fmt.Fprintf(&b, "version: 0.1\nlog:\n  level: info\n  accesslog:\n    disabled: true\n")
	fmt.Fprintf(&b, "storage:\n  filesystem:\n    rootdirectory: %q\n  delete:\n    enabled: true\n", root)
	fmt.Fprintf(&b, "http:\n  addr: %q\n  secret: %q\n", addr, randomHex(16))
	if tf != nil {
		fmt.Fprintf(&b, "  tls:\n    certificate: %q\n    key: %q\n", tf.cert, tf.key)
	}
	if htpasswd != "" {
		fmt.Fprintf(&b, "auth:\n  htpasswd:\n    realm: imagefix\n    path: %q\n", htpasswd)
	}
	return b.String()
}

func writeHtpasswd(p, user, password string) error {
	// MinCost: the registry checks the hash on every request.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.MinCost)
	if err != nil {
		return err
	}
	return os.WriteFile(p, []byte(user+":"+string(hash)+"\n"), 0o644)
}

func randomHex(n int) string {
	b := make([]byte, n)
	_, _ = rand.Read(b)
	return fmt.Sprintf("%x", b)
}

type tlsFiles struct {
	cert, key string // server certificate and key files
	caPEM     []byte
}

// writeTLS makes a CA and a server certificate for 127.0.0.1 and
// localhost signed by it, valid for a day, and writes the server's files
// into dir.
func writeTLS(dir string) (*tlsFiles, error) {
	if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	now := time.Now()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	caTmpl := &x509.Certificate{
		SerialNumber:          big.NewInt(1),
		Subject:               pkix.Name{CommonName: "imagefix test CA"},
		NotBefore:             now.Add(-time.Hour),
		NotAfter:              now.Add(24 * time.Hour),
		KeyUsage:              x509.KeyUsageCertSign | x509.KeyUsageCRLSign,
		BasicConstraintsValid: true,
		IsCA:                  true,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, caTmpl, caTmpl, &caKey.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	ca, err := x509.ParseCertificate(caDER)
	if err != nil {
		return nil, err
	}
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		return nil, err
	}
	tmpl := &x509.Certificate{
		SerialNumber: big.NewInt(2),
		Subject:      pkix.Name{CommonName: "127.0.0.1"},
		NotBefore:    now.Add(-time.Hour),
		NotAfter:     now.Add(24 * time.Hour),
		KeyUsage:     x509.KeyUsageDigitalSignature,
		ExtKeyUsage:  []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth},
		IPAddresses:  []net.IP{net.IPv4(127, 0, 0, 1), net.IPv6loopback},
		DNSNames:     []string{"localhost"},
	}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
	if err != nil {
		return nil, err
	}
	keyDER, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		return nil, err
	}
	tf := &tlsFiles{
		cert:  filepath.Join(dir, "server.crt"),
		key:   filepath.Join(dir, "server.key"),
		caPEM: pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: caDER}),
	}
	certPEM := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der})
	keyPEM := pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: keyDER})
	return tf, errors.Join(os.WriteFile(tf.cert, certPEM, 0o644), os.WriteFile(tf.key, keyPEM, 0o600))
}
