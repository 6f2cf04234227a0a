package signin

import (
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/session"
)

// Bounds of request fields.
const (
	maxCodeLen  = 4096
	maxStateLen = 512
)

// outcome is the ledger payload of a sign-in: the answer, or the code of a
// definitive rejection. Both replay within the window.
type outcome struct {
	AuthState *AuthState `json:"authState,omitempty"`
	Code      string     `json:"code,omitempty"`
	// Binding ties the outcome to the state and redirect_uri of the request
	// that produced it: a replay is only for a retry of that same request.
	Binding string `json:"binding,omitempty"`
	// UserID travels beside the answer, which does not show it.
	UserID string `json:"userId,omitempty"`
	// lineage is committed beside the payload, not in it.
	lineage []flashauth.Lineage
}

// Err implements ledger.Verdict.
func (o outcome) Err() error {
	if o.Code != "" {
		return rejection(o.Code)
	}
	if o.AuthState == nil {
		return errors.New("signin: payload without auth state")
	}
	return nil
}

// binding is a digest of what, besides the code, identifies a sign-in request.
func binding(req Request) string {
	return hex.EncodeToString(seal.Hash("signin binding v1\x00" + req.State + "\x00" + req.RedirectURI))
}

// SignIn exchanges req.Code with GitHub and opens a session for its user.
// The exchange happens at most once per code across all replicas: a retry
// with the same code within the replay window gets the identical answer,
// including a definitive rejection. Transient trouble is not remembered, so
// a retry runs again.
func (s *Service) SignIn(ctx context.Context, req Request) (AuthState, error) {
	if !printable(req.Code, maxCodeLen) {
		return AuthState{}, flashauth.Errorf(flashauth.CodeInvalidRequest, "code must be a non-empty string of printable characters.")
	}
	if req.State != "" && !printable(req.State, maxStateLen) {
		return AuthState{}, rejection(flashauth.CodeInvalidState)
	}
	if req.RedirectURI != "" && !validRedirectURI(req.RedirectURI) {
		return AuthState{}, flashauth.Errorf(flashauth.CodeInvalidRequest, "redirect_uri must be an absolute URL.")
	}
	if req.RedirectURI != "" && !s.redirectAllowed(req.RedirectURI) {
		// Refused before the ledger: the code is not spent.
		return AuthState{}, rejection(flashauth.CodeRedirectURIMismatch)
	}
	if len(req.DeviceInfo) > 0 && !json.Valid(req.DeviceInfo) {
		return AuthState{}, flashauth.Errorf(flashauth.CodeInvalidRequest, "deviceInfo must be JSON.")
	}
	b := binding(req)
	out, res, err := ledger.Run(ctx, s.ledger, ledger.Call{Kind: flashauth.LedgerGitHubCode, Secret: req.Code, Window: s.cfg.ReplayWindow},
		func(ctx context.Context) (outcome, []flashauth.Lineage, error) {
			o, err := s.exchange(ctx, req)
			o.Binding = b
			return o, o.lineage, err
		})
	if res.Lost != nil {
		// The code is spent and a session open; answering is the only way
		// they are not lost, though a retry will not replay this.
		s.log.Error("sign-in outcome not committed", "err", res.Lost)
	}
	if res.Payload != nil && out.Binding != b {
		// The same code with another state or redirect_uri is not a retry
		// of the request that spent it. This holds for replays and for
		// callers that joined the exchange in flight (the ledger shares one
		// attempt between them): neither may take another request's answer.
		return AuthState{}, rejection(flashauth.CodeInvalidState)
	}
	if err != nil {
		return AuthState{}, err
	}
	if res.Replayed {
		// A replay hands out the session opened the first time; once that
		// session is over (logout, revocation) the code is simply spent.
		sess, err := s.store.GetSession(ctx, out.AuthState.TokenID)
		if err != nil && !errors.Is(err, flashauth.ErrNotFound) {
			return AuthState{}, fmt.Errorf("signin: replayed session: %w", err)
		}
		if err != nil || !sess.Active(s.cfg.Clock.Now()) {
			return AuthState{}, rejection(flashauth.CodeInvalidCode)
		}
	}
	st := *out.AuthState
	st.UserID = out.UserID
	return st, nil
}

// exchange is the ledger operation of SignIn. It returns definitive
// rejections as outcomes and everything that may pass as errors.
func (s *Service) exchange(ctx context.Context, req Request) (outcome, error) {
	ex := flashauth.CodeExchange{Code: req.Code, RedirectURI: req.RedirectURI}
	if req.State != "" {
		st, err := s.store.TakeOAuthState(ctx, seal.Hash(req.State), s.cfg.Clock.Now())
		if errors.Is(err, flashauth.ErrNotFound) {
			return rejected(flashauth.CodeInvalidState)
		}
		if err != nil {
			return outcome{}, fmt.Errorf("signin: take state: %w", err)
		}
		verifier, err := seal.Open([]byte(req.State), stateSealInfo, st.Verifier, st.Hash)
		if err != nil {
			return outcome{}, fmt.Errorf("signin: open verifier: %w", err)
		}
		switch {
		case ex.RedirectURI == "":
			ex.RedirectURI = st.RedirectURI
		case st.RedirectURI != "" && st.RedirectURI != ex.RedirectURI:
			// GitHub would refuse it; saying so here keeps the code unspent.
			return rejected(flashauth.CodeRedirectURIMismatch)
		}
		ex.CodeVerifier = string(verifier)
		out, err := s.complete(ctx, req, ex)
		if err != nil {
			// An error is not committed, so the client may retry: give the
			// state back, or the retry would be refused as a reused state.
			if perr := s.store.PutOAuthState(ctx, st); perr != nil {
				s.log.Warn("restoring oauth state failed", "err", perr)
			}
		}
		return out, err
	}
	return s.complete(ctx, req, ex)
}

