package httpapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/getkin/kin-openapi/openapi3"
	"github.com/getkin/kin-openapi/openapi3filter"
	"github.com/getkin/kin-openapi/routers"
	"github.com/getkin/kin-openapi/routers/legacy"

	"github.com/flashbacktech/flashauth/app"
	"github.com/flashbacktech/flashauth/app/apptest"
	"github.com/flashbacktech/flashauth/githubemu"
	"github.com/flashbacktech/flashauth/httpapi"
	"github.com/flashbacktech/flashauth/internal/testkit"
)

// loadOpenAPI parses the embedded document and validates it as OpenAPI 3.1.
func loadOpenAPI(t *testing.T) *openapi3.T {
	t.Helper()
	loader := openapi3.NewLoader()
	doc, err := loader.LoadFromData(httpapi.OpenAPI)
	if err != nil {
		t.Fatalf("load openapi.json: %v", err)
	}
	if err := doc.Validate(loader.Context); err != nil {
		t.Fatalf("openapi.json is not a valid OpenAPI document: %v", err)
	}
	if doc.OpenAPI != "3.1.0" || !doc.IsOpenAPI31OrLater() {
		t.Fatalf("openapi = %q, want 3.1.0", doc.OpenAPI)
	}
	return doc
}

// specOperations lists "METHOD /path" of every operation in doc.
func specOperations(doc *openapi3.T) []string {
	var out []string
	for path, item := range doc.Paths.Map() {
		for method := range item.Operations() {
			out = append(out, method+" "+path)
		}
	}
	slices.Sort(out)
	return out
}

var routeRE = regexp.MustCompile(`s\.mux\.Handle\("([A-Z]+) ([^"]+)"`)

// TestOpenAPIRoutesMatchCode keeps the document and routes.go in step: a
// route added to the code without its description (or the reverse) fails.
func TestOpenAPIRoutesMatchCode(t *testing.T) {
	doc := loadOpenAPI(t)
	src, err := os.ReadFile("../httpapi/routes.go")
	if err != nil {
		t.Fatal(err)
	}
	var code []string
	for _, m := range routeRE.FindAllStringSubmatch(string(src), -1) {
		code = append(code, m[1]+" "+m[2])
	}
	if len(code) == 0 {
		t.Fatal("no routes found in routes.go: did its shape change?")
	}
	slices.Sort(code)
	spec := specOperations(doc)
	for _, r := range code {
		if !slices.Contains(spec, r) {
			t.Errorf("route %q of routes.go is not in openapi.json", r)
		}
	}
	for _, op := range spec {
		if !slices.Contains(code, op) {
			t.Errorf("operation %q of openapi.json is not a route of routes.go", op)
		}
	}
}

// TestOpenAPIErrorCodes checks the ErrorCode enum against the Code*
// constants of the root package, and that every code is the error_code of
// at least one documented response.
func TestOpenAPIErrorCodes(t *testing.T) {
	doc := loadOpenAPI(t)
	var want []string
	for _, c := range testkit.StringConsts(t, "../errors.go", 10, "Code") {
		want = append(want, c.Value)
	}
	slices.Sort(want)
	enum := doc.Components.Schemas["ErrorCode"].Value.Enum
	var got []string
	for _, v := range enum {
		got = append(got, v.(string))
	}
	slices.Sort(got)
	if !slices.Equal(got, want) {
		t.Errorf("ErrorCode enum = %v\nCode* constants  = %v", got, want)
	}
	used := map[string]bool{}
	for _, r := range doc.Components.Responses {
		s := r.Value.Content.Get("application/json").Schema.Value
		for _, part := range s.AllOf {
			if p := part.Value.Properties["error_code"]; p != nil {
				for _, c := range p.Value.Enum {
					used[c.(string)] = true
				}
			}
		}
	}
	for _, c := range want {
		if !used[c] {
			t.Errorf("no documented response answers error_code %s", c)
		}
	}
}

