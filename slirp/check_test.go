//go:build linux

package slirp

import (
	"context"
	"errors"
	"github.com/sandy-rt/sandy/internal/testutil"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

func TestCheckMissingSlirp4netns(t *testing.T) {
	t.Setenv("PATH", t.TempDir())
	err := Check()
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "apt-get install slirp4netns") {
		t.Fatalf("Check() with an empty PATH = %v, want ErrUnavailable with the install hint", err)
	}
	if strings.Contains(err.Error(), "\n") {
		t.Errorf("Check() error is not one line: %q", err)
	}
}

func TestLaunchWithoutNsenter(t *testing.T) {
	slirp, err := exec.LookPath("slirp4netns")
	if err != nil {
		testutil.Skip(t, "slirp4netns not in PATH (apt-get install slirp4netns)")
	}
	if err := Check(); err != nil {
		testutil.Skip(t, "%v", err)
	}
	dir := t.TempDir()
	if err := os.Symlink(slirp, filepath.Join(dir, "slirp4netns")); err != nil {
		t.Fatal(err)
	}
	t.Setenv("PATH", dir)
	_, err = Launch(context.Background(), Options{PID: os.Getpid(), StateDir: t.TempDir(), Ports: []PortSpec{{HostPort: 40000, ContainerPort: 80, Proto: "tcp"}}})
	if !errors.Is(err, ErrUnavailable) || !strings.Contains(err.Error(), "needs nsenter") {
		t.Fatalf("Launch without nsenter = %v, want ErrUnavailable naming nsenter", err)
	}
}

func TestOptionsErrors(t *testing.T) {
	long := filepath.Join(t.TempDir(), strings.Repeat("x", 100))
	tests := []struct {
		name string
		o    Options
		want string
	}{
		{"no pid", Options{StateDir: "/tmp/x"}, "no container pid"},
		{"no state dir", Options{PID: 1}, "no state directory"},
		{"state dir too long", Options{PID: 1, StateDir: long}, "too long for a unix socket path"},
		{"mtu", Options{PID: 1, StateDir: "/tmp/x", MTU: 100}, "mtu 100 out of range"},
		{"driver", Options{PID: 1, StateDir: "/tmp/x", Driver: "pasta"}, `unknown port driver "pasta"`},
		{"duplicate ports", Options{PID: 1, StateDir: "/tmp/x", Ports: []PortSpec{{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}, {HostPort: 8080, ContainerPort: 81, Proto: "tcp"}}}, "both use host port 8080/tcp"},
		{"ipv6 with slirp4netns driver", Options{PID: 1, StateDir: "/tmp/x", Driver: DriverSlirp4netns, Ports: []PortSpec{{HostIP: "::1", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}}}, "has no IPv6"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := Start(context.Background(), tt.o)
			if err == nil || !strings.Contains(err.Error(), tt.want) {
				t.Fatalf("Start(%+v) = %v, want an error containing %q", tt.o, err, tt.want)
			}
		})
	}
	if _, err := os.Stat("/tmp/x"); err == nil {
		t.Errorf("Start created /tmp/x for invalid options")
	}
}
