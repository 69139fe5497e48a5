//go:build integration

package main_test

import (
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/sandy-rt/sandy/internal/testutil"
	"github.com/sandy-rt/sandy/internal/testutil/imagefix"
)

// TestRunImagePublishAll: -P publishes the image's exposed ports and -p
// CPORT a container port, each on a free host port that `sandy
// container port` and `container ls` show while it runs and after it
// exited; the server is reachable through it.
func TestRunImagePublishAll(t *testing.T) {
	testutil.SandyWithImages(t)
	if testutil.AsUser(t) {
		return
	}
	e := newImgEnv(t)
	img := imagefix.Busybox(t)
	img.Config.ExposedPorts = []string{"8080/tcp", "5353/udp"}
	e.loadImage("localhost/bb:web", img)

	c := e.cmd("run", "--name", "web", "-P", "-p", "127.0.0.1::9090", "localhost/bb:web", "sh", "-c",
		"mkdir -p /www && echo served > /www/index.html && trap 'exit 0' TERM INT; httpd -f -p 8080 -h /www & wait")
	var stderr strings.Builder
	c.Stderr = &stderr
	if err := c.Start(); err != nil {
		t.Fatal(err)
	}
	stopped := false
	defer func() {
		if !stopped {
			_ = c.Process.Signal(syscall.SIGTERM)
			_ = c.Wait()
		}
		e.run_(nil, "container", "rm", "-f", "web")
	}()
	var lines string
	for deadline := time.Now().Add(30 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		if r := e.run_(nil, "container", "port", "web"); r.code == 0 && r.stdout != "" {
			lines = r.stdout
			break
		}
	}
	var tcp, udp, local string
	for _, l := range strings.Split(strings.TrimSpace(lines), "\n") {
		from, to, _ := strings.Cut(l, " -> ")
		switch from {
		case "8080/tcp":
			tcp = to
		case "5353/udp":
			udp = to
		case "9090/tcp":
			local = to
		}
	}
	if !strings.HasPrefix(tcp, "0.0.0.0:") || !strings.HasPrefix(udp, "0.0.0.0:") || !strings.HasPrefix(local, "127.0.0.1:") {
		t.Fatalf("container port: %q (stderr %s)", lines, stderr.String())
	}
	if one := e.ok("container", "port", "web", "8080"); one != "8080/tcp -> "+tcp+"\n" {
		t.Errorf("container port web 8080: %q", one)
	}
	e.fails(125, "container", "port", "web", "80")
	var body []byte
	url := "http://127.0.0.1:" + strings.TrimPrefix(tcp, "0.0.0.0:") + "/"
	for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(100 * time.Millisecond) {
		resp, err := http.Get(url)
		if err != nil {
			continue
		}
		body, _ = io.ReadAll(resp.Body)
		resp.Body.Close()
		break
	}
	if string(body) != "served\n" {
		t.Errorf("GET %s through -P: %q", url, body)
	}
	if table := e.ok("container", "ls"); !strings.Contains(table, "PORTS") || !strings.Contains(table, tcp+"->8080/tcp") {
		t.Errorf("container ls: no %s->8080/tcp in\n%s", tcp, table)
	}

	_ = c.Process.Signal(syscall.SIGTERM)
	_ = c.Wait()
	stopped = true
	// Kept, exited: the ports it was given are still its own.
	var listed []struct {
		Names []string
		Ports []struct {
			HostIP        string `json:"host_ip"`
			ContainerPort int    `json:"container_port"`
			HostPort      int    `json:"host_port"`
			Protocol      string `json:"protocol"`
		}
	}
	if err := json.Unmarshal([]byte(e.ok("container", "ls", "-a", "--format", "json")), &listed); err != nil {
		t.Fatal(err)
	}
	if len(listed) != 1 || len(listed[0].Ports) != 3 {
		t.Fatalf("container ls -a --format json: %+v", listed)
	}
	// -p first, then -P's in the image's order.
	if p := listed[0].Ports; p[0].ContainerPort != 9090 || p[0].HostIP != "127.0.0.1" || p[1].ContainerPort != 5353 || p[1].Protocol != "udp" ||
		p[2].ContainerPort != 8080 || fmt.Sprintf("0.0.0.0:%d", p[2].HostPort) != tcp {
		t.Errorf("container ls -a --format json: ports %+v, want 9090, 5353/udp, 8080 on %s", p, tcp)
	}
	if after := e.ok("container", "port", "web"); after != lines {
		t.Errorf("after the exit: %q, want %q", after, lines)
	}
}
