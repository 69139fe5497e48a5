//go:build containers_image_openpgp

package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"regexp"
	"strings"
	"text/tabwriter"
	"text/template"
	"time"
	"unicode"

	units "github.com/docker/go-units"
	"go.podman.io/storage"

	"github.com/sandy-rt/sandy/internal/images"
	"github.com/sandy-rt/sandy/internal/imagestore"
)

// imageRow is what a `sandy images --format` template sees: podman's
// field names.
type imageRow struct {
	ID, Repository, Tag, Digest, Created, CreatedSince, Size string
	CreatedAt                                                time.Time
	Names                                                    []string
	Labels                                                   map[string]string
	Containers                                               int
	Dangling                                                 bool
	History                                                  []string
}

func cmdImages(ctx context.Context, g *global, args []string) error {
	fs := g.flags("images [flags] [IMAGE]")
	fs.BoolP("all", "a", false, "show every image (sandy keeps no intermediate images: the same list)")
	quiet := fs.BoolP("quiet", "q", false, "print only image ids")
	digests := fs.Bool("digests", false, "show digests")
	noTrunc := fs.Bool("no-trunc", false, "do not truncate ids")
	noHeading := fs.BoolP("noheading", "n", false, "no header line")
	format := fs.String("format", "", "json, or a Go template ({{.Repository}} {{.Tag}} {{.ID}} {{.Digest}} {{.Created}} {{.Size}}); a leading \"table \" prints a header")
	check := func(ops []string) error {
		if len(ops) > 1 {
			return errors.New("want at most one image name to filter by")
		}
		return nil
	}
	return g.withStore(fs, args, check, func(s storage.Store, ops []string) error {
		withConfig := *format != "" && *format != "table"
		list, err := images.List(ctx, s, withConfig)
		if err != nil {
			return err
		}
		if len(ops) == 1 {
			list = filterByName(list, ops[0])
		}
		if *format == "json" {
			enc := json.NewEncoder(g.stdout)
			enc.SetIndent("", "    ")
			enc.SetEscapeHTML(false)
			if list == nil {
				list = []images.Summary{}
			}
			return enc.Encode(list)
		}
		now := time.Now()
		var rows []imageRow
		seen := map[string]bool{}
		for _, r := range images.Rows(list) {
			if *quiet {
				if seen[r.ID] {
					continue
				}
				seen[r.ID] = true
			}
			id := r.ID
			if !*noTrunc {
				id = imagestore.ShortID(id)
			}
			rows = append(rows, imageRow{ID: id, Repository: r.Repository, Tag: r.Tag, Digest: r.Digest,
				Created: humanSince(now, r.Created), CreatedSince: humanSince(now, r.Created), CreatedAt: r.Created,
				Size: humanSize(r.Size), Names: r.Summary.Names, Labels: r.Summary.Labels, Containers: r.Summary.Containers,
				Dangling: r.Summary.Dangling, History: r.Summary.History})
		}
		switch {
		case *quiet:
			for _, r := range rows {
				fmt.Fprintln(g.stdout, r.ID)
			}
			return nil
		case *format != "" && *format != "table":
			t := *format
			header := false
			if rest, ok := strings.CutPrefix(t, "table "); ok {
				t, header = rest, !*noHeading
			}
			return printRows(g.stdout, t, header, rows)
		}
		t := "{{.Repository}}\t{{.Tag}}\t{{.ID}}\t{{.Created}}\t{{.Size}}"
		if *digests {
			t = "{{.Repository}}\t{{.Tag}}\t{{.Digest}}\t{{.ID}}\t{{.Created}}\t{{.Size}}"
		}
		return printRows(g.stdout, t, !*noHeading, rows)
	})
}

// filterByName keeps the images name refers to (podman's `images NAME`).
func filterByName(list []images.Summary, name string) []images.Summary {
	var out []images.Summary
	for _, s := range list {
		for _, n := range s.Names {
			repo, tag := images.SplitName(n)
			if n == name || repo == name || repo+":"+tag == name || strings.HasSuffix(repo, "/"+name) || strings.HasSuffix(repo+":"+tag, "/"+name) {
				out = append(out, s)
				break
			}
		}
	}
	return out
}

// headers are podman's column titles for the template fields.
var headers = map[string]string{"ID": "IMAGE ID", "Repository": "REPOSITORY", "Tag": "TAG", "Digest": "DIGEST",
	"Created": "CREATED", "CreatedSince": "CREATED", "CreatedAt": "CREATED AT", "Size": "SIZE", "Names": "NAMES",
	"Labels": "LABELS", "Containers": "CONTAINERS", "Dangling": "DANGLING", "History": "HISTORY"}

var fieldRe = regexp.MustCompile(`\{\{\s*\.(\w+)\s*\}\}`)

// printRows prints rows through the template t, tab-aligned as podman
// aligns them, with a header line of the fields' titles when header.
func printRows(w io.Writer, t string, header bool, rows []imageRow) error {
	t = strings.ReplaceAll(t, `\t`, "\t")
	tmpl, err := template.New("images").Parse(t + "\n")
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	tw := tabwriter.NewWriter(w, 12, 2, 2, ' ', 0)
	if header {
		h := fieldRe.ReplaceAllStringFunc(t, func(m string) string {
			f := fieldRe.FindStringSubmatch(m)[1]
			if title, ok := headers[f]; ok {
				return title
			}
			return strings.ToUpper(f)
		})
		fmt.Fprintln(tw, h)
	}
	for _, r := range rows {
		if err := tmpl.Execute(tw, r); err != nil {
			return fmt.Errorf("--format: %w", err)
		}
	}
	return tw.Flush()
}

// printTemplate prints one value through a Go template (inspect --format).
func printTemplate(w io.Writer, t string, v any) error {
	tmpl, err := template.New("inspect").Funcs(template.FuncMap{
		"json": func(v any) (string, error) { b, err := json.Marshal(v); return string(b), err },
	}).Parse(t + "\n")
	if err != nil {
		return fmt.Errorf("--format: %w", err)
	}
	return tmpl.Execute(w, v)
}

// humanSize is podman's size column: three significant digits, SI units.
func humanSize(n int64) string {
	if n < 0 {
		return "unknown"
	}
	h := units.HumanSizeWithPrecision(float64(n), 3)
	if i := strings.IndexFunc(h, unicode.IsLetter); i > 0 {
		h = h[:i] + " " + h[i:]
	}
	return h
}

// humanSince is podman's created column: "2 weeks ago".
func humanSince(now, t time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	return units.HumanDuration(now.Sub(t)) + " ago"
}
