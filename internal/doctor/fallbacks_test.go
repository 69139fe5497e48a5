//go:build linux

package doctor

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"

	"github.com/sandy-rt/sandy/cgroupv2"
	"github.com/sandy-rt/sandy/idmap"
	"github.com/sandy-rt/sandy/internal/imagehelper"
	"github.com/sandy-rt/sandy/overlay"
	"github.com/sandy-rt/sandy/slirp"
)

// fallback is one entry of a leaf package's Fallbacks table.
type fallback struct{ pkg, id, doctor, doc string }

// fallbacks gathers every leaf's table: the warning lines run and create
// (and the image helper) can print when sandy runs with less.
func fallbacks() []fallback {
	var all []fallback
	for _, f := range idmap.Fallbacks {
		all = append(all, fallback{"idmap", f.ID, f.Doctor, f.Doc})
	}
	for _, f := range overlay.Fallbacks {
		all = append(all, fallback{"overlay", f.ID, f.Doctor, f.Doc})
	}
	for _, f := range slirp.Fallbacks {
		all = append(all, fallback{"slirp", f.ID, f.Doctor, f.Doc})
	}
	for _, f := range cgroupv2.Fallbacks {
		all = append(all, fallback{"cgroupv2", f.ID, f.Doctor, f.Doc})
	}
	for _, f := range imagehelper.Fallbacks {
		all = append(all, fallback{"internal/imagehelper", f.ID, f.Doctor, f.Doc})
	}
	return all
}

// repoRoot is the module root, two levels above this package.
const repoRoot = "../.."

// TestFallbacks: every fallback line has a doctor check of the name its
// entry gives (a row of Run's report) and an entry in the docs: a heading
// (or <a id>) of its anchor in docs/troubleshooting.md, or on a
// per-subsystem page that troubleshooting.md links to with that anchor.
func TestFallbacks(t *testing.T) {
	rows := map[string]bool{}
	for _, c := range Run(Options{Version: "test", Root: t.TempDir(), Env: newMachine().env(t)}).Checks {
		rows[c.Name] = true
	}
	trouble := readDoc(t, "troubleshooting.md")
	seen := map[string]bool{}
	for _, f := range fallbacks() {
		t.Run(f.id, func(t *testing.T) {
			if f.id == "" || f.doctor == "" || f.doc == "" {
				t.Fatalf("%s: entry %+v: ID, Doctor and Doc are all needed", f.pkg, f)
			}
			if seen[f.id] {
				t.Errorf("%s: ID %q is used twice", f.pkg, f.id)
			}
			seen[f.id] = true
			if !rows[f.doctor] {
				t.Errorf("%s: doctor has no check %q (its rows: %v)", f.pkg, f.doctor, sortedKeys(rows))
			}
			page, anchor, ok := strings.Cut(f.doc, "#")
			if !ok || anchor == "" {
				t.Fatalf("%s: Doc %q is not PAGE.md#anchor", f.pkg, f.doc)
			}
			if !anchors(readDoc(t, page))[anchor] {
				t.Errorf("%s: docs/%s has no heading or <a id> with the anchor #%s", f.pkg, page, anchor)
			}
			if page != "troubleshooting.md" && !strings.Contains(trouble, "("+f.doc+")") {
				t.Errorf("%s: docs/troubleshooting.md does not link to %s", f.pkg, f.doc)
			}
		})
	}
}

// TestCgroupNoneWords: doctor's cgroup row says what run's "cgroup
// manager none" line says: its detail begins the line and its fix is the
// line's fix (with the user bus package first where it is missing).
func TestCgroupNoneWords(t *testing.T) {
	ch := cgroupv2.Choice{Manager: cgroupv2.KindNone, Reason: "this host has cgroup v1 only (/sys/fs/cgroup is not cgroup2); sandy manages cgroup v2 only", Fix: "boot with systemd.unified_cgroup_hierarchy=1"}
	line := ch.Warning()
	for _, s := range []cgroupv2.Session{{}, {Systemd: true}} {
		row := (&doctor{session: s}).cgroupRow(ch)
		if row.Status != Warn || !strings.HasPrefix(line, row.Detail+": ") || !strings.HasSuffix(row.Fix, ch.Fix) || !strings.Contains(line, "; fix: "+ch.Fix+" (") {
			t.Errorf("session %+v: doctor's cgroup row %+v\nis not in run's words:\n%s", s, row, line)
		}
	}
}