// TestOpenAPIAuthorizeRedirectIsJSON holds docs/api.md ("every response ...
// is application/json; charset=utf-8, except /metrics") for the 302 of
// GET /auth/github/authorize?redirect=1.
func TestOpenAPIAuthorizeRedirectIsJSON(t *testing.T) {
	h := apptest.New(t)
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(h.Srv.URL + "/auth/github/authorize?redirect=1&redirect_uri=" + url.QueryEscape("https://app.example/cb"))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, err := url.Parse(resp.Header.Get("Location")); err == nil {
		h.See(loc.Query().Get("state"))
	}
	if resp.StatusCode != http.StatusFound {
		t.Fatalf("status %d, want 302", resp.StatusCode)
	}
	if ct := resp.Header.Get("Content-Type"); ct != "application/json; charset=utf-8" {
		t.Errorf("Content-Type = %q, want application/json; charset=utf-8", ct)
	}
}

// specInvalidKey marks, in a request's context, a request the document
// itself rejects (a malformed body, a missing Bearer): the checker then
// requires that the document does reject it and that the server answers an
// error.
type specInvalidKey struct{}

// jwtShape is the shape of a compact JWS, what a Bearer must look like.
var jwtShape = regexp.MustCompile(`^[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+\.[A-Za-z0-9_-]+$`)

// bearerSyntax is the AuthenticationFunc of the checker: the document can
// only say that a Bearer JWT is present; whether it is valid is the
// server's business (401).
func bearerSyntax(_ context.Context, in *openapi3filter.AuthenticationInput) error {
	if in.SecuritySchemeName != "bearerAuth" {
		return in.NewError(fmt.Errorf("unknown security scheme %q", in.SecuritySchemeName))
	}
	tok, ok := strings.CutPrefix(in.RequestValidationInput.Request.Header.Get("Authorization"), "Bearer ")
	if !ok || !jwtShape.MatchString(tok) {
		return in.NewError(errors.New("no Bearer JWT"))
	}
	return nil
}

// specChecker is an http.RoundTripper that validates every request and
// response against the document, and records which documented statuses
// the traffic reached.
type specChecker struct {
	t      *testing.T
	h      *apptest.Harness
	doc    *openapi3.T
	router routers.Router
	base   http.RoundTripper
	opts   *openapi3filter.Options
	cov    *specCoverage
}

// specCoverage records which documented statuses the traffic reached.
type specCoverage struct {
	mu   sync.Mutex
	seen map[string]bool // "METHOD /path STATUS"
}

func (c *specCoverage) add(method, path string, status int) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.seen[fmt.Sprintf("%s %s %d", method, path, status)] = true
}

// uncovered lists the documented "METHOD /path STATUS" the traffic did not
// reach and that exempt does not excuse, and the exemptions of statuses
// that were reached after all.
func (c *specCoverage) uncovered(doc *openapi3.T, exempt map[string]string) (missing, stale []string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	for path, item := range doc.Paths.Map() {
		for method, op := range item.Operations() {
			for code := range op.Responses.Map() {
				key := method + " " + path + " " + code
				_, byKey := exempt[key]
				_, byStatus := exempt["* "+code]
				switch {
				case c.seen[key] && byKey:
					stale = append(stale, key)
				case !c.seen[key] && !byKey && !byStatus:
					missing = append(missing, key)
				}
			}
		}
	}
	slices.Sort(missing)
	slices.Sort(stale)
	return missing, stale
}

func newSpecChecker(t *testing.T, h *apptest.Harness, doc *openapi3.T, cov *specCoverage) *specChecker {
	t.Helper()
	// The document's server is relative ("/"): tools resolve it against the
	// URL they fetched the document from, here the test server's.
	routed := *doc
	routed.Servers = openapi3.Servers{{URL: h.Srv.URL + "/"}}
	router, err := legacy.NewRouter(&routed)
	if err != nil {
		t.Fatal(err)
	}
	// Schema errors quote the offending value; errorf redacts every secret
	// the harness knows, which includes all the traffic's tokens.
	opts := &openapi3filter.Options{IncludeResponseStatus: true, AuthenticationFunc: bearerSyntax}
	return &specChecker{t: t, h: h, doc: doc, router: router, base: h.Srv.Client().Transport, opts: opts, cov: cov}
}

