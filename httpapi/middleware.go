package httpapi

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"log/slog"
	"net/http"
	"net/netip"
	"regexp"
	"runtime/debug"
	"strconv"
	"strings"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/logging"
	"github.com/flashbacktech/flashauth/ratelimit"
)

// The outermost middleware works out the request id and client address
// once per request and puts them in the context as a
// flashauth.RequestInfo, which every later layer (limits, logs) and the
// services' audit rows reuse.

// requestID returns the request id stored by the middleware.
func requestID(ctx context.Context) string {
	return flashauth.RequestInfoFrom(ctx).ID
}

// withSession records the request's session (of a valid access token it
// presented) in its flashauth.RequestInfo.
func withSession(ctx context.Context, id string) context.Context {
	if id == "" {
		return ctx
	}
	info := flashauth.RequestInfoFrom(ctx)
	info.SessionID = id
	return flashauth.WithRequestInfo(ctx, info)
}

// requestIP returns the client address the middleware worked out for r.
func (s *server) requestIP(r *http.Request) string {
	if info := flashauth.RequestInfoFrom(r.Context()); info.IP != "" {
		return info.IP
	}
	return s.clientIP(r)
}

// saneRequestID accepts ids a caller may reasonably send; anything else is
// replaced so logs cannot be polluted or injected through the header.
var saneRequestID = regexp.MustCompile(`^[A-Za-z0-9._:-]{1,128}$`)

// uuidRequestID is the most common request id proxies generate. It is not
// a secret, though its length alone would make the redactor think so.
var uuidRequestID = regexp.MustCompile(`^[0-9A-Fa-f]{8}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{4}-[0-9A-Fa-f]{12}$`)

// acceptRequestID reports whether the caller's X-Request-Id may be kept.
// The id is echoed, logged and written to the audit table, which is not
// behind the log redactor: an id that looks like a token (a client that
// confused its headers) is replaced like any other bad one.
func acceptRequestID(id string) bool {
	if id == "" || !saneRequestID.MatchString(id) { // most requests send none
		return false
	}
	return uuidRequestID.MatchString(id) || logging.Redact(id) == id
}

func newRequestID() string {
	var b [12]byte
	_, _ = rand.Read(b[:])
	return hex.EncodeToString(b[:])
}

// statusWriter records the status for the access log and metrics.
type statusWriter struct {
	http.ResponseWriter
	status int
}

func (w *statusWriter) WriteHeader(code int) {
	if w.status == 0 {
		w.status = code
	}
	w.ResponseWriter.WriteHeader(code)
}

func (w *statusWriter) Write(b []byte) (int, error) {
	if w.status == 0 {
		w.status = http.StatusOK
	}
	return w.ResponseWriter.Write(b)
}

func (w *statusWriter) Unwrap() http.ResponseWriter { return w.ResponseWriter }

// withRequest assigns the request id, works out the client address once,
// sets the common headers, recovers panics, and writes one access-log line
// per request. It logs the path
// only: query strings can carry codes and states.
func (s *server) withRequest(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		start := time.Now()
		id := r.Header.Get("X-Request-Id")
		if !acceptRequestID(id) {
			id = newRequestID()
		}
		ip := s.clientIP(r)
		ctx := flashauth.WithRequestInfo(r.Context(), flashauth.RequestInfo{ID: id, IP: ip})
		r = r.WithContext(ctx)
		h := w.Header()
		h.Set("X-Request-Id", id)
		setFixed(h, "X-Content-Type-Options", nosniff)
		setFixed(h, "X-Frame-Options", frameDeny)
		setFixed(h, "Referrer-Policy", noReferrer)
		setFixed(h, "Content-Security-Policy", cspNone)
		if r.TLS != nil {
			setFixed(h, "Strict-Transport-Security", hsts)
		}
		sw := &statusWriter{ResponseWriter: w}
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				// The panic value and stack may hold anything; log only its type
				// and where it happened.
				s.log.ErrorContext(ctx, "panic in handler", "request_id", id, "panic_type", typeName(v), "stack", stackFrames())
				if sw.status == 0 {
					writeError(sw, flashauth.Errorf(flashauth.CodeInternal, "An internal error occurred."))
				}
			}
			route := routeOf(r)
			status := sw.status
			if status == 0 {
				status = http.StatusOK
			}
			s.metrics.observe(route, r.Method, status, time.Since(start))
			if !s.log.Enabled(ctx, slog.LevelInfo) {
				return // nor the attributes of a line nobody writes
			}
			s.log.LogAttrs(ctx, slog.LevelInfo, "request",
				slog.String("request_id", id),
				slog.String("method", r.Method),
				slog.String("route", route),
				slog.String("path", safePath(r.URL.Path)),
				slog.Int("status", status),
				slog.Duration("duration", time.Since(start)),
				slog.String("ip", ip),
			)
		}()
		next.ServeHTTP(sw, r)
	})
}

