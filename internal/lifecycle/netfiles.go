package lifecycle

import (
	"fmt"
	"os"
	"strings"

	"github.com/sandy-rt/sandy/slirp"
)

// NetFiles asks for the /etc/resolv.conf and /etc/hosts a container made
// from an image gets on every network, as podman gives them (a bundle
// gets them only with slirp4netns; its rootfs has its own otherwise):
// with slirp4netns, the network's; with the host's network, the host's
// files; with none, localhost only. --dns, --dns-search and --dns-option
// replace the nameserver, search and options lines; --add-host lines are
// added to hosts.
type NetFiles struct {
	DNS, Search, Options []string
	// Hosts are "IP\tNAME" lines.
	Hosts []string
}

// networkFiles returns what the init writes into /etc for the network.
func (cr *creation) networkFiles() (resolv, hosts string) {
	nf := cr.o.NetFiles
	hostname := cr.bundle.Spec.Hostname
	switch {
	case cr.netOpts != nil:
		resolv, hosts = slirp.ResolvConf, slirp.Hosts(hostname, cr.netOpts.HostLoopback)
	case cr.unet != nil:
		// The same addresses as slirp4netns's (internal/usernet).
		resolv, hosts = slirp.ResolvConf, slirp.Hosts(hostname, cr.unet.hostLoopback)
	case nf == nil:
		return "", ""
	case cr.netMode == slirp.ModeHost:
		resolv, hosts = readHostFile("/etc/resolv.conf"), readHostFile("/etc/hosts")
	default:
		hosts = slirp.Hosts("", false)
	}
	if nf == nil {
		return resolv, hosts
	}
	if cr.netOpts == nil && cr.unet == nil && hostname != "" && hostname != "localhost" {
		hosts += "127.0.1.1\t" + hostname + "\n"
	}
	for _, h := range nf.Hosts {
		hosts += h + "\n"
	}
	return nf.resolvConf(resolv), hosts
}

// resolvConf is base with --dns, --dns-search and --dns-option applied:
// each replaces the lines of its kind.
func (nf *NetFiles) resolvConf(base string) string {
	var b strings.Builder
	for _, l := range strings.SplitAfter(base, "\n") {
		f := strings.Fields(l)
		if l == "" || len(f) > 0 && (f[0] == "nameserver" && len(nf.DNS) > 0 || f[0] == "search" && len(nf.Search) > 0 || f[0] == "options" && len(nf.Options) > 0) {
			continue
		}
		b.WriteString(l)
		if !strings.HasSuffix(l, "\n") {
			b.WriteString("\n")
		}
	}
	if len(nf.Search) > 0 {
		fmt.Fprintf(&b, "search %s\n", strings.Join(nf.Search, " "))
	}
	for _, s := range nf.DNS {
		fmt.Fprintf(&b, "nameserver %s\n", s)
	}
	if len(nf.Options) > 0 {
		fmt.Fprintf(&b, "options %s\n", strings.Join(nf.Options, " "))
	}
	return b.String()
}

// readHostFile reads one of the host's /etc files for a container on the
// host's network ("" when it cannot be read: the container keeps its own).
func readHostFile(p string) string {
	b, err := os.ReadFile(p)
	if err != nil {
		return ""
	}
	s := string(b)
	if s != "" && !strings.HasSuffix(s, "\n") {
		s += "\n"
	}
	return s
}
