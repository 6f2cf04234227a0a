package flashauth_test

import (
	"errors"
	"fmt"
	"go/build"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
)

const modulePath = "github.com/flashbacktech/flashauth"

// sameFloorImports are the imports allowed between packages on one floor
// (docs/design.md names them).
var sameFloorImports = map[[2]string]bool{
	{"signin", "session"}: true, // a sign-in opens a session
}

// TestImportRules: every package is on the package map of docs/design.md,
// every package there exists, and the code that ships (not tests) imports
// only packages on lower floors.
func TestImportRules(t *testing.T) {
	floors := packageMap(t, "docs/design.md")
	pkgs := repoImports(t, ".")
	if len(pkgs) < 20 {
		t.Fatalf("found only %d packages: is the test running at the repository root?", len(pkgs))
	}
	for _, v := range importViolations(floors, pkgs) {
		t.Error(v)
	}
}

// TestImportViolationsFindsThem: the check reports a package off the map,
// a map entry that is gone, an upward import and a sideways one, and lets
// the allowed ones pass.
func TestImportViolationsFindsThem(t *testing.T) {
	floors := map[string]int{"flashauth": 1, "audit": 2, "ratelimit": 2, "session": 4, "signin": 4, "refresh": 4, "httpapi": 5, "gone": 3}
	pkgs := map[string][]string{
		"flashauth": nil,
		"audit":     {"flashauth"},
		"ratelimit": {"audit"},                         // sideways
		"session":   {"flashauth", "audit"},            // fine
		"signin":    {"session"},                       // the allowed sibling
		"refresh":   {"httpapi", "flashauth", "audit"}, // upward
		"httpapi":   {"refresh", "session", "signin"},
		"newpkg":    {"flashauth"}, // not on the map
	}
	got := importViolations(floors, pkgs)
	want := []string{
		`docs/design.md's package map lists "gone", which is not a package`,
		`package "newpkg" is not on the package map in docs/design.md`,
		`ratelimit (floor 2) imports audit (floor 2): imports must go to a lower floor`,
		`refresh (floor 4) imports httpapi (floor 5): imports must go to a lower floor`,
	}
	if !slices.Equal(got, want) {
		t.Errorf("violations:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// importViolations checks pkgs (package -> the repository packages its
// non-test files import, by path relative to the module, the root being
// "flashauth") against floors, sorted.
func importViolations(floors map[string]int, pkgs map[string][]string) []string {
	var out []string
	for p := range floors {
		if _, ok := pkgs[p]; !ok {
			out = append(out, fmt.Sprintf("docs/design.md's package map lists %q, which is not a package", p))
		}
	}
	for p, imports := range pkgs {
		floor, ok := floors[p]
		if !ok {
			out = append(out, fmt.Sprintf("package %q is not on the package map in docs/design.md", p))
			continue
		}
		for _, imp := range imports {
			f, ok := floors[imp]
			if !ok || f < floor || (f == floor && sameFloorImports[[2]string{p, imp}]) {
				continue // an import off the map is reported as that package
			}
			out = append(out, fmt.Sprintf("%s (floor %d) imports %s (floor %d): imports must go to a lower floor", p, floor, imp, f))
		}
	}
	slices.Sort(out)
	return out
}

// packageMap parses the package map of the design document: the lines
// "floor package description" between its markers.
func packageMap(t *testing.T, path string) map[string]int {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	doc := string(b)
	_, after, ok1 := strings.Cut(doc, "<!-- package map")
	block, _, ok2 := strings.Cut(after, "<!-- end of package map -->")
	if !ok1 || !ok2 {
		t.Fatalf("%s: no package map between its markers", path)
	}
	floors := map[string]int{}
	for line := range strings.Lines(block) {
		fields := strings.Fields(line)
		if len(fields) < 2 {
			continue
		}
		floor, err := strconv.Atoi(fields[0])
		if err != nil {
			continue // the header, the fence
		}
		if _, dup := floors[fields[1]]; dup {
			t.Errorf("%s: %s is on the package map twice", path, fields[1])
		}
		floors[fields[1]] = floor
	}
	if len(floors) == 0 {
		t.Fatalf("%s: the package map is empty", path)
	}
	return floors
}

// repoImports returns every package below root with the repository
// packages its non-test files import, both as paths relative to the module
// ("flashauth" for the root package), the package named by its directory.
func repoImports(t *testing.T, root string) map[string][]string {
	t.Helper()
	rel := func(importPath string) (string, bool) {
		if importPath == modulePath {
			return "flashauth", true
		}
		p, ok := strings.CutPrefix(importPath, modulePath+"/")
		return p, ok
	}
	out := map[string][]string{}
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil || !d.IsDir() {
			return err
		}
		name := d.Name()
		if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "node_modules") {
			return filepath.SkipDir
		}
		pkg, err := build.Default.ImportDir(path, 0)
		if _, ok := errors.AsType[*build.NoGoError](err); ok {
			return nil
		}
		if err != nil {
			return fmt.Errorf("%s: %w", path, err)
		}
		p := filepath.ToSlash(path)
		if p == "." {
			p = "flashauth"
		}
		imports := []string{}
		for _, imp := range pkg.Imports {
			if r, ok := rel(imp); ok {
				imports = append(imports, r)
			}
		}
		out[p] = imports
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return out
}
