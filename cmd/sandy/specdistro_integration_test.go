//go:build integration

package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// pkgManagerScript does, as root in the container, what dpkg and apt do
// to a Debian root (no mknod): write under /var; chown what it unpacks to
// other users (lchown and fchownat); keep a setuid bit on a file it does
// not own (chmod after chown: CAP_FOWNER, CAP_FSETID); write into a
// directory another user owns with mode 0700 (CAP_DAC_OVERRIDE); and drop
// to _apt as apt's sandbox does, setgroups then setgid then setuid (su),
// after which _apt has uid 42, gid 65534 and no other group, and can
// write its own directory and not root's. Each step
// prints one line; a failing step prints FAIL and its error.
const pkgManagerScript = `
step() { name=$1; shift; if out=$("$@" 2>&1); then echo "ok $name"; else echo "FAIL $name: $out"; fi; }
step var-write sh -c 'mkdir -p /var/lib/dpkg/info && echo installed >/var/lib/dpkg/status'
step chown sh -c 'echo x >/usr/bin/tool && chown 100:101 /usr/bin/tool && [ "$(stat -c %u:%g /usr/bin/tool)" = 100:101 ]'
step lchown sh -c 'ln -s tool /usr/bin/tool-link && chown -h 102:103 /usr/bin/tool-link && [ "$(stat -c %u:%g /usr/bin/tool-link)" = 102:103 ]'
step setuid-bit sh -c 'chmod 4755 /usr/bin/tool && [ "$(stat -c %a /usr/bin/tool)" = 4755 ]'
step dac-override sh -c 'mkdir -p /var/cache/apt/archives/partial && chown 42:65534 /var/cache/apt/archives/partial && chmod 700 /var/cache/apt/archives/partial && echo deb >/var/cache/apt/archives/partial/p.deb'
step drop-to-_apt su -s /bin/sh -c '[ "$(id -u):$(id -g):$(id -G)" = 42:65534:65534 ] && echo y >/var/cache/apt/archives/partial/by-apt' _apt
step _apt-is-not-root su -s /bin/sh -c '! touch /var/lib/dpkg/by-apt 2>/dev/null' _apt
step owner-of-apt-file sh -c '[ "$(stat -c %u:%g /var/cache/apt/archives/partial/by-apt)" = 42:65534 ]'
`

// TestSpecPackageManagerRoot: in a bundle made by `sandy spec --rootless
// --writable --caps podman`, root can do what apt and dpkg need, as in a
// podman container; with runc's example (`spec --rootless`, its three
// capabilities and a read-only root) the same steps fail, which is how
// apt failed before these flags.
//
// The root is busybox, not Debian (no network, no debootstrap in tests):
// what it proves is the kernel-side operations apt and dpkg make, each
// under the spec's capabilities and the user namespace's id map.
func TestSpecPackageManagerRoot(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "newuidmap", "apt-get install uidmap")
	sandy := testutil.SandyBinary(t)
	state := filepath.Join(testutil.TempDir(t), "state")
	bundle := func(t *testing.T, specArgs ...string) string {
		dir := testutil.TempDir(t)
		rootfs := testutil.MakeRootfs(t, dir)
		passwd := "root:x:0:0:root:/root:/bin/sh\n_apt:x:42:65534::/nonexistent:/usr/sbin/nologin\nnobody:x:65534:65534:nobody:/:/bin/false\n"
		if err := os.WriteFile(filepath.Join(rootfs, "etc", "passwd"), []byte(passwd), 0o644); err != nil {
			t.Fatal(err)
		}
		e := &env{t: t, sandy: sandy, root: state}
		if r := e.run("", append([]string{"spec", "-b", dir}, specArgs...)...); r.code != 0 {
			t.Fatalf("sandy spec %q: exit %d: %s", specArgs, r.code, r.stderr)
		}
		return dir
	}
	run := func(t *testing.T, dir string) string {
		e := &env{t: t, sandy: sandy, root: state}
		// The example's terminal: true stays; sandy relays the pty.
		r := e.run("", "run", dir, "sh", "-c", pkgManagerScript)
		return strings.ReplaceAll(r.stdout, "\r", "") + r.stderr
	}

	t.Run("writable podman caps", func(t *testing.T) {
		out := run(t, bundle(t, "--rootless", "--writable", "--caps", "podman"))
		for _, step := range []string{"var-write", "chown", "lchown", "setuid-bit", "dac-override", "drop-to-_apt", "_apt-is-not-root", "owner-of-apt-file"} {
			if !strings.Contains(out, "ok "+step+"\n") {
				t.Errorf("step %s failed:\n%s", step, out)
			}
		}
	})
	t.Run("runc's example", func(t *testing.T) {
		out := run(t, bundle(t, "--rootless"))
		if !strings.Contains(out, "FAIL var-write") {
			t.Errorf("writing /var in a read-only root succeeded:\n%s", out)
		}
	})
	t.Run("writable, runc's caps", func(t *testing.T) {
		out := run(t, bundle(t, "--rootless", "--writable"))
		for _, step := range []string{"chown", "drop-to-_apt"} {
			if !strings.Contains(out, "FAIL "+step) {
				t.Errorf("step %s succeeded without podman's capabilities:\n%s", step, out)
			}
		}
	})
}

