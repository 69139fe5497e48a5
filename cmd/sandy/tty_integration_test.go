//go:build integration

package main_test

import (
	"bytes"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/containerd/console"
	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/internal/testutil"
)

// TestRunTerminal: with process.terminal the container gets a real pty from
// its own devpts, the caller's terminal is raw while it runs and restored
// after, the window size is passed in and follows SIGWINCH.
func TestRunTerminal(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh(`tty; stty size; echo ready; read line; stty size; echo "line=$line"`)
	e.spec.Process.Terminal = true
	e.write()

	master, slave, before := testPty(t, 33, 111)

	cmd := exec.Command(e.sandy, "--root", e.root, "run", e.bundle)
	cmd.Stdin, cmd.Stdout, cmd.Stderr = slave, slave, slave
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	var out syncBuffer
	go func() { _, _ = io.Copy(&out, master) }()
	waitFor(t, 20*time.Second, "ready", func() bool { return strings.Contains(out.String(), "ready") })
	during, _ := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if during.Lflag&unix.ICANON != 0 || during.Lflag&unix.ECHO != 0 {
		t.Errorf("caller's terminal not raw while the container runs: lflag %#x", during.Lflag)
	}
	if err := master.Resize(console.WinSize{Height: 44, Width: 122}); err != nil {
		t.Fatal(err)
	}
	_ = cmd.Process.Signal(unix.SIGWINCH)
	time.Sleep(200 * time.Millisecond)
	if _, err := master.Write([]byte("hello\r")); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case <-done:
	case <-time.After(20 * time.Second):
		_ = cmd.Process.Kill()
		t.Fatalf("sandy run did not exit; output %q", out.String())
	}
	time.Sleep(100 * time.Millisecond)
	got := out.String()
	for _, want := range []string{"/dev/pts/0", "33 111", "44 122", "line=hello"} {
		if !strings.Contains(got, want) {
			t.Errorf("output lacks %q:\n%s", want, got)
		}
	}
	after, _ := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if !bytes.Equal(termiosBytes(before), termiosBytes(after)) {
		t.Errorf("caller's terminal not restored: lflag %#x, was %#x", after.Lflag, before.Lflag)
	}
}

func termiosBytes(t *unix.Termios) []byte {
	return []byte{byte(t.Iflag), byte(t.Iflag >> 8), byte(t.Oflag), byte(t.Cflag), byte(t.Lflag), byte(t.Lflag >> 8)}
}

// TestTerminalConsoleSizeAndOwner: process.consoleSize is the new pty's
// window size, and the pty slave is owned by process.user.uid (its group
// stays the one devpts gives: 0, the rootless example has no gid=5), for
// run and exec, as runc does it (runc 1.1.5
// tty.bats: "[tty consolesize]", "[tty owner] ({u,g}id != 0)").
func TestTerminalConsoleSizeAndOwner(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	const script = `stty size; stat -c %u:%g $(tty)`
	e := newEnv(t).sh(script)
	e.spec.Process.Terminal = true
	e.spec.Process.ConsoleSize = &specs.Box{Height: 10, Width: 110}
	e.spec.Process.User = specs.User{UID: 1000, GID: 100}
	e.write()
	// sandy relays the pty; its stdin is not a terminal, so it does not
	// set the size itself.
	r := e.run("", "run", e.bundle)
	if r.code != 0 || !strings.Contains(r.stdout, "10 110") || !strings.Contains(r.stdout, "1000:0") {
		t.Errorf("run: exit %d, stdout %q (want \"10 110\" and \"1000:0\")\nstderr: %s", r.code, r.stdout, r.stderr)
	}

	e.spec.Process.Args = []string{"sleep", "100"}
	e.spec.Process.Terminal = false
	e.spec.Process.ConsoleSize = nil
	e.spec.Process.User = specs.User{}
	e.write()
	id := uniqueID("ttysize")
	startDetached(t, e, id)
	proc := filepath.Join(testutil.TempDir(t), "process.json")
	data := fmt.Sprintf(`{"terminal": true, "consoleSize": {"height": 12, "width": 97}, "user": {"uid": 1000, "gid": 100}, "args": ["sh", "-c", %q], "cwd": "/"}`, script)
	if err := os.WriteFile(proc, []byte(data), 0o644); err != nil {
		t.Fatal(err)
	}
	r = e.run("", "exec", "-t", "-p", proc, id)
	if r.code != 0 || !strings.Contains(r.stdout, "12 97") || !strings.Contains(r.stdout, "1000:0") {
		t.Errorf("exec: exit %d, stdout %q (want \"12 97\" and \"1000:0\")\nstderr: %s", r.code, r.stdout, r.stderr)
	}
}

// TestDevicesPtmxKeepsLink: /dev/ptmx listed in linux.devices is left to
// sandy's /dev/ptmx → pts/ptmx link (the container's own devpts), as runc
// skips it; it was the host's ptmx bound over the link (runc 1.1.5
// dev.bats: "runc run [redundant default /dev/ptmx]").
func TestDevicesPtmxKeepsLink(t *testing.T) {
	if testutil.AsUser(t) {
		return
	}
	e := newEnv(t).sh("readlink /dev/ptmx; stat -L -c '%u %t:%T' /dev/ptmx")
	e.spec.Linux.Devices = []specs.LinuxDevice{{Path: "/dev/ptmx", Type: "c", Major: 5, Minor: 2}}
	e.write()
	r := e.runBundle(0)
	if want := "pts/ptmx\n0 5:2\n"; r.stdout != want {
		t.Fatalf("/dev/ptmx: %q, want %q\nstderr: %s", r.stdout, want, r.stderr)
	}
}

// testPty opens a pty of rows x cols for a test, both ends closed at its
// end: the master, the slave (not made the controlling terminal) and the
// slave's termios before anything used it.
func testPty(t *testing.T, rows, cols uint16) (console.Console, *os.File, *unix.Termios) {
	t.Helper()
	master, slavePath, err := console.NewPty()
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { master.Close() })
	if err := master.Resize(console.WinSize{Height: rows, Width: cols}); err != nil {
		t.Fatal(err)
	}
	slave, err := os.OpenFile(slavePath, os.O_RDWR|unix.O_NOCTTY, 0)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { slave.Close() })
	before, err := unix.IoctlGetTermios(int(slave.Fd()), unix.TCGETS)
	if err != nil {
		t.Fatal(err)
	}
	return master, slave, before
}
