// Package client is the Go SDK of flashauth: every endpoint of the API with
// typed requests and answers, one error type, and a GitHub token source that
// refreshes through flashauth (see GitHubTokenSource).
//
// Times are time.Time, converted from the wire's milliseconds since the Unix
// epoch; the zero time means "does not expire". Errors of the service are
// *Error values: inspect them with errors.As, or with IsReauthRequired and
// IsRetryable. No error string of this package ever holds a token.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
)

// MaxResponseBytes bounds how much of an answer the client reads. flashauth's
// answers are a few KiB; anything larger is refused, not buffered.
const MaxResponseBytes = 1 << 20

// Client calls one flashauth server. It is safe for concurrent use.
type Client struct {
	base      *url.URL
	hc        *http.Client
	userAgent string
}

// Option configures a Client.
type Option func(*Client)

// WithHTTPClient makes the Client send its requests with hc (timeouts,
// proxies, TLS settings, test transports). The default is
// http.DefaultClient, which has no timeout: pass a context with a deadline,
// or a client with one.
func WithHTTPClient(hc *http.Client) Option {
	return func(c *Client) {
		if hc != nil {
			c.hc = hc
		}
	}
}

// WithUserAgent sets the User-Agent of every request.
func WithUserAgent(ua string) Option { return func(c *Client) { c.userAgent = ua } }

// New returns a Client for the flashauth at baseURL (scheme and host, and
// the path prefix flashauth is mounted under, if any).
func New(baseURL string, opts ...Option) (*Client, error) {
	u, err := url.Parse(baseURL)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
		// Quoted without its password: a URL may carry one.
		shown := "(unparseable)"
		if err == nil {
			shown = u.Redacted()
		}
		return nil, fmt.Errorf("flashauth client: base URL %q must be an absolute http or https URL", shown)
	}
	if u.RawQuery != "" || u.Fragment != "" || u.User != nil {
		return nil, errors.New("flashauth client: the base URL must not carry a query, a fragment or credentials")
	}
	u.Path = strings.TrimRight(u.Path, "/")
	u.RawPath = ""
	c := &Client{base: u, hc: http.DefaultClient, userAgent: "flashauth-go-client"}
	for _, o := range opts {
		o(c)
	}
	// Never follow a redirect: net/http would re-send a request's body (a
	// refresh token) on 307/308 to whatever host Location names, and its
	// Authorization header to the same host on another port. flashauth
	// answers no redirect this client asks for, so one is an error.
	hc := *c.hc
	hc.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	c.hc = &hc
	return c, nil
}

// BaseURL returns the server's base URL as New received it, without a
// trailing slash.
func (c *Client) BaseURL() string { return c.base.String() }

// call is one request to flashauth.
type call struct {
	method string
	path   string     // below the base URL, with a leading slash, already escaped
	query  url.Values // optional
	body   any        // marshalled to JSON when not nil
	bearer string     // Authorization: Bearer, when not empty
}

// do sends cl and decodes a successful answer into out (when not nil). A
// non-2xx answer becomes an *Error.
func (c *Client) do(ctx context.Context, cl call, out any) error {
	target := c.base.String() + cl.path
	if len(cl.query) > 0 {
		target += "?" + cl.query.Encode()
	}
	var body io.Reader
	if cl.body != nil {
		b, err := json.Marshal(cl.body)
		if err != nil {
			return fmt.Errorf("flashauth client: encode %s %s: %w", cl.method, cl.path, err)
		}
		body = bytes.NewReader(b)
	}
	req, err := http.NewRequestWithContext(ctx, cl.method, target, body)
	if err != nil {
		return fmt.Errorf("flashauth client: %s %s: %w", cl.method, cl.path, err)
	}
	req.Header.Set("Accept", "application/json")
	if c.userAgent != "" {
		req.Header.Set("User-Agent", c.userAgent)
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if cl.bearer != "" {
		req.Header.Set("Authorization", "Bearer "+cl.bearer)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		// *url.Error names the method and URL; URLs of this client hold
		// no token (tokens travel in bodies and headers).
		return fmt.Errorf("flashauth client: %w", err)
	}
	defer resp.Body.Close()
	raw, err := readBounded(resp.Body)
	if err != nil {
		return fmt.Errorf("flashauth client: %s %s: reading the answer (status %d): %w", cl.method, cl.path, resp.StatusCode, err)
	}
	if resp.StatusCode < 200 || resp.StatusCode > 299 {
		return decodeError(resp, raw)
	}
	if out == nil {
		return nil
	}
	if err := json.Unmarshal(raw, out); err != nil {
		// The error of encoding/json quotes no input beyond a type name
		// or an offset, so no token leaks through it.
		return fmt.Errorf("flashauth client: %s %s: the answer is not the expected JSON: %w", cl.method, cl.path, jsonErr(err))
	}
	return nil
}

// errTooLarge is returned for answers over MaxResponseBytes.
var errTooLarge = fmt.Errorf("answer larger than %d bytes", MaxResponseBytes)

// readBounded reads r whole, up to MaxResponseBytes.
func readBounded(r io.Reader) ([]byte, error) {
	b, err := io.ReadAll(io.LimitReader(r, MaxResponseBytes+1))
	if err != nil {
		return nil, err
	}
	if len(b) > MaxResponseBytes {
		return nil, errTooLarge
	}
	return b, nil
}

// jsonErr keeps the kind of a decoding error but drops anything that could
// quote the answer: a *json.UnmarshalTypeError names a field and a type,
// a *json.SyntaxError an offset; other errors are replaced.
func jsonErr(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	if errors.As(err, &te) || errors.As(err, &se) {
		return err
	}
	return errors.New("malformed JSON")
}
