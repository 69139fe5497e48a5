package lifecycle

import (
	"bufio"
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"testing"
)

// The step lists in docs/design.md must be the steps the code runs, under
// the names --debug prints and errors carry. Each list is marked in the
// page with the function that runs it:
//
//	<!-- steps: internal/lifecycle/create.go create -->
//	| step | method |
//	|---|---|
//	| loading the bundle | `loadBundle` |
//	<!-- end steps -->
//
// In the code a step is an element {"name", recv.method} of a step table
// (a []struct{name string; fn func...} literal) in that function, or,
// where the function has no table (the init's run), the literal name
// passed to stepError.

const designDoc = "docs/design.md"

type step struct{ name, method string }

var (
	stepsBegin = regexp.MustCompile(`^<!-- steps: (\S+) (\S+) -->$`)
	stepRow    = regexp.MustCompile("^\\| (.+?) \\| (?:`(\\w+)`|—) \\|$")
)

// docSteps reads every marked list of the design page, keyed "file func".
func docSteps(t *testing.T, repo string) map[string][]step {
	t.Helper()
	f, err := os.Open(filepath.Join(repo, designDoc))
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	lists := map[string][]step{}
	key := ""
	sc := bufio.NewScanner(f)
	for n := 1; sc.Scan(); n++ {
		line := sc.Text()
		switch m := stepsBegin.FindStringSubmatch(line); {
		case m != nil:
			if key != "" {
				t.Fatalf("%s:%d: a steps list inside another", designDoc, n)
			}
			key = m[1] + " " + m[2]
			if _, dup := lists[key]; dup {
				t.Fatalf("%s:%d: %s listed twice", designDoc, n, key)
			}
			lists[key] = []step{}
		case line == "<!-- end steps -->":
			key = ""
		case key != "":
			if r := stepRow.FindStringSubmatch(line); r != nil && r[1] != "step" {
				lists[key] = append(lists[key], step{r[1], r[2]})
			}
		}
	}
	if err := sc.Err(); err != nil {
		t.Fatal(err)
	}
	if key != "" {
		t.Fatalf("%s: the list of %s has no <!-- end steps -->", designDoc, key)
	}
	return lists
}

// codeSteps returns the steps of every function in the package files of
// dirs that has a step table or calls stepError, keyed "file func".
func codeSteps(t *testing.T, repo string, dirs ...string) map[string][]step {
	t.Helper()
	out := map[string][]step{}
	fset := token.NewFileSet()
	for _, dir := range dirs {
		files, err := filepath.Glob(filepath.Join(repo, dir, "*.go"))
		if err != nil {
			t.Fatal(err)
		}
		if len(files) == 0 {
			t.Fatalf("no Go files in %s: run the test from its package directory (go test)", filepath.Join(repo, dir))
		}
		for _, path := range files {
			if strings.HasSuffix(path, "_test.go") {
				continue
			}
			f, err := parser.ParseFile(fset, path, nil, 0)
			if err != nil {
				t.Fatal(err)
			}
			rel := filepath.ToSlash(filepath.Join(dir, filepath.Base(path)))
			for _, d := range f.Decls {
				fd, ok := d.(*ast.FuncDecl)
				if !ok || fd.Body == nil {
					continue
				}
				if steps := funcSteps(fd); len(steps) > 0 {
					out[rel+" "+fd.Name.Name] = steps
				}
			}
		}
	}
	return out
}

// funcSteps returns the step table of fd in order, else the names it
// passes to stepError in source order (the first of each).
func funcSteps(fd *ast.FuncDecl) []step {
	var table, called []step
	seen := map[string]bool{}
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		switch n := n.(type) {
		case *ast.CompositeLit:
			if !isStepTable(n) {
				return true
			}
			for _, e := range n.Elts {
				el := e.(*ast.CompositeLit)
				name, _ := strconv.Unquote(el.Elts[0].(*ast.BasicLit).Value)
				table = append(table, step{name, el.Elts[1].(*ast.SelectorExpr).Sel.Name})
			}
			return false
		case *ast.CallExpr:
			if id, ok := n.Fun.(*ast.Ident); !ok || id.Name != "stepError" || len(n.Args) != 2 {
				return true
			}
			arg := n.Args[0]
			if b, ok := arg.(*ast.BinaryExpr); ok { // "joining the mount namespace "+path
				arg = b.X
			}
			if lit, ok := arg.(*ast.BasicLit); ok && lit.Kind == token.STRING {
				name, _ := strconv.Unquote(lit.Value)
				name = strings.TrimSpace(name)
				if !seen[name] {
					seen[name] = true
					called = append(called, step{name: name})
				}
			}
		}
		return true
	})
	if table != nil {
		return table
	}
	return called
}

// isStepTable reports whether c is a slice literal of anonymous
// {name string, fn func} structs whose elements are all {"name", x.method}.
func isStepTable(c *ast.CompositeLit) bool {
	at, ok := c.Type.(*ast.ArrayType)
	if !ok || len(c.Elts) == 0 {
		return false
	}
	st, ok := at.Elt.(*ast.StructType)
	if !ok || len(st.Fields.List) != 2 {
		return false
	}
	if _, ok := st.Fields.List[1].Type.(*ast.FuncType); !ok {
		return false
	}
	for _, e := range c.Elts {
		el, ok := e.(*ast.CompositeLit)
		if !ok || len(el.Elts) != 2 {
			return false
		}
		if lit, ok := el.Elts[0].(*ast.BasicLit); !ok || lit.Kind != token.STRING {
			return false
		}
		if _, ok := el.Elts[1].(*ast.SelectorExpr); !ok {
			return false
		}
	}
	return true
}

func TestDesignDocStepsAreTheCode(t *testing.T) {
	repo := filepath.Join("..", "..")
	doc := docSteps(t, repo)
	code := codeSteps(t, repo, "internal/lifecycle", "internal/initproc")
	if len(doc) == 0 {
		t.Fatalf("%s lists no steps (<!-- steps: FILE FUNC --> ... <!-- end steps -->)", designDoc)
	}
	for key, want := range code {
		got, ok := doc[key]
		if !ok {
			// Only step tables must be documented; stepError names
			// elsewhere (helpers) are listed where the doc chooses to.
			if want[0].method != "" {
				t.Errorf("%s: the steps of %s are not listed; add:\n%s", designDoc, key, table(key, want))
			}
			continue
		}
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: the steps listed for %s are not the code's; the code runs:\n%s", designDoc, key, table(key, want))
		}
	}
	for key := range doc {
		if _, ok := code[key]; !ok {
			t.Errorf("%s lists steps of %s, which has none (renamed or moved?)", designDoc, key)
		}
	}
}

// table renders steps as the design page lists them.
func table(key string, steps []step) string {
	var b strings.Builder
	b.WriteString("<!-- steps: " + key + " -->\n| step | method |\n|---|---|\n")
	for _, s := range steps {
		m := "—"
		if s.method != "" {
			m = "`" + s.method + "`"
		}
		b.WriteString("| " + s.name + " | " + m + " |\n")
	}
	b.WriteString("<!-- end steps -->\n")
	return b.String()
}
