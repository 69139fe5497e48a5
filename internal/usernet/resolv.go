package usernet

import (
	"bufio"
	"bytes"
	"errors"
	"fmt"
	"io/fs"
	"net/netip"
	"os"
	"strings"
)

// HostResolvers are the nameservers of the resolv.conf at path, port
// 53, in its order: where 10.0.2.3 forwards. A loopback resolver
// (systemd-resolved's 127.0.0.53, dnsmasq's 127.0.0.1) is the host's
// and stays usable: the host dials it. A missing file is no resolver.
func HostResolvers(path string) ([]netip.AddrPort, error) {
	data, err := os.ReadFile(path)
	if errors.Is(err, fs.ErrNotExist) {
		return []netip.AddrPort{}, nil
	}
	if err != nil {
		return nil, fmt.Errorf("reading the host's resolvers: %w", err)
	}
	return ParseResolvConf(data), nil
}

// ParseResolvConf returns the nameserver lines of a resolv.conf(5), in
// order, as address and port 53; lines it cannot read are skipped, as
// the resolver does.
func ParseResolvConf(data []byte) []netip.AddrPort {
	var out []netip.AddrPort
	sc := bufio.NewScanner(bytes.NewReader(data))
	for sc.Scan() {
		f := strings.Fields(sc.Text())
		if len(f) < 2 || f[0] != "nameserver" {
			continue
		}
		a, err := netip.ParseAddr(f[1])
		if err != nil {
			continue // a zone we cannot use, a typo
		}
		out = append(out, netip.AddrPortFrom(a.Unmap(), 53))
	}
	return out
}
