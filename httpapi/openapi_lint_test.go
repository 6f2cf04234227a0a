package httpapi_test

import (
	"context"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"

	"github.com/getkin/kin-openapi/openapi3"

	"github.com/flashbacktech/flashauth/httpapi"
)

// TestOpenAPILint holds openapi.json to the rules of Spectral's "oas"
// ruleset that tools and code generators depend on, written out in Go
// (Spectral is a Node tool; CI runs only Go). Each check names the Spectral
// rule it mirrors, or says why it is ours.
func TestOpenAPILint(t *testing.T) {
	for _, p := range lintOpenAPI(t, httpapi.OpenAPI) {
		t.Error(p)
	}
}

// TestOpenAPILintCatchesFaults: the linter is not a rubber stamp. Each
// mutation of the real document must be reported by the named rule.
func TestOpenAPILintCatchesFaults(t *testing.T) {
	tests := []struct {
		rule   string
		mutate func(doc map[string]any)
	}{
		{"operation-operationId", func(d map[string]any) { delete(op(d, "/healthz", "get"), "operationId") }},
		{"operation-operationId-unique", func(d map[string]any) { op(d, "/readyz", "get")["operationId"] = "healthz" }},
		{"operation-tags", func(d map[string]any) { delete(op(d, "/healthz", "get"), "tags") }},
		{"operation-tag-defined", func(d map[string]any) { op(d, "/healthz", "get")["tags"] = []any{"Nowhere"} }},
		{"oas3-api-servers", func(d map[string]any) { delete(d, "servers") }},
		{"info-license", func(d map[string]any) { delete(d["info"].(map[string]any), "license") }},
		{"oas3-unused-component", func(d map[string]any) {
			d["components"].(map[string]any)["schemas"].(map[string]any)["Orphan"] = map[string]any{"type": "string"}
		}},
		{"unresolved-ref", func(d map[string]any) {
			op(d, "/healthz", "get")["responses"].(map[string]any)["500"] = map[string]any{"$ref": "#/components/responses/Nope"}
		}},
		{"operation-security-explicit", func(d map[string]any) { delete(op(d, "/healthz", "get"), "security") }},
		{"generator-nullable-union", func(d map[string]any) {
			schema(d, "SignInRequest")["properties"].(map[string]any)["state"].(map[string]any)["type"] = []any{"string", "null"}
		}},
		{"generator-go-name-collision", func(d map[string]any) {
			delete(schema(d, "SessionTokenRequest")["properties"].(map[string]any)["refreshToken"].(map[string]any), "x-go-name")
		}},
		{"typed-const", func(d map[string]any) {
			delete(schema(d, "Success")["properties"].(map[string]any)["success"].(map[string]any), "type")
		}},
		{"path-params", func(d map[string]any) {
			p := d["paths"].(map[string]any)
			p["/token/{id}"] = p["/token/{tokenId}"]
			delete(p, "/token/{tokenId}")
		}},
		{"operation-success-response", func(d map[string]any) {
			delete(op(d, "/healthz", "get")["responses"].(map[string]any), "200")
		}},
		{"kin-openapi", func(d map[string]any) { delete(d["info"].(map[string]any), "title") }},
	}
	for _, tt := range tests {
		t.Run(tt.rule, func(t *testing.T) {
			var doc map[string]any
			if err := json.Unmarshal(httpapi.OpenAPI, &doc); err != nil {
				t.Fatal(err)
			}
			tt.mutate(doc)
			b, err := json.Marshal(doc)
			if err != nil {
				t.Fatal(err)
			}
			problems := lintOpenAPI(t, b)
			if !slices.ContainsFunc(problems, func(p string) bool { return strings.HasPrefix(p, tt.rule+":") }) {
				t.Errorf("rule %s did not fire; problems: %q", tt.rule, problems)
			}
		})
	}
}

func op(d map[string]any, path, method string) map[string]any {
	return d["paths"].(map[string]any)[path].(map[string]any)[method].(map[string]any)
}

func schema(d map[string]any, name string) map[string]any {
	return d["components"].(map[string]any)["schemas"].(map[string]any)[name].(map[string]any)
}

