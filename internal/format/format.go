// Package format is podman's --format for sandy's listings and inspect
// records: a Go template (text/template) per item, with podman's
// functions (json, upper, lower, join), `\t` and `\n` typed in a shell
// taken as the characters, each item on its line, and "table TEMPLATE"
// printing a header row and aligned columns.
package format

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"text/template"
)

// Template is a parsed --format.
type Template struct {
	t     *template.Template
	table bool
}

// Funcs are the template functions podman's --format has that fit here.
func Funcs() template.FuncMap {
	return template.FuncMap{
		"json": func(v any) (string, error) {
			b, err := json.Marshal(v)
			return string(b), err
		},
		"upper": strings.ToUpper,
		"lower": strings.ToLower,
		"join":  strings.Join,
	}
}

// Parse parses a --format and runs it once on sample (a zero item), so
// that an unknown field fails before anything is printed.
func Parse(format string, sample any) (*Template, error) {
	table := false
	if rest, ok := strings.CutPrefix(format, "table"); ok {
		table, format = true, strings.TrimLeft(rest, " ")
	}
	// As podman's report.NormalizeFormat: \t and \n typed in a shell are
	// the characters, and each item ends its line.
	format = strings.NewReplacer(`\t`, "\t", `\n`, "\n").Replace(format)
	if !strings.HasSuffix(format, "\n") {
		format += "\n"
	}
	t, err := template.New("format").Funcs(Funcs()).Option("missingkey=error").Parse(format)
	if err != nil {
		return nil, fmt.Errorf("parsing --format: %w", err)
	}
	if err := t.Execute(io.Discard, sample); err != nil {
		return nil, fmt.Errorf("--format: %w", err)
	}
	return &Template{t: t, table: table}, nil
}

// Write runs the template for each item; a table starts with headers
// (the template run on it: a map of field name to column title) and is
// aligned as podman's report.NewWriterDefault (min width 12, padding 2).
func Write[T any](w io.Writer, t *Template, items []T, headers any) error {
	out := w
	var tw *tabwriter.Writer
	if t.table {
		tw = tabwriter.NewWriter(w, 12, 2, 2, ' ', 0)
		out = tw
		if err := t.t.Execute(out, headers); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
	}
	for _, it := range items {
		if err := t.t.Execute(out, it); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
	}
	if tw != nil {
		return tw.Flush()
	}
	return nil
}
