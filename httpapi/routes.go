package httpapi

// routes lists the whole API surface. Unknown paths and methods are answered
// by dispatch in the contract's JSON shape; CORS preflights by the cors
// middleware.
func (s *server) routes() {
	s.mux.Handle("POST /auth/github/refresh", s.handleGitHubRefresh())
	s.mux.Handle("GET /auth/github/authorize", s.handleAuthorize())
	s.mux.Handle("POST /auth/github", s.handleGitHubSignIn())
	s.mux.Handle("POST /user/refresh", s.handleSessionRefresh())
	s.mux.Handle("POST /user/logout", s.handleLogout())
	s.mux.Handle("GET /token", s.handleListTokens())
	s.mux.Handle("DELETE /token/{tokenId}", s.handleRevokeToken())
	s.mux.Handle("GET /.well-known/jwks.json", s.handleJWKS())
	s.mux.Handle("GET /.well-known/openid-configuration", s.handleOpenIDConfiguration())
	s.mux.Handle("GET /healthz", s.handleHealthz())
	s.mux.Handle("GET /readyz", s.handleReadyz())
	s.mux.Handle("GET /metrics", s.handleMetrics())
	s.mux.Handle("GET /openapi.json", s.handleOpenAPI())
}
