package volumes

import (
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Driver is the only volume driver: a directory on the host.
const Driver = "local"

// parsedOptions is what sandy makes of the local driver's options
// (podman volume create --opt): a plain directory, or a bind of a host
// directory (type=none, o=bind, device=DIR).
type parsedOptions struct {
	bindDevice string // the host directory a bind volume mounts; "" for a plain one
	noCopy     bool   // o=nocopy: no copy-up of the image's content on first use
}

// parseOptions checks the --opt map against what sandy can honour.
//
// Rootless podman mounts a volume with options in its own user and mount
// namespace, kept alive by its pause process, and unmounts it when the
// last container using it stops. It can do so for a tmpfs (type=tmpfs) and
// a bind (type=none, o=bind, device=DIR); mounting a block device or a
// network file system (type=ext4, nfs, ...) needs root in the initial
// namespace, rootless podman fails then too. uid=/gid= in o chown the
// volume in podman's namespace, size=/inodes= need XFS project quotas.
//
// sandy has no long-lived namespace to hold a mount between containers,
// so it honours what needs none: the bind (the container binds the host
// directory instead of _data) and nocopy/copy. Everything else is refused
// with the reason and what to use instead, never accepted and ignored.
func parseOptions(opts map[string]string) (parsedOptions, error) {
	var p parsedOptions
	keys := make([]string, 0, len(opts))
	for k := range opts {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var typ, device string
	var mountOpts []string
	for _, k := range keys {
		v := opts[k]
		switch k {
		case "type":
			typ = v
		case "device":
			device = v
		case "o":
			for _, o := range strings.Split(v, ",") {
				if o != "" {
					mountOpts = append(mountOpts, o)
				}
			}
		case "copy":
		case "nocopy":
			p.noCopy = true
		default:
			return p, unsupported(k+"="+v, "the local driver knows type, device and o")
		}
	}
	bind := false
	for _, o := range mountOpts {
		name, _, _ := strings.Cut(o, "=")
		switch name {
		case "bind", "rbind":
			bind = true
		case "nocopy":
			p.noCopy = true
		case "copy":
		case "uid", "gid":
			return p, unsupported("o="+o, "sandy does not chown a volume at creation; mount it with -v NAME:/dst:U to give it to the container's user")
		case "size", "inodes", "noquota":
			return p, unsupported("o="+o, "sandy sets no XFS project quota on a volume")
		default:
			if typ == "" || typ == "none" {
				return p, unsupported("o="+o, "a bind volume (type=none,o=bind,device=DIR) takes no other mount option; mount it with -v NAME:/dst:ro for a read-only view")
			}
		}
	}
	switch {
	case typ == "" && device == "" && !bind:
		return p, nil // a plain directory
	case typ == "tmpfs":
		return p, unsupported("type=tmpfs", "sandy keeps no mount alive between containers; use --tmpfs DST or --mount type=tmpfs,dst=DST for a tmpfs of the container's own")
	case typ != "" && typ != "none":
		return p, unsupported("type="+typ, "mounting a file system needs root in the initial user namespace; mount it on the host and use --opt type=none --opt o=bind --opt device=DIR (or -v DIR:/dst)")
	case !bind:
		return p, unsupported("type=none without o=bind", "the only type=none volume is a bind: --opt type=none --opt o=bind --opt device=DIR")
	case device == "":
		return p, unsupported("o=bind without device=", "name the host directory to bind with --opt device=DIR")
	}
	if !filepath.IsAbs(device) {
		return p, unsupported("device="+device, "the device of a bind volume is an absolute host directory")
	}
	p.bindDevice = filepath.Clean(device)
	return p, nil
}

// checkDevice checks that a bind volume's device is a directory: at
// creation, and again when a container is to mount it.
func (p parsedOptions) checkDevice() error {
	if p.bindDevice == "" {
		return nil
	}
	fi, err := os.Stat(p.bindDevice)
	if err != nil {
		return fmt.Errorf("bind volume device: %w", err)
	}
	if !fi.IsDir() {
		return fmt.Errorf("bind volume device %s: not a directory", p.bindDevice)
	}
	return nil
}

func unsupported(opt, why string) error {
	return fmt.Errorf("volume option %s: %w: %s (docs/troubleshooting.md#volume-options)", opt, ErrUnsupportedOption, why)
}

// ParseOpts turns --opt KEY=VALUE flags into the options map (a bare KEY
// is KEY="", as podman: --opt nocopy).
func ParseOpts(in []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range in {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("volume option %q: want KEY=VALUE", kv)
		}
		out[k] = v
	}
	return out, nil
}

// ParseLabels turns --label KEY[=VALUE] flags into a map.
func ParseLabels(in []string) (map[string]string, error) {
	out := map[string]string{}
	for _, kv := range in {
		k, v, _ := strings.Cut(kv, "=")
		if k == "" {
			return nil, fmt.Errorf("label %q: want KEY[=VALUE]", kv)
		}
		out[k] = v
	}
	return out, nil
}
