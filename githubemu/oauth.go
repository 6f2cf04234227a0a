package githubemu

import (
	"bytes"
	"encoding/json"
	"encoding/xml"
	"mime"
	"net/http"
	"net/url"
	"strconv"
	"strings"
)

// OAuth error codes of the token endpoint.
const (
	ErrCodeBadRefreshToken      = "bad_refresh_token"
	ErrCodeBadVerificationCode  = "bad_verification_code"
	ErrCodeIncorrectCredentials = "incorrect_client_credentials"
	ErrCodeRedirectURIMismatch  = "redirect_uri_mismatch"
	ErrCodeUnverifiedUserEmail  = "unverified_user_email"
	ErrCodeUnsupportedGrantType = "unsupported_grant_type"
)

const troubleshootingURI = "https://docs.github.com/apps/managing-oauth-apps/troubleshooting-oauth-app-access-token-request-errors/"

// oauthErrors holds GitHub's description and documentation anchor of each
// error. GitHub points bad_refresh_token at the bad-verification-code anchor.
var oauthErrors = map[string][2]string{
	ErrCodeBadRefreshToken:      {"The refresh token passed is incorrect or expired.", "#bad-verification-code"},
	ErrCodeBadVerificationCode:  {"The code passed is incorrect or expired.", "#bad-verification-code"},
	ErrCodeIncorrectCredentials: {"The client_id and/or client_secret passed are incorrect.", "#incorrect-client-credentials"},
	ErrCodeRedirectURIMismatch:  {"The redirect_uri MUST match the registered callback URL for this application.", "#redirect-uri-mismatch2"},
	ErrCodeUnverifiedUserEmail:  {"The user must have a verified primary email.", "#unverified-user-email"},
	ErrCodeUnsupportedGrantType: {"The grant type is not supported.", ""},
}

// format is a response format of the token endpoint.
type format int

const (
	formatForm format = iota
	formatJSON
	formatXML
	formatNotAcceptable
)

// negotiate picks the token endpoint's response format from Accept: the
// first listed type it recognises wins. GitHub answers 406 to the REST
// API's own media types and form-urlencoded to anything else.
func negotiate(accept string) format {
	for part := range strings.SplitSeq(accept, ",") {
		mt, _, err := mime.ParseMediaType(strings.TrimSpace(part))
		if err != nil {
			continue
		}
		switch {
		case mt == "application/json":
			return formatJSON
		case mt == "application/xml" || mt == "text/xml":
			return formatXML
		case strings.HasPrefix(mt, "application/vnd.github"):
			return formatNotAcceptable
		}
	}
	return formatForm
}

// field is one member of an OAuth response; value is a string or an int64.
type field struct {
	name  string
	value any
}

// writeOAuth writes fields in the negotiated format with status 200, in
// the given order (GitHub's), which url.Values and maps would not keep.
func writeOAuth(w http.ResponseWriter, f format, fields []field) {
	var body bytes.Buffer
	var ctype string
	switch f {
	case formatJSON:
		ctype = "application/json; charset=utf-8"
		body.WriteByte('{')
		for i, fl := range fields {
			if i > 0 {
				body.WriteByte(',')
			}
			k, _ := json.Marshal(fl.name)
			v, _ := json.Marshal(fl.value)
			body.Write(k)
			body.WriteByte(':')
			body.Write(v)
		}
		body.WriteByte('}')
	case formatXML:
		ctype = "application/xml; charset=utf-8"
		body.WriteString("<OAuth>")
		for _, fl := range fields {
			body.WriteString("<" + fl.name + ">")
			xml.EscapeText(&body, []byte(stringValue(fl.value)))
			body.WriteString("</" + fl.name + ">")
		}
		body.WriteString("</OAuth>")
	default:
		ctype = "application/x-www-form-urlencoded; charset=utf-8"
		for i, fl := range fields {
			if i > 0 {
				body.WriteByte('&')
			}
			body.WriteString(url.QueryEscape(fl.name) + "=" + url.QueryEscape(stringValue(fl.value)))
		}
	}
	h := w.Header()
	h.Set("Content-Type", ctype)
	h.Set("Content-Length", strconv.Itoa(body.Len()))
	h.Set("Cache-Control", "max-age=0, private, must-revalidate")
	w.WriteHeader(http.StatusOK)
	w.Write(body.Bytes())
}

func stringValue(v any) string {
	switch v := v.(type) {
	case string:
		return v
	case int64:
		return strconv.FormatInt(v, 10)
	}
	return ""
}

// writeOAuthError writes an OAuth error the way GitHub does: HTTP 200.
func writeOAuthError(w http.ResponseWriter, f format, code string) {
	d := oauthErrors[code]
	uri := troubleshootingURI + d[1]
	if d[1] == "" {
		uri = "https://docs.github.com/apps/creating-github-apps/authenticating-with-a-github-app/refreshing-user-access-tokens"
	}
	writeOAuth(w, f, []field{{"error", code}, {"error_description", d[0]}, {"error_uri", uri}})
}

// writeNotAcceptable answers the REST media types on the token endpoint.
func writeNotAcceptable(w http.ResponseWriter) {
	w.Header().Set("Content-Type", "text/plain; charset=utf-8")
	w.WriteHeader(http.StatusNotAcceptable)
	w.Write([]byte("Not Acceptable\n"))
}
