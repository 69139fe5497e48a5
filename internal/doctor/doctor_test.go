package doctor

import (
	"bytes"
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

func sample(statuses ...string) *Report {
	r := &Report{Schema: SchemaVersion, Version: "1.2.3", Kernel: "6.18", Binary: "/usr/bin/sandy",
		Ladder: Ladder{IDMap: "single mapping", Rootfs: "overlay", Cgroup: "none", Network: "slirp4netns"}}
	for i, s := range statuses {
		c := Check{Name: string(rune('a' + i)), Status: s, Detail: "detail " + s}
		if s != OK {
			c.Consequence, c.Fix = "what it means", "the fix"
		}
		r.Checks = append(r.Checks, c)
	}
	return r
}

// TestExitCode: only a FAIL makes doctor exit 1; warnings are fallbacks
// run survives.
func TestExitCode(t *testing.T) {
	tests := []struct {
		name     string
		statuses []string
		want     int
	}{
		{"none", nil, 0},
		{"all ok", []string{OK, OK}, 0},
		{"warn", []string{OK, Warn}, 0},
		{"fail", []string{Warn, Fail, OK}, 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := sample(tt.statuses...).ExitCode(); got != tt.want {
				t.Errorf("ExitCode() = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestWriteText: one line per check starting with its status, the
// consequence and fix under a check that is not ok only, the ladder, and
// the closing line only when something failed.
func TestWriteText(t *testing.T) {
	var b bytes.Buffer
	if err := sample(OK, Warn, Fail).WriteText(&b); err != nil {
		t.Fatal(err)
	}
	out := b.String()
	for _, want := range []string{
		"sandy 1.2.3, kernel 6.18\n",
		"binary /usr/bin/sandy (not copied at container start",
		"ok    a        detail ok\n",
		"warn  b        detail warn\n                means: what it means\n                fix: the fix\n",
		"FAIL  c        detail FAIL\n",
		"sandy run will use: id maps: single mapping; root filesystem: overlay; cgroups: none; network: slirp4netns\n",
		"will fail here",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("text lacks %q:\n%s", want, out)
		}
	}
	if strings.Count(out, "means:") != 2 {
		t.Errorf("want means: under the two checks that are not ok:\n%s", out)
	}
	if strings.Contains(out, "--fix-script") {
		t.Errorf("--fix-script named without a fix script:\n%s", out)
	}
	b.Reset()
	_ = sample(OK).WriteText(&b)
	if strings.Contains(b.String(), "will fail") {
		t.Errorf("closing line without a FAIL:\n%s", b.String())
	}
	r := sample(Warn)
	r.Distro, r.FixScript = "Ubuntu 24.04.1 LTS", "sudo sh -eux <<'EOF'\nx\nEOF\n"
	b.Reset()
	_ = r.WriteText(&b)
	if !strings.HasPrefix(b.String(), "sandy 1.2.3, kernel 6.18, Ubuntu 24.04.1 LTS\n") || !strings.Contains(b.String(), "as one script: sandy doctor --fix-script\n") {
		t.Errorf("want the distro in the header and the --fix-script line:\n%s", b.String())
	}
	b.Reset()
	_ = sample(Fail).WriteFixScript(&b)
	if b.Len() != 0 {
		t.Errorf("WriteFixScript without root fixes wrote %q", b.String())
	}
}

// TestJSONSchema pins the documented field names (docs/cli/doctor.md):
// changing one is a schema change.
func TestJSONSchema(t *testing.T) {
	var b bytes.Buffer
	if err := sample(OK, Warn).WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	var doc map[string]json.RawMessage
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(doc), []string{"binary", "binary_copied", "checks", "kernel", "ladder", "schema", "version"}; !slices.Equal(got, want) {
		t.Errorf("top-level keys %v, want %v", got, want)
	}
	var checks []map[string]json.RawMessage
	var ladder map[string]json.RawMessage
	if err := json.Unmarshal(doc["checks"], &checks); err != nil {
		t.Fatal(err)
	}
	if err := json.Unmarshal(doc["ladder"], &ladder); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(checks[0]), []string{"detail", "name", "status"}; !slices.Equal(got, want) {
		t.Errorf("ok check keys %v, want %v", got, want)
	}
	if got, want := keys(checks[1]), []string{"consequence", "detail", "fix", "name", "status"}; !slices.Equal(got, want) {
		t.Errorf("warn check keys %v, want %v", got, want)
	}
	if got, want := keys(ladder), []string{"cgroup", "idmap", "network", "rootfs"}; !slices.Equal(got, want) {
		t.Errorf("ladder keys %v, want %v", got, want)
	}
	if string(doc["schema"]) != "2" {
		t.Errorf("schema %s, want 2", doc["schema"])
	}

	// The fields added in schema 1 without a change: present when set.
	r := sample(Warn)
	r.Distro, r.FixScript = "Debian GNU/Linux 12 (bookworm)", "sudo sh -eux <<'EOF'\nx\nEOF\n"
	r.BinaryCopied = true
	r.Checks[0].RootFix, r.Checks[0].Packages = []string{"x"}, []string{"uidmap"}
	b.Reset()
	if err := r.WriteJSON(&b); err != nil {
		t.Fatal(err)
	}
	doc = nil
	if err := json.Unmarshal(b.Bytes(), &doc); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(doc), []string{"binary", "binary_copied", "checks", "distro", "fix_script", "kernel", "ladder", "schema", "version"}; !slices.Equal(got, want) {
		t.Errorf("top-level keys %v, want %v", got, want)
	}
	if string(doc["binary_copied"]) != "true" {
		t.Errorf("binary_copied %s, want true", doc["binary_copied"])
	}
	checks = nil
	if err := json.Unmarshal(doc["checks"], &checks); err != nil {
		t.Fatal(err)
	}
	if got, want := keys(checks[0]), []string{"consequence", "detail", "fix", "name", "packages", "root_fix", "status"}; !slices.Equal(got, want) {
		t.Errorf("check keys %v, want %v", got, want)
	}
}

func keys(m map[string]json.RawMessage) []string {
	var k []string
	for s := range m {
		k = append(k, s)
	}
	slices.Sort(k)
	return k
}

func TestSplitParenFix(t *testing.T) {
	tests := []struct{ in, detail, fix string }{
		{"slirp4netns unavailable: slirp4netns not in PATH (apt-get install slirp4netns, or dnf install slirp4netns)",
			"slirp4netns unavailable: slirp4netns not in PATH", "apt-get install slirp4netns, or dnf install slirp4netns"},
		{"x: /dev/net/tun: open /dev/net/tun: permission denied (make it mode 0666, as udev does: chmod 0666 /dev/net/tun)",
			"x: /dev/net/tun: open /dev/net/tun: permission denied", "make it mode 0666, as udev does: chmod 0666 /dev/net/tun"},
		{"x: /dev/net/tun: input/output error", "x: /dev/net/tun: input/output error", ""},
	}
	for _, tt := range tests {
		if d, f := splitParenFix(tt.in); d != tt.detail || f != tt.fix {
			t.Errorf("splitParenFix(%q) = %q, %q; want %q, %q", tt.in, d, f, tt.detail, tt.fix)
		}
	}
}

// TestBinaryNote: the header says how container starts protect the binary,
// as SelfExeProtection found it, with the overlay's error when the binary
// is copied.
func TestBinaryNote(t *testing.T) {
	for _, tc := range []struct {
		name     string
		way      string
		writable bool
		detail   string
		want     string
	}{
		{"as is", "as-is", false, "/usr/bin/sandy as it is (not writable by uid 1000)", "not writable by you: used as it is"},
		{"root", "overlay", false, "", "read-only overlayfs mount, not copied"},
		{"rootless overlay", "userns-overlay", false, "", "read-only overlayfs mount made in a user namespace, not copied"},
		{"copied", "memfd", true, "a sealed memfd copy of /h/sandy (writable by uid 1000; no read-only overlayfs: in a user namespace of its own: writing /proc/self/uid_map: operation not permitted)",
			"copies it into a sealed memfd; no read-only overlayfs: in a user namespace of its own: writing /proc/self/uid_map: operation not permitted (install it root-owned"},
		{"not probed", "", false, "", "not copied at container start"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := &Report{BinaryProtection: tc.way, BinaryCopied: tc.writable, BinaryProtectionDetail: tc.detail}
			if got := binaryNote(r); !strings.Contains(got, tc.want) {
				t.Fatalf("binaryNote = %q, want it to contain %q", got, tc.want)
			}
		})
	}
}