var (
	httpMethods = []string{"get", "put", "post", "delete", "options", "head", "patch", "trace"}
	// operation-operationId-valid-in-url: characters safe in a URL.
	operationIDShape = regexp.MustCompile(`^[A-Za-z0-9_.~-]+$`)
	pathParamRE      = regexp.MustCompile(`\{([^}]+)\}`)
)

// lintOpenAPI returns the problems of the document raw, each as
// "rule: where: what".
func lintOpenAPI(t *testing.T, raw []byte) []string {
	t.Helper()
	var problems []string
	report := func(rule, format string, args ...any) {
		problems = append(problems, rule+": "+fmt.Sprintf(format, args...))
	}

	// Structural validity as OpenAPI 3.1, by kin-openapi's loader and
	// validator (oas3-schema).
	loader := openapi3.NewLoader()
	if doc, err := loader.LoadFromData(raw); err != nil {
		report("kin-openapi", "load: %v", err) // and the rules below say more
	} else {
		if err := doc.Validate(context.Background()); err != nil {
			report("kin-openapi", "validate: %v", err)
		}
		if !strings.HasPrefix(doc.OpenAPI, "3.1.") {
			report("kin-openapi", "openapi is %q, want 3.1.x", doc.OpenAPI)
		}
	}

	var d map[string]any
	if err := json.Unmarshal(raw, &d); err != nil {
		report("kin-openapi", "not JSON: %v", err)
		return problems
	}

	// info-description, info-license, license-url (3.1: identifier or url).
	info, _ := d["info"].(map[string]any)
	if s, _ := info["description"].(string); s == "" {
		report("info-description", "info has no description")
	}
	lic, _ := info["license"].(map[string]any)
	if name, _ := lic["name"].(string); name == "" || (lic["identifier"] == nil && lic["url"] == nil) {
		report("info-license", "info.license needs a name and an SPDX identifier or a url")
	}

	// oas3-api-servers, oas3-server-trailing-slash.
	servers, _ := d["servers"].([]any)
	if len(servers) == 0 {
		report("oas3-api-servers", "no servers")
	}
	for i, s := range servers {
		u, _ := s.(map[string]any)["url"].(string)
		if u == "" || (u != "/" && strings.HasSuffix(u, "/")) {
			report("oas3-server-trailing-slash", "servers[%d].url %q", i, u)
		}
	}

	// Tags: defined once, each with a description (tag-description), and
	// every operation's tags defined (operation-tag-defined).
	defined := map[string]bool{}
	tags, _ := d["tags"].([]any)
	for _, tg := range tags {
		m, _ := tg.(map[string]any)
		name, _ := m["name"].(string)
		if defined[name] {
			report("openapi-tags-uniqueness", "tag %q defined twice", name)
		}
		defined[name] = true
		if s, _ := m["description"].(string); s == "" {
			report("tag-description", "tag %q has no description", name)
		}
	}

	schemes := map[string]bool{}
	if comps, ok := d["components"].(map[string]any); ok {
		if ss, ok := comps["securitySchemes"].(map[string]any); ok {
			for name := range ss {
				schemes[name] = true
			}
		}
	}
	usedSchemes := map[string]bool{}
	ids := map[string]string{}
	paths, _ := d["paths"].(map[string]any)
	for _, path := range sortedKeys(paths) {
		item, _ := paths[path].(map[string]any)
		// path-keys-no-trailing-slash, path-not-include-query.
		if path != "/" && strings.HasSuffix(path, "/") {
			report("path-keys-no-trailing-slash", "%s", path)
		}
		if strings.Contains(path, "?") {
			report("path-not-include-query", "%s", path)
		}
		templated := map[string]bool{}
		for _, m := range pathParamRE.FindAllStringSubmatch(path, -1) {
			templated[m[1]] = true
		}
		itemParams := paramsOf(d, item["parameters"])
		for _, method := range httpMethods {
			o, ok := item[method].(map[string]any)
			if !ok {
				continue
			}
			where := strings.ToUpper(method) + " " + path
			// operation-operationId, -unique, -valid-in-url.
			id, _ := o["operationId"].(string)
			switch {
			case id == "":
				report("operation-operationId", "%s has no operationId", where)
			case ids[id] != "":
				report("operation-operationId-unique", "%s and %s share operationId %q", ids[id], where, id)
			case !operationIDShape.MatchString(id):
				report("operation-operationId-valid-in-url", "%s: operationId %q", where, id)
			}
			if id != "" && ids[id] == "" {
				ids[id] = where
			}
			// operation-description (summary or description), operation-tags.
			if s, _ := o["summary"].(string); s == "" {
				if s, _ := o["description"].(string); s == "" {
					report("operation-description", "%s has neither summary nor description", where)
				}
			}
			opTags, _ := o["tags"].([]any)
			if len(opTags) == 0 {
				report("operation-tags", "%s has no tags", where)
			}
			for _, tg := range opTags {
				if name, _ := tg.(string); !defined[name] {
					report("operation-tag-defined", "%s: tag %q is not in the top-level tags", where, name)
				}
			}
			// Ours: every operation states its security, `[]` when public,
			// so tools never fall back to a global default; named schemes
			// exist (oas3-operation-security-defined).
			sec, ok := o["security"].([]any)
			if !ok {
				report("operation-security-explicit", "%s has no security (use [] for a public operation)", where)
			}
			for _, req := range sec {
				for name := range req.(map[string]any) {
					usedSchemes[name] = true
					if !schemes[name] {
						report("oas3-operation-security-defined", "%s: security scheme %q is not defined", where, name)
					}
				}
			}
			// operation-success-response; every response has a description
			// (3.1 requires it; responses by $ref are checked where defined).
			responses, _ := o["responses"].(map[string]any)
			success := false
			for code, r := range responses {
				if n, err := strconv.Atoi(code); err == nil && n >= 200 && n < 400 {
					success = true
				}
				rm, _ := r.(map[string]any)
				if rm["$ref"] == nil {
					if s, _ := rm["description"].(string); s == "" {
						report("response-description", "%s %s has no description", where, code)
					}
				}
			}
			if !success {
				report("operation-success-response", "%s has no 2xx or 3xx response", where)
			}
			// path-params: every template variable is declared in the path,
			// every declared path parameter is in the template; no parameter
			// twice (operation-parameters).
			params := append(slices.Clone(itemParams), paramsOf(d, o["parameters"])...)
			seen := map[string]bool{}
			declared := map[string]bool{}
			for _, p := range params {
				key := p["in"].(string) + " " + p["name"].(string)
				if seen[key] && !slices.ContainsFunc(itemParams, func(ip map[string]any) bool { return ip["in"].(string)+" "+ip["name"].(string) == key }) {
					report("operation-parameters", "%s: parameter %s twice", where, key)
				}
				seen[key] = true
				if p["in"] == "path" {
					declared[p["name"].(string)] = true
				}
			}
			for name := range templated {
				if !declared[name] {
					report("path-params", "%s: {%s} is not declared as a path parameter", where, name)
				}
			}
			for name := range declared {
				if !templated[name] {
					report("path-params", "%s: path parameter %s is not in the path", where, name)
				}
			}
		}
	}
	components, _ := d["components"].(map[string]any)
	responses, _ := components["responses"].(map[string]any)
	for name, r := range responses {
		if s, _ := r.(map[string]any)["description"].(string); s == "" {
			report("response-description", "components/responses/%s has no description", name)
		}
	}

	// Every $ref resolves (unresolved-ref) and every component is used
	// (oas3-unused-component).
	refs := map[string]bool{}
	walkJSON(d, func(m map[string]any) {
		ref, ok := m["$ref"].(string)
		if !ok {
			return
		}
		refs[ref] = true
		if _, ok := pointer(d, ref); !ok {
			report("unresolved-ref", "%s does not resolve", ref)
		}
	})
	// A response shared by every path (404, 405: the router's fallbacks)
	// is referenced from info.description, where it is explained.
	infoText, _ := info["description"].(string)
	for _, kind := range []string{"schemas", "responses", "parameters", "headers", "requestBodies", "examples", "links", "callbacks", "pathItems"} {
		section, _ := components[kind].(map[string]any)
		for name := range section {
			ptr := "#/components/" + kind + "/" + name
			if !refs[ptr] && !strings.Contains(infoText, "`"+ptr[2:]+"`") {
				report("oas3-unused-component", "components/%s/%s is never referenced", kind, name)
			}
		}
	}
	for name := range schemes {
		if !usedSchemes[name] {
			report("oas3-unused-component", "components/securitySchemes/%s is never used", name)
		}
	}

	// Rules for code generators (ours): oapi-codegen and older generators
	// fail on type arrays (3.1 nullable unions) and treat a const without
	// a type as an untyped interface{}; enums must be typed (typed-enum)
	// and without duplicates (duplicated-entry-in-enum).
	walkJSON(d, func(m map[string]any) {
		if _, isList := m["type"].([]any); isList {
			report("generator-nullable-union", "type %v: use one type (and describe null handling)", m["type"])
		}
		if _, ok := m["const"]; ok && m["type"] == nil {
			report("typed-const", "const %v has no type", m["const"])
		}
		if enum, ok := m["enum"].([]any); ok {
			if m["type"] == nil {
				report("typed-enum", "enum %v has no type", enum)
			}
			seen := map[string]bool{}
			for _, v := range enum {
				k := fmt.Sprint(v)
				if seen[k] {
					report("duplicated-entry-in-enum", "enum %v repeats %v", enum, v)
				}
				seen[k] = true
			}
		}
		// Properties whose Go field names collide (refresh_token and
		// refreshToken both become RefreshToken) need x-go-name.
		if props, ok := m["properties"].(map[string]any); ok {
			goNames := map[string]string{}
			for _, name := range sortedKeys(props) {
				g := goFieldName(name)
				if p, ok := props[name].(map[string]any); ok {
					if x, ok := p["x-go-name"].(string); ok {
						g = x
					}
				}
				if other, dup := goNames[g]; dup {
					report("generator-go-name-collision", "properties %q and %q are both Go field %s: give one an x-go-name", other, name, g)
				}
				goNames[g] = name
			}
		}
	})
	return problems
}

