//go:build linux

package idmap

import (
	"os"
	"os/user"
	"strconv"
)

// CallerRequest is the Request for the calling process with automatic
// maps: its real ids, its login name (the numeric uid when it has none)
// and CanMapAny. `run` adds config.json's mappings to it; `sandy doctor`
// resolves it as it is, so both decide the same maps.
func CallerRequest() Request {
	name := strconv.Itoa(os.Getuid())
	if u, err := user.LookupId(name); err == nil {
		name = u.Username
	}
	return Request{UID: uint32(os.Getuid()), GID: uint32(os.Getgid()), User: name, Privileged: CanMapAny()}
}
