package spare

import (
	"context"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/state"
)

func TestKey(t *testing.T) {
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
	k := Key(fa, env, "/work")
	same := []struct {
		name string
		env  []string
	}{
		{"another order", []string{"PATH=/bin", "HOME=/home/u", "XDG_RUNTIME_DIR=/run/user/1"}},
		{"a shell's bookkeeping", append([]string{"OLDPWD=/tmp", "_=/usr/bin/sandy", "SHLVL=3"}, env...)},
		{"hyperfine's padding", append([]string{"HYPERFINE_RANDOMIZED_ENVIRONMENT_OFFSET=XXXX"}, env...)},
	}
	for _, c := range same {
		if got := Key(fa, c.env, "/work"); got != k {
			t.Errorf("%s: key %s, want %s", c.name, got, k)
		}
	}
	other := map[string]string{
		"another helper binary":   Key(fb, env, "/work"),
		"another directory":       Key(fa, env, "/other"),
		"another variable":        Key(fa, append([]string{"CONTAINERS_STORAGE_CONF=/x"}, env...), "/work"),
		"another value":           Key(fa, []string{"HOME=/home/v", "XDG_RUNTIME_DIR=/run/user/1", "PATH=/bin"}, "/work"),
		"a variable less":         Key(fa, env[1:], "/work"),
		"an empty variable added": Key(fa, append([]string{"REGISTRY_AUTH_FILE="}, env...), "/work"),
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
	if Key(fa2, env, "/work") == k {
		t.Error("a rebuilt helper has the old one's key")
	}
}

func TestRequestMatches(t *testing.T) {
	r := Request{Env: []string{"B=2", "A=1", "_=/bin/sandy"}, Cwd: "/w"}
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
		"00":     DefaultLinger,
	} {
		t.Setenv(EnvLinger, v)
		if got := Linger(); got != want {
			t.Errorf("%s=%q: %v, want %v", EnvLinger, v, got, want)
		}
	}
}

// TestPlace: one spare per key (a second listener is refused while the
// first holds the place); a listener's wait ends after its idle time
// with its socket removed and its place free; a connection ends the wait
// and frees the place too, so that a command coming meanwhile starts a
// program that may take it; the socket is the user's alone.
func TestPlace(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".helpers")
	sock, _ := Paths(dir, "k")
	l, err := Listen(dir, "k")
	if err != nil {
		t.Fatal(err)
	}
	if fi, err := os.Stat(sock); err != nil || fi.Mode().Perm() != 0o600 || fi.Mode()&os.ModeSocket == 0 {
		t.Errorf("the socket: %v, %v; want a socket of mode 0600", fi, err)
	}
	if fi, err := os.Stat(dir); err != nil || fi.Mode().Perm() != 0o700 {
		t.Errorf("the directory: %v, %v; want mode 0700", fi, err)
	}
	if l2, err := Listen(dir, "k"); err == nil {
		l2.Accept(0)
		t.Fatal("a second spare of the same key took the place")
	}
	if other, err := Listen(dir, "other"); err != nil {
		t.Errorf("a spare of another key: %v", err)
	} else {
		other.Accept(time.Millisecond)
	}

	t0 := time.Now()
	if _, ok := l.Accept(50 * time.Millisecond); ok {
		t.Fatal("accept without a connection said it had one")
	}
	if d := time.Since(t0); d < 40*time.Millisecond {
		t.Errorf("the idle wait ended after %v, want 50 ms", d)
	}
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket after the wait: %v, want it removed", err)
	}

	// The place is free again; a connection ends the next wait.
	l, err = Listen(dir, "k")
	if err != nil {
		t.Fatalf("the place after the wait: %v", err)
	}
	c, err := unix.Socket(unix.AF_UNIX, unix.SOCK_SEQPACKET|unix.SOCK_CLOEXEC, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer unix.Close(c)
	if err := unix.Connect(c, &unix.SockaddrUnix{Name: sock}); err != nil {
		t.Fatal(err)
	}
	conn, ok := l.Accept(10 * time.Second)
	if !ok {
		t.Fatal("no connection accepted")
	}
	defer unix.Close(conn)
	if _, err := os.Lstat(sock); !os.IsNotExist(err) {
		t.Errorf("the socket while serving: %v, want it removed", err)
	}
	l3, err := Listen(dir, "k")
	if err != nil {
		t.Fatalf("the place while the first serves: %v, want it free", err)
	}
	l3.Accept(0)
}

// serveOne is a spare in a goroutine: one request taken with cwd, its
// files read to the end into got, the final word "exit 0".
func serveOne(t *testing.T, dir, key, cwd string) (got chan []string, took chan bool) {
	t.Helper()
	l, err := Listen(dir, key)
	if err != nil {
		t.Fatal(err)
	}
	got, took = make(chan []string, 1), make(chan bool, 1)
	go func() {
		conn, ok := l.Accept(10 * time.Second)
		if !ok {
			took <- false
			return
		}
		s, _ := Take(conn, cwd)
		took <- s != nil
		if s == nil {
			return
		}
		var texts []string
		for _, f := range s.Files {
			b, _ := io.ReadAll(f)
			f.Close()
			texts = append(texts, string(b))
		}
		got <- append(texts, strings.Join(s.Args, " "))
		s.Done("exit 0")
	}()
	return got, took
}

