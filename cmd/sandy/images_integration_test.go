//go:build integration

package main_test

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// imgEnv is one test's private image store: a storage.conf (honoured
// through CONTAINERS_STORAGE_CONF, as podman honours it), registries.conf
// and auth file in a temporary directory.
type imgEnv struct {
	t     *testing.T
	sandy string
	dir   string
	env   []string
}

func newImgEnv(t *testing.T) *imgEnv {
	t.Helper()
	testutil.RequireBinary(t, "newuidmap", "apt-get install uidmap")
	dir := testutil.TempDir(t)
	e := &imgEnv{t: t, sandy: testutil.SandyWithImages(t), dir: dir}
	conf := filepath.Join(dir, "storage.conf")
	body := fmt.Sprintf("[storage]\ngraphroot = %q\nrunroot = %q\n", filepath.Join(dir, "graph"), filepath.Join(dir, "run"))
	e.write(conf, body)
	e.write(filepath.Join(dir, "registries.conf"), "")
	e.write(filepath.Join(dir, "auth.json"), `{"auths":{}}`+"\n")
	e.env = append(os.Environ(), "CONTAINERS_STORAGE_CONF="+conf,
		"CONTAINERS_REGISTRIES_CONF="+filepath.Join(dir, "registries.conf"),
		"REGISTRY_AUTH_FILE="+filepath.Join(dir, "auth.json"))
	t.Cleanup(func() {
		// Layers hold files owned by subordinate ids: remove them from
		// inside the namespace, as a user would (rmi -a -f).
		_ = e.cmd("rmi", "-a", "-f").Run()
		// And the store's pause process of the test's environment
		// (its TMPDIR or XDG_RUNTIME_DIR may be the test's own).
		_ = e.cmd("system", "migrate").Run()
	})
	return e
}

func (e *imgEnv) write(p, body string) {
	e.t.Helper()
	if err := os.WriteFile(p, []byte(body), 0o644); err != nil {
		e.t.Fatal(err)
	}
}

func (e *imgEnv) cmd(args ...string) *exec.Cmd {
	c := exec.Command(e.sandy, args...)
	c.Env = e.env
	return c
}

// sandy runs sandy with args and returns its output and exit status.
func (e *imgEnv) run_(stdin []byte, args ...string) result {
	e.t.Helper()
	c := e.cmd(args...)
	var out, errb bytes.Buffer
	c.Stdout, c.Stderr = &out, &errb
	if stdin != nil {
		c.Stdin = bytes.NewReader(stdin)
	}
	done := make(chan error, 1)
	if err := c.Start(); err != nil {
		e.t.Fatal(err)
	}
	go func() { done <- c.Wait() }()
	select {
	case <-done:
	case <-time.After(3 * time.Minute):
		_ = c.Process.Kill()
		<-done
		e.t.Fatalf("sandy %v: timed out\nstderr: %s", args, errb.String())
	}
	return result{stdout: out.String(), stderr: errb.String(), code: c.ProcessState.ExitCode()}
}