// safePath keeps the path for the log but drops path segments that could be
// secrets: flashauth never puts tokens in paths, but callers might.
func safePath(p string) string {
	if len(p) > 200 {
		p = p[:200]
	}
	parts := strings.Split(p, "/")
	for i, seg := range parts {
		if len(seg) > 40 || strings.HasPrefix(seg, "gh") && strings.Contains(seg, "_") {
			parts[i] = "[redacted]"
		}
	}
	return strings.Join(parts, "/")
}

func routeOf(r *http.Request) string {
	if r.Pattern != "" {
		return r.Pattern
	}
	return "unmatched"
}

func typeName(v any) string {
	switch v.(type) {
	case error:
		return "error"
	case string:
		return "string"
	}
	return "other"
}

// stackFrames returns the function names of the stack, without arguments
// (which could be secrets).
func stackFrames() string {
	var out []string
	for _, line := range strings.Split(string(debug.Stack()), "\n") {
		if strings.HasPrefix(line, "\t") || line == "" || strings.HasPrefix(line, "goroutine ") {
			continue
		}
		if i := strings.LastIndex(line, "("); i > 0 {
			line = line[:i]
		}
		out = append(out, line)
	}
	return strings.Join(out, " < ")
}

// limitIP applies the per-client-IP limit to every request.
func (s *server) limitIP(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/healthz" || r.URL.Path == "/readyz" || r.URL.Path == "/metrics" {
			next.ServeHTTP(w, r)
			return
		}
		if ok, wait := s.limits.ip.Allow(rateKey(s.requestIP(r))); !ok {
			s.metrics.rateLimited.WithLabelValues("ip").Inc()
			writeError(w, rateLimited(wait))
			return
		}
		next.ServeHTTP(w, r)
	})
}

// rateKey is the per-IP bucket of a client address. IPv6 clients are
// grouped by /64, the smallest block a subscriber is normally given:
// otherwise one client could take a fresh bucket for every address it owns.
func rateKey(ip string) string {
	a, err := netip.ParseAddr(ip)
	if err != nil || !a.Is6() {
		return ip
	}
	p, err := a.WithZone("").Prefix(64)
	if err != nil {
		return ip
	}
	return p.String()
}

func rateLimited(wait time.Duration) error { return ratelimit.Refused(wait) }

// cors answers preflights and decorates responses for allowed origins only.
func (s *server) cors(next http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		origin := r.Header.Get("Origin")
		if len(s.corsOrigins) > 0 {
			// The answer depends on Origin whether or not it is allowed: a
			// shared cache must not hand one origin's answer to another.
			w.Header().Add("Vary", "Origin")
		}
		if origin == "" || !s.corsOrigins[origin] {
			next.ServeHTTP(w, r)
			return
		}
		h := w.Header()
		h.Set("Access-Control-Allow-Origin", origin)
		h.Set("Access-Control-Expose-Headers", "X-Request-Id, Retry-After")
		if r.Method == http.MethodOptions && r.Header.Get("Access-Control-Request-Method") != "" {
			h.Set("Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS")
			h.Set("Access-Control-Allow-Headers", "Authorization, Content-Type, X-Request-Id")
			h.Set("Access-Control-Max-Age", strconv.Itoa(600))
			writeJSON(w, http.StatusOK, map[string]bool{"success": true})
			return
		}
		next.ServeHTTP(w, r)
	})
}

// noStore marks a response that carries tokens as uncacheable.
func noStore(w http.ResponseWriter) {
	h := w.Header()
	setFixed(h, "Cache-Control", cacheNoStore)
	setFixed(h, "Pragma", pragmaNoCache)
}

// The values of the headers every response (or every token answer) has,
// made once.
var (
	nosniff       = fixedValue("nosniff")
	frameDeny     = fixedValue("DENY")
	noReferrer    = fixedValue("no-referrer")
	cspNone       = fixedValue("default-src 'none'; frame-ancestors 'none'")
	hsts          = fixedValue("max-age=63072000")
	cacheNoStore  = fixedValue("no-store")
	pragmaNoCache = fixedValue("no-cache")
	jsonType      = fixedValue("application/json; charset=utf-8")
)

// fixedValue is a header value shared by every response: its slice is full
// (len == cap), so an Add to the header copies it instead of writing into
// it, and nothing writes its element.
func fixedValue(v string) []string { return []string{v}[:1:1] }

// setFixed is h.Set(key, v[0]) for a canonical key and a fixedValue,
// without allocating the value's slice.
func setFixed(h http.Header, key string, v []string) { h[key] = v }
