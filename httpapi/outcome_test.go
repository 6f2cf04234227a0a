package httpapi

import (
	"net/http"
	"testing"

	"github.com/flashbacktech/flashauth"
	"github.com/flashbacktech/flashauth/audit"
)

// The audit trail names an error by its code (audit.OutcomeOf), the answer
// by its status (statusOf): they must agree on whose fault it is. A code
// added to one and not the other fails here.
func TestAuditOutcomeAgreesWithStatus(t *testing.T) {
	codes := []string{
		flashauth.CodeInvalidRequest, flashauth.CodeInvalidRefreshToken, flashauth.CodeAuthRequired,
		flashauth.CodeTokenOwnerMismatch, flashauth.CodeNotFound, flashauth.CodeMethodNotAllowed,
		flashauth.CodePayloadTooLarge, flashauth.CodeUnsupportedMediaType, flashauth.CodeRateLimited,
		flashauth.CodeStoreUnavailable, flashauth.CodeUpstreamBadResponse, flashauth.CodeUpstreamUnavailable,
		flashauth.CodeUpstreamCredentials, flashauth.CodeInternal, flashauth.CodeInvalidCode,
		flashauth.CodeRedirectURIMismatch, flashauth.CodeInvalidState, flashauth.CodeStateRequired,
		flashauth.CodeEmailNotVerified, flashauth.CodeRefreshTokenReused,
	}
	for _, code := range codes {
		status := statusOf(code)
		want := audit.OutcomeRejected
		switch {
		case code == flashauth.CodeRefreshTokenReused:
			want = audit.OutcomeReuseDetected
		case code == flashauth.CodeRateLimited:
			want = audit.OutcomeRateLimited
		case code == flashauth.CodeUpstreamBadResponse, code == flashauth.CodeUpstreamUnavailable, code == flashauth.CodeUpstreamCredentials:
			want = audit.OutcomeUpstreamError
		case status >= http.StatusInternalServerError:
			want = audit.OutcomeError
		}
		if got := audit.OutcomeOf(flashauth.Errorf(code, "x")); got != want {
			t.Errorf("%s (status %d): audit outcome %q, want %q", code, status, got, want)
		}
	}
}
