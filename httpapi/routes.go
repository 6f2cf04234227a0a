package httpapi

// routes lists the whole API surface. Unknown paths and methods are answered
// by dispatch in the contract's JSON shape; CORS preflights by the cors
// middleware.
func (s *server) routes() {
	s.mux.Handle("POST /auth/github/refresh", s.handleGitHubRefresh())
	s.mux.Handle("GET /healthz", s.handleHealthz())
	s.mux.Handle("GET /readyz", s.handleReadyz())
	s.mux.Handle("GET /metrics", s.handleMetrics())
}