// RoundTrip sends a copy of req, then validates the exchange; the caller
// gets the response with its body intact.
func (c *specChecker) RoundTrip(req *http.Request) (*http.Response, error) {
	var reqBody []byte
	if req.Body != nil {
		b, err := io.ReadAll(req.Body)
		req.Body.Close()
		if err != nil {
			return nil, err
		}
		reqBody = b
	}
	out := req.Clone(req.Context())
	if reqBody != nil {
		out.Body = io.NopCloser(bytes.NewReader(reqBody))
	}
	resp, err := c.base.RoundTrip(out)
	if err != nil {
		return nil, err
	}
	respBody, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return nil, err
	}
	resp.Body = io.NopCloser(bytes.NewReader(respBody))
	c.seeSecrets(req, reqBody, resp, respBody)
	c.check(req, reqBody, resp, respBody)
	return resp, nil
}

// seeSecrets hands every token, code and state of the exchange to the
// harness's secret scan.
func (c *specChecker) seeSecrets(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	if b, ok := strings.CutPrefix(req.Header.Get("Authorization"), "Bearer "); ok {
		c.h.See(b)
	}
	if loc, err := url.Parse(resp.Header.Get("Location")); err == nil {
		c.h.See(loc.Query().Get("state"))
	}
	c.h.SeeJSON(reqBody)
	c.h.SeeJSON(respBody)
}

// errorf reports a mismatch without secrets, cut to a readable length (a
// 413 probe's body is 70 KiB).
func (c *specChecker) errorf(format string, args ...any) {
	c.t.Helper()
	msg := c.h.Redact(fmt.Sprintf(format, args...))
	if len(msg) > 3000 {
		msg = msg[:3000] + " [...]"
	}
	c.t.Error(msg)
}

// check validates one exchange. Requests that match no operation must be
// answered with the documented 404 or 405.
func (c *specChecker) check(req *http.Request, reqBody []byte, resp *http.Response, respBody []byte) {
	c.t.Helper()
	ctx := context.Background()
	what := req.Method + " " + req.URL.Path
	vreq := req.Clone(ctx)
	vreq.Body = io.NopCloser(bytes.NewReader(reqBody))
	invalid := req.Context().Value(specInvalidKey{}) != nil

	route, params, err := c.router.FindRoute(vreq)
	if err != nil {
		var re *routers.RouteError
		if !errors.As(err, &re) {
			c.errorf("%s: router: %v", what, err)
			return
		}
		name, status := "NotFound", http.StatusNotFound
		if re.Reason == routers.ErrMethodNotAllowed.Error() {
			name, status = "MethodNotAllowed", http.StatusMethodNotAllowed
		}
		if resp.StatusCode != status {
			c.errorf("%s is not in the document (%s) but the server answered %d", what, re.Reason, resp.StatusCode)
			return
		}
		// Validate against the shared component, through an operation that
		// only has it.
		route = &routers.Route{Spec: c.doc, Method: req.Method, Path: req.URL.Path, Operation: &openapi3.Operation{
			Responses: openapi3.NewResponses(openapi3.WithStatus(status, c.doc.Components.Responses[name])),
		}}
		in := &openapi3filter.RequestValidationInput{Request: vreq, Route: route, Options: c.opts}
		c.validateResponse(what, in, resp, respBody)
		return
	}

	in := &openapi3filter.RequestValidationInput{Request: vreq, PathParams: params, Route: route, Options: c.opts}
	reqErr := openapi3filter.ValidateRequest(ctx, in)
	switch {
	case invalid && reqErr == nil:
		c.errorf("%s: the test marks the request as invalid but the document accepts it", what)
	case !invalid && reqErr != nil:
		c.errorf("%s: request does not match the document: %v", what, reqErr)
	}
	if invalid && resp.StatusCode < 400 {
		c.errorf("%s: the server answered %d to a request the document rejects", what, resp.StatusCode)
	}
	c.validateResponse(what, in, resp, respBody)
	c.cov.add(route.Method, route.Path, resp.StatusCode)
}

func (c *specChecker) validateResponse(what string, in *openapi3filter.RequestValidationInput, resp *http.Response, body []byte) {
	c.t.Helper()
	rin := &openapi3filter.ResponseValidationInput{
		RequestValidationInput: in,
		Status:                 resp.StatusCode,
		Header:                 resp.Header,
		Options:                c.opts,
	}
	rin.SetBodyBytes(body)
	if err := openapi3filter.ValidateResponse(context.Background(), rin); err != nil {
		c.errorf("%s: %d response does not match the document: %v\nbody: %s", what, resp.StatusCode, err, body)
	}
}

