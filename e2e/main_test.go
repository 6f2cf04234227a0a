package e2e

import (
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"sync"
	"testing"
)

// The flashauth binary under test, built on first use: tests that skip (no
// PostgreSQL) do not pay for the build.
var binary struct {
	once sync.Once
	dir  string
	path string
	err  error
}

func TestMain(m *testing.M) {
	code := m.Run()
	if binary.dir != "" {
		os.RemoveAll(binary.dir)
	}
	os.Exit(code)
}

// flashauthBinary returns the path of a flashauth binary built from this
// module's source.
func flashauthBinary(tb testing.TB) string {
	tb.Helper()
	binary.once.Do(func() {
		binary.path, binary.err = buildFlashauth()
	})
	if binary.err != nil {
		tb.Fatalf("build flashauth: %v", binary.err)
	}
	return binary.path
}

func buildFlashauth() (string, error) {
	root, err := moduleRoot()
	if err != nil {
		return "", err
	}
	goTool, err := exec.LookPath("go")
	if err != nil {
		goTool = filepath.Join(runtime.GOROOT(), "bin", "go")
	}
	binary.dir, err = os.MkdirTemp("", "flashauth-e2e-")
	if err != nil {
		return "", err
	}
	out := filepath.Join(binary.dir, "flashauth")
	cmd := exec.Command(goTool, "build", "-o", out, "./cmd/flashauth")
	cmd.Dir = root
	if b, err := cmd.CombinedOutput(); err != nil {
		return "", fmt.Errorf("go build ./cmd/flashauth: %w\n%s", err, b)
	}
	return out, nil
}

// moduleRoot finds the directory of go.mod: from `go env GOMOD`, or else
// from this file's location.
func moduleRoot() (string, error) {
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if mod := strings.TrimSpace(string(out)); mod != "" && mod != os.DevNull {
			return filepath.Dir(mod), nil
		}
	}
	_, file, _, ok := runtime.Caller(0)
	if !ok {
		return "", errors.New("cannot locate the module root")
	}
	root := filepath.Dir(filepath.Dir(file))
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		return "", fmt.Errorf("cannot locate the module root: %w", err)
	}
	return root, nil
}
