// Package github is flashauth's client of GitHub: the OAuth token endpoint
// (refresh and authorization-code exchange) and the two REST calls made at
// sign-in, GET /user and GET /user/emails. Client implements
// flashauth.GitHub; Breaker wraps any flashauth.GitHub in a circuit breaker.
//
// # Errors
//
// Every error is a *flashauth.UpstreamError whose Kind tells the caller what
// to do next:
//
//   - Rejected: GitHub gave a verdict on the presented credential
//     (bad_refresh_token, bad_verification_code, redirect_uri_mismatch,
//     unverified_user_email, REST 401). Asking again will not help.
//   - Config: incorrect_client_credentials, an operator fault.
//   - Transient: no answer (network failure, timeout, cancellation), 5xx,
//     429, or a 403 that is a rate limit. RetryAfter carries GitHub's hint
//     from Retry-After (seconds or HTTP-date) or x-ratelimit-reset.
//   - BadResponse: an answer that cannot be understood: non-JSON or truncated
//     JSON, a 200 without access_token, an unknown OAuth error code, or an
//     unexpected status (3xx, 404, 406, other 4xx).
//
// GitHub reports OAuth errors with HTTP 200, so a 200 is only a success when
// its JSON carries no `error`. Error strings never contain a token, a code, the
// client secret or the raw upstream body, and response bodies are read up to
// 1 MiB only.
//
// # Retries
//
// GitHub refresh tokens and authorization codes are single-use: a request
// that reached GitHub may have spent the secret, and sending it again would at
// best earn bad_refresh_token and at worst lose the rotated token for good.
// So the client never retries a request that may have been delivered. It
// retries at most once, and only when the first attempt never obtained a
// connection (the dial, the proxy CONNECT or the TLS handshake failed, which
// httptrace reports as GotConn and WroteRequest never firing): then not one
// byte of the request left the process.
//
// net/http re-sends a request on its own when it can rewind the body: its
// HTTP/2 transport does so after a stream reset even when the server had read
// the whole request, on a fresh connection each time. The token requests
// therefore carry no GetBody (and no Idempotency-Key): net/http cannot
// re-send them. GETs spend nothing and keep net/http's retries.
//
// Redirects are never followed, even with a caller-supplied *http.Client: a
// redirect of the token endpoint would re-send the form, and the answer is
// reported as BadResponse instead.
//
// Every call, retry and body read included, is bounded by Config.Timeout.
package github
