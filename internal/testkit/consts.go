package testkit

import (
	"go/ast"
	"go/parser"
	"go/token"
	"strconv"
	"strings"
	"testing"
)

// Const is a string constant declared in a Go source file.
type Const struct{ Name, Value string }

// StringConsts parses the Go file at path and returns its string constants
// whose names start with one of prefixes, in declaration order. Tests use it
// to hold docs and specs to the codes, types and outcomes the code defines,
// so that adding one without documenting it fails a test. It fails the test
// when fewer than atLeast are found (the file's shape changed).
func StringConsts(tb testing.TB, path string, atLeast int, prefixes ...string) []Const {
	tb.Helper()
	f, err := parser.ParseFile(token.NewFileSet(), path, nil, parser.SkipObjectResolution)
	if err != nil {
		tb.Fatal(err)
	}
	var out []Const
	for _, decl := range f.Decls {
		gd, ok := decl.(*ast.GenDecl)
		if !ok || gd.Tok != token.CONST {
			continue
		}
		for _, spec := range gd.Specs {
			vs := spec.(*ast.ValueSpec)
			for i, name := range vs.Names {
				if i >= len(vs.Values) {
					continue
				}
				lit, ok := vs.Values[i].(*ast.BasicLit)
				if !ok || lit.Kind != token.STRING || !hasAnyPrefix(name.Name, prefixes) {
					continue
				}
				v, err := strconv.Unquote(lit.Value)
				if err != nil {
					tb.Fatalf("%s: constant %s: %v", path, name.Name, err)
				}
				out = append(out, Const{Name: name.Name, Value: v})
			}
		}
	}
	if len(out) < atLeast {
		tb.Fatalf("%s: found %d constants named %v, want at least %d: did its shape change?", path, len(out), prefixes, atLeast)
	}
	return out
}

func hasAnyPrefix(s string, prefixes []string) bool {
	for _, p := range prefixes {
		if strings.HasPrefix(s, p) {
			return true
		}
	}
	return false
}
