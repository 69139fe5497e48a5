package slirp

import (
	"errors"
	"strings"
	"testing"
)

func TestParsePort(t *testing.T) {
	tests := []struct {
		name    string
		spec    string
		want    PortSpec
		wantErr string // substring; "" means success
	}{
		{name: "host and container", spec: "8080:80", want: PortSpec{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}},
		{name: "tcp explicit", spec: "8080:80/tcp", want: PortSpec{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}},
		{name: "udp", spec: "5353:53/udp", want: PortSpec{HostPort: 5353, ContainerPort: 53, Proto: "udp"}},
		{name: "ipv4 host", spec: "127.0.0.1:8080:80", want: PortSpec{HostIP: "127.0.0.1", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}},
		{name: "ipv4 host udp", spec: "127.0.0.2:9000:9000/udp", want: PortSpec{HostIP: "127.0.0.2", HostPort: 9000, ContainerPort: 9000, Proto: "udp"}},
		{name: "any ipv4", spec: "0.0.0.0:8080:80", want: PortSpec{HostIP: "0.0.0.0", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}},
		{name: "ipv6 host", spec: "[::1]:8080:80", want: PortSpec{HostIP: "::1", HostPort: 8080, ContainerPort: 80, Proto: "tcp"}},
		{name: "ipv6 host long form", spec: "[0:0:0:0:0:0:0:1]:8080:80/udp", want: PortSpec{HostIP: "::1", HostPort: 8080, ContainerPort: 80, Proto: "udp"}},
		{name: "max ports", spec: "65535:65535", want: PortSpec{HostPort: 65535, ContainerPort: 65535, Proto: "tcp"}},
		{name: "leading zeros", spec: "08080:080", want: PortSpec{HostPort: 8080, ContainerPort: 80, Proto: "tcp"}},

		{name: "empty", spec: "", wantErr: "empty"},
		{name: "container only", spec: "80", wantErr: "missing host port"},
		{name: "empty host port", spec: "127.0.0.1::80", wantErr: "missing host port"},
		{name: "empty container port", spec: "8080:", wantErr: "empty container port"},
		{name: "host port zero", spec: "0:80", wantErr: `host port "0" is out of range`},
		{name: "container port too big", spec: "80:65536", wantErr: `container port "65536" is out of range`},
		{name: "huge number", spec: "99999999999999999999:80", wantErr: "out of range"},
		{name: "negative", spec: "-1:80", wantErr: "port ranges are not supported"},
		{name: "range", spec: "8000-8010:80-90", wantErr: "port ranges are not supported"},
		{name: "not a number", spec: "http:80", wantErr: `host port "http" is not a number`},
		{name: "plus sign", spec: "+80:80", wantErr: "is not a number"},
		{name: "sctp", spec: "80:80/sctp", wantErr: "sctp is not supported"},
		{name: "unknown proto", spec: "80:80/icmp", wantErr: `unknown protocol "icmp"`},
		{name: "upper-case proto", spec: "80:80/TCP", wantErr: `unknown protocol "TCP"`},
		{name: "empty proto", spec: "80:80/", wantErr: "empty protocol"},
		{name: "bad host ip", spec: "localhost:8080:80", wantErr: `host address "localhost" is not an IP address`},
		{name: "empty host ip", spec: ":8080:80", wantErr: "empty host address"},
		{name: "ipv6 without brackets", spec: "::1:8080:80", wantErr: "brackets"},
		{name: "ipv4 in brackets", spec: "[127.0.0.1]:8080:80", wantErr: "is not IPv6"},
		{name: "unclosed bracket", spec: "[::1:8080:80", wantErr: "missing ']'"},
		{name: "bracket without colon", spec: "[::1]8080:80", wantErr: "want ':' after ']'"},
		{name: "bracket with container only", spec: "[::1]:80", wantErr: "missing host port"},
		{name: "zone", spec: "[fe80::1%eth0]:8080:80", wantErr: "zones are not supported"},
		{name: "too many colons", spec: "1.2.3.4:1:2:3", wantErr: "too many ':'"},
		{name: "space", spec: " 8080:80", wantErr: "space"},
		{name: "two slashes", spec: "80:80/tcp/udp", wantErr: "is not a number"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := ParsePort(tt.spec)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatalf("ParsePort(%q): %v", tt.spec, err)
				}
				if got != tt.want {
					t.Fatalf("ParsePort(%q) = %+v, want %+v", tt.spec, got, tt.want)
				}
				again, err := ParsePort(got.String())
				if err != nil || again != got {
					t.Fatalf("round trip of %q via %q: %+v, %v", tt.spec, got.String(), again, err)
				}
				return
			}
			if err == nil {
				t.Fatalf("ParsePort(%q) = %+v, want error containing %q", tt.spec, got, tt.wantErr)
			}
			if !errors.Is(err, ErrBadPort) {
				t.Errorf("ParsePort(%q) error %v does not wrap ErrBadPort", tt.spec, err)
			}
			if !strings.Contains(err.Error(), tt.wantErr) || !strings.Contains(err.Error(), tt.spec) {
				t.Errorf("ParsePort(%q) error = %q, want it to contain %q and the spec", tt.spec, err, tt.wantErr)
			}
		})
	}
}

