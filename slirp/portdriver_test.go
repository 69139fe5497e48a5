//go:build linux

package slirp

import (
	"encoding/json"
	"io"
	"net"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"github.com/rootless-containers/rootlesskit/v3/pkg/lowlevelmsgutil"
)

// serveUnix answers each connection on a unix socket in a temp dir with
// answer, until the test ends; it returns the socket's path.
func serveUnix(t *testing.T, name string, answer func(c *net.UnixConn)) string {
	t.Helper()
	path := filepath.Join(t.TempDir(), name)
	ln, err := net.ListenUnix("unix", &net.UnixAddr{Net: "unix", Name: path})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.AcceptUnix()
			if err != nil {
				return
			}
			answer(c)
			c.Close()
		}
	}()
	return path
}

// TestBuiltinConnect: the parent half gets the port child's socket, and
// a child's error comes back as that error (rootlesskit's parent said
// "expected OOB space" instead).
func TestBuiltinConnect(t *testing.T) {
	inside, err := net.ListenTCP("tcp4", &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer inside.Close()
	reqs := make(chan portRequest, 2)
	sock := serveUnix(t, ".bp.sock", func(c *net.UnixConn) {
		var got portRequest
		if _, err := lowlevelmsgutil.UnmarshalFromReader(c, &got); err != nil {
			t.Errorf("child: reading request: %v", err)
			return
		}
		reqs <- got
		if got.Port != inside.Addr().(*net.TCPAddr).Port {
			_, _ = lowlevelmsgutil.MarshalToWriter(c, &portReply{Error: "dialing tcp 127.0.0.1:1: connection refused"})
			return
		}
		_ = connect(c, &got)
	})
	d := &builtinDriver{socketPath: sock, logw: io.Discard}
	spec := forwardSpec{Proto: "tcp4", ParentPort: 8080, ChildIP: "127.0.0.1", ChildPort: inside.Addr().(*net.TCPAddr).Port}
	c, err := d.connect(spec, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 2), Port: 41234})
	if err != nil {
		t.Fatalf("connect: %v", err)
	}
	c.Close()
	if got := <-reqs; got.Type != requestConnect || got.SourceIP != "127.0.0.2" || got.SourcePort != 41234 || got.Proto != "tcp4" {
		t.Errorf("request = %+v", got)
	}
	if _, err := d.connectOnce(&portRequest{Type: requestConnect, Proto: "tcp4", Port: 1}); err == nil || !strings.Contains(err.Error(), "port child: dialing tcp 127.0.0.1:1: connection refused") {
		t.Errorf("connect to a closed port: err = %v, want the child's error", err)
	}
}

// TestSlirpDriverAPI: add_hostfwd and remove_hostfwd as slirp4netns(1)
// documents them, and its error's desc in the error.
func TestSlirpDriverAPI(t *testing.T) {
	var mu sync.Mutex
	var reqs []map[string]any
	sock := serveUnix(t, "slirp-api.sock", func(c *net.UnixConn) {
		var req map[string]any
		if err := json.NewDecoder(c).Decode(&req); err != nil {
			t.Errorf("api: %v", err)
			return
		}
		mu.Lock()
		reqs = append(reqs, req)
		mu.Unlock()
		args, _ := req["arguments"].(map[string]any)
		switch {
		case req["execute"] == "add_hostfwd" && args["host_port"] == float64(8080):
			_, _ = io.WriteString(c, `{"return": {"id": 7}}`)
		case req["execute"] == "add_hostfwd":
			_, _ = io.WriteString(c, `{"error": {"desc": "bad request: add_hostfwd: failed to add hostfwd"}}`)
		default:
			_, _ = io.WriteString(c, `{"return": {}}`)
		}
	})
	d := &slirpDriver{apiSocket: sock, childIP: ContainerIP}
	stop, err := d.add(forwardSpec{Proto: "tcp4", ParentIP: "127.0.0.1", ParentPort: 8080, ChildPort: 80})
	if err != nil {
		t.Fatalf("add: %v", err)
	}
	stop()
	stop()
	if _, err := d.add(forwardSpec{Proto: "udp", ParentPort: 53, ChildPort: 53}); err == nil || !strings.Contains(err.Error(), "slirp4netns add_hostfwd: bad request: add_hostfwd: failed to add hostfwd") {
		t.Errorf("refused add: err = %v", err)
	}
	if _, err := d.add(forwardSpec{Proto: "tcp6", ParentPort: 80, ChildPort: 80}); err == nil {
		t.Error("tcp6 accepted")
	}
	want := []string{
		`{"arguments":{"guest_addr":"10.0.2.100","guest_port":80,"host_addr":"127.0.0.1","host_port":8080,"proto":"tcp"},"execute":"add_hostfwd"}`,
		`{"arguments":{"id":7},"execute":"remove_hostfwd"}`,
		`{"arguments":{"guest_addr":"10.0.2.100","guest_port":53,"host_addr":"","host_port":53,"proto":"udp"},"execute":"add_hostfwd"}`,
	}
	mu.Lock()
	defer mu.Unlock()
	if len(reqs) != len(want) {
		t.Fatalf("got %d requests, want %d: %v", len(reqs), len(want), reqs)
	}
	for i, r := range reqs {
		b, _ := json.Marshal(r)
		if string(b) != want[i] {
			t.Errorf("request %d = %s, want %s", i, b, want[i])
		}
	}
}
