//go:build integration

package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// TestRunImageSeccompFile: --security-opt seccomp=FILE installs the
// profile in podman's format, read when the container is made; a missing
// or malformed file is sandy's error (125) and leaves nothing behind.
func TestRunImageSeccompFile(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	e.loadImage("localhost/bb:sec", imagefix.Busybox(t))
	before := len(e.storageContainers())

	profile := filepath.Join(e.dir, "no-mkdir.json")
	e.write(profile, `{
	"defaultAction": "SCMP_ACT_ALLOW",
	"archMap": [{"architecture": "SCMP_ARCH_X86_64", "subArchitectures": ["SCMP_ARCH_X86", "SCMP_ARCH_X32"]},
		{"architecture": "SCMP_ARCH_AARCH64", "subArchitectures": ["SCMP_ARCH_ARM"]}],
	"syscalls": [
		{"names": ["mkdir", "mkdirat"], "action": "SCMP_ACT_ERRNO", "errnoRet": 1},
		{"names": ["sethostname"], "action": "SCMP_ACT_ERRNO", "errnoRet": 95, "includes": {"caps": ["CAP_SYS_ADMIN"]}}
	]
}`)
	out := e.run_(nil, "run", "--rm", "--security-opt", "seccomp="+profile, "localhost/bb:sec",
		"sh", "-c", "mkdir /tmp/d || echo refused; touch /tmp/f && echo written")
	if out.code != 0 || !strings.Contains(out.stderr, "Operation not permitted") || out.stdout != "refused\nwritten\n" {
		t.Errorf("mkdir must be refused with EPERM, the rest allowed: exit %d, %q, %s", out.code, out.stdout, out.stderr)
	}
	// A relative path is the caller's working directory's, as podman's.
	rel := e.cmd("run", "--rm", "--security-opt", "seccomp=no-mkdir.json", "localhost/bb:sec", "mkdir", "/tmp/d")
	rel.Dir = e.dir
	if b, err := rel.CombinedOutput(); err == nil || !strings.Contains(string(b), "Operation not permitted") {
		t.Errorf("relative profile path: %v, %s", err, b)
	}
	// The capability rules follow the bounding set: the sethostname rule
	// (EOPNOTSUPP) is there only with CAP_SYS_ADMIN; without it the
	// kernel refuses (EPERM) before the filter matters.
	for _, c := range []struct {
		args []string
		want string
	}{
		{nil, "Operation not permitted"},
		{[]string{"--cap-add", "SYS_ADMIN"}, "not supported"},
	} {
		args := append(append([]string{"run", "--rm"}, c.args...), "--security-opt", "seccomp="+profile, "localhost/bb:sec", "hostname", "x")
		if out := e.run_(nil, args...); out.code == 0 || !strings.Contains(out.stderr, c.want) {
			t.Errorf("%v: exit %d, %q; want %q", c.args, out.code, out.stderr, c.want)
		}
	}

	bad := filepath.Join(e.dir, "bad.json")
	e.write(bad, `{"defaultAction": `)
	for _, c := range []struct{ file, want string }{
		{filepath.Join(e.dir, "missing.json"), "no such file"},
		{bad, "seccomp profile"},
	} {
		if msg := e.fails(125, "run", "--rm", "--security-opt", "seccomp="+c.file, "localhost/bb:sec", "true"); !strings.Contains(msg, c.want) || !strings.Contains(msg, c.file) {
			t.Errorf("seccomp=%s: %q, want the file and %q", c.file, msg, c.want)
		}
	}
	if n := len(e.storageContainers()); n != before {
		t.Errorf("%d storage containers left, want %d", n, before)
	}
	if _, err := os.Stat(profile); err != nil {
		t.Fatal(err)
	}
}
