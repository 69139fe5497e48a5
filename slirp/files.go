package slirp

import "strings"

// ResolvConf is what the init writes into the container's /etc/resolv.conf:
// slirp4netns answers DNS on 10.0.2.3 by forwarding to the host's resolver.
const ResolvConf = "nameserver 10.0.2.3\n"

// The addresses slirp4netns --configure gives the container.
const (
	ContainerIP = "10.0.2.100" // tap0, a /24
	GatewayIP   = "10.0.2.2"   // the host; its loopback only with HostLoopback
	DNSIP       = "10.0.2.3"
)

// Hosts is the /etc/hosts that the init writes for a container on this
// network (into its writable layer or as a bind mount, never into the
// bundle): localhost, the container's own name on tap0's address, and,
// when hostLoopback lets 10.0.2.2 reach the host's loopback, the names
// podman and docker use for the host.
func Hosts(hostname string, hostLoopback bool) string {
	var b strings.Builder
	b.WriteString("127.0.0.1\tlocalhost\n::1\tlocalhost ip6-localhost ip6-loopback\n")
	if hostname != "" && hostname != "localhost" {
		b.WriteString(ContainerIP + "\t" + hostname + "\n")
	}
	if hostLoopback {
		b.WriteString(GatewayIP + "\thost.containers.internal host.docker.internal\n")
	}
	return b.String()
}