// ok runs sandy and fails the test unless it exits 0.
func (e *imgEnv) ok(args ...string) string {
	e.t.Helper()
	r := e.run_(nil, args...)
	if r.code != 0 {
		e.t.Fatalf("sandy %v: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
	}
	return r.stdout
}

// fails runs sandy, wants exit status code, and returns stderr.
func (e *imgEnv) fails(code int, args ...string) string {
	e.t.Helper()
	r := e.run_(nil, args...)
	if r.code != code {
		e.t.Fatalf("sandy %v: exit %d, want %d\nstdout: %s\nstderr: %s", args, r.code, code, r.stdout, r.stderr)
	}
	return r.stderr
}

// names is `sandy images --format {{.Repository}}:{{.Tag}}`, sorted by the store.
func (e *imgEnv) names() []string {
	e.t.Helper()
	return strings.Fields(e.ok("images", "--format", "{{.Repository}}:{{.Tag}}"))
}

func (e *imgEnv) wantNames(want ...string) {
	e.t.Helper()
	got := e.names()
	if strings.Join(got, " ") != strings.Join(want, " ") {
		e.t.Fatalf("sandy images: got %q, want %q", got, want)
	}
}

func (e *imgEnv) inspect(name string) map[string]any {
	e.t.Helper()
	var out []map[string]any
	if err := json.Unmarshal([]byte(e.ok("image", "inspect", name)), &out); err != nil || len(out) != 1 {
		e.t.Fatalf("image inspect %s: %v (%d records)", name, err, len(out))
	}
	return out[0]
}

// subID is the host id that container id n maps to in the store's user
// namespace: 0 is the caller, 1..N the subordinate range (podman's map).
func subID(t *testing.T, file string, n int) int {
	t.Helper()
	b, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	name := testutil.TestUserName()
	for _, line := range strings.Split(string(b), "\n") {
		f := strings.Split(line, ":")
		if len(f) == 3 && (f[0] == name || f[0] == fmt.Sprint(os.Getuid())) {
			var start int
			fmt.Sscan(f[1], &start)
			return start + n - 1
		}
	}
	t.Fatalf("%s has no range for %s", file, name)
	return 0
}

func TestImagePullFromRegistryTLSAndAuth(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	reg := imagefix.StartRegistry(t, imagefix.RegistryOptions{TLS: true, Auth: true})
	layout := filepath.Join(e.dir, "layout")
	imagefix.WriteLayout(t, layout, imagefix.BusyboxWithChanges(t))
	ref := imagefix.PushOCILayout(t, reg, layout, "latest", "bb:1")
	certs := filepath.Dir(reg.CertDir)
	creds := reg.User + ":" + reg.Password

	// Each failure is its own message with the fix, and stores nothing.
	if msg := e.fails(125, "pull", "--cert-dir", reg.CertDir, ref); !strings.Contains(msg, "sandy login") {
		t.Errorf("pull without credentials: want the login hint, got %s", msg)
	}
	if msg := e.fails(125, "pull", "--cert-dir", reg.CertDir, "--creds", reg.User+":wrong", ref); !strings.Contains(msg, "refused the credentials") {
		t.Errorf("wrong password: got %s", msg)
	}
	if msg := e.fails(125, "pull", "--creds", creds, ref); !strings.Contains(msg, "certs.d") {
		t.Errorf("untrusted certificate: want the certs.d hint, got %s", msg)
	}
	if msg := e.fails(125, "pull", "--cert-dir", reg.CertDir, "--creds", creds, reg.Ref("bb:nosuchtag")); !strings.Contains(msg, "no such repository or tag") {
		t.Errorf("unknown tag: got %s", msg)
	}
	e.wantNames()

	id := strings.TrimSpace(e.ok("pull", "-q", "--cert-dir", reg.CertDir, "--creds", creds, ref))
	if len(id) != 64 {
		t.Fatalf("pull -q printed %q, want the image id", id)
	}
	e.wantNames(reg.Addr + "/bb:1")
	in := e.inspect(ref)
	if in["Id"] != id || in["Architecture"] != runtime.GOARCH || in["Os"] != "linux" {
		t.Fatalf("inspect: id %v arch %v os %v", in["Id"], in["Architecture"], in["Os"])
	}
	// --tls-verify=false reaches the TLS registry without its CA.
	e.ok("pull", "-q", "--tls-verify=false", "--creds", creds, ref)
	_ = certs

	// The top layer as stored: owners shifted by podman's map, mode bits,
	// hard links and the capability xattr kept.
	upper := inspectString(t, e, ref, "{{.GraphDriver.Data.UpperDir}}")
	if upper == "" || upper == "<no value>" {
		t.Fatalf("no UpperDir in inspect (driver %s)", inspectString(t, e, ref, "{{.GraphDriver.Name}}"))
	}
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, imagefix.OwnedFile), &st); err != nil {
		t.Fatal(err)
	}
	if want := subID(t, "/etc/subuid", imagefix.AppUID); int(st.Uid) != want {
		t.Errorf("%s: host owner %d, want %d (container uid 1000 through the subuid map)", imagefix.OwnedFile, st.Uid, want)
	}
	if err := unix.Lstat(filepath.Join(upper, imagefix.SetuidFile), &st); err != nil || st.Mode&unix.S_ISUID == 0 {
		t.Errorf("%s: setuid bit lost (mode %o, %v)", imagefix.SetuidFile, st.Mode, err)
	}
	if err := unix.Lstat(filepath.Join(upper, imagefix.HardLink), &st); err != nil || st.Nlink != 2 {
		t.Errorf("%s: want 2 links, got %d (%v)", imagefix.HardLink, st.Nlink, err)
	}
	if target, err := os.Readlink(filepath.Join(upper, imagefix.AbsSymlink)); err != nil || target != imagefix.AbsSymlinkTarget {
		t.Errorf("%s: %q %v", imagefix.AbsSymlink, target, err)
	}
	buf := make([]byte, 64)
	if n, err := unix.Lgetxattr(filepath.Join(upper, imagefix.CapFile), "security.capability", buf); err != nil || n < 20 {
		t.Errorf("%s: security.capability not stored (%d bytes, %v)", imagefix.CapFile, n, err)
	}
}