// specCall is one request of the contract traffic.
type specCall struct {
	method, path string
	contentType  string // default application/json when body is set
	body         any    // []byte or string as is, anything else marshaled to JSON
	bearer       string
	header       map[string]string
	invalid      bool // the document rejects this request
}

// specClient sends the contract traffic to h through a specChecker.
type specClient struct {
	t  *testing.T
	hc *http.Client
	h  *apptest.Harness
}

func newSpecClient(t *testing.T, h *apptest.Harness, doc *openapi3.T, cov *specCoverage) *specClient {
	t.Helper()
	return &specClient{t: t, h: h, hc: &http.Client{
		Transport: newSpecChecker(t, h, doc, cov),
		// The 302 of authorize is validated, not followed.
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse },
	}}
}

// do sends call; only transport failures are fatal.
func (c *specClient) do(call specCall) apptest.Response {
	c.t.Helper()
	var body io.Reader
	switch b := call.body.(type) {
	case nil:
	case []byte:
		body = bytes.NewReader(b)
	case string:
		body = strings.NewReader(b)
	default:
		j, err := json.Marshal(b)
		if err != nil {
			c.t.Fatal(err)
		}
		body = bytes.NewReader(j)
	}
	ctx := context.Background()
	if call.invalid {
		ctx = context.WithValue(ctx, specInvalidKey{}, true)
	}
	req, err := http.NewRequestWithContext(ctx, call.method, c.h.Srv.URL+call.path, body)
	if err != nil {
		c.t.Fatal(err)
	}
	switch {
	case call.contentType != "":
		req.Header.Set("Content-Type", call.contentType)
	case body != nil:
		req.Header.Set("Content-Type", "application/json")
	}
	if call.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+call.bearer)
	}
	for k, v := range call.header {
		req.Header.Set(k, v)
	}
	r, err := apptest.Send(c.hc, req)
	if err != nil {
		c.t.Fatalf("%s %s: %v", call.method, call.path, err)
	}
	return r
}

// want sends call and requires status and, for an error, error_code code.
func (c *specClient) want(call specCall, status int, code string) apptest.Response {
	c.t.Helper()
	r := c.do(call)
	if r.Status != status {
		c.t.Fatalf("%s %s: status %d, want %d; body %.300s", call.method, call.path, r.Status, status, c.h.Redact(string(r.Body)))
	}
	if code != "" {
		if got := r.JSON(c.t)["error_code"]; got != code {
			c.t.Fatalf("%s %s: error_code %v, want %s", call.method, call.path, got, code)
		}
	}
	return r
}

// startLogin starts a login at GET /auth/github/authorize (JSON, or the 302
// with redirect) and approves it at the emulator as userID; it returns the
// code and the state.
func (c *specClient) startLogin(redirect bool, userID int64) (code, state string) {
	c.t.Helper()
	path := "/auth/github/authorize?redirect_uri=" + url.QueryEscape(specRedirectURI)
	var raw string
	if redirect {
		r := c.want(specCall{method: http.MethodGet, path: path + "&redirect=1"}, http.StatusFound, "")
		raw = r.Header.Get("Location")
	} else {
		raw = c.want(specCall{method: http.MethodGet, path: path}, http.StatusOK, "").Str(c.t, "url")
	}
	u, err := url.Parse(raw)
	if err != nil {
		c.t.Fatalf("authorize URL: %v", err)
	}
	q := u.Query()
	return c.h.Approve(c.t, q, userID), q.Get("state")
}

// signIn completes a started login with POST /auth/github.
func (c *specClient) signIn(code, state string) apptest.SignedIn {
	c.t.Helper()
	r := c.want(specCall{method: http.MethodPost, path: "/auth/github", body: map[string]any{
		"code": code, "state": state, "redirect_uri": specRedirectURI,
		"deviceInfo": map[string]any{"os": "linux", "app": "openapi-test"}, "activationUid": "ignored",
	}}, http.StatusOK, "")
	l := apptest.ParseSignIn(c.t, r.Body)
	l.Code = code
	return l
}

// specExempt lists documented statuses the contract traffic cannot reach,
// with the reason; "* STATUS" excuses it on every operation.
var specExempt = map[string]string{
	"* 500":                          "INTERNAL_ERROR needs an internal fault; only the upstream credentials 500 is reachable",
	"GET /.well-known/jwks.json 503": "keys are served from the in-memory ring while the store is away",
}

