package slirp

import (
	"fmt"
	"net/netip"
	"strconv"
	"strings"
)

// PortSpec is one -p forward: connections to HostIP:HostPort on the host
// reach ContainerPort inside the container.
type PortSpec struct {
	HostIP        string // "" means every host address; an IPv6 address has no brackets
	HostPort      int
	ContainerPort int
	Proto         string // "tcp" or "udp"
}

// String formats p in the syntax ParsePort reads.
func (p PortSpec) String() string {
	host := ""
	if p.HostIP != "" {
		if strings.Contains(p.HostIP, ":") {
			host = "[" + p.HostIP + "]:"
		} else {
			host = p.HostIP + ":"
		}
	}
	return fmt.Sprintf("%s%d:%d/%s", host, p.HostPort, p.ContainerPort, p.Proto)
}

// ParsePort parses a podman-style -p spec:
//
//	[hostIP:]hostPort:containerPort[/tcp|/udp]
//
// An IPv6 host address goes in brackets ("[::1]:8080:80"). The host port is
// required (the caller picks free ports: containers.publishSpecs for `sandy run IMAGE`) and ranges are not supported.
// Every error wraps ErrBadPort and names the spec and what is wrong with it.
func ParsePort(spec string) (PortSpec, error) {
	p, err := parsePort(spec)
	if err != nil {
		return PortSpec{}, fmt.Errorf("%w: -p %q: %s (want [hostIP:]hostPort:containerPort[/tcp|/udp])", ErrBadPort, spec, err)
	}
	return p, nil
}

func parsePort(spec string) (PortSpec, error) {
	var p PortSpec
	if spec == "" {
		return p, errString("empty")
	}
	if strings.TrimSpace(spec) != spec {
		return p, errString("leading or trailing space")
	}
	rest := spec
	p.Proto = "tcp"
	if i := strings.LastIndexByte(rest, '/'); i >= 0 {
		switch proto := rest[i+1:]; proto {
		case "tcp", "udp":
			p.Proto = proto
		case "":
			return p, errString("empty protocol after '/'")
		case "sctp":
			return p, errString("protocol sctp is not supported (tcp or udp)")
		default:
			return p, fmt.Errorf("unknown protocol %q (tcp or udp)", proto)
		}
		rest = rest[:i]
	}
	if strings.HasPrefix(rest, "[") {
		end := strings.IndexByte(rest, ']')
		if end < 0 {
			return p, errString("missing ']' after IPv6 host address")
		}
		ip, err := parseHostIP(rest[1:end])
		if err != nil {
			return p, err
		}
		if !ip.Is6() || ip.Is4In6() {
			return p, fmt.Errorf("host address %q in brackets is not IPv6", rest[1:end])
		}
		p.HostIP = ip.String()
		rest = rest[end+1:]
		if !strings.HasPrefix(rest, ":") {
			return p, errString("want ':' after ']'")
		}
		rest = rest[1:]
	}
	parts := strings.Split(rest, ":")
	switch {
	case len(parts) == 3 && p.HostIP == "":
		if parts[0] == "" {
			return p, errString("empty host address before ':'")
		}
		ip, err := parseHostIP(parts[0])
		if err != nil {
			return p, err
		}
		if !ip.Is4() {
			return p, fmt.Errorf("IPv6 host address %q must be in brackets", parts[0])
		}
		p.HostIP = ip.String()
		parts = parts[1:]
	case len(parts) == 2:
	case len(parts) == 1:
		return p, errString("missing host port (only `sandy run IMAGE` picks a free one)")
	default:
		if p.HostIP == "" && strings.Count(rest, ":") > 2 {
			return p, errString("too many ':' (an IPv6 host address goes in brackets)")
		}
		return p, errString("too many ':'")
	}
	var err error
	if parts[0] == "" {
		return p, errString("missing host port (only `sandy run IMAGE` picks a free one)")
	}
	if p.HostPort, err = parsePortNumber("host", parts[0]); err != nil {
		return p, err
	}
	if p.ContainerPort, err = parsePortNumber("container", parts[1]); err != nil {
		return p, err
	}
	return p, nil
}

type errString string

func (e errString) Error() string { return string(e) }

func parseHostIP(s string) (netip.Addr, error) {
	if s == "" {
		return netip.Addr{}, errString("empty host address")
	}
	if strings.Contains(s, "%") {
		return netip.Addr{}, fmt.Errorf("host address %q: zones are not supported", s)
	}
	ip, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}, fmt.Errorf("host address %q is not an IP address", s)
	}
	if ip.Is4In6() {
		ip = ip.Unmap()
	}
	return ip, nil
}

func parsePortNumber(which, s string) (int, error) {
	if s == "" {
		return 0, fmt.Errorf("empty %s port", which)
	}
	if strings.Contains(s, "-") {
		return 0, fmt.Errorf("%s port %q: port ranges are not supported", which, s)
	}
	for _, c := range s {
		if c < '0' || c > '9' {
			return 0, fmt.Errorf("%s port %q is not a number", which, s)
		}
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 1 || n > 65535 {
		return 0, fmt.Errorf("%s port %q is out of range 1-65535", which, s)
	}
	return n, nil
}

// ValidatePorts checks a set of forwards against each other: two forwards of
// the same protocol may not share a host port when their host addresses
// overlap ("" overlaps every address). Errors wrap ErrBadPort.
func ValidatePorts(ports []PortSpec) error {
	for i, a := range ports {
		if a.Proto != "tcp" && a.Proto != "udp" {
			return fmt.Errorf("%w: -p %s: protocol %q (tcp or udp)", ErrBadPort, a, a.Proto)
		}
		if a.HostPort < 1 || a.HostPort > 65535 || a.ContainerPort < 1 || a.ContainerPort > 65535 {
			return fmt.Errorf("%w: -p %s: port out of range 1-65535", ErrBadPort, a)
		}
		if a.HostIP != "" {
			if _, err := netip.ParseAddr(a.HostIP); err != nil {
				return fmt.Errorf("%w: -p %s: host address %q is not an IP address", ErrBadPort, a, a.HostIP)
			}
		}
		for _, b := range ports[:i] {
			if a.Proto == b.Proto && a.HostPort == b.HostPort && hostIPsOverlap(a.HostIP, b.HostIP) {
				return fmt.Errorf("%w: -p %s and -p %s both use host port %d/%s", ErrBadPort, b, a, a.HostPort, a.Proto)
			}
		}
	}
	return nil
}

func hostIPsOverlap(a, b string) bool {
	if a == "" || b == "" {
		return true
	}
	x, errx := netip.ParseAddr(a)
	y, erry := netip.ParseAddr(b)
	if errx != nil || erry != nil {
		return a == b
	}
	x, y = x.Unmap(), y.Unmap()
	if x.IsUnspecified() || y.IsUnspecified() {
		return x.Is4() == y.Is4()
	}
	return x == y
}