func inspectString(t *testing.T, e *imgEnv, name, tmpl string) string {
	t.Helper()
	return strings.TrimSpace(e.ok("image", "inspect", "--format", tmpl, name))
}

func TestImagePullPlainHTTPShortNameAndLogin(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	reg := imagefix.StartRegistry(t, imagefix.RegistryOptions{Auth: true})
	layout := filepath.Join(e.dir, "layout")
	imagefix.WriteLayout(t, layout, imagefix.Busybox(t))
	imagefix.PushOCILayout(t, reg, layout, "latest", "tools/bb:2")
	imagefix.PushOCILayoutZstd(t, reg, layout, "latest", "tools/bbzstd:1")
	e.write(filepath.Join(e.dir, "registries.conf"), reg.RegistriesConf())

	// Plain HTTP needs insecure = true in registries.conf (written above)
	// or --tls-verify=false; the short name resolves through
	// unqualified-search-registries.
	e.fails(125, "pull", "tools/bb:2") // no credentials yet
	r := e.run_([]byte(reg.Password+"\n"), "login", "-u", reg.User, "--password-stdin", reg.Addr)
	if r.code != 0 || !strings.Contains(r.stdout, "Login Succeeded") {
		t.Fatalf("login: exit %d %s %s", r.code, r.stdout, r.stderr)
	}
	if b, err := os.ReadFile(filepath.Join(e.dir, "auth.json")); err != nil || !strings.Contains(string(b), reg.Addr) {
		t.Fatalf("auth.json after login: %s %v", b, err)
	}
	r = e.run_([]byte("wrong\n"), "login", "-u", reg.User, "--password-stdin", reg.Addr)
	if r.code == 0 {
		t.Fatalf("login with a wrong password succeeded")
	}
	e.ok("pull", "-q", "tools/bb:2")
	e.ok("pull", "-q", "tools/bbzstd:1")
	e.wantNames(reg.Addr+"/tools/bbzstd:1", reg.Addr+"/tools/bb:2")
	// Local lookups of a short name find the pulled image.
	e.ok("image", "exists", "tools/bb:2")
	if r := e.run_(nil, "image", "exists", "nosuch"); r.code != 1 || r.stderr != "" {
		t.Fatalf("image exists nosuch: exit %d, stderr %q; want 1 and nothing", r.code, r.stderr)
	}
	// push: to the registry under a new name (credentials from login),
	// then a second store pulls it back with the same id.
	r = e.run_(nil, "push", "tools/bb:2", reg.Addr+"/pushed/bb:9")
	if r.code != 0 || !strings.Contains(r.stderr, "Writing manifest") {
		t.Fatalf("push: exit %d\n%s", r.code, r.stderr)
	}
	e2 := newImgEnv(t)
	e2.write(filepath.Join(e2.dir, "registries.conf"), reg.RegistriesConf())
	e2.ok("pull", "-q", "--creds", reg.User+":"+reg.Password, reg.Addr+"/pushed/bb:9")
	if a, b := inspectString(t, e, "tools/bb:2", "{{.Id}}"), inspectString(t, e2, reg.Addr+"/pushed/bb:9", "{{.Id}}"); a != b {
		t.Errorf("push then pull changed the id: %s → %s", a, b)
	}
	e.ok("logout", reg.Addr)
	e.ok("rmi", "tools/bb:2")
	if msg := e.fails(125, "pull", "tools/bb:2"); !strings.Contains(msg, "sandy login") {
		t.Errorf("pull after logout: %s", msg)
	}
	e.wantNames(reg.Addr + "/tools/bbzstd:1")
}

