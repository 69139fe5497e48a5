package testutil

import (
	"bytes"
	"fmt"
	"net"
	"net/netip"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
)

// markerEnv is set in the child that AsUser starts, so that the child knows
// it already runs as the test user.
const markerEnv = "SANDY_TESTUTIL_AS_USER"

// CI reports whether the tests run on CI, where a skip is a failure.
func CI() bool { return os.Getenv("CI") == "true" }

// Skip skips the test with reason, or fails it when CI=true: on CI every
// dependency is installed by hack/setup.sh, so a missing one is a bug.
func Skip(t testing.TB, format string, args ...any) {
	t.Helper()
	reason := fmt.Sprintf(format, args...)
	if CI() {
		t.Fatalf("would skip, but CI=true: %s", reason)
	}
	t.Skip(reason)
}

// RequireBinary skips (fails on CI) unless name is in PATH; fix says how to
// install it, e.g. "apt-get install uidmap".
func RequireBinary(t testing.TB, name, fix string) string {
	t.Helper()
	p, err := exec.LookPath(name)
	if err != nil {
		Skip(t, "%s not in PATH (%s)", name, fix)
	}
	return p
}

// RequireKernel skips (fails on CI) unless the running kernel is at least
// major.minor; what says what needs it, e.g. "overlayfs in a user
// namespace".
func RequireKernel(t testing.TB, major, minor int, what string) {
	t.Helper()
	var u syscall.Utsname
	if err := syscall.Uname(&u); err != nil {
		t.Fatal(err)
	}
	var b []byte
	for _, c := range u.Release {
		if c == 0 {
			break
		}
		b = append(b, byte(c))
	}
	if !KernelAtLeast(string(b), major, minor) {
		Skip(t, "%s needs Linux %d.%d or later (uname -r: %s)", what, major, minor, b)
	}
}

// KernelAtLeast reports whether the release (uname -r: "6.1.0-18-amd64")
// is at least major.minor; an unparsable one is taken as new enough.
func KernelAtLeast(release string, major, minor int) bool {
	var maj, min int
	if n, _ := fmt.Sscanf(release, "%d.%d", &maj, &min); n != 2 {
		return true
	}
	return maj > major || maj == major && min >= minor
}

// TestUserName is the unprivileged user the rootless tests run as
// (hack/setup.sh creates it).
func TestUserName() string {
	if u := os.Getenv("SANDY_TEST_USER"); u != "" {
		return u
	}
	return "sandytest"
}

// TestUser looks up the test user, skipping (failing on CI) when it is absent.
func TestUser(t testing.TB) *user.User {
	t.Helper()
	u, err := user.Lookup(TestUserName())
	if err != nil {
		Skip(t, "test user %q does not exist (run hack/setup.sh as root)", TestUserName())
	}
	return u
}

var copyOnce sync.Map // test binary path -> copied path

// shareDir returns a sticky, world-writable directory (like /tmp) for
// files the test user must reach (test binary, sandy binary, bundles) and
// for the test user's own temporary directories.
func shareDir(t testing.TB) string {
	t.Helper()
	d := filepath.Join(os.TempDir(), "sandy-test-share")
	if err := os.MkdirAll(d, 0o755); err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(d); err == nil && (fi.Mode().Perm() != 0o777 || fi.Mode()&os.ModeSticky == 0) {
		if err := os.Chmod(d, 0o777|os.ModeSticky); err != nil {
			t.Fatalf("%s is not world-writable and sticky, and cannot be made so: %v", d, err)
		}
	}
	return d
}

// AsUser makes the calling test run as the unprivileged test user. As root it
// re-runs the test binary as that user with -test.run matching only this test
// and returns true once the child has finished (its output is relayed and its
// failure fails t). As a non-root user it returns false: go on in-process.
func AsUser(t *testing.T) bool {
	t.Helper()
	if os.Getuid() != 0 {
		return false
	}
	if os.Getenv(markerEnv) != "" {
		t.Fatal("AsUser: still root in the child started as the test user")
	}
	u := TestUser(t)
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)

	exe, err := os.Executable()
	if err != nil {
		t.Fatal(err)
	}
	dst, err := copyExecutable(t, exe)
	if err != nil {
		t.Fatal(err)
	}
	// Only the top-level test name: subtests run inside the child.
	name := strings.SplitN(t.Name(), "/", 2)[0]
	args := []string{"-test.run=^" + name + "$", "-test.v"}
	if testing.Short() {
		args = append(args, "-test.short")
	}
	cmd := exec.Command(dst, args...)
	cwd, _ := os.Getwd()
	cmd.Dir = cwd
	// The child cannot build sandy (no Go toolchain in its PATH, no cache):
	// build it here, once per test binary, and hand it over.
	cmd.Env = append(userEnv(u), "SANDY_BIN="+SandyBinary(t))
	cmd.SysProcAttr = &syscall.SysProcAttr{
		Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)},
		Setsid:     true,
	}
	var out bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &out
	err = cmd.Run()
	t.Logf("as user %s (uid %d):\n%s", u.Username, uid, out.String())
	if err != nil {
		t.Fatalf("test as user %s: %v", u.Username, err)
	}
	if strings.Contains(out.String(), "--- SKIP") && !strings.Contains(out.String(), "--- PASS") {
		t.Skip("skipped as the test user (see log)")
	}
	return true
}