// TestOpenAPIContract drives real traffic through whole flashauths and
// validates every request and response against openapi.json; then every
// documented status must have been reached or be in specExempt.
func TestOpenAPIContract(t *testing.T) {
	doc := loadOpenAPI(t)
	cov := &specCoverage{seen: map[string]bool{}}

	// A per-token limit of one a minute (burst 5) makes the sixth attempt
	// at GitHub with a token within the frozen clock a 429.
	h := apptest.New(t, func(c *app.Config) { c.RateTokenPerMin = 1 })
	c := newSpecClient(t, h, doc, cov)
	specOperationsTraffic(t, c)
	specRefreshTraffic(t, c)
	a, b := specSignInTraffic(t, c)
	signedInTraffic(t, c, a, b)
	specStoreDownTraffic(t, c)

	// A flashauth GitHub does not recognise, with a per-IP limit.
	const wrongSecret = "wrong-client-secret-0123456789abcdef"
	h2 := apptest.New(t, func(c *app.Config) { c.ClientSecret = wrongSecret; c.RateIPPerMinute = 1 })
	h2.See(wrongSecret)
	specLimitTraffic(t, newSpecClient(t, h2, doc, cov))

	missing, stale := cov.uncovered(doc, specExempt)
	for _, k := range missing {
		t.Errorf("documented but never exercised: %s (exercise it or add it to specExempt with the reason)", k)
	}
	for _, k := range stale {
		t.Errorf("exercised but listed in specExempt: %s", k)
	}
}

const specRedirectURI = "https://app.example/callback"

func specGet(path string) specCall { return specCall{method: http.MethodGet, path: path} }

func specPost(path string, body any) specCall {
	return specCall{method: http.MethodPost, path: path, body: body}
}

// specHuge is a body over the 64 KiB limit.
var specHuge = map[string]string{"refresh_token": strings.Repeat("a", 70<<10)}

// specOperationsTraffic covers the operations endpoints and routing.
func specOperationsTraffic(t *testing.T, c *specClient) {
	r := c.want(specCall{method: http.MethodGet, path: "/healthz", header: map[string]string{"X-Request-Id": "openapi-test-1"}}, http.StatusOK, "")
	if got := r.Header.Get("X-Request-Id"); got != "openapi-test-1" {
		t.Errorf("X-Request-Id = %q, want the caller's", got)
	}
	c.want(specGet("/readyz"), http.StatusOK, "")
	c.want(specGet("/metrics"), http.StatusOK, "")
	c.want(specGet("/.well-known/jwks.json"), http.StatusOK, "")
	c.want(specGet("/.well-known/openid-configuration"), http.StatusOK, "")
	if r := c.want(specGet("/openapi.json"), http.StatusOK, ""); !bytes.Equal(r.Body, httpapi.OpenAPI) {
		t.Errorf("GET /openapi.json does not serve the embedded document")
	}
	c.want(specGet("/no/such/path"), http.StatusNotFound, "NOT_FOUND")
	r = c.want(specGet("/auth/github/refresh"), http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
	if !strings.Contains(r.Header.Get("Allow"), http.MethodPost) {
		t.Errorf("Allow = %q, want POST", r.Header.Get("Allow"))
	}
	c.want(specCall{method: http.MethodDelete, path: "/healthz"}, http.StatusMethodNotAllowed, "METHOD_NOT_ALLOWED")
}

// specRefreshTraffic covers POST /auth/github/refresh but ownership.
func specRefreshTraffic(t *testing.T, c *specClient) {
	h := c.h
	// Success with a foreign Bearer and unknown fields, then the replay.
	g := h.Grant()
	first := c.want(specCall{method: http.MethodPost, path: "/auth/github/refresh", bearer: "gho_foreignTokenTheClientStillSends",
		body: map[string]any{"refresh_token": g.RefreshToken, "deviceInfo": map[string]string{"os": "mac"}}}, http.StatusOK, "")
	replay := c.want(specPost("/auth/github/refresh", map[string]string{"refresh_token": g.RefreshToken}), http.StatusOK, "")
	if !bytes.Equal(first.Body, replay.Body) {
		t.Errorf("the replay's body differs from the first answer's")
	}
	for _, body := range []any{
		map[string]any{"refreshToken": g.RefreshToken}, // the other spelling is not accepted here
		map[string]any{"refresh_token": ""},
		map[string]any{"refresh_token": 42},
		map[string]any{"refresh_token": "ghr_with a space inside"},
		`{"refresh_token":`,
		`[]`,
	} {
		c.want(specCall{method: http.MethodPost, path: "/auth/github/refresh", body: body, invalid: true}, http.StatusBadRequest, "INVALID_REQUEST")
	}
	c.want(specCall{method: http.MethodPost, path: "/auth/github/refresh", contentType: "text/plain", body: `{"refresh_token":"x"}`, invalid: true},
		http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")
	c.want(specCall{method: http.MethodPost, path: "/auth/github/refresh", body: specHuge, invalid: true},
		http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE")
	bogus := map[string]string{"refresh_token": "ghr_neverIssuedByTheEmulator0123456789"}
	for range 6 { // the first answer, then its replays: they never spend the per-token limit
		c.want(specPost("/auth/github/refresh", bogus), http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")
	}
	// Five attempts while GitHub fails spend the per-token burst; the sixth
	// is refused before GitHub.
	flaky := map[string]string{"refresh_token": h.Grant().RefreshToken}
	h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Count: 5})
	for range 5 {
		c.want(specPost("/auth/github/refresh", flaky), http.StatusServiceUnavailable, "UPSTREAM_UNAVAILABLE")
	}
	c.want(specPost("/auth/github/refresh", flaky), http.StatusTooManyRequests, "RATE_LIMITED")

	// GitHub misbehaving: 502 on a cut answer; 503 on a 5xx, not cached.
	h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultTruncatedJSON, Count: 1})
	c.want(specPost("/auth/github/refresh", map[string]string{"refresh_token": h.Grant().RefreshToken}), http.StatusBadGateway, "UPSTREAM_BAD_RESPONSE")
	g3 := h.Grant()
	h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Count: 1})
	c.want(specPost("/auth/github/refresh", map[string]string{"refresh_token": g3.RefreshToken}), http.StatusServiceUnavailable, "UPSTREAM_UNAVAILABLE")
	c.want(specPost("/auth/github/refresh", map[string]string{"refresh_token": g3.RefreshToken}), http.StatusOK, "")
}