func TestImagePullMultiPlatform(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	reg := imagefix.StartRegistry(t, imagefix.RegistryOptions{})
	layout := filepath.Join(e.dir, "layout")
	if _, err := imagefix.MultiPlatform(layout, "multi", imagefix.MultiArch(t)...); err != nil {
		t.Fatal(err)
	}
	ref := imagefix.PushOCILayout(t, reg, layout, "multi", "multi:1")
	e.ok("pull", "-q", "--tls-verify=false", ref)
	if a := inspectString(t, e, ref, "{{.Architecture}}"); a != runtime.GOARCH {
		t.Fatalf("pulled %s from the index, want this machine's %s", a, runtime.GOARCH)
	}
	e.ok("rmi", ref)
	e.ok("pull", "-q", "--tls-verify=false", "--platform", "linux/"+imagefix.OtherArch(), ref)
	if a := inspectString(t, e, ref, "{{.Architecture}}"); a != imagefix.OtherArch() {
		t.Fatalf("--platform linux/%s pulled %s", imagefix.OtherArch(), a)
	}
	if msg := e.fails(125, "pull", "--tls-verify=false", "--platform", "linux/s390x", ref); !strings.Contains(msg, "--platform") {
		t.Errorf("a platform the index lacks: %s", msg)
	}
}

