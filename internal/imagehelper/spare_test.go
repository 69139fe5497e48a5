package imagehelper

import (
	"os"
	"path/filepath"
	"testing"
	"time"
)

func TestSpareKey(t *testing.T) {
	dir := t.TempDir()
	a, b := filepath.Join(dir, "a"), filepath.Join(dir, "b")
	for _, p := range []string{a, b} {
		if err := os.WriteFile(p, []byte("helper"), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	fa, _ := os.Stat(a)
	fb, _ := os.Stat(b)
	env := []string{"HOME=/home/u", "XDG_RUNTIME_DIR=/run/user/1", "PATH=/bin"}
	k := SpareKey(fa, env, "/work")
	same := []struct {
		name string
		env  []string
	}{
		{"another order", []string{"PATH=/bin", "HOME=/home/u", "XDG_RUNTIME_DIR=/run/user/1"}},
		{"a shell's bookkeeping", append([]string{"OLDPWD=/tmp", "_=/usr/bin/sandy", "SHLVL=3"}, env...)},
		{"hyperfine's padding", append([]string{"HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET=XXXX"}, env...)},
	}
	for _, c := range same {
		if got := SpareKey(fa, c.env, "/work"); got != k {
			t.Errorf("%s: key %s, want %s", c.name, got, k)
		}
	}
	other := map[string]string{
		"another helper binary":   SpareKey(fb, env, "/work"),
		"another directory":       SpareKey(fa, env, "/other"),
		"another variable":        SpareKey(fa, append([]string{"CONTAINERS_STORAGE_CONF=/x"}, env...), "/work"),
		"another value":           SpareKey(fa, []string{"HOME=/home/v", "XDG_RUNTIME_DIR=/run/user/1", "PATH=/bin"}, "/work"),
		"a variable less":         SpareKey(fa, env[1:], "/work"),
		"an empty variable added": SpareKey(fa, append([]string{"REGISTRY_AUTH_FILE="}, env...), "/work"),
	}
	for name, got := range other {
		if got == k {
			t.Errorf("%s: the same key %s", name, k)
		}
	}
	// A helper rebuilt in place is another binary (inode, size, mtime).
	if err := os.Remove(a); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(a, []byte("helper, rebuilt"), 0o755); err != nil {
		t.Fatal(err)
	}
	fa2, _ := os.Stat(a)
	if SpareKey(fa2, env, "/work") == k {
		t.Error("a rebuilt helper has the old one's key")
	}
}

func TestSpareRequestMatches(t *testing.T) {
	r := SpareRequest{Env: []string{"B=2", "A=1", "_=/bin/sandy"}, Cwd: "/w"}
	if !r.Matches([]string{"A=1", "B=2"}, "/w") {
		t.Error("the same environment in another order, less the shell's _: no match")
	}
	if r.Matches([]string{"A=1", "B=3"}, "/w") {
		t.Error("another value matches")
	}
	if r.Matches([]string{"A=1", "B=2"}, "/x") {
		t.Error("another cwd matches")
	}
	if r.Matches([]string{"A=1", "B=2", "B=2"}, "/w") {
		t.Error("a variable twice matches once")
	}
}

func TestLinger(t *testing.T) {
	for v, want := range map[string]time.Duration{
		"":       DefaultLinger,
		"0":      0,
		"0s":     0,
		"-5s":    0,
		"2m":     2 * time.Minute,
		"500ms":  500 * time.Millisecond,
		"banana": DefaultLinger,
	} {
		t.Setenv(EnvLinger, v)
		if got := Linger(); got != want {
			t.Errorf("%s=%q: %v, want %v", EnvLinger, v, got, want)
		}
	}
}
