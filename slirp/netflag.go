package slirp

import (
	"fmt"
	"strconv"
	"strings"
)

// Port drivers.
const (
	DriverBuiltin     = "builtin"
	DriverSlirp4netns = "slirp4netns"
)

// DefaultMTU is slirp4netns' largest MTU; 1500 is about seven times slower.
const DefaultMTU = 65520

// Network modes of `sandy run --network=MODE`.
const (
	ModeSlirp4netns = "slirp4netns" // a new network namespace with slirp4netns (the default where usernet cannot run)
	ModeNone        = "none"        // a new network namespace with loopback only
	ModeHost        = "host"        // the host's network namespace
	// ModeUsernet is sandy's own user-mode network, served by its program
	// sandy-net (internal/usernet): slirp4netns's addresses, no
	// slirp4netns.
	ModeUsernet = "usernet"
)

// ParseNetworkFlag parses the value of --network:
//
//	slirp4netns[:OPTION[,OPTION]...] | usernet[:OPTION[,OPTION]...] | none | host
//
// with podman's option names for slirp4netns (usernet takes
// allow_host_loopback and mtu):
//
//	allow_host_loopback=true|false   10.0.2.2 reaches the host's 127.0.0.1 (default false)
//	mtu=N                            MTU of tap0, 1280-65520 (default 65520)
//	port_handler=builtin|slirp4netns the port driver (default builtin; podman's "rootlesskit" is accepted for builtin)
//
// It returns the mode and, for slirp4netns, the Options fields it sets
// (HostLoopback, MTU, Driver). Errors wrap nothing and name the bad part.
func ParseNetworkFlag(s string) (string, Options, error) {
	var o Options
	mode, opts, hasOpts := strings.Cut(s, ":")
	switch mode {
	case ModeNone, ModeHost:
		if hasOpts {
			return "", o, fmt.Errorf("--network=%s takes no options (got %q)", mode, opts)
		}
		return mode, o, nil
	case ModeSlirp4netns, ModeUsernet:
	case "":
		return "", o, fmt.Errorf("--network: empty mode (slirp4netns, usernet, none or host)")
	default:
		return "", o, fmt.Errorf("--network=%s: unknown mode %q (slirp4netns, usernet, none or host)", s, mode)
	}
	if hasOpts && opts == "" {
		return "", o, fmt.Errorf("--network=%s: empty option list after ':'", s)
	}
	seen := map[string]bool{}
	for _, opt := range strings.Split(opts, ",") {
		if !hasOpts {
			break
		}
		key, val, ok := strings.Cut(opt, "=")
		if !ok || val == "" {
			return "", o, fmt.Errorf("--network=%s: option %q: want NAME=VALUE", s, opt)
		}
		if seen[key] {
			return "", o, fmt.Errorf("--network=%s: option %q given twice", s, key)
		}
		seen[key] = true
		switch key {
		case "allow_host_loopback":
			b, err := strconv.ParseBool(val)
			if err != nil || (val != "true" && val != "false") {
				return "", o, fmt.Errorf("--network=%s: allow_host_loopback=%q: want true or false", s, val)
			}
			o.HostLoopback = b
		case "mtu":
			n, err := strconv.Atoi(val)
			if err != nil || n < 1280 || n > DefaultMTU {
				return "", o, fmt.Errorf("--network=%s: mtu=%q: want a number from 1280 to %d", s, val, DefaultMTU)
			}
			o.MTU = n
		case "port_handler":
			if mode == ModeUsernet {
				return "", o, fmt.Errorf("--network=%s: port_handler is slirp4netns's option (usernet forwards -p in its own stack)", s)
			}
			switch val {
			case DriverBuiltin, "rootlesskit":
				o.Driver = DriverBuiltin
			case DriverSlirp4netns:
				o.Driver = DriverSlirp4netns
			default:
				return "", o, fmt.Errorf("--network=%s: port_handler=%q: want builtin or slirp4netns", s, val)
			}
		default:
			return "", o, fmt.Errorf("--network=%s: unknown option %q (allow_host_loopback, mtu, port_handler)", s, key)
		}
	}
	return mode, o, nil
}
