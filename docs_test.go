package flashauth_test

import (
	"os"
	"regexp"
	"strings"
	"testing"

	"github.com/flashbacktech/flashauth/internal/testkit"
)

// TestAPIDocCoversCodesAndRoutes holds docs/api.md to the code: every error
// code has a row in its "what a client should do" table, and every route of
// httpapi/routes.go is documented.
func TestAPIDocCoversCodesAndRoutes(t *testing.T) {
	doc, err := os.ReadFile("docs/api.md")
	if err != nil {
		t.Fatal(err)
	}
	text := string(doc)
	_, table, ok := strings.Cut(text, "## What a client should do for each error code")
	if !ok {
		t.Fatal(`docs/api.md has no "What a client should do for each error code" section`)
	}
	for _, code := range errorCodes(t) {
		if !strings.Contains(table, "| `"+code+"` |") {
			t.Errorf("docs/api.md: no row for %s in the error-code table", code)
		}
	}
	src, err := os.ReadFile("httpapi/routes.go")
	if err != nil {
		t.Fatal(err)
	}
	routes := regexp.MustCompile(`s\.mux\.Handle\("([A-Z]+) ([^"]+)"`).FindAllStringSubmatch(string(src), -1)
	if len(routes) == 0 {
		t.Fatal("no routes found in httpapi/routes.go: did its shape change?")
	}
	for _, r := range routes {
		if !strings.Contains(text, r[1]+" "+r[2]) {
			t.Errorf("docs/api.md does not document %s %s", r[1], r[2])
		}
	}
}

// errorCodes returns the values of the Code* constants of errors.go.
func errorCodes(t *testing.T) []string {
	t.Helper()
	var codes []string
	for _, c := range testkit.StringConsts(t, "errors.go", 10, "Code") {
		codes = append(codes, c.Value)
	}
	return codes
}
