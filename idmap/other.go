//go:build !linux

package idmap

import "errors"

var errNotLinux = errors.New("user namespaces need Linux")

func findHelpers(func(string) (string, error), uint32) (string, string, *problem) {
	return "", "", &problem{what: "not running on Linux", fix: "run sandy on Linux", anchor: "idmap-write"}
}

// Apply fails: user namespaces exist only on Linux.
func (p *Plan) Apply(pid int) error { return errNotLinux }

// CanMapAny is false: user namespaces exist only on Linux.
func CanMapAny() bool { return false }
