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
	"github.com/flashbacktech/flashauth/audit"
	"github.com/flashbacktech/flashauth/ledger"
	"github.com/flashbacktech/flashauth/seal"
	"github.com/flashbacktech/flashauth/session"
)

// Bounds of request fields.
const (
	maxCodeLen  = 4096
	maxStateLen = 512
)

// verdict is the ledger payload of a sign-in: the answer, or the code of a
// definitive rejection. Both replay within the window.
type verdict struct {
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
func (o verdict) Err() error {
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
//
// Everything that can be checked without GitHub is checked before the code's
// ledger entry is claimed: a request with a wrong, unknown, expired or used
// state, or one bound to another redirect_uri, writes nothing and calls
// nobody, so whoever sees a code cannot block or spend it by posting it with
// a made-up state.
//
// Every call is audited (signin).
func (s *Service) SignIn(ctx context.Context, req Request) (AuthState, error) {
	st, err := s.signIn(ctx, req)
	s.cfg.Auditor.Record(ctx, flashauth.AuditEvent{
		Type: audit.TypeSignIn, Outcome: audit.Outcome(err, st.Replayed, st.Joined),
		UserID: st.UserID, SessionID: st.TokenID,
	})
	return st, err
}

func (s *Service) signIn(ctx context.Context, req Request) (AuthState, error) {
	if !flashauth.ValidToken(req.Code, maxCodeLen) {
		return AuthState{}, flashauth.Errorf(flashauth.CodeInvalidRequest, "code must be a non-empty string of printable characters.")
	}
	if req.State != "" && !flashauth.ValidToken(req.State, maxStateLen) {
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
	if req.State == "" && s.cfg.RequirePKCE {
		return AuthState{}, flashauth.Errorf(flashauth.CodeStateRequired, "%s", stateRequiredMessage)
	}
	b := binding(req)
	var checked *login
	if req.State != "" {
		l, err := s.checkState(ctx, req)
		if errors.Is(err, flashauth.ErrNotFound) {
			// No live state: either the state is wrong, or this retries a
			// sign-in that completed (or is completing) and used it up. Only
			// a committed outcome may answer, and its binding decides;
			// nothing is claimed, so a wrong state leaves the code to its
			// owner.
			res, ok, rerr := s.ledger.Replay(ctx, flashauth.LedgerGitHubCode, req.Code)
			if rerr != nil {
				return AuthState{}, fmt.Errorf("signin: replay: %w", rerr)
			}
			if !ok {
				return AuthState{}, rejection(flashauth.CodeInvalidState)
			}
			var out verdict
			if err := json.Unmarshal(res.Payload, &out); err != nil {
				return AuthState{}, fmt.Errorf("signin: payload: %w", err)
			}
			return s.answer(ctx, req, out, res, out.Err(), b)
		}
		if err != nil {
			return AuthState{}, err
		}
		checked = l
	}
	out, res, err := ledger.Run(ctx, s.ledger, ledger.Call{Kind: flashauth.LedgerGitHubCode, Secret: req.Code, Window: s.cfg.ReplayWindow},
		func(ctx context.Context) (verdict, ledger.Writes, error) {
			o, err := s.exchange(ctx, req, checked)
			o.Binding = b
			return o, ledger.Writes{Lineage: o.lineage}, err
		})
	if res.Lost != nil {
		// The code is spent and a session open; answering is the only way
		// they are not lost, though a retry will not replay this.
		s.log.Error("sign-in outcome not committed", "err", res.Lost)
	}
	return s.answer(ctx, req, out, res, err, b)
}

// stateRequiredMessage is the message of STATE_REQUIRED.
const stateRequiredMessage = "The state is missing: sign-ins are started with PKCE at GET /auth/github/authorize, " +
	"and the state that call returned must be sent with the code."

// answer turns a verdict of the ledger into the caller's answer. err is the
// verdict's own (a committed rejection) or the ledger's (nothing definitive
// happened, and then res carries no payload); b is the binding of the
// caller's request.
func (s *Service) answer(ctx context.Context, req Request, out verdict, res ledger.Result, err error, b string) (AuthState, error) {
	if res.Payload != nil && out.Binding != b {
		// The same code with another state or redirect_uri is not a retry
		// of the request that spent it. This holds for replays and for
		// callers that joined the exchange in flight (the ledger shares one
		// attempt between them): neither may take another request's answer.
		return AuthState{}, rejection(flashauth.CodeInvalidState)
	}
	if err != nil {
		if out.Code == flashauth.CodeInvalidCode && req.State == "" {
			// flashauth cannot tell a dead code from a PKCE-bound one sent
			// without its state: GitHub says the same of both.
			e := rejection(out.Code)
			e.Message += " If the sign-in was started at GET /auth/github/authorize without pkce=false, send its state with the code."
			return AuthState{}, e
		}
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
	st.Replayed, st.Joined = res.Replayed, res.Joined
	return st, nil
}

// login is a live state checked for a sign-in request.
type login struct {
	hash      []byte
	verifier  string // "" for a login started without PKCE
	redirect  string // the redirect_uri the login was started with
	checkedAt time.Time
}

// checkState reads the state of req without taking it: ErrNotFound when it
// is unknown, expired or used up, REDIRECT_URI_MISMATCH when the login was
// started for another redirect_uri.
func (s *Service) checkState(ctx context.Context, req Request) (*login, error) {
	now := s.cfg.Clock.Now()
	hash := seal.Hash(req.State)
	st, err := s.store.GetOAuthState(ctx, hash, now)
	if errors.Is(err, flashauth.ErrNotFound) {
		return nil, err
	}
	if err != nil {
		return nil, fmt.Errorf("signin: get state: %w", err)
	}
	verifier, err := seal.Open([]byte(req.State), stateSealInfo, st.Verifier, st.Hash)
	if err != nil {
		return nil, fmt.Errorf("signin: open verifier: %w", err)
	}
	if req.RedirectURI != "" && st.RedirectURI != "" && st.RedirectURI != req.RedirectURI {
		// GitHub would refuse it and spend the code; refusing here keeps it.
		return nil, rejection(flashauth.CodeRedirectURIMismatch)
	}
	return &login{hash: hash, verifier: string(verifier), redirect: st.RedirectURI, checkedAt: now}, nil
}

// exchange is the ledger operation of SignIn. It returns definitive
// rejections as outcomes and everything that may pass as errors. l is the
// checked state of the request, nil when it came without one.
func (s *Service) exchange(ctx context.Context, req Request, l *login) (verdict, error) {
	ex := flashauth.CodeExchange{Code: req.Code, RedirectURI: req.RedirectURI}
	if l != nil {
		if ex.RedirectURI == "" {
			ex.RedirectURI = l.redirect
		}
		ex.CodeVerifier = l.verifier
	}
	return s.complete(ctx, req, ex, l)
}

// useState takes the state of a login whose code GitHub just accepted: the
// login is complete, and its state may not complete another. It is taken
// only now, so a request that fails before (GitHub unreachable) leaves it for
// the client's retry. The take asks whether the state was live when the
// request checked it, so a login is not lost to its expiry falling during
// the exchange. ErrNotFound: another code of the same login completed first
// (only the state's holder can race with itself; one login, one sign-in).
func (s *Service) useState(ctx context.Context, l *login) error {
	_, err := s.store.TakeOAuthState(ctx, l.hash, l.checkedAt)
	if err != nil && !errors.Is(err, flashauth.ErrNotFound) {
		return fmt.Errorf("signin: take state: %w", err)
	}
	return err
}

// complete exchanges the code, uses up the state of its login, reads the
// GitHub user, stores our user and opens the session.
func (s *Service) complete(ctx context.Context, req Request, ex flashauth.CodeExchange, l *login) (verdict, error) {
	tok, err := s.gh.ExchangeCode(ctx, ex)
	if err != nil {
		return upstream(err)
	}
	if l != nil {
		err := s.useState(ctx, l)
		if errors.Is(err, flashauth.ErrNotFound) {
			return rejected(flashauth.CodeInvalidState)
		}
		if err != nil {
			return verdict{}, err
		}
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
		return verdict{}, &flashauth.Error{Code: flashauth.CodeUpstreamBadResponse,
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
		return verdict{}, err
	}
	issued, err := s.sessions.Open(ctx, user, session.Meta{
		DeviceInfo: req.DeviceInfo,
		IPAddress:  req.IPAddress,
		UserAgent:  req.UserAgent,
		Provider:   Provider,
	})
	if err != nil {
		return verdict{}, err
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
	out := verdict{AuthState: state, UserID: user.ID}
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
	userID, err := flashauth.NewID()
	if err != nil {
		return flashauth.User{}, err
	}
	orgID, err := flashauth.NewID()
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