// TestTroubleshootingLinks: every link to an entry of
// docs/troubleshooting.md, from the docs, the README and the Go sources
// (hints name "docs/troubleshooting.md#anchor"), and every in-page link of
// troubleshooting.md, finds its heading or <a id>.
func TestTroubleshootingLinks(t *testing.T) {
	have := anchors(readDoc(t, "troubleshooting.md"))
	linkRE := regexp.MustCompile(`troubleshooting\.md#([A-Za-z0-9_.-]+)`)
	inPageRE := regexp.MustCompile(`\]\(#([^)]+)\)`)
	err := filepath.WalkDir(repoRoot, func(path string, e os.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if e.IsDir() && (e.Name() == ".git" || e.Name() == "testdata") {
			return filepath.SkipDir
		}
		if e.IsDir() || !strings.HasSuffix(path, ".md") && !strings.HasSuffix(path, ".go") {
			return nil
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		var ids [][]string
		ids = append(ids, linkRE.FindAllStringSubmatch(string(b), -1)...)
		if filepath.Base(path) == "troubleshooting.md" {
			ids = append(ids, inPageRE.FindAllStringSubmatch(string(b), -1)...)
		}
		for _, m := range ids {
			if id := m[1]; !have[id] && id != "anchor" {
				t.Errorf("%s: link to #%s: docs/troubleshooting.md has no such heading or <a id>", path, id)
			}
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
}

func readDoc(t *testing.T, page string) string {
	t.Helper()
	b, err := os.ReadFile(filepath.Join(repoRoot, "docs", page))
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

var (
	headingRE = regexp.MustCompile(`(?m)^#{1,6} +(.+?) *#*$`)
	anchorRE  = regexp.MustCompile(`<a (?:id|name)="([^"]+)"`)
	fenceRE   = regexp.MustCompile("(?ms)^```.*?^```")
)

// anchors are the fragment ids GitHub gives a markdown page: one per
// heading (lower case, punctuation dropped, spaces to hyphens, -1, -2 …
// for repeats) and each <a id="…">.
func anchors(md string) map[string]bool {
	md = fenceRE.ReplaceAllString(md, "") // "# comment" lines in code blocks are no headings
	ids := map[string]bool{}
	count := map[string]int{}
	for _, m := range headingRE.FindAllStringSubmatch(md, -1) {
		id := slug(m[1])
		if n := count[id]; n > 0 {
			count[id]++
			id += "-" + strconv.Itoa(n)
		} else {
			count[id] = 1
		}
		ids[id] = true
	}
	for _, m := range anchorRE.FindAllStringSubmatch(md, -1) {
		ids[m[1]] = true
	}
	return ids
}

// slug is GitHub's heading anchor: markdown code and link syntax gone,
// lower case, only letters, digits, '-', '_' and spaces kept, spaces to
// hyphens.
func slug(heading string) string {
	var b strings.Builder
	for _, r := range strings.ToLower(heading) {
		switch {
		case r == ' ':
			b.WriteRune('-')
		case r == '-' || r == '_' || r >= 'a' && r <= 'z' || r >= '0' && r <= '9':
			b.WriteRune(r)
		case r > 0x7f && (r >= 0xc0 && r <= 0x24f): // Latin letters with accents
			b.WriteRune(r)
		}
	}
	return b.String()
}

func TestSlug(t *testing.T) {
	tests := []struct{ in, want string }{
		{"network: loopback only (no outside network)", "network-loopback-only-no-outside-network"},
		{"image store: native overlay: …; using fuse-overlayfs / using vfs", "image-store-native-overlay--using-fuse-overlayfs--using-vfs"},
		{"`rootfs: the copy is not exact (N problems, e.g. …); fix: …`", "rootfs-the-copy-is-not-exact-n-problems-eg--fix-"},
		{"cgroup-mount", "cgroup-mount"},
		{"Start with `sandy doctor`", "start-with-sandy-doctor"},
	}
	for _, tt := range tests {
		if got := slug(tt.in); got != tt.want {
			t.Errorf("slug(%q) = %q, want %q", tt.in, got, tt.want)
		}
	}
}

func sortedKeys(m map[string]bool) []string {
	var ks []string
	for k := range m {
		ks = append(ks, k)
	}
	sort.Strings(ks)
	return ks
}

// warningSources are the packages whose code can print a warning line on
// run, create or an image command.
var warningSources = []string{
	"idmap", "userns", "overlay", "slirp", "cgroupv2", "seccomp",
	"internal/lifecycle", "internal/initproc", "internal/spec", "internal/hooks", "internal/state",
	"internal/images", "internal/imagestore", "internal/storehelper", "internal/imagehelper", "internal/cmd/sandy-image", "internal/cmd/sandy-store", "cmd/sandy",
}

// notFallbacks are the warning sites, as "dir/file.go:func", that write
// their own words and are no fallback: no rung down a ladder, nothing
// about the host that doctor could probe. Anything else that writes a
// warning line must build it from a Fallbacks entry.
var notFallbacks = map[string]string{
	"cgroupv2/errors.go:ignore":                "a setting cgroup v2 cannot express (kernel memory, swappiness), ignored as runc and crun do: the same on every host",
	"internal/lifecycle/run.go:reportOOM":      "an event (the OOM killer ran), not a fallback",
	"internal/lifecycle/create.go:checkConfig": "config.json asks for an LSM label; sandy has none to apply on any host (docs/troubleshooting.md#apparmor--selinux)",
	"internal/lifecycle/exec.go:buildProcess":  "as create.go's",
	"internal/lifecycle/layer.go:removeLayer":  "--keep-layer could not move the layer: the outcome of a flag, not a fallback",
	"slirp/bypass_linux.go:swap":               "a --log record of the experimental bind bypass (slog), not a warning line",
}

// TestFallbackSources makes the tables the only source of fallback lines:
// a warning written with words of its own (a string literal in the
// arguments of a warn/Warn call, of a Send(MsgWarn, …), or a "sandy:
// warning: …" format with more than the prefix) fails unless its site is
// in notFallbacks. Lines built by a Fallback's Line carry no literal at
// the site, and pass-throughs (g.Warn(plan.Warning), g.Warn(err.Error()))
// none either. It also checks that each leaf's Fallbacks lists every
// Fallback it declares.
func TestFallbackSources(t *testing.T) {
	used := map[string]bool{}
	declared := map[string]int{}
	fset := token.NewFileSet()
	for _, dir := range warningSources {
		files, err := filepath.Glob(filepath.Join(repoRoot, dir, "*.go"))
		if err != nil || len(files) == 0 {
			t.Fatalf("no Go files in %s: %v", dir, err)
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			rel := filepath.ToSlash(strings.TrimPrefix(path, repoRoot+"/"))
			ast.Inspect(f, func(n ast.Node) bool {
				if cl, ok := n.(*ast.CompositeLit); ok && isIdent(cl.Type, "Fallback") {
					declared[dir]++
				}
				return true
			})
			for _, d := range f.Decls {
				fn, ok := d.(*ast.FuncDecl)
				if !ok || fn.Body == nil {
					continue
				}
				site := rel + ":" + fn.Name.Name
				ast.Inspect(fn.Body, func(n ast.Node) bool {
					call, ok := n.(*ast.CallExpr)
					if !ok || !writesWarning(call) {
						return true
					}
					if _, ok := notFallbacks[site]; ok {
						used[site] = true
						return true
					}
					t.Errorf("%s: %s writes a warning line with its own words: build it from a Fallbacks entry of the package that owns the condition (Doctor: its doctor check, Doc: its troubleshooting entry), or, if it is no fallback, add the site to notFallbacks with why",
						fset.Position(call.Pos()), site)
					return true
				})
			}
		}
	}
	for site := range notFallbacks {
		if !used[site] {
			t.Errorf("notFallbacks: %s writes no warning line any more: remove it", site)
		}
	}
	tables := map[string]int{"idmap": len(idmap.Fallbacks), "overlay": len(overlay.Fallbacks), "slirp": len(slirp.Fallbacks), "cgroupv2": len(cgroupv2.Fallbacks),
		"internal/imagehelper": len(imagehelper.Fallbacks)}
	for dir, n := range declared {
		if tables[dir] != n {
			t.Errorf("%s declares %d Fallback entries, its Fallbacks lists %d (a new leaf's table goes in fallbacks() and here)", dir, n, tables[dir])
		}
	}
}

// writesWarning: call is warn(…)/x.Warn(…)/Send(MsgWarn, …) with a string
// literal among its arguments, or a Fprintf/Printf/Sprintf/Errorf whose
// format says "sandy: warning: " and more than a single verb.
func writesWarning(call *ast.CallExpr) bool {
	name := calleeName(call.Fun)
	switch {
	case name == "warn" || name == "Warn":
		return hasLiteral(call.Args)
	case name == "Send" && len(call.Args) == 2 && isIdent(call.Args[0], "MsgWarn"):
		return hasLiteral(call.Args[1:])
	}
	for _, a := range call.Args {
		lit, ok := a.(*ast.BasicLit)
		if !ok || lit.Kind != token.STRING {
			continue
		}
		s, err := strconv.Unquote(lit.Value)
		if err != nil || !strings.Contains(s, "warning: ") {
			continue
		}
		rest := strings.TrimSuffix(s[strings.Index(s, "warning: ")+len("warning: "):], "\n")
		return rest != "%s" && rest != "%v"
	}
	return false
}

func calleeName(e ast.Expr) string {
	switch f := e.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	}
	return ""
}

func isIdent(e ast.Expr, name string) bool { return calleeName(e) == name }

func hasLiteral(args []ast.Expr) bool {
	found := false
	for _, a := range args {
		ast.Inspect(a, func(n ast.Node) bool {
			if lit, ok := n.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				found = true
			}
			return !found
		})
	}
	return found
}
