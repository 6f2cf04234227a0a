package github

import (
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptrace"
	"sync/atomic"

	"github.com/flashbacktech/flashauth"
)

// ErrTimeout is the cause of a Transient error when GitHub did not answer
// within Config.Timeout. A deadline of the caller's own context is reported
// as context.DeadlineExceeded instead, so the two can be told apart.
var ErrTimeout = errors.New("no answer within the timeout")

// response is GitHub's answer, read in full (up to maxBodyBytes).
type response struct {
	status   int
	header   http.Header
	body     []byte
	tooLarge bool // body exceeded maxBodyBytes and was discarded
}

// send runs one call: at most two attempts, the second only when the first
// never obtained a connection (see the package doc), all within c.timeout.
// The error, when not nil, is a *flashauth.UpstreamError.
func (c *Client) send(ctx context.Context, op string, build func(context.Context) (*http.Request, error)) (*response, error) {
	callCtx, cancel := context.WithTimeout(ctx, c.timeout)
	defer cancel()
	for attempt := 1; ; attempt++ {
		// sent turns true as soon as a connection is handed over for the
		// request; from then on the request may reach GitHub.
		var sent atomic.Bool
		trace := &httptrace.ClientTrace{
			GotConn:      func(httptrace.GotConnInfo) { sent.Store(true) },
			WroteRequest: func(httptrace.WroteRequestInfo) { sent.Store(true) },
		}
		req, err := build(httptrace.WithClientTrace(callCtx, trace))
		if err != nil {
			// Only a programming error gets here: the URLs were validated.
			return nil, &flashauth.UpstreamError{Kind: flashauth.UpstreamConfig, Op: op, Err: errors.New("cannot build the request")}
		}
		req.Header.Set("User-Agent", c.userAgent)
		resp, err := c.hc.Do(req)
		if err == nil {
			r, err := readResponse(resp)
			if err != nil {
				return nil, c.noAnswer(ctx, callCtx, op, err)
			}
			return r, nil
		}
		if attempt == 1 && !sent.Load() && callCtx.Err() == nil {
			continue
		}
		return nil, c.noAnswer(ctx, callCtx, op, err)
	}
}

// readResponse reads at most maxBodyBytes of the body and closes it. A body
// read to EOF leaves the connection reusable; a larger one is cut off.
func readResponse(resp *http.Response) (*response, error) {
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, maxBodyBytes+1))
	if err != nil {
		return nil, err
	}
	r := &response{status: resp.StatusCode, header: resp.Header, body: body}
	if len(body) > maxBodyBytes {
		r.body, r.tooLarge = nil, true
	}
	return r, nil
}

// noAnswer classifies a call that got no complete answer. All such failures
// are Transient; the cause says whether the caller gave up, the timeout
// struck or the network failed.
func (c *Client) noAnswer(parent, callCtx context.Context, op string, err error) *flashauth.UpstreamError {
	var cause error
	switch {
	case parent.Err() != nil:
		cause = fmt.Errorf("abandoned by the caller: %w", parent.Err())
	case callCtx.Err() != nil:
		cause = fmt.Errorf("%w (%s)", ErrTimeout, c.timeout)
	default:
		cause = &netError{err: err}
	}
	return &flashauth.UpstreamError{Kind: flashauth.UpstreamTransient, Op: op, Err: cause}
}

// netError describes a transport failure without quoting what net/http may
// have copied from the wire (a malformed status line, for instance). The
// original stays reachable with errors.As / errors.Is.
type netError struct{ err error }

func (e *netError) Unwrap() error { return e.err }

func (e *netError) Error() string {
	var (
		op   *net.OpError
		dns  *net.DNSError
		cert *tls.CertificateVerificationError
		ne   net.Error
	)
	switch {
	case errors.As(e.err, &cert):
		return cert.Error()
	case errors.As(e.err, &dns):
		return dns.Error()
	case errors.As(e.err, &op):
		return op.Error()
	case errors.Is(e.err, io.EOF), errors.Is(e.err, io.ErrUnexpectedEOF):
		return "connection closed before a complete response"
	case errors.As(e.err, &ne) && ne.Timeout():
		return "network timeout"
	}
	return "transport failure"
}
