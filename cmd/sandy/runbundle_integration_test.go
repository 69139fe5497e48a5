//go:build integration

package main_test

import (
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestRunBundleOverrides: `sandy run ./bundle COMMAND` and -e, --env-file,
// -v, --mount, --tmpfs, -w, -t change the spec for that run only:
// config.json is not written, and the next plain run is config.json's.
func TestRunBundleOverrides(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "echo", "from-config")
	rel := "./" + filepath.Base(e.bundle) // the path form, relative
	config, err := os.ReadFile(filepath.Join(e.bundle, "config.json"))
	if err != nil {
		t.Fatal(err)
	}
	host := testutil.TempDir(t)
	if err := os.WriteFile(filepath.Join(host, "f"), []byte("host-file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	envFile := filepath.Join(host, "ci.env")
	if err := os.WriteFile(envFile, []byte("# ci\nFROMFILE=1\nBOTH=file\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	t.Setenv("SANDY_TEST_HOSTVAR", "from-host")

	run := func(args ...string) result {
		t.Helper()
		r := e.run("", args...)
		if r.code != 0 {
			t.Fatalf("sandy %q: exit %d\nstdout: %s\nstderr: %s", args, r.code, r.stdout, r.stderr)
		}
		return r
	}
	cd := func(dir string) {
		t.Helper()
		old, err := os.Getwd()
		if err != nil {
			t.Fatal(err)
		}
		if err := os.Chdir(dir); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { _ = os.Chdir(old) })
	}
	cd(filepath.Dir(e.bundle))

	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"command", []string{rel, "echo", "hi"}, "hi\n"},
		{"command with flags of its own", []string{e.bundle, "sh", "-c", `echo "$0 $1"`, "-e", "-v"}, "-e -v\n"},
		{"env", []string{"-e", "A=1", "-e", "SANDY_TEST_HOSTVAR", "--env-file", envFile, "-e", "BOTH=flag", rel,
			"sh", "-c", `echo "$A $SANDY_TEST_HOSTVAR $FROMFILE $BOTH $TERM"`}, "1 from-host 1 flag xterm\n"},
		{"volume ro, and a write to a rw one lands on the host", []string{"-v", host + ":/data:ro", "--mount", "type=bind,src=" + host + ",dst=/rw", rel,
			"sh", "-c", `cat /data/f; touch /data/x 2>/dev/null && echo data-writable; echo new >/rw/new`}, "host-file\n"},
		{"tmpfs", []string{"--tmpfs", "/scratch:size=1m", rel, "sh", "-c", `grep -c ' /scratch tmpfs ' /proc/mounts`}, "1\n"},
		{"workdir", []string{"-w", "/tmp", rel, "pwd"}, "/tmp\n"},
		{"tty", []string{"-t", rel, "sh", "-c", "tty"}, "/dev/pts/0\r\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := run(append([]string{"run"}, tc.args...)...)
			if r.stdout != tc.want {
				t.Errorf("stdout %q, want %q (stderr %s)", r.stdout, tc.want, r.stderr)
			}
		})
	}
	if data, err := os.ReadFile(filepath.Join(host, "new")); err != nil || string(data) != "new\n" {
		t.Errorf("write through the --mount bind: %q, %v", data, err)
	}
	if after, _ := os.ReadFile(filepath.Join(e.bundle, "config.json")); string(after) != string(config) {
		t.Errorf("config.json was written:\n%s", after)
	}
	if r := run("run", rel); r.stdout != "from-config\n" {
		t.Errorf("plain run after overrides: %q, want config.json's command", r.stdout)
	}
}

// TestRunBundleBadInput: a -v source that does not exist is podman's error
// before anything is made; an image-only flag and a relative -w are
// refused; the runc form still takes no command.
func TestRunBundleBadInput(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t, "true")
	missing := filepath.Join(testutil.TempDir(t), "nope")
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"missing -v source", []string{"run", "-v", missing + ":/data", e.bundle, "true"},
			"statfs " + missing + ": no such file or directory"},
		{"missing --mount source", []string{"run", "--mount", "type=bind,src=" + missing + ",dst=/data", e.bundle},
			"statfs " + missing + ": no such file or directory"},
		{"relative -w", []string{"run", "-w", "tmp", e.bundle}, `-w "tmp": the working directory must be an absolute path`},
		{"named volume", []string{"run", "-v", "data:/data", e.bundle}, "volumes belong to containers from images"},
		{"runc form with a command", []string{"run", "--bundle", e.bundle, "someid", "true"}, "too many arguments"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := e.run("", tc.args...)
			if r.code == 0 || !strings.Contains(r.stderr, tc.want) {
				t.Errorf("exit %d, stderr %q, want an error with %q", r.code, r.stderr, tc.want)
			}
			if out := e.run("", "list", "-q"); strings.TrimSpace(out.stdout) != "" {
				t.Errorf("containers left: %q", out.stdout)
			}
			if _, err := os.Stat(missing); err == nil {
				t.Errorf("%s was created", missing)
			}
		})
	}
}