// complete exchanges the code, reads the GitHub user, stores our user and
// opens the session.
func (s *Service) complete(ctx context.Context, req Request, ex flashauth.CodeExchange) (outcome, error) {
	tok, err := s.gh.ExchangeCode(ctx, ex)
	if err != nil {
		return upstream(err)
	}
	issuedAt := s.cfg.Clock.Now() // GitHub's expiries count from here
	// From here on the code is spent: a transient failure is retried now,
	// because a retry of the whole sign-in could only fail.
	ghUser, err := retryGet(ctx, s.cfg.RetryBackoff, func() (flashauth.GitHubUser, error) { return s.gh.User(ctx, tok.AccessToken) })
	if err != nil {
		return upstream(err)
	}
	if ghUser.ID <= 0 || ghUser.Login == "" {
		// Users are keyed by the GitHub id: a missing one would fold
		// accounts together.
		return outcome{}, &flashauth.Error{Code: flashauth.CodeUpstreamBadResponse,
			Message: "GitHub answered unexpectedly.", Err: errors.New("signin: GitHub user without id or login")}
	}
	emails, err := retryGet(ctx, s.cfg.RetryBackoff, func() ([]flashauth.GitHubEmail, error) { return s.gh.Emails(ctx, tok.AccessToken) })
	if err != nil {
		return upstream(err)
	}
	email := primaryVerified(emails)
	if email == "" {
		return rejected(flashauth.CodeEmailNotVerified)
	}
	user, err := s.upsertUser(ctx, ghUser, email)
	if err != nil {
		return outcome{}, err
	}
	issued, err := s.sessions.Open(ctx, user, session.Meta{
		DeviceInfo: req.DeviceInfo,
		IPAddress:  req.IPAddress,
		UserAgent:  req.UserAgent,
		Provider:   Provider,
	})
	if err != nil {
		return outcome{}, err
	}
	state := &AuthState{
		User:                User{Email: user.Email, Name: user.Name, ImageURL: user.ImageURL},
		Token:               issued.AccessToken,
		AccessToken:         tok.AccessToken,
		RefreshToken:        tok.RefreshToken,
		ExpiresAt:           expiry(issuedAt, tok.ExpiresIn),
		Provider:            Provider,
		SessionRefreshToken: issued.RefreshToken,
		TokenID:             issued.SessionID,
		SessionExpiresAt:    flashauth.UnixMilli(issued.SessionExpiresAt),
	}
	out := outcome{AuthState: state, UserID: user.ID}
	if tok.RefreshToken != "" {
		l := flashauth.Lineage{TokenHash: seal.Hash(tok.RefreshToken), UserID: user.ID, CreatedAt: issuedAt}
		if tok.RefreshTokenExpiresIn > 0 {
			l.ExpiresAt = issuedAt.Add(tok.RefreshTokenExpiresIn)
		}
		out.lineage = []flashauth.Lineage{l}
	}
	return out, nil
}

// upsertUser creates or updates the user of the GitHub account, keyed by its
// numeric id, and on first sign-in its organization.
func (s *Service) upsertUser(ctx context.Context, gu flashauth.GitHubUser, email string) (flashauth.User, error) {
	userID, err := newID()
	if err != nil {
		return flashauth.User{}, err
	}
	orgID, err := newID()
	if err != nil {
		return flashauth.User{}, err
	}
	now := s.cfg.Clock.Now()
	name := strings.TrimSpace(gu.Name)
	if name == "" {
		name = gu.Login
	}
	orgName := strings.TrimSpace(strings.TrimPrefix(strings.TrimSpace(gu.Company), "@"))
	if orgName == "" {
		orgName = gu.Login
	}
	u, created, err := s.store.UpsertGitHubUser(ctx, flashauth.User{
		ID:        userID,
		GitHubID:  gu.ID,
		Login:     gu.Login,
		Email:     email,
		Name:      name,
		ImageURL:  gu.AvatarURL,
		CreatedAt: now,
		UpdatedAt: now,
	}, flashauth.Organization{ID: orgID, Name: orgName, CreatedAt: now})
	if err != nil {
		return flashauth.User{}, fmt.Errorf("signin: upsert user: %w", err)
	}
	s.log.Info("github sign-in", "user_id", u.ID, "github_id", gu.ID, "created", created)
	return u, nil
}

// primaryVerified returns the primary email if it is verified, else "".
func primaryVerified(emails []flashauth.GitHubEmail) string {
	for _, e := range emails {
		if e.Primary && e.Verified && e.Email != "" {
			return e.Email
		}
	}
	return ""
}

func expiry(now time.Time, in time.Duration) int64 {
	if in <= 0 {
		return 0
	}
	return flashauth.UnixMilli(now.Add(in))
}

// getRetries bounds the retries of GitHub's REST reads after the code was
// spent.
const getRetries = 2

// retryGet calls get, retrying transient upstream failures a few times,
// first after backoff. GETs are safe to repeat.
func retryGet[T any](ctx context.Context, backoff time.Duration, get func() (T, error)) (T, error) {
	wait, longest := backoff, 10*backoff
	for attempt := 0; ; attempt++ {
		v, err := get()
		var ue *flashauth.UpstreamError
		if err == nil || attempt == getRetries || !errors.As(err, &ue) || ue.Kind != flashauth.UpstreamTransient {
			return v, err
		}
		t := time.NewTimer(min(max(wait, ue.RetryAfter), longest))
		select {
		case <-ctx.Done():
			t.Stop()
			return v, err
		case <-t.C:
		}
		wait *= 2
	}
}
