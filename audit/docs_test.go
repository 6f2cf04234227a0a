package audit

import (
	"os"
	"strings"
	"testing"

	"github.com/flashbacktech/flashauth/internal/testkit"
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
	for _, c := range testkit.StringConsts(t, "audit.go", 10, "Type", "Outcome") {
		if !strings.Contains(section, "`"+c.Value+"`") {
			t.Errorf("docs/operations.md's admin audit section does not name %s (%s)", c.Value, c.Name)
		}
	}
}
