package slirp

import "testing"

func TestHosts(t *testing.T) {
	tests := []struct {
		name         string
		hostname     string
		hostLoopback bool
		want         string
	}{
		{"no name", "", false, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n"},
		{"name", "web", false, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.2.100\tweb\n"},
		{"name and host", "web", true, "127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n10.0.2.100\tweb\n10.0.2.2\thost.containers.internal host.docker.internal\n"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := Hosts(tt.hostname, tt.hostLoopback); got != tt.want {
				t.Errorf("Hosts(%q, %v) = %q, want %q", tt.hostname, tt.hostLoopback, got, tt.want)
			}
		})
	}
	if ResolvConf != "nameserver "+DNSIP+"\n" {
		t.Errorf("ResolvConf = %q", ResolvConf)
	}
}