func TestImagePullBadInput(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	reg := imagefix.StartRegistry(t, imagefix.RegistryOptions{})
	layout := filepath.Join(e.dir, "bad")
	// Escapes aimed at a directory and a file this test owns, so a write
	// through them would be visible (and possible: they are ours).
	victimDir := filepath.Join(e.dir, "victim")
	if err := os.Mkdir(victimDir, 0o777); err != nil {
		t.Fatal(err)
	}
	victimFile := filepath.Join(e.dir, "victim-file")
	e.write(victimFile, "untouched\n")
	escapes := map[string]imagefix.Layer{
		"dotdot":   imagefix.EscapeDotDotLayer(),
		"absolute": imagefix.EscapeAbsoluteLayer(),
		"symlink":  imagefix.EscapeSymlinkLayer(victimDir),
		"hardlink": imagefix.EscapeHardlinkLayer(victimFile),
	}
	for name, layer := range escapes {
		img := imagefix.Busybox(t)
		img.RefName = name
		imagefix.WriteLayout(t, layout, img.WithLayers(append(img.Layers, layer)...))
	}
	for _, kind := range []imagefix.Bad{imagefix.BadDigestMismatch, imagefix.BadMissingBlob, imagefix.BadTruncatedLayer} {
		imagefix.WriteBad(t, layout, kind)
	}
	good := filepath.Join(e.dir, "good")
	imagefix.WriteLayout(t, good, imagefix.Busybox(t))
	goodRef := imagefix.PushOCILayout(t, reg, good, "latest", "good:1")

	checkOutside := func(what string) {
		t.Helper()
		if ents, _ := os.ReadDir(victimDir); len(ents) != 0 {
			t.Errorf("%s: wrote %v into a directory outside the store", what, ents)
		}
		if b, _ := os.ReadFile(victimFile); string(b) != "untouched\n" {
			t.Errorf("%s: changed a file outside the store: %q", what, b)
		}
		var st unix.Stat_t
		if err := unix.Stat(victimFile, &st); err == nil && st.Nlink != 1 {
			t.Errorf("%s: a hard link to a file outside the store was made (nlink %d)", what, st.Nlink)
		}
		for _, p := range []string{"/" + imagefix.EscapeName, filepath.Join(e.dir, imagefix.EscapeName), filepath.Join(os.TempDir(), imagefix.EscapeName)} {
			if _, err := os.Lstat(p); err == nil {
				t.Errorf("%s: %s exists", what, p)
			}
		}
	}
	for name := range escapes {
		// Pulling from the layout itself (oci:) and through the registry
		// take the same store path; the registry adds the network side.
		r := e.run_(nil, "pull", "-q", "oci:"+layout+":"+name)
		checkOutside(name)
		if r.code == 0 {
			// Stored: the entry must be inside the layer, not outside.
			upper := inspectString(t, e, "localhost/"+name, "{{.GraphDriver.Data.UpperDir}}")
			t.Logf("%s: stored (entries confined to %s)", name, upper)
			e.ok("rmi", "localhost/"+name)
		} else {
			t.Logf("%s: refused: %s", name, strings.TrimSpace(r.stderr))
		}
	}
	for _, kind := range []imagefix.Bad{imagefix.BadDigestMismatch, imagefix.BadMissingBlob, imagefix.BadTruncatedLayer} {
		msg := e.fails(125, "pull", "-q", "oci:"+layout+":"+string(kind))
		if kind == imagefix.BadDigestMismatch && !strings.Contains(msg, "does not match its digest") {
			t.Errorf("%s: %s", kind, msg)
		}
		e.wantNames()
	}
	// Registry side: a corrupted blob, then the registry gone.
	// (Its top layer is in no image pulled before: a layer already in
	// the store would be reused, not fetched.)
	changed := filepath.Join(e.dir, "changed")
	imagefix.WriteLayout(t, changed, imagefix.BusyboxWithChanges(t))
	bad := imagefix.PushOCILayout(t, reg, changed, "latest", "corrupt:1")
	l, err := imagefix.ReadLayout(changed, "latest")
	if err != nil {
		t.Fatal(err)
	}
	if err := reg.CorruptBlob(l.Layers[len(l.Layers)-1].Digest); err != nil {
		t.Fatal(err)
	}
	if msg := e.fails(125, "pull", "--tls-verify=false", bad); !strings.Contains(msg, "digest") {
		t.Errorf("corrupt blob from the registry: %s", msg)
	}
	e.wantNames()
	reg.Stop()
	if msg := e.fails(125, "pull", "--tls-verify=false", goodRef); !strings.Contains(msg, "nothing listens") {
		t.Errorf("registry down: %s", msg)
	}
	e.wantNames()
	// The next good pull works and the store is truthful.
	e.ok("pull", "-q", "oci:"+good+":latest")
	e.wantNames("localhost/latest:latest")
}