func TestValidatePorts(t *testing.T) {
	p := func(s string) PortSpec {
		t.Helper()
		ps, err := ParsePort(s)
		if err != nil {
			t.Fatal(err)
		}
		return ps
	}
	tests := []struct {
		name    string
		ports   []PortSpec
		wantErr string
	}{
		{name: "none"},
		{name: "distinct", ports: []PortSpec{p("8080:80"), p("8081:80"), p("8080:80/udp")}},
		{name: "same port different addresses", ports: []PortSpec{p("127.0.0.1:8080:80"), p("127.0.0.2:8080:81")}},
		{name: "v4 any and v6 any", ports: []PortSpec{p("0.0.0.0:8080:80"), p("[::]:8080:80")}},
		{name: "duplicate", ports: []PortSpec{p("8080:80"), p("8080:81")}, wantErr: "both use host port 8080/tcp"},
		{name: "all addresses overlap one", ports: []PortSpec{p("127.0.0.1:8080:80"), p("8080:81")}, wantErr: "both use host port 8080/tcp"},
		{name: "any overlaps one", ports: []PortSpec{p("0.0.0.0:8080:80"), p("127.0.0.1:8080:81")}, wantErr: "both use host port"},
		{name: "same address", ports: []PortSpec{p("[::1]:53:53/udp"), p("[::1]:53:54/udp")}, wantErr: "both use host port 53/udp"},
		{name: "bad proto", ports: []PortSpec{{HostPort: 1, ContainerPort: 1, Proto: "sctp"}}, wantErr: "protocol"},
		{name: "zero port", ports: []PortSpec{{Proto: "tcp", ContainerPort: 1}}, wantErr: "out of range"},
		{name: "bad ip", ports: []PortSpec{{HostIP: "x", HostPort: 1, ContainerPort: 1, Proto: "tcp"}}, wantErr: "not an IP address"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := ValidatePorts(tt.ports)
			if tt.wantErr == "" {
				if err != nil {
					t.Fatal(err)
				}
				return
			}
			if err == nil || !errors.Is(err, ErrBadPort) || !strings.Contains(err.Error(), tt.wantErr) {
				t.Fatalf("ValidatePorts = %v, want ErrBadPort containing %q", err, tt.wantErr)
			}
		})
	}
}

func FuzzParsePort(f *testing.F) {
	for _, s := range []string{"8080:80", "127.0.0.1:8080:80/udp", "[::1]:1:2/tcp", "80", "a:b:c:d", "[", "1-2:3", "[::ffff:1.2.3.4]:1:1"} {
		f.Add(s)
	}
	f.Fuzz(func(t *testing.T, s string) {
		p, err := ParsePort(s)
		if err != nil {
			if !errors.Is(err, ErrBadPort) {
				t.Fatalf("ParsePort(%q): error %v does not wrap ErrBadPort", s, err)
			}
			return
		}
		if err := ValidatePorts([]PortSpec{p}); err != nil {
			t.Fatalf("ParsePort(%q) = %+v, which ValidatePorts rejects: %v", s, p, err)
		}
		again, err := ParsePort(p.String())
		if err != nil || again != p {
			t.Fatalf("round trip %q -> %q: %+v, %v", s, p.String(), again, err)
		}
	})
}
