package httpapi_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/oapi-codegen/oapi-codegen/v2/pkg/codegen"

	// The generated client imports oapi-codegen's runtime. Importing it here
	// keeps it, at a known version, in go.mod and go.sum, so the build below
	// resolves it from the module cache like any other dependency.
	_ "github.com/oapi-codegen/runtime"

	"github.com/flashbacktech/flashauth/httpapi"
)

// TestOpenAPIGeneratedClientCompiles generates a Go client (types and a
// client for every operation) from openapi.json with oapi-codegen, the usual
// Go generator, and builds it. Two JSON spellings of one field once made it
// emit "RefreshToken redeclared"; nullable unions broke older generators.
func TestOpenAPIGeneratedClientCompiles(t *testing.T) {
	if testing.Short() {
		t.Skip("builds a package with the go command")
	}
	goCmd, err := exec.LookPath("go")
	if err != nil {
		goCmd = filepath.Join(runtime.GOROOT(), "bin", "go")
		if _, err := os.Stat(goCmd); err != nil {
			t.Skip("no go command to build the generated client with")
		}
	}
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(httpapi.OpenAPI)
	if err != nil {
		t.Fatal(err)
	}
	code, err := codegen.Generate(doc, codegen.Configuration{
		PackageName: "flashauthclient",
		Generate:    codegen.GenerateOptions{Models: true, Client: true},
	})
	if err != nil {
		t.Fatalf("oapi-codegen: %v", err)
	}
	// Every operation must have become a client method.
	for _, method := range []string{
		"RefreshGitHubToken(", "AuthorizeGitHub(", "SignInWithGitHub(", "RefreshSession(", "Logout(",
		"ListTokens(", "RevokeToken(", "GetJWKS(", "GetOpenIDConfiguration(", "Healthz(", "Readyz(", "Metrics(", "GetOpenAPI(",
	} {
		if !strings.Contains(code, ") "+method) {
			t.Errorf("the generated client has no method %s...)", method)
		}
	}
	// Both spellings of the session refresh token are distinct fields.
	for _, field := range []string{"RefreshToken *RefreshTokenValue `json:\"refresh_token,omitempty\"`", "RefreshTokenCamel *RefreshTokenValue `json:\"refreshToken,omitempty\"`"} {
		if !strings.Contains(strings.Join(strings.Fields(code), " "), field) {
			t.Errorf("the generated SessionTokenRequest has no field %s", field)
		}
	}

	// Build it as a package of this module, so it uses this module's
	// go.mod and go.sum (and needs no network when the module cache is
	// warm). The file lives outside the module tree.
	file := filepath.Join(t.TempDir(), "client.go")
	if err := os.WriteFile(file, []byte(code), 0o644); err != nil {
		t.Fatal(err)
	}
	cmd := exec.Command(goCmd, "build", "-o", os.DevNull, file)
	cmd.Dir = ".."
	cmd.Env = append(os.Environ(), "GOWORK=off", "CGO_ENABLED=0")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("the generated client does not compile: %v\n%s", err, out)
	}
}
