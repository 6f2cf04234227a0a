package githubemu

import (
	"bytes"
	"fmt"
	"net/http"
	"strconv"
	"time"
)

// FaultKind is a way for GitHub to misbehave.
type FaultKind int

// Fault kinds. ServerError, RateLimitHTML, RateLimitJSON and Hang answer
// before the request is processed: nothing is consumed. TruncatedJSON and
// CloseConnection process the request first (a refresh rotates, a code is
// spent) and then lose the answer, as when a response is cut on the way back
// from github.com: the rotated token is gone for good.
const (
	// FaultServerError answers Status (default 502). A 500 has an empty
	// body; other statuses get an HTML error page.
	FaultServerError FaultKind = iota + 1
	// FaultRateLimitHTML answers Status (default 429) with GitHub's HTML
	// "You have exceeded a secondary rate limit" page.
	FaultRateLimitHTML
	// FaultRateLimitJSON answers Status (default 429) with the REST API's
	// JSON rate-limit message and X-RateLimit-* headers.
	FaultRateLimitJSON
	// FaultTruncatedJSON processes the request and answers its status with
	// the first half of its body, Content-Length matching the cut body.
	FaultTruncatedJSON
	// FaultHang holds the request until the client gives up or the
	// emulator is closed (then the connection is dropped).
	FaultHang
	// FaultCloseConnection processes the request, then closes the
	// connection without answering.
	FaultCloseConnection
)

var faultNames = map[FaultKind]string{
	FaultServerError:     "server_error",
	FaultRateLimitHTML:   "rate_limit_html",
	FaultRateLimitJSON:   "rate_limit_json",
	FaultTruncatedJSON:   "truncated_json",
	FaultHang:            "hang",
	FaultCloseConnection: "close_connection",
}

func (k FaultKind) String() string {
	if s, ok := faultNames[k]; ok {
		return s
	}
	return "FaultKind(" + strconv.Itoa(int(k)) + ")"
}

// MarshalText encodes k by name ("server_error", "hang", ...).
func (k FaultKind) MarshalText() ([]byte, error) {
	if s, ok := faultNames[k]; ok {
		return []byte(s), nil
	}
	return nil, fmt.Errorf("githubemu: unknown fault kind %d", int(k))
}

// UnmarshalText decodes a name written by MarshalText.
func (k *FaultKind) UnmarshalText(b []byte) error {
	for kind, s := range faultNames {
		if s == string(b) {
			*k = kind
			return nil
		}
	}
	return fmt.Errorf("githubemu: unknown fault kind %q", b)
}

// Fault makes matching requests misbehave.
type Fault struct {
	Kind FaultKind
	// Path is the endpoint it applies to: "" means the token endpoint, "*"
	// every path outside the control API. REST paths match with or without
	// the /api/v3 prefix.
	Path string
	// Count is how many matching requests it applies to; 0 means until
	// ClearFaults.
	Count int
	// RetryAfter, when positive, is sent as Retry-After (whole seconds,
	// rounded up).
	RetryAfter time.Duration
	// Status overrides the kind's default status.
	Status int
}

type activeFault struct {
	Fault
	left int // requests it still applies to; unused when Count is 0
}

// InjectFault adds f after the faults already active; a request meets the
// first active fault that matches it.
func (e *Emulator) InjectFault(f Fault) {
	if f.Path == "" {
		f.Path = TokenPath
	} else if f.Path != "*" {
		f.Path = canonicalPath(f.Path)
	}
	e.mu.Lock()
	e.faults = append(e.faults, &activeFault{Fault: f, left: f.Count})
	e.mu.Unlock()
	e.log.Info("githubemu: fault injected", "kind", f.Kind.String(), "path", f.Path, "count", f.Count)
}

// ClearFaults removes every fault.
func (e *Emulator) ClearFaults() {
	e.mu.Lock()
	e.faults = nil
	e.mu.Unlock()
	e.log.Info("githubemu: faults cleared")
}