// dpkgScript builds a package whose files belong to other users (a
// directory and a file of 100:101, a setuid-root program) with the host's
// dpkg-deb, then installs it with dpkg, which unpacks, chowns, chmods and
// records it as a Debian system's dpkg does.
const dpkgScript = `set -e
mkdir -p /tmp/pkg/DEBIAN /tmp/pkg/usr/lib/demo /tmp/pkg/usr/bin
printf 'Package: demo\nVersion: 1.0\nArchitecture: all\nMaintainer: t <t@example.org>\nDescription: demo\n' >/tmp/pkg/DEBIAN/control
echo hi >/tmp/pkg/usr/lib/demo/data
printf '#!/bin/sh\necho demo\n' >/tmp/pkg/usr/bin/demo
chown -R 100:101 /tmp/pkg/usr/lib/demo
chmod 4755 /tmp/pkg/usr/bin/demo
/usr/bin/dpkg-deb --build /tmp/pkg /out/demo.deb >/dev/null
/usr/bin/dpkg -i /out/demo.deb
grep -A1 '^Package: demo' /var/lib/dpkg/status
stat -c '%n %u:%g %a' /usr/lib/demo /usr/lib/demo/data /usr/bin/demo
`

// TestSpecDpkgInstall: the host's own dpkg (with dpkg-deb, dpkg-split, GNU
// tar and their libraries, copied into a busybox root) installs a package
// in a bundle from `sandy spec --rootless --writable --caps podman`, and
// fails with runc's capabilities. Not a whole Debian (no apt, no network
// in tests), but the real dpkg on the real files.
func TestSpecDpkgInstall(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	testutil.RequireBinary(t, "newuidmap", "apt-get install uidmap")
	for _, b := range []string{"dpkg", "dpkg-deb", "dpkg-split", "tar", "ldd"} {
		testutil.RequireBinary(t, b, "apt-get install dpkg tar libc-bin")
	}
	sandy := testutil.SandyBinary(t)
	state := filepath.Join(testutil.TempDir(t), "state")
	out := testutil.TempDir(t)
	bundle := func(t *testing.T, specArgs ...string) string {
		dir := testutil.TempDir(t)
		rootfs := testutil.MakeRootfs(t, dir)
		copyWithLibs(t, rootfs, "/usr/bin/dpkg", "/usr/bin/dpkg-deb", "/usr/bin/dpkg-split", "/usr/bin/tar")
		for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "var/lib/dpkg/triggers", "usr/local/bin"} {
			if err := os.MkdirAll(filepath.Join(rootfs, d), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		files := map[string]string{
			"var/lib/dpkg/status": "", "var/lib/dpkg/available": "",
			// dpkg checks that these are in PATH before it installs.
			"usr/local/bin/ldconfig": "#!/bin/sh\n", "usr/local/bin/start-stop-daemon": "#!/bin/sh\n",
		}
		for name, content := range files {
			if err := os.WriteFile(filepath.Join(rootfs, name), []byte(content), 0o755); err != nil {
				t.Fatal(err)
			}
		}
		e := &env{t: t, sandy: sandy, root: state}
		if r := e.run("", append([]string{"spec", "-b", dir}, specArgs...)...); r.code != 0 {
			t.Fatalf("sandy spec %q: exit %d: %s", specArgs, r.code, r.stderr)
		}
		return dir
	}
	e := &env{t: t, sandy: sandy, root: state}

	r := e.run("", "run", "-v", out+":/out", bundle(t, "--rootless", "--writable", "--caps", "podman"), "sh", "-c", dpkgScript)
	got := strings.ReplaceAll(r.stdout, "\r", "")
	for _, want := range []string{"Unpacking demo (1.0)", "Setting up demo (1.0)", "Status: install ok installed",
		"/usr/lib/demo 100:101 755", "/usr/lib/demo/data 100:101 644", "/usr/bin/demo 0:0 4755"} {
		if r.code != 0 || !strings.Contains(got, want) {
			t.Errorf("podman caps: exit %d, output lacks %q:\n%s%s", r.code, want, got, r.stderr)
		}
	}
	if t.Failed() {
		return
	}
	r = e.run("", "run", "-v", out+":/out", bundle(t, "--rootless", "--writable"), "/usr/bin/dpkg", "-i", "/out/demo.deb")
	got = strings.ReplaceAll(r.stdout+r.stderr, "\r", "")
	if r.code == 0 || !strings.Contains(got, "error setting ownership of '/usr/lib/demo.dpkg-new': Operation not permitted") {
		t.Errorf("runc's caps: dpkg -i exit %d, want dpkg's chown failure (EPERM):\n%s", r.code, got)
	}
}

// copyWithLibs copies host programs and the shared libraries ldd lists for
// them into rootfs, at the same paths; busybox's applets of the same names
// are removed so that nothing shadows them.
func copyWithLibs(t *testing.T, rootfs string, bins ...string) {
	t.Helper()
	files := map[string]bool{}
	for _, b := range bins {
		files[b] = true
		_ = os.Remove(filepath.Join(rootfs, "bin", filepath.Base(b)))
		ldd, err := exec.Command("ldd", b).Output()
		if err != nil {
			t.Fatalf("ldd %s: %v", b, err)
		}
		for _, line := range strings.Split(string(ldd), "\n") {
			f := strings.Fields(line)
			switch {
			case len(f) >= 3 && f[1] == "=>" && strings.HasPrefix(f[2], "/"):
				files[f[2]] = true
			case len(f) >= 1 && strings.HasPrefix(f[0], "/"):
				files[f[0]] = true
			}
		}
	}
	for f := range files {
		data, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		dst := filepath.Join(rootfs, f)
		if err := os.MkdirAll(filepath.Dir(dst), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(dst, data, 0o755); err != nil {
			t.Fatal(err)
		}
	}
}
