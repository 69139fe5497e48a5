package overlay

import (
	"fmt"
	"strings"
)

// Mode names a rung of the root filesystem ladder. The values are the
// spellings of the --rootfs-mode flag.
type Mode string

const (
	// ModeAuto tries ModeOverlay, then ModeFuse, then ModeBind, and warns
	// once when it settles below ModeOverlay.
	ModeAuto Mode = "auto"
	// ModeOverlay is the kernel overlay filesystem mounted inside the user
	// namespace with the userxattr option (Linux 5.11 or later).
	ModeOverlay Mode = "overlay"
	// ModeFuse is fuse-overlayfs, started inside the namespaces.
	ModeFuse Mode = "fuse"
	// ModeBind is a read-only bind mount of the bundle's rootfs: no
	// writable layer at all.
	ModeBind Mode = "bind"
	// ModeCopy copies the rootfs into the layer directory. It is never
	// chosen by ModeAuto: a copy costs time and disk in proportion to the
	// image, so only the user can ask for it.
	ModeCopy Mode = "copy"
	// ModeDirect is no layer at all: the rootfs itself, writable, as runc
	// and crun use it. The container's writes land in the bundle, and
	// mountpoints it lacks are created in it. Only the user asks for it:
	// engines (podman, containerd) that give every container a fresh
	// rootfs of their own, diff and commit it, and expect the writes there.
	ModeDirect Mode = "direct"
)

// Modes lists the valid --rootfs-mode values in ladder order, for help text
// and completion.
func Modes() []Mode { return []Mode{ModeAuto, ModeOverlay, ModeFuse, ModeBind, ModeCopy, ModeDirect} }

// ParseMode parses a --rootfs-mode value. The empty string means ModeAuto.
func ParseMode(s string) (Mode, error) {
	if s == "" {
		return ModeAuto, nil
	}
	for _, m := range Modes() {
		if string(m) == s {
			return m, nil
		}
	}
	names := make([]string, 0, len(Modes()))
	for _, m := range Modes() {
		names = append(names, string(m))
	}
	return "", fmt.Errorf("parsing rootfs mode %q: %w (want one of %s)", s, ErrUnknownMode, strings.Join(names, ", "))
}

// String returns the flag spelling of m.
func (m Mode) String() string { return string(m) }
