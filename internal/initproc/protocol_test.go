//go:build linux

package initproc

import (
	"encoding/json"
	"reflect"
	"strings"
	"testing"

	specs "github.com/opencontainers/runtime-spec/specs-go"
	"golang.org/x/sys/unix"

	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/userns"
)

func connPair(t *testing.T) (host, init *userns.Conn) {
	t.Helper()
	p, c, err := userns.NewPair()
	if err != nil {
		t.Fatal(err)
	}
	fd, err := unix.Dup(int(c.Fd()))
	c.Close()
	if err != nil {
		t.Fatal(err)
	}
	child := userns.NewConn(fd)
	t.Cleanup(func() { p.Close(); child.Close() })
	return p, child
}

// TestConfigRoundTrip: what SendConfig sends, recvConfig decodes into
// the same Config and ExecConfig.
func TestConfigRoundTrip(t *testing.T) {
	timeout := 2
	s := &specs.Spec{
		Version:  specs.Version,
		Process:  &specs.Process{Args: []string{"/bin/sh", "-c", "ünï"}, Env: []string{"A=b"}, Cwd: "/", User: specs.User{UID: 1, AdditionalGids: []uint32{5}}},
		Root:     &specs.Root{Path: "rootfs", Readonly: true},
		Hostname: "h",
		Hooks:    &specs.Hooks{CreateContainer: []specs.Hook{{Path: "/h", Timeout: &timeout}}},
		Linux: &specs.Linux{
			Namespaces: []specs.LinuxNamespace{{Type: specs.PIDNamespace}, {Type: specs.MountNamespace, Path: "/proc/1/ns/mnt"}},
			Seccomp:    &specs.LinuxSeccomp{DefaultAction: specs.ActErrno, Syscalls: []specs.LinuxSyscall{{Names: []string{"a"}, Action: specs.ActAllow}}},
		},
		Annotations: map[string]string{"k": "v"},
	}
	for _, cfg := range []any{
		&Config{Spec: s, ID: "c1", Bundle: "/b", Layers: &overlay.Layers{Driver: "overlay", Lowers: []string{"/l"}}, StartSocket: true, Debug: true},
		&ExecConfig{Process: s.Process, Seccomp: s.Linux.Seccomp},
	} {
		host, init := connPair(t)
		go func() { _ = SendConfig(host, cfg) }()
		got := reflect.New(reflect.TypeOf(cfg).Elem()).Interface()
		if err := recvConfig(init, got); err != nil {
			t.Fatal(err)
		}
		if !reflect.DeepEqual(got, cfg) {
			t.Errorf("received %+v, sent %+v", got, cfg)
		}
	}
}

// TestRecvConfigRefusesMalformed: a config message whose payload does
// not decode is an error that names the message.
func TestRecvConfigRefusesMalformed(t *testing.T) {
	host, init := connPair(t)
	go func() { _ = host.Send(MsgConfig, json.RawMessage(`{"spec":{"process":{"args":"sh"}}}`)) }()
	var cfg Config
	err := recvConfig(init, &cfg)
	if err == nil || !strings.Contains(err.Error(), `decoding "config" message`) || !strings.Contains(err.Error(), "process.args") {
		t.Fatalf("recvConfig = %v, want a decoding error naming process.args", err)
	}
}