func userEnv(u *user.User) []string {
	env := []string{
		markerEnv + "=1",
		"HOME=" + u.HomeDir,
		"USER=" + u.Username,
		"LOGNAME=" + u.Username,
		"PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin",
		"TMPDIR=" + os.TempDir(),
	}
	for _, k := range []string{"CI", "SANDY_TEST_USER", "SANDY_TEST_VERBOSE"} {
		if v, ok := os.LookupEnv(k); ok {
			env = append(env, k+"="+v)
		}
	}
	// The CRI tests' settings (SANDY_CRICTL, SANDY_CRI_KEEP and
	// SANDY_CRITEST*, which TestCritestRootless reads as the test user).
	for _, kv := range os.Environ() {
		if strings.HasPrefix(kv, "SANDY_CRI") {
			env = append(env, kv)
		}
	}
	return env
}

func copyExecutable(t testing.TB, src string) (string, error) {
	if v, ok := copyOnce.Load(src); ok {
		return v.(string), nil
	}
	dir, err := os.MkdirTemp(shareDir(t), "bin-")
	if err != nil {
		return "", err
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		return "", err
	}
	dst := filepath.Join(dir, filepath.Base(src))
	data, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	if err := os.WriteFile(dst, data, 0o755); err != nil {
		return "", err
	}
	copyOnce.Store(src, dst)
	return dst, nil
}

var (
	buildOnce sync.Once
	buildPath string
	buildErr  error
)

// SandyBinary returns the path of a static sandy binary built from this
// checkout (once per test binary), with sandy-net beside it, readable and
// executable by every user. SANDY_BIN overrides it (its directory must
// hold sandy-net too, as an install's does).
func SandyBinary(t testing.TB) string {
	t.Helper()
	if p := os.Getenv("SANDY_BIN"); p != "" {
		return p
	}
	buildOnce.Do(func() {
		_, file, _, _ := runtime.Caller(0)
		root := filepath.Join(filepath.Dir(file), "..", "..")
		var dir string
		dir, buildErr = os.MkdirTemp(shareDir(t), "sandy-")
		if buildErr != nil {
			return
		}
		_ = os.Chmod(dir, 0o755)
		buildPath = filepath.Join(dir, "sandy")
		cmd := exec.Command("go", "build", "-trimpath", "-o", buildPath, "./cmd/sandy")
		cmd.Dir = root
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
		if out, err := cmd.CombinedOutput(); err != nil {
			buildErr = fmt.Errorf("go build ./cmd/sandy: %v\n%s", err, out)
			return
		}
		// sandy-net beside it, as hack/install.sh installs them: the
		// default network is sandy's own where sandy finds it.
		buildErr = buildBeside(buildPath, "sandy-net", "")
	})
	if buildErr != nil {
		t.Fatal(buildErr)
	}
	return buildPath
}

// ImageBuildTags are the build tags of the image helper: OpenPGP in pure
// Go instead of gpgme (cgo), and no btrfs driver (cgo).
const ImageBuildTags = "containers_image_openpgp,exclude_graphdriver_btrfs"

var (
	imageOnce sync.Once
	imageErr  error
)

// SandyWithImages is SandyBinary with the image helpers, sandy-image,
// sandy-store and sandy-create, built beside it (where sandy looks for
// them). SANDY_BIN overrides all four: its directory must hold the helpers
// too.
func SandyWithImages(t testing.TB) string {
	t.Helper()
	sandy := SandyBinary(t)
	if os.Getenv("SANDY_BIN") != "" {
		return sandy
	}
	imageOnce.Do(func() {
		for _, name := range []string{"sandy-image", "sandy-store", "sandy-create"} {
			if imageErr = buildBeside(sandy, name, ImageBuildTags); imageErr != nil {
				return
			}
		}
	})
	if imageErr != nil {
		t.Fatal(imageErr)
	}
	return sandy
}

// buildBeside builds ./internal/cmd/NAME (static, with tags) into
// sandy's directory.
func buildBeside(sandy, name, tags string) error {
	_, file, _, _ := runtime.Caller(0)
	args := []string{"build", "-trimpath", "-o", filepath.Join(filepath.Dir(sandy), name)}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	cmd := exec.Command("go", append(args, "./internal/cmd/"+name)...)
	cmd.Dir = filepath.Join(filepath.Dir(file), "..", "..")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build ./internal/cmd/%s: %v\n%s", name, err, b)
	}
	return nil
}

// HostIPv4 is a non-loopback, non-link-local IPv4 address of this
// host, outside the containers' 10.0.2.0/24: a destination "on the
// outside" of a container's network that a test can listen on.
func HostIPv4(t testing.TB) netip.Addr {
	t.Helper()
	addrs, err := net.InterfaceAddrs()
	if err != nil {
		t.Fatal(err)
	}
	for _, a := range addrs {
		if ipn, ok := a.(*net.IPNet); ok {
			if ip, ok := netip.AddrFromSlice(ipn.IP); ok {
				if ip = ip.Unmap(); ip.Is4() && !ip.IsLoopback() && !ip.IsLinkLocalUnicast() && !netip.MustParsePrefix("10.0.2.0/24").Contains(ip) {
					return ip
				}
			}
		}
	}
	Skip(t, "no non-loopback IPv4 address on this host (%v): nothing on the outside to reach (give the host a network interface)", addrs)
	return netip.Addr{}
}

// TempDir returns a fresh directory that the test user can use (mode 0777
// parent, owned by the current user), removed at the end of the test.
func TempDir(t testing.TB) string {
	t.Helper()
	d, err := os.MkdirTemp(shareDir(t), "t-")
	if err != nil {
		t.Fatal(err)
	}
	_ = os.Chmod(d, 0o755)
	t.Cleanup(func() { removeAll(d) })
	return d
}

// removeAll removes a tree that may contain read-only directories (a rootfs).
func removeAll(d string) {
	_ = filepath.Walk(d, func(p string, fi os.FileInfo, err error) error {
		if err == nil && fi.IsDir() {
			_ = os.Chmod(p, 0o755)
		}
		return nil
	})
	_ = os.RemoveAll(d)
}
