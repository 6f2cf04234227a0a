package flashauth_test

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
)

// outsidePointers are strings that point outside the repository: the
// project's notes live elsewhere on the machine it was written on, and
// docs/api.md is the reference that ships with the code.
var outsidePointers = []string{"../shared", "/work/", "CONTRACT"}

// TestNothingPointsOutsideTheRepo: no tracked file but tests and CI scripts
// refers to files outside the repository.
func TestNothingPointsOutsideTheRepo(t *testing.T) {
	files := repoFiles(t, ".")
	if len(files) < 10 {
		t.Fatalf("found only %d files: is the test running at the repository root?", len(files))
	}
	for _, hit := range outsideRefs(t, ".", files) {
		t.Errorf("%s (point at docs/ instead)", hit)
	}
}

// TestOutsideRefsFindsThem: the scan reports each kind of pointer, and
// skips tests, CI scripts and binaries.
func TestOutsideRefsFindsThem(t *testing.T) {
	root := t.TempDir()
	write := func(name, content string) {
		p := filepath.Join(root, name)
		if err := os.MkdirAll(filepath.Dir(p), 0o755); err != nil {
			t.Fatal(err)
		}
		if err := os.WriteFile(p, []byte(content), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	write("README.md", "see ../shared/NOTES.md\n")
	write("docs/x.md", "ok\nfrom /work/notes/GITHUB.md\n")
	write("pkg/a.go", "// see CONTRACT §2\n")
	write("pkg/a_test.go", "// CONTRACT in a test is fine\n")
	write(".ci/run", "cd /work/main\n")
	write("bin/tool", "\x00\x01/work/ in a binary\n")
	write("clean.md", "nothing here\n")
	got := outsideRefs(t, root, repoFiles(t, root))
	want := []string{`README.md:1: "../shared"`, `docs/x.md:2: "/work/"`, `pkg/a.go:1: "CONTRACT"`}
	if strings.Join(got, "\n") != strings.Join(want, "\n") {
		t.Errorf("found\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// repoFiles lists the files of the repository at root: the tracked ones
// when git knows the tree, else every file but .git's.
func repoFiles(t *testing.T, root string) []string {
	t.Helper()
	if git, err := exec.LookPath("git"); err == nil {
		cmd := exec.Command(git, "ls-files", "-z")
		cmd.Dir = root
		if out, err := cmd.Output(); err == nil && len(out) > 0 {
			return strings.Split(strings.TrimRight(string(out), "\x00"), "\x00")
		}
	}
	var files []string
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && d.Name() == ".git" {
			return filepath.SkipDir
		}
		if d.Type().IsRegular() {
			rel, err := filepath.Rel(root, p)
			if err != nil {
				return err
			}
			files = append(files, filepath.ToSlash(rel))
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return files
}

// outsideRefs returns "file:line: pointer" for every outside pointer in
// files (relative to root), skipping tests, CI scripts and binary files.
func outsideRefs(t *testing.T, root string, files []string) []string {
	t.Helper()
	var hits []string
	for _, f := range files {
		if strings.HasSuffix(f, "_test.go") || strings.HasPrefix(f, ".ci/") {
			continue
		}
		b, err := os.ReadFile(filepath.Join(root, filepath.FromSlash(f)))
		if err != nil {
			if os.IsNotExist(err) {
				continue // deleted in the work tree, not yet in the index
			}
			t.Fatal(err)
		}
		if bytes.IndexByte(b, 0) >= 0 {
			continue
		}
		for i, line := range strings.Split(string(b), "\n") {
			for _, p := range outsidePointers {
				if strings.Contains(line, p) {
					hits = append(hits, fmt.Sprintf("%s:%d: %q", f, i+1, p))
				}
			}
		}
	}
	return hits
}
