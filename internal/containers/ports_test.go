package containers

import (
	"errors"
	"reflect"
	"strings"
	"testing"
)

func TestPublishSpecs(t *testing.T) {
	next := 40000
	var asked []string
	pick := func(proto, ip string) (int, error) {
		asked = append(asked, proto+" "+ip)
		next++
		return next, nil
	}
	for _, c := range []struct {
		name    string
		publish []string
		exposed []string
		all     bool
		want    []string
		asked   []string
	}{
		{"host ports kept", []string{"8080:80", "127.0.0.1:53:53/udp", "[::1]:9000:90"}, []string{"80/tcp"}, false,
			[]string{"8080:80", "127.0.0.1:53:53/udp", "[::1]:9000:90"}, nil},
		{"container port only", []string{"80", "53/udp"}, nil, false,
			[]string{"40001:80/tcp", "40002:53/udp"}, []string{"tcp ", "udp "}},
		{"empty host port on an address", []string{"127.0.0.1::80", "[::1]::81/udp"}, nil, false,
			[]string{"127.0.0.1:40001:80/tcp", "[::1]:40002:81/udp"}, []string{"tcp 127.0.0.1", "udp ::1"}},
		{"-P publishes what -p does not", []string{"8080:80"}, []string{"443/tcp", "53/udp", "80/tcp", "132/sctp"}, true,
			[]string{"8080:80", "40001:443/tcp", "40002:53/udp"}, []string{"tcp ", "udp "}},
		{"-P without exposed ports", nil, nil, true, []string{}, nil},
		{"exposed ports without -P", nil, []string{"80/tcp"}, false, []string{}, nil},
		{"unreadable left to the runtime", []string{"a:b:c:d", ":80"}, nil, false, []string{"a:b:c:d", ":80"}, nil},
	} {
		next, asked = 40000, nil
		got, err := publishSpecs(c.publish, c.exposed, c.all, pick)
		if err != nil {
			t.Errorf("%s: %v", c.name, err)
			continue
		}
		if !reflect.DeepEqual(got, c.want) || !reflect.DeepEqual(asked, c.asked) {
			t.Errorf("%s: got %q (asked %q), want %q (asked %q)", c.name, got, asked, c.want, c.asked)
		}
	}
	if _, err := publishSpecs([]string{"http"}, nil, false, pick); err == nil || !strings.Contains(err.Error(), `"http"`) {
		t.Errorf("a container port that is no number: %v", err)
	}
	failing := func(string, string) (int, error) { return 0, errors.New("address in use") }
	if _, err := publishSpecs(nil, []string{"80/tcp"}, true, failing); err == nil || !strings.Contains(err.Error(), "80/tcp") {
		t.Errorf("a failing pick names the port: %v", err)
	}
}

func TestFreePort(t *testing.T) {
	for _, proto := range []string{"tcp", "udp"} {
		p, err := freePort(proto, "127.0.0.1")
		if err != nil || p <= 0 || p > 65535 {
			t.Errorf("%s: %d, %v", proto, p, err)
		}
	}
}

func TestPortLines(t *testing.T) {
	ports := portMappings([]string{"40001:80/tcp", "127.0.0.1:53:53/udp", "[::1]:9000:90/tcp"})
	want := []PortMapping{{"", 80, 40001, 1, "tcp"}, {"127.0.0.1", 53, 53, 1, "udp"}, {"::1", 90, 9000, 1, "tcp"}}
	if !reflect.DeepEqual(ports, want) {
		t.Fatalf("portMappings: got %+v, want %+v", ports, want)
	}
	for _, c := range []struct {
		want string
		out  []string
	}{
		{"", []string{"80/tcp -> 0.0.0.0:40001", "53/udp -> 127.0.0.1:53", "90/tcp -> [::1]:9000"}},
		{"80", []string{"80/tcp -> 0.0.0.0:40001"}},
		{"53/udp", []string{"53/udp -> 127.0.0.1:53"}},
		{"53/tcp", nil},
	} {
		if got := PortLines(ports, c.want); !reflect.DeepEqual(got, c.out) {
			t.Errorf("PortLines(%q): got %q, want %q", c.want, got, c.out)
		}
	}
}
