package audit

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"strconv"
	"strings"
	"testing"
)

// docs/operations.md lists what `flashauth admin audit` prints: every event
// type and outcome this package defines is named there.
func TestOperationsDocNamesEveryTypeAndOutcome(t *testing.T) {
	doc, err := os.ReadFile("../docs/operations.md")
	if err != nil {
		t.Fatal(err)
	}
	_, section, ok := strings.Cut(string(doc), "## `flashauth admin audit")
	if !ok {
		t.Fatal("docs/operations.md has no `flashauth admin audit` section")
	}
	section, _, _ = strings.Cut(section, "\n## ")
	f, err := parser.ParseFile(token.NewFileSet(), "audit.go", nil, parser.SkipObjectResolution)
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING || !strings.HasPrefix(name.Name, "Outcome") && !strings.HasPrefix(name.Name, "Type") {
					continue
				}
				v, _ := strconv.Unquote(lit.Value)
				n++
				if !strings.Contains(section, "`"+v+"`") {
					t.Errorf("docs/operations.md's admin audit section does not name %s (%s)", v, name.Name)
				}
			}
		}
	}
	if n < 10 {
		t.Fatalf("found only %d types and outcomes in audit.go: did its shape change?", n)
	}
}