// paramsOf resolves a parameters list (inline or by $ref) of d.
func paramsOf(d map[string]any, v any) []map[string]any {
	list, _ := v.([]any)
	var out []map[string]any
	for _, p := range list {
		m, _ := p.(map[string]any)
		if ref, ok := m["$ref"].(string); ok {
			r, ok := pointer(d, ref)
			if !ok {
				continue // reported by unresolved-ref
			}
			m, _ = r.(map[string]any)
		}
		if m["in"] != nil && m["name"] != nil {
			out = append(out, m)
		}
	}
	return out
}

// pointer resolves a local JSON pointer reference ("#/a/b") in d.
func pointer(d any, ref string) (any, bool) {
	rest, ok := strings.CutPrefix(ref, "#/")
	if !ok {
		return nil, false // this document has no external references
	}
	cur := d
	for _, tok := range strings.Split(rest, "/") {
		tok = strings.ReplaceAll(strings.ReplaceAll(tok, "~1", "/"), "~0", "~")
		m, ok := cur.(map[string]any)
		if !ok {
			return nil, false
		}
		if cur, ok = m[tok]; !ok {
			return nil, false
		}
	}
	return cur, true
}

// walkJSON calls f on every object in v.
func walkJSON(v any, f func(map[string]any)) {
	switch v := v.(type) {
	case map[string]any:
		f(v)
		for _, k := range sortedKeys(v) {
			walkJSON(v[k], f)
		}
	case []any:
		for _, x := range v {
			walkJSON(x, f)
		}
	}
}

func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}

// goFieldName approximates how generators name a Go field after a JSON
// property: split at non-alphanumerics and case changes, capitalize each
// part (refresh_token and refreshToken are both RefreshToken).
func goFieldName(s string) string {
	var b strings.Builder
	upper := true
	for _, r := range s {
		switch {
		case r == '_' || r == '-' || r == '.' || r == ' ':
			upper = true
		case upper:
			b.WriteString(strings.ToUpper(string(r)))
			upper = false
		default:
			b.WriteRune(r)
		}
	}
	return b.String()
}