// takeFault returns the fault that applies to a request on path, using up
// one of its count.
func (e *Emulator) takeFault(path string) (Fault, bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	for i, f := range e.faults {
		if f.Path != "*" && f.Path != path {
			continue
		}
		if f.Count > 0 {
			if f.left--; f.left <= 0 {
				e.faults = append(e.faults[:i:i], e.faults[i+1:]...)
			}
		}
		return f.Fault, true
	}
	return Fault{}, false
}

// applyFault answers a request according to f; h is the normal handler.
func (e *Emulator) applyFault(w http.ResponseWriter, r *http.Request, f Fault, h func(http.ResponseWriter)) {
	if f.RetryAfter > 0 {
		w.Header().Set("Retry-After", strconv.FormatInt(int64((f.RetryAfter+time.Second-1)/time.Second), 10))
	}
	switch f.Kind {
	case FaultRateLimitHTML:
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(statusOr(f.Status, http.StatusTooManyRequests))
		w.Write([]byte(rateLimitPage))
	case FaultRateLimitJSON:
		status := statusOr(f.Status, http.StatusTooManyRequests)
		wait := max(f.RetryAfter, time.Minute)
		hd := w.Header()
		hd.Set("X-RateLimit-Limit", "5000")
		hd.Set("X-RateLimit-Remaining", "0")
		hd.Set("X-RateLimit-Used", "5000")
		hd.Set("X-RateLimit-Resource", "core")
		hd.Set("X-RateLimit-Reset", strconv.FormatInt(e.clock.Now().Add(wait).Unix(), 10))
		writeRESTError(w, status,
			"You have exceeded a secondary rate limit. Please wait a few minutes before you try again.",
			restDocs+"/overview/rate-limits-for-the-rest-api#about-secondary-rate-limits")
	case FaultTruncatedJSON:
		rec := newRecorder()
		h(rec)
		for k, v := range rec.header {
			w.Header()[k] = v
		}
		cut := rec.body.Bytes()[:rec.body.Len()/2]
		w.Header().Set("Content-Length", strconv.Itoa(len(cut)))
		w.WriteHeader(rec.status)
		w.Write(cut)
	case FaultHang:
		select {
		case <-r.Context().Done():
		case <-e.closed:
			dropConnection(w)
		}
	case FaultCloseConnection:
		h(newRecorder())
		dropConnection(w)
	default: // FaultServerError, and any unknown kind
		status := statusOr(f.Status, http.StatusBadGateway)
		if status == http.StatusInternalServerError {
			w.Header().Set("Content-Length", "0")
			w.WriteHeader(status)
			return
		}
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.WriteHeader(status)
		fmt.Fprintf(w, serverErrorPage, status, http.StatusText(status))
	}
}

func statusOr(s, def int) int {
	if s >= 100 && s <= 999 {
		return s
	}
	return def
}

// dropConnection closes the client's connection without an answer.
func dropConnection(w http.ResponseWriter) {
	if hj, ok := w.(http.Hijacker); ok {
		if conn, _, err := hj.Hijack(); err == nil {
			conn.Close()
			return
		}
	}
	// HTTP/2 and wrapped writers cannot hijack; the server resets the
	// stream on this panic and does not log it.
	panic(http.ErrAbortHandler)
}

// recorder buffers a handler's answer so a fault can mangle or drop it.
type recorder struct {
	header http.Header
	status int
	body   bytes.Buffer
}

func newRecorder() *recorder { return &recorder{header: make(http.Header), status: http.StatusOK} }

func (r *recorder) Header() http.Header { return r.header }

func (r *recorder) Write(b []byte) (int, error) { return r.body.Write(b) }

func (r *recorder) WriteHeader(status int) { r.status = status }

const rateLimitPage = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>Too many requests · GitHub</title></head>
<body><div class="container"><h1>Whoa there!</h1>
<p>You have exceeded a secondary rate limit.</p>
<p>Please wait a few minutes before you try again; in some cases this may take up to an hour.</p>
</div></body></html>
`

const serverErrorPage = `<!DOCTYPE html>
<html><head><meta charset="utf-8"><title>%d %s · GitHub</title></head>
<body><h1>Unicorn!</h1><p>No server is currently available to service your request.
Sorry about that. Please try refreshing and contact us if the problem persists.</p></body></html>
`