// pipeWith is a pipe's read end with text written and the write end
// closed.
func pipeWith(t *testing.T, text string) *os.File {
	t.Helper()
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	if _, err := w.WriteString(text); err != nil {
		t.Fatal(err)
	}
	w.Close()
	t.Cleanup(func() { r.Close() })
	return r
}

// TestDialTake: a request reaches the spare with its arguments and its
// files in order, and the caller gets the spare's pid and final word; a
// request of another environment or cwd is declined (the caller is told
// why, and the spare's files are closed); the caller's peer check can
// refuse a spare; StopAll's request is a quit; with no spare, Dial says
// none listens.
func TestDialTake(t *testing.T) {
	dir := filepath.Join(t.TempDir(), ".helpers")
	cwd, _ := os.Getwd()
	req := Request{Args: []string{"--x", "y"}, Env: os.Environ(), Cwd: cwd}
	self := SameUserNS("self")

	got, took := serveOne(t, dir, "k", cwd)
	p, why, err := Dial(context.Background(), dir, "k", req, []*os.File{pipeWith(t, "one"), pipeWith(t, "two")}, self)
	if p == nil || err != nil {
		t.Fatalf("Dial: %v, %q, %v", p, why, err)
	}
	if p.Pid != os.Getpid() {
		t.Errorf("the spare's pid %d, want this process's %d", p.Pid, os.Getpid())
	}
	if !<-took {
		t.Fatal("the spare did not take the request")
	}
	if g := <-got; strings.Join(g, "|") != "one|two|--x y" {
		t.Errorf("the spare got %q, want the files' texts in order and the arguments", g)
	}
	if msg, err := p.Wait(); msg != "exit 0" || err != nil {
		t.Errorf("the final word: %q, %v", msg, err)
	}

	for name, r := range map[string]Request{
		"another cwd":         {Env: os.Environ(), Cwd: "/elsewhere"},
		"another environment": {Env: append(os.Environ(), "SANDY_SPARE_TEST=1"), Cwd: cwd},
		"stdio not sent":      {Env: os.Environ(), Cwd: cwd, Stdio: []int{2}},
		"stdio above 2":       {Env: os.Environ(), Cwd: cwd, Stdio: []int{3}},
	} {
		_, took := serveOne(t, dir, "k", cwd)
		p, why, err := Dial(context.Background(), dir, "k", r, nil, self)
		if p != nil || err != nil || !strings.HasPrefix(why, "it declined: ") {
			t.Errorf("%s: Dial %v, %q, %v; want declined", name, p, why, err)
		}
		if <-took {
			t.Errorf("%s: the spare took it", name)
		}
	}

	_, took = serveOne(t, dir, "k", cwd)
	refuse := func(int) error { return errors.New("no, thanks") }
	if p, why, _ := Dial(context.Background(), dir, "k", req, nil, refuse); p != nil || !strings.Contains(why, "no, thanks") {
		t.Errorf("a refused peer: %v, %q", p, why)
	}
	if <-took {
		t.Error("the spare took a request its caller did not send")
	}

	if p, why, _ := Dial(context.Background(), dir, "none", req, nil, self); p != nil || !strings.HasPrefix(why, "none listens") {
		t.Errorf("no spare: %v, %q", p, why)
	}

	l, err := Listen(dir, "q")
	if err != nil {
		t.Fatal(err)
	}
	quit := make(chan bool)
	go func() {
		conn, _ := l.Accept(10 * time.Second)
		_, q := Take(conn, cwd)
		quit <- q
	}()
	if n := StopAll(dir); n != 1 {
		t.Errorf("StopAll stopped %d spares, want 1", n)
	}
	if !<-quit {
		t.Error("StopAll's request was not a quit")
	}
}

// TestSameUserNS: a process in another user namespace (a container's,
// whose root may be this user) is never taken for a spare.
func TestSameUserNS(t *testing.T) {
	if err := SameUserNS("self")(os.Getpid()); err != nil {
		t.Errorf("this process: %v", err)
	}
	cmd := exec.Command("unshare", "--user", "--map-root-user", "sleep", "30")
	if err := cmd.Start(); err != nil {
		t.Fatalf("unshare (util-linux, hack/setup.sh installs it): %v", err)
	}
	defer func() { _ = cmd.Process.Kill(); _ = cmd.Wait() }()
	pid := cmd.Process.Pid
	// unshare execs sleep once the namespace is made.
	for deadline := time.Now().Add(5 * time.Second); ; time.Sleep(5 * time.Millisecond) {
		if state.NSIno(fmt.Sprintf("/proc/%d/ns/user", pid)) != state.NSIno("/proc/self/ns/user") {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("unshare made no user namespace within 5 s")
		}
	}
	if err := SameUserNS("self")(pid); err == nil {
		t.Error("a process in another user namespace passed")
	}
	if err := SameUserNS("self")(1 << 30); err == nil {
		t.Error("a pid that does not exist passed")
	}
}
