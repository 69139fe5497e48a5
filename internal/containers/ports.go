package containers

import (
	"fmt"
	"net"
	"strconv"
	"strings"

	"github.com/sandy-rt/sandy/slirp"
)

// portPicker returns a free host port for proto on the host address ip
// ("" for every address).
type portPicker func(proto, ip string) (int, error)

// publishSpecs turns run's -p and -P into the runtime's -p specs, each
// with its host port, as podman does when the container is made:
//
//   - [IP:]HOSTPORT:CPORT[/PROTO] stays as it is;
//   - CPORT[/PROTO] and IP::CPORT[/PROTO] get a free host port (on every
//     address, or on IP);
//   - -P (all) publishes each of the image's exposed ports ("80/tcp")
//     that no -p publishes already, on a free host port.
//
// The runtime (slirp.ParsePort) checks the specs themselves; the ports
// chosen are kept in the container's record, for `sandy container port`
// and to be the same when the container starts again.
func publishSpecs(publish, exposed []string, all bool, pick portPicker) ([]string, error) {
	out := make([]string, 0, len(publish)+len(exposed))
	taken := map[string]bool{} // "80/tcp" published already
	for _, p := range publish {
		host, hostPort, cport, proto, ok := splitPublish(p)
		if !ok || hostPort != "" {
			out = append(out, p) // the runtime's parser says what is wrong, if anything
			if ok {
				taken[cport+"/"+proto] = true
			}
			continue
		}
		spec, err := pickSpec(host, cport, proto, pick)
		if err != nil {
			return nil, fmt.Errorf("-p %q: %w", p, err)
		}
		taken[cport+"/"+proto] = true
		out = append(out, spec)
	}
	if !all {
		return out, nil
	}
	for _, e := range exposed {
		cport, proto, _ := strings.Cut(e, "/")
		if proto == "" {
			proto = "tcp"
		}
		if proto != "tcp" && proto != "udp" || taken[cport+"/"+proto] {
			continue // podman skips sctp on slirp4netns as well
		}
		spec, err := pickSpec("", cport, proto, pick)
		if err != nil {
			return nil, fmt.Errorf("-P, the image's exposed port %s: %w", e, err)
		}
		taken[cport+"/"+proto] = true
		out = append(out, spec)
	}
	return out, nil
}

// pickSpec is the spec forwarding a free host port to cport.
func pickSpec(host, cport, proto string, pick portPicker) (string, error) {
	if n, err := strconv.Atoi(cport); err != nil || n < 1 || n > 65535 {
		return "", fmt.Errorf("container port %q is not a port number (1-65535)", cport)
	}
	ip := strings.TrimSuffix(strings.TrimPrefix(host, "["), "]")
	port, err := pick(proto, ip)
	if err != nil {
		return "", fmt.Errorf("choosing a free host port: %w", err)
	}
	if host != "" {
		host += ":"
	}
	return fmt.Sprintf("%s%d:%s/%s", host, port, cport, proto), nil
}

// splitPublish reads a -p spec's parts: host address (IPv6 in brackets,
// kept), host port ("" when not given), container port and protocol. ok
// is false for a spec it cannot read, left to the runtime's parser.
func splitPublish(spec string) (host, hostPort, cport, proto string, ok bool) {
	rest, proto, hasProto := strings.Cut(spec, "/")
	if !hasProto {
		proto = "tcp"
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 || !strings.HasPrefix(rest[end+1:], ":") {
			return "", "", "", "", false
		}
		host, rest = rest[:end+1], rest[end+2:]
		parts := strings.Split(rest, ":")
		if len(parts) != 2 {
			return "", "", "", "", false
		}
		return host, parts[0], parts[1], proto, parts[1] != ""
	}
	parts := strings.Split(rest, ":")
	switch len(parts) {
	case 1:
		return "", "", parts[0], proto, parts[0] != ""
	case 2:
		return "", parts[0], parts[1], proto, parts[0] != "" && parts[1] != ""
	case 3:
		return parts[0], parts[1], parts[2], proto, parts[0] != "" && parts[2] != ""
	}
	return "", "", "", "", false
}

// freePort asks the kernel for a free port on ip, as podman does: bound
// and released at once (another program may take it before the
// container's forwarder binds it, which then fails with the port named).
func freePort(proto, ip string) (int, error) {
	addr := net.JoinHostPort(ip, "0")
	if proto == "udp" {
		c, err := net.ListenPacket("udp", addr)
		if err != nil {
			return 0, err
		}
		defer c.Close()
		return c.LocalAddr().(*net.UDPAddr).Port, nil
	}
	l, err := net.Listen("tcp", addr)
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}

// PortMapping is one published port, with podman's JSON names (`ps
// --format json`'s "Ports").
type PortMapping struct {
	HostIP        string `json:"host_ip"`
	ContainerPort int    `json:"container_port"`
	HostPort      int    `json:"host_port"`
	Range         int    `json:"range"`
	Protocol      string `json:"protocol"`
}

// portMappings reads the specs a record keeps (publishSpecs' output,
// which the runtime accepted).
func portMappings(specs []string) []PortMapping {
	var out []PortMapping
	for _, s := range specs {
		p, err := slirp.ParsePort(s)
		if err != nil {
			continue
		}
		out = append(out, PortMapping{HostIP: p.HostIP, ContainerPort: p.ContainerPort, HostPort: p.HostPort, Range: 1, Protocol: p.Proto})
	}
	return out
}

// PortLines are `sandy container port`'s lines, podman's format
// ("80/tcp -> 0.0.0.0:41234"); want ("", "80" or "80/udp") selects.
func PortLines(ports []PortMapping, want string) []string {
	var out []string
	for _, p := range ports {
		cport := strconv.Itoa(p.ContainerPort)
		if want != "" && want != cport && want != cport+"/"+p.Protocol {
			continue
		}
		host := p.HostIP
		if host == "" {
			host = "0.0.0.0"
		}
		out = append(out, fmt.Sprintf("%s/%s -> %s", cport, p.Protocol, net.JoinHostPort(host, strconv.Itoa(p.HostPort))))
	}
	return out
}
