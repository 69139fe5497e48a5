package volumes

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"time"
	"unicode"

	sandyformat "github.com/sandy-rt/sandy/internal/format"
)

// Report is a volume as podman prints it (volume inspect, ls --format):
// podman's field names, for the fields sandy has. MountCount, UID, GID,
// Status and the lock number are not there: sandy tracks no mounts, and
// the owner a volume took is its directory's.
type Report struct {
	Name        string
	Driver      string
	Mountpoint  string
	CreatedAt   time.Time
	Labels      map[string]string
	Scope       string
	Options     map[string]string
	Anonymous   bool `json:",omitempty"`
	NeedsCopyUp bool `json:",omitempty"`
	NeedsChown  bool `json:",omitempty"`
}

// Report is v in podman's shape.
func (v *Volume) Report() Report {
	return Report{
		Name: v.Name, Driver: v.Driver, Mountpoint: v.Mountpoint, CreatedAt: v.CreatedAt,
		Labels: nonNil(v.Labels), Scope: "local", Options: nonNil(v.Options),
		Anonymous: v.Anonymous, NeedsCopyUp: v.NeedsCopyUp, NeedsChown: v.NeedsChown,
	}
}

func reports(vols []*Volume) []Report {
	out := make([]Report, 0, len(vols))
	for _, v := range vols {
		out = append(out, v.Report())
	}
	return out
}

// DefaultListFormat is volume ls's table.
const DefaultListFormat = "table {{.Driver}}\t{{.Name}}"

// WriteList prints volume ls: names (quiet), a JSON array (format json),
// or a Go template per volume ("table ..." adds a header and aligns the
// columns), with podman's field names.
func WriteList(w io.Writer, vols []*Volume, format string, quiet bool) error {
	switch {
	case quiet:
		for _, v := range vols {
			if _, err := fmt.Fprintln(w, v.Name); err != nil {
				return err
			}
		}
		return nil
	case format == "json":
		return writeJSON(w, reports(vols), "  ")
	case format == "":
		format = DefaultListFormat
	}
	return writeTemplate(w, reports(vols), format)
}

// WriteInspect prints volume inspect: podman's JSON array, or a template
// per volume.
func WriteInspect(w io.Writer, vols []*Volume, format string) error {
	if format == "" || format == "json" {
		return writeJSON(w, reports(vols), "     ")
	}
	return writeTemplate(w, reports(vols), format)
}

func writeJSON(w io.Writer, rs []Report, indent string) error {
	data, err := json.MarshalIndent(rs, "", indent)
	if err != nil {
		return err
	}
	_, err = w.Write(append(data, '\n'))
	return err
}

// ParseTemplate checks a --format template, its field names included
// (the CLI does so before it changes anything).
func ParseTemplate(format string) error {
	_, err := sandyformat.Parse(format, Report{})
	return err
}

func writeTemplate(w io.Writer, rs []Report, format string) error {
	t, err := sandyformat.Parse(format, Report{})
	if err != nil {
		return err
	}
	return sandyformat.Write(w, t, rs, headers())
}

// headers are the column titles of a table: each field's name in upper
// case, words split (CreatedAt → CREATED AT), Name → VOLUME NAME.
func headers() map[string]string {
	h := map[string]string{}
	for _, f := range []string{"Name", "Driver", "Mountpoint", "CreatedAt", "Labels", "Scope", "Options", "Anonymous", "NeedsCopyUp", "NeedsChown"} {
		h[f] = splitCamel(f)
	}
	h["Name"] = "VOLUME NAME"
	return h
}

func splitCamel(s string) string {
	var b strings.Builder
	for i, r := range s {
		if i > 0 && unicode.IsUpper(r) {
			b.WriteByte(' ')
		}
		b.WriteRune(unicode.ToUpper(r))
	}
	return b.String()
}