// specSignInTraffic covers GET /auth/github/authorize and POST /auth/github,
// and returns the sessions of two users, A and B.
func specSignInTraffic(t *testing.T, c *specClient) (a, b apptest.SignedIn) {
	h := c.h
	userA := h.Emu.AddUser(githubemu.User{Login: "spec-a", Name: "Spec A"})
	userB := h.Emu.AddUser(githubemu.User{Login: "spec-b", Company: "@flashback"})
	// A through the JSON answer of authorize; a retry replays.
	code, state := c.startLogin(false, userA.ID)
	a = c.signIn(code, state)
	if again := c.signIn(code, state); !bytes.Equal(again.Body, a.Body) {
		t.Errorf("a retried sign-in with the same code answered differently")
	}
	// B through the 302, after a 503 that does not spend the login.
	code, state = c.startLogin(true, userB.ID)
	h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultServerError, Count: 1})
	c.want(specPost("/auth/github", map[string]string{"code": code, "state": state}), http.StatusServiceUnavailable, "UPSTREAM_UNAVAILABLE")
	b = c.signIn(code, state)

	code, state = c.startLogin(false, userA.ID)
	h.Emu.InjectFault(githubemu.Fault{Kind: githubemu.FaultTruncatedJSON, Count: 1})
	c.want(specPost("/auth/github", map[string]string{"code": code, "state": state}), http.StatusBadGateway, "UPSTREAM_BAD_RESPONSE")
	code, state = c.startLogin(false, userA.ID)
	c.want(specPost("/auth/github", map[string]string{"code": code, "state": state, "redirect_uri": "https://elsewhere.example/cb"}),
		http.StatusBadRequest, "REDIRECT_URI_MISMATCH")
	c.want(specPost("/auth/github", map[string]string{"code": "neverIssuedCode0123456789", "state": "neverIssuedState0123456789"}),
		http.StatusBadRequest, "INVALID_STATE")
	c.want(specPost("/auth/github", map[string]string{"code": "neverIssuedCode9876543210"}), http.StatusUnauthorized, "INVALID_CODE")
	unverified := h.Emu.AddUser(githubemu.User{Login: "spec-unverified", Emails: []githubemu.Email{{Email: "u@example.com", Primary: true}}})
	code, state = c.startLogin(false, unverified.ID)
	c.want(specPost("/auth/github", map[string]string{"code": code, "state": state}), http.StatusForbidden, "EMAIL_NOT_VERIFIED")
	for _, body := range []any{map[string]any{}, map[string]any{"code": 5}, map[string]any{"code": "x", "state": 7}} {
		c.want(specCall{method: http.MethodPost, path: "/auth/github", body: body, invalid: true}, http.StatusBadRequest, "INVALID_REQUEST")
	}
	c.want(specCall{method: http.MethodPost, path: "/auth/github", contentType: "application/x-www-form-urlencoded", body: "code=x", invalid: true},
		http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")
	c.want(specCall{method: http.MethodPost, path: "/auth/github", body: map[string]string{"code": strings.Repeat("c", 70<<10)}, invalid: true},
		http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE")
	c.want(specGet("/auth/github/authorize?redirect_uri=not-absolute"), http.StatusBadRequest, "INVALID_REQUEST")
	return a, b
}

// signedInTraffic covers ownership of GitHub refresh tokens and the
// session endpoints. It revokes A's and B's sessions.
func signedInTraffic(t *testing.T, c *specClient, a, b apptest.SignedIn) {
	// B's valid Bearer on A's GitHub refresh token; then A's own.
	c.want(specCall{method: http.MethodPost, path: "/auth/github/refresh", bearer: b.JWT, body: map[string]string{"refresh_token": a.GHRefresh}},
		http.StatusForbidden, "TOKEN_OWNER_MISMATCH")
	c.want(specCall{method: http.MethodPost, path: "/auth/github/refresh", bearer: a.JWT, body: map[string]string{"refresh_token": a.GHRefresh}},
		http.StatusOK, "")

	list := c.want(specCall{method: http.MethodGet, path: "/token", bearer: a.JWT}, http.StatusOK, "")
	if toks, _ := list.JSON(t)["tokens"].([]any); len(toks) != 1 {
		t.Errorf("GET /token lists %d sessions of A, want 1", len(toks))
	}
	c.want(specCall{method: http.MethodGet, path: "/token", invalid: true}, http.StatusUnauthorized, "AUTH_REQUIRED")
	c.want(specCall{method: http.MethodGet, path: "/token", bearer: "eyJhbGciOiJub25lIn0.e30.c2ln"}, http.StatusUnauthorized, "AUTH_REQUIRED")
	c.want(specCall{method: http.MethodDelete, path: "/token/" + b.TokenID, bearer: a.JWT}, http.StatusNotFound, "NOT_FOUND")
	c.want(specCall{method: http.MethodDelete, path: "/token/no-such-session", bearer: a.JWT}, http.StatusNotFound, "NOT_FOUND")
	c.want(specCall{method: http.MethodDelete, path: "/token/" + a.TokenID, invalid: true}, http.StatusUnauthorized, "AUTH_REQUIRED")

	rot := c.want(specPost("/user/refresh", map[string]string{"refresh_token": b.SessionRT}), http.StatusOK, "")
	if again := c.want(specPost("/user/refresh", map[string]string{"refreshToken": b.SessionRT}), http.StatusOK, ""); !bytes.Equal(again.Body, rot.Body) {
		t.Errorf("the same session refresh token within the reuse interval answered differently")
	}
	newRT := rot.Str(t, "refreshToken")
	for _, path := range []string{"/user/refresh", "/user/logout"} {
		for _, body := range []any{map[string]any{}, map[string]any{"refresh_token": 1}, map[string]any{"refreshToken": ""}} {
			c.want(specCall{method: http.MethodPost, path: path, body: body, invalid: true}, http.StatusBadRequest, "INVALID_REQUEST")
		}
		c.want(specCall{method: http.MethodPost, path: path, contentType: "text/plain", body: "x", invalid: true},
			http.StatusUnsupportedMediaType, "UNSUPPORTED_MEDIA_TYPE")
		c.want(specCall{method: http.MethodPost, path: path, body: specHuge, invalid: true}, http.StatusRequestEntityTooLarge, "PAYLOAD_TOO_LARGE")
	}
	unknownRT := map[string]string{"refresh_token": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}
	for range 6 { // the rejection, then its replays: they never spend the per-token limit
		c.want(specPost("/user/refresh", unknownRT), http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")
	}
	c.want(specPost("/user/logout", unknownRT), http.StatusUnauthorized, "INVALID_REFRESH_TOKEN")
	c.h.Clock.Advance(11 * time.Second) // past the reuse interval
	c.want(specPost("/user/refresh", map[string]string{"refresh_token": b.SessionRT}), http.StatusUnauthorized, "REFRESH_TOKEN_REUSED")
	c.want(specPost("/user/logout", map[string]string{"refreshToken": newRT}), http.StatusOK, "")
	c.want(specPost("/user/logout", map[string]string{"refreshToken": newRT}), http.StatusOK, "") // already revoked
	c.want(specCall{method: http.MethodDelete, path: "/token/" + a.TokenID, bearer: a.JWT}, http.StatusOK, "")
}

// specStoreDownTraffic closes the store under a running flashauth: 503
// STORE_UNAVAILABLE with Retry-After wherever the store is needed.
func specStoreDownTraffic(t *testing.T, c *specClient) {
	h := c.h
	u := h.Emu.AddUser(githubemu.User{Login: "spec-c"})
	code, state := c.startLogin(false, u.ID)
	s := c.signIn(code, state)
	if err := h.App.Store.Close(); err != nil {
		t.Fatal(err)
	}
	for _, call := range []specCall{
		specGet("/readyz"),
		specGet("/auth/github/authorize"),
		specPost("/auth/github", map[string]string{"code": code + "x"}),
		specPost("/auth/github/refresh", map[string]string{"refresh_token": "ghr_whileTheStoreIsDown0123456789"}),
		specPost("/user/refresh", map[string]string{"refresh_token": s.SessionRT}),
		specPost("/user/logout", map[string]string{"refresh_token": s.SessionRT}),
		{method: http.MethodGet, path: "/token", bearer: s.JWT},
		{method: http.MethodDelete, path: "/token/" + s.TokenID, bearer: s.JWT},
	} {
		c.want(call, http.StatusServiceUnavailable, "STORE_UNAVAILABLE")
	}
}

// specLimitTraffic runs against a flashauth whose client secret GitHub
// rejects and whose per-IP limit allows a burst of 5: two upstream calls
// answer 500 UPSTREAM_CREDENTIALS_REJECTED, then every rate-limited
// operation answers 429.
func specLimitTraffic(t *testing.T, c *specClient) {
	h := c.h
	c.want(specPost("/auth/github/refresh", map[string]string{"refresh_token": h.Grant().RefreshToken}),
		http.StatusInternalServerError, "UPSTREAM_CREDENTIALS_REJECTED")
	u := h.Emu.AddUser(githubemu.User{Login: "spec-d"})
	code, state := c.startLogin(false, u.ID) // one request
	c.want(specPost("/auth/github", map[string]string{"code": code, "state": state}),
		http.StatusInternalServerError, "UPSTREAM_CREDENTIALS_REJECTED")
	c.want(specGet("/openapi.json"), http.StatusOK, "")
	c.want(specGet("/.well-known/jwks.json"), http.StatusOK, "") // the burst of 5 is spent
	for _, call := range []specCall{
		specGet("/.well-known/jwks.json"),
		specGet("/.well-known/openid-configuration"),
		specGet("/openapi.json"),
		specGet("/auth/github/authorize"),
		specPost("/auth/github", map[string]string{"code": code}),
		specPost("/auth/github/refresh", map[string]string{"refresh_token": "ghr_rateLimitedBeforeAnything0123"}),
		specPost("/user/refresh", map[string]string{"refresh_token": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
		specPost("/user/logout", map[string]string{"refresh_token": "AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA"}),
		{method: http.MethodGet, path: "/token", bearer: "eyJhbGciOiJFZERTQSJ9.e30.c2ln"},
		{method: http.MethodDelete, path: "/token/some-session", bearer: "eyJhbGciOiJFZERTQSJ9.e30.c2ln"},
	} {
		c.want(call, http.StatusTooManyRequests, "RATE_LIMITED")
	}
	// Health, readiness and metrics are never limited.
	for _, path := range []string{"/healthz", "/readyz", "/metrics"} {
		c.want(specGet(path), http.StatusOK, "")
	}
}