func TestImageLoadSaveTagRmi(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	docker := filepath.Join(e.dir, "bb-docker.tar")
	id, err := imagefix.DockerArchive(docker, "example.com/bb:1", imagefix.Busybox(t), false)
	if err != nil {
		t.Fatal(err)
	}
	ociGz := filepath.Join(e.dir, "bb-oci.tar.gz")
	if _, err := imagefix.OCIArchive(ociGz, "ocibb:2", imagefix.BusyboxWithChanges(t), true); err != nil {
		t.Fatal(err)
	}
	out := e.ok("load", "-i", docker)
	if !strings.Contains(out, "Loaded image: example.com/bb:1") {
		t.Fatalf("load docker-archive: %s", out)
	}
	if got := inspectString(t, e, "example.com/bb:1", "{{.Id}}"); "sha256:"+got != id && got != strings.TrimPrefix(id, "sha256:") {
		t.Fatalf("loaded id %s, want the config digest %s", got, id)
	}
	// An oci-archive, gzip-compressed, on standard input.
	gz, err := os.ReadFile(ociGz)
	if err != nil {
		t.Fatal(err)
	}
	r := e.run_(gz, "load")
	if r.code != 0 || !strings.Contains(r.stdout, "Loaded image: localhost/ocibb:2") {
		t.Fatalf("load oci-archive from stdin: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	e.wantNames("example.com/bb:1", "localhost/ocibb:2")
	// A gzip-compressed docker-archive (podman 4.3 cannot read one; the
	// image library sandy uses can).
	dockerGz := filepath.Join(e.dir, "bb-docker.tar.gz")
	if _, err := imagefix.DockerArchive(dockerGz, "example.com/gz:1", imagefix.Busybox(t), true); err != nil {
		t.Fatal(err)
	}
	e.ok("load", "-q", "-i", dockerGz)
	e.ok("rmi", "example.com/gz:1")
	// A truncated archive: an error, nothing stored.
	trunc := filepath.Join(e.dir, "trunc.tar")
	b, _ := os.ReadFile(docker)
	e.write(trunc, string(b[:len(b)/2]))
	e.fails(125, "load", "-i", trunc)
	e.wantNames("example.com/bb:1", "localhost/ocibb:2")

	// tag, the table, untag by rmi of one name, then delete.
	e.ok("tag", "example.com/bb:1", "bb", "quay.io/x/y:3")
	table := e.ok("images")
	for _, w := range []string{"REPOSITORY", "IMAGE ID", "localhost/bb", "quay.io/x/y", "example.com/bb"} {
		if !strings.Contains(table, w) {
			t.Errorf("images table lacks %q:\n%s", w, table)
		}
	}
	var list []map[string]any
	if err := json.Unmarshal([]byte(e.ok("images", "--format", "json")), &list); err != nil || len(list) != 2 {
		t.Fatalf("images --format json: %v, %d images", err, len(list))
	}
	if q := strings.Fields(e.ok("images", "-q")); len(q) != 2 {
		t.Errorf("images -q: %q, want 2 ids", q)
	}
	if out := e.ok("rmi", "bb"); !strings.Contains(out, "Untagged: localhost/bb:latest") || strings.Contains(out, "Deleted") {
		t.Errorf("rmi of one of three names: %s", out)
	}
	if msg := e.fails(125, "rmi", strings.TrimPrefix(id, "sha256:")[:12]); !strings.Contains(msg, "several names") {
		t.Errorf("rmi by id of a multi-name image: %s", msg)
	}
	// save, then load the archive into a second store: same id.
	saved := filepath.Join(e.dir, "saved.tar")
	e.ok("save", "-q", "-o", saved, "quay.io/x/y:3")
	savedOCI := filepath.Join(e.dir, "saved-oci.tar")
	e.ok("save", "-q", "--format", "oci-archive", "-o", savedOCI, "ocibb:2")
	e2 := newImgEnv(t)
	e2.ok("load", "-q", "-i", saved)
	e2.ok("load", "-q", "-i", savedOCI)
	if a, b := inspectString(t, e, "quay.io/x/y:3", "{{.Id}}"), inspectString(t, e2, "quay.io/x/y:3", "{{.Id}}"); a != b {
		t.Errorf("save/load changed the id: %s → %s", a, b)
	}
	e2.wantNames("quay.io/x/y:3", "localhost/ocibb:2")

	// prune: an image that lost its last name is dangling; prune -f
	// removes it and nothing else.
	e.ok("load", "-q", "-i", docker)
	e.ok("untag", "quay.io/x/y:3")
	if got := strings.Fields(e.ok("images", "--format", "{{.Repository}}:{{.Tag}}")); len(got) != 2 || got[0] != "<none>:<none>" && got[1] != "<none>:<none>" {
		t.Fatalf("after untag: %q", got)
	}
	// Without -f prune asks; "n" removes nothing, with exit status 0.
	if r := e.run_([]byte("n\n"), "image", "prune"); r.code != 0 || r.stdout != "" || !strings.Contains(r.stderr, "[y/N]") {
		t.Errorf("image prune answered n: exit %d, stdout %q, stderr %q", r.code, r.stdout, r.stderr)
	}
	if got := strings.Fields(e.ok("images", "-q")); len(got) != 2 {
		t.Errorf("image prune answered n: images %q, want the two", got)
	}
	if out := strings.Fields(e.ok("image", "prune", "-f")); len(out) != 1 {
		t.Errorf("image prune -f removed %q, want the one dangling image", out)
	}
	e.wantNames("localhost/ocibb:2")
	e.ok("load", "-q", "-i", docker)
	if msg := e.fails(1, "rmi", "nosuch:image"); !strings.Contains(msg, "image not known") {
		t.Errorf("rmi of an unknown image: %s", msg)
	}
	e.ok("rmi", "-f", strings.TrimPrefix(id, "sha256:"))
	e.wantNames("localhost/ocibb:2")
	if out := e.ok("rmi", "ocibb:2"); !strings.Contains(out, "Deleted:") {
		t.Errorf("rmi of the last name: %s", out)
	}
	e.wantNames()
}

// TestImageStoreSharedWithPodman proves one store, one copy: what podman
// 4.3 loads, sandy lists and removes; what sandy pulls, podman runs (with
// the owners, whiteouts and links sandy's extraction made).
func TestImageStoreSharedWithPodman(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	// Both find the store where they look by default, in a private XDG
	// home: $XDG_DATA_HOME/containers/storage and $XDG_RUNTIME_DIR/containers
	// (no storage.conf at all).
	run, _ := podmanEnv(t, e)
	docker := filepath.Join(e.dir, "from-podman.tar")
	if _, err := imagefix.DockerArchive(docker, "localhost/frompodman:1", imagefix.Busybox(t), false); err != nil {
		t.Fatal(err)
	}
	run("load", "-q", "-i", docker)
	e.wantNames("localhost/frompodman:1")
	if g := strings.TrimSpace(run("info", "--format", "{{.Store.GraphRoot}} {{.Store.GraphDriverName}}")); g != filepath.Join(e.dir, "data", "containers", "storage")+" "+inspectString(t, e, "localhost/frompodman:1", "{{.GraphDriver.Name}}") {
		t.Errorf("podman's store (%s) is not sandy's default", g)
	}

	reg := imagefix.StartRegistry(t, imagefix.RegistryOptions{})
	layout := filepath.Join(e.dir, "layout")
	imagefix.WriteLayout(t, layout, imagefix.BusyboxWithChanges(t))
	ref := imagefix.PushOCILayout(t, reg, layout, "latest", "changed:1")
	e.ok("pull", "-q", "--tls-verify=false", ref)
	if out := run("images", "--format", "{{.Repository}}:{{.Tag}}"); !strings.Contains(out, reg.Addr+"/changed:1") {
		t.Fatalf("podman does not see the image sandy pulled:\n%s", out)
	}
	script := fmt.Sprintf("stat -c %%u:%%g %s; ls %s; test -e %s && echo motd-present; cat %s; stat -c %%h %s",
		imagefix.OwnedFile, imagefix.OpaqueDir, imagefix.WhitedOut, imagefix.Replaced, imagefix.HardLink)
	out := run("run", "--rm", "--network", "none", ref, "sh", "-c", script)
	want := fmt.Sprintf("%d:%d\nc\nc-link\n%s2\n", imagefix.AppUID, imagefix.AppGID, imagefix.ReplacedAfter)
	if out != want {
		t.Errorf("podman run of sandy's layers:\n%s\nwant:\n%s", out, want)
	}
	// rmi by either side.
	e.ok("rmi", "localhost/frompodman:1")
	if out := run("images", "-q"); strings.Count(strings.TrimSpace(out), "\n") != 0 || strings.TrimSpace(out) == "" {
		t.Errorf("podman after sandy rmi: %q, want one image", out)
	}
	run("rmi", ref)
	e.wantNames()
}

// TestImageDoctorRow: doctor's images row is the helper's own probe; it
// tries a new store's driver without creating the store.
func TestImageDoctorRow(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	row := func() map[string]any {
		t.Helper()
		r := e.run_(nil, "doctor", "--json")
		var rep struct {
			Checks []map[string]any `json:"checks"`
			Ladder map[string]string
		}
		if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
			t.Fatalf("doctor --json: %v\n%s\n%s", err, r.stdout, r.stderr)
		}
		for _, c := range rep.Checks {
			if c["name"] == "images" {
				c["ladder"] = rep.Ladder["images"]
				return c
			}
		}
		t.Fatalf("doctor has no images row:\n%s", r.stdout)
		return nil
	}
	graph := filepath.Join(e.dir, "graph")
	c := row()
	if c["status"] != "ok" || !strings.Contains(c["detail"].(string), "no image store yet; one in "+graph) {
		t.Fatalf("images row before any image: %v", c)
	}
	if _, err := os.Stat(graph); err == nil {
		t.Fatalf("doctor created the image store %s", graph)
	}
	if entries, _ := filepath.Glob(filepath.Join(e.dir, ".sandy-probe-*")); len(entries) != 0 {
		t.Fatalf("doctor left its scratch store: %v", entries)
	}
	docker := filepath.Join(e.dir, "bb.tar")
	if _, err := imagefix.DockerArchive(docker, "example.com/bb:1", imagefix.Busybox(t), false); err != nil {
		t.Fatal(err)
	}
	e.ok("load", "-q", "-i", docker)
	c = row()
	if c["status"] != "ok" || !strings.Contains(c["detail"].(string), "1 images") || c["ladder"] == "unavailable" {
		t.Fatalf("images row with one image: %v", c)
	}
}

// TestImageSingleIDStore: without newuidmap (or without subordinate
// ranges) the store's namespace maps only the caller; one warning, and
// files of other owners are stored as the caller's.
func TestImageSingleIDStore(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	path := pathWithout(t, "newuidmap", "newgidmap", "getsubids")
	for i, kv := range e.env {
		if strings.HasPrefix(kv, "PATH=") {
			e.env[i] = "PATH=" + path
		}
	}
	layout := filepath.Join(e.dir, "layout")
	imagefix.WriteLayout(t, layout, imagefix.BusyboxWithChanges(t))
	r := e.run_(nil, "pull", "-q", "oci:"+layout+":latest")
	if r.code != 0 {
		t.Fatalf("pull into a single-id store: exit %d\n%s", r.code, r.stderr)
	}
	if n := strings.Count(r.stderr, "warning:"); n != 1 || !strings.Contains(r.stderr, "ignore_chown_errors") {
		t.Errorf("want one warning naming ignore_chown_errors, got:\n%s", r.stderr)
	}
	upper := inspectString(t, e, "localhost/latest", "{{.GraphDriver.Data.UpperDir}}")
	var st unix.Stat_t
	if err := unix.Lstat(filepath.Join(upper, imagefix.OwnedFile), &st); err != nil {
		t.Fatal(err)
	}
	if int(st.Uid) != os.Getuid() {
		t.Errorf("%s: owner %d on the host, want the caller %d in a single-id store", imagefix.OwnedFile, st.Uid, os.Getuid())
	}
}

// TestImageDeviceNode: a user namespace cannot mknod; the store skips a
// layer's device nodes (as podman's rootless store does) and the image
// loads.
func TestImageDeviceNode(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	layout := filepath.Join(e.dir, "layout")
	img := imagefix.BusyboxWithDevice(t)
	img.RefName = "dev"
	imagefix.WriteLayout(t, layout, img)
	e.ok("pull", "-q", "oci:"+layout+":dev")
	upper := inspectString(t, e, "localhost/dev", "{{.GraphDriver.Data.UpperDir}}")
	if _, err := os.Lstat(filepath.Join(upper, imagefix.DeviceFile)); err == nil {
		t.Errorf("%s exists in the rootless store", imagefix.DeviceFile)
	}
	if fi, err := os.Lstat(filepath.Join(upper, filepath.Dir(imagefix.DeviceFile))); err != nil || !fi.IsDir() {
		t.Errorf("the rest of the layer (the device's directory) is missing: %v", err)
	}
}
