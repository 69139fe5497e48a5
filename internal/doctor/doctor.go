package doctor

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
)

// Status of one check.
const (
	OK   = "ok"   // works
	Warn = "warn" // sandy falls back to something weaker; run still works
	Fail = "FAIL" // a default `sandy run ./bundle` does not work
)

// SchemaVersion is the version of the JSON document WriteJSON writes. It
// changes only when a field changes meaning or goes away: 2 renamed
// binary_writable to binary_copied.
const SchemaVersion = 2

// Check is one line of the report.
type Check struct {
	Name        string `json:"name"`                  // stable id: userns, apparmor, idmap, rootfs, fuse, cgroup, linger, network, ping, ports, images
	Status      string `json:"status"`                // OK, Warn or Fail
	Detail      string `json:"detail"`                // what was found, in the runtime's words
	Consequence string `json:"consequence,omitempty"` // what it means for the user ("" when ok)
	Fix         string `json:"fix,omitempty"`         // the command or change that fixes it ("" when ok)
	// RootFix and Packages are the fix as root does it, for --fix-script:
	// shell commands and the (Debian) packages to install. Empty when the
	// fix needs no root, or doctor cannot write it for this machine.
	RootFix  []string `json:"root_fix,omitempty"`
	Packages []string `json:"packages,omitempty"`
}

// Ladder is what sandy will use on each of its fallback ladders.
type Ladder struct {
	IDMap   string `json:"idmap"`            // "subordinate ranges (newuidmap/newgidmap)", "single mapping" or "unavailable"
	Rootfs  string `json:"rootfs"`           // overlay.Mode of `run --rootfs-mode=auto`, or "unavailable"
	Cgroup  string `json:"cgroup"`           // systemd, cgroupfs or none
	Network string `json:"network"`          // "usernet (sandy's own)", slirp4netns or "loopback only"
	Images  string `json:"images,omitempty"` // the image store's driver: "overlay (kernel, in the user namespace)", "overlay (fuse-overlayfs)", "vfs" or "unavailable"
}

// Report is the whole result.
type Report struct {
	Schema       int    `json:"schema"`
	Version      string `json:"version"`          // sandy's version
	Kernel       string `json:"kernel"`           // uname -r
	Distro       string `json:"distro,omitempty"` // os-release's PRETTY_NAME
	Binary       string `json:"binary"`           // the running binary's path
	BinaryCopied bool   `json:"binary_copied"`    // each container start copies it into a sealed memfd: writable by the caller, and no read-only overlayfs view of it works (binary_writable in schema 1)
	// BinaryProtection is how each container start protects the binary
	// (CVE-2019-5736), found by doing it: "as-is" (not writable by the
	// caller), "overlay" (root's read-only overlayfs view),
	// "userns-overlay" (the same, made in a user namespace), "memfd" (a
	// sealed copy); BinaryProtectionDetail is --debug's sentence for it.
	BinaryProtection       string  `json:"binary_protection,omitempty"`
	BinaryProtectionDetail string  `json:"binary_protection_detail,omitempty"`
	Checks                 []Check `json:"checks"`
	Ladder                 Ladder  `json:"ladder"`
	// FixScript is what --fix-script prints: one `sudo sh -eux` block of
	// the root fixes of the checks that are not ok; "" when none needs
	// root.
	FixScript string `json:"fix_script,omitempty"`
}

// OK reports whether a default `sandy run ./bundle` works: no check failed.
func (r *Report) OK() bool {
	for _, c := range r.Checks {
		if c.Status == Fail {
			return false
		}
	}
	return true
}

// ExitCode is doctor's exit status: 0 when OK, else 1.
func (r *Report) ExitCode() int {
	if r.OK() {
		return 0
	}
	return 1
}

// WriteJSON writes the report as one indented JSON document.
func (r *Report) WriteJSON(w io.Writer) error {
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	enc.SetEscapeHTML(false) // "0->1001+1" as written, not "0-\u003e1001+1"
	return enc.Encode(r)
}

// binaryNote is the header's word on how container starts protect the
// binary.
func binaryNote(r *Report) string {
	switch {
	case r.BinaryProtection == "as-is":
		return "not writable by you: used as it is"
	case r.BinaryProtection == "overlay":
		return "writable by you: each container start sees it through a read-only overlayfs mount, not copied"
	case r.BinaryProtection == "userns-overlay":
		return "writable by you: each container start sees it through a read-only overlayfs mount made in a user namespace, not copied"
	case r.BinaryCopied:
		why := ""
		if i := strings.Index(r.BinaryProtectionDetail, "no read-only overlayfs: "); i >= 0 {
			why = "; " + strings.TrimSuffix(r.BinaryProtectionDetail[i:], ")")
		}
		return "writable by you: each container start copies it into a sealed memfd" + why + " (install it root-owned to save that)"
	}
	return "not copied at container start"
}

// WriteText writes one line per check, with what it means and the fix
// under a check that is not ok, then the ladder.
func (r *Report) WriteText(w io.Writer) error {
	var b strings.Builder
	sealed := binaryNote(r)
	distro := ""
	if r.Distro != "" {
		distro = ", " + r.Distro
	}
	fmt.Fprintf(&b, "sandy %s, kernel %s%s\nbinary %s (%s)\n\n", r.Version, r.Kernel, distro, r.Binary, sealed)
	for _, c := range r.Checks {
		fmt.Fprintf(&b, "%-4s  %-8s %s\n", c.Status, c.Name, c.Detail)
		if c.Consequence != "" {
			fmt.Fprintf(&b, "                means: %s\n", c.Consequence)
		}
		if c.Fix != "" {
			fmt.Fprintf(&b, "                fix: %s\n", c.Fix)
		}
	}
	l := r.Ladder
	fmt.Fprintf(&b, "\nsandy run will use: id maps: %s; root filesystem: %s; cgroups: %s; network: %s\n", l.IDMap, l.Rootfs, l.Cgroup, l.Network)
	if l.Images != "" {
		fmt.Fprintf(&b, "the image store will use: %s\n", l.Images)
	}
	if !r.OK() {
		b.WriteString("a default `sandy run ./bundle` will fail here: fix the FAIL lines first\n")
	}
	if r.FixScript != "" {
		b.WriteString("the fixes that need root, as one script: sandy doctor --fix-script\n")
	}
	_, err := io.WriteString(w, b.String())
	return err
}

// WriteFixScript writes FixScript: nothing when no fix needs root.
func (r *Report) WriteFixScript(w io.Writer) error {
	_, err := io.WriteString(w, r.FixScript)
	return err
}

// splitParenFix splits "what went wrong (the fix)", the form of slirp's
// errors, into its two halves; without a final parenthesis the fix is "".
func splitParenFix(s string) (detail, fix string) {
	if i := strings.LastIndex(s, " ("); i > 0 && strings.HasSuffix(s, ")") {
		return s[:i], s[i+2 : len(s)-1]
	}
	return s, ""
}
