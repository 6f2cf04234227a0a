package main

import (
	"html/template"
	"net/http"
	"regexp"
)

// devCallbackPath is where `flashauth dev` asks GitHub (the emulator) to send
// the browser back after sign-in. A real front end would post the code to
// POST /auth/github itself; the dev page shows the request to make instead.
const devCallbackPath = "/_dev/callback"

var devCallbackPage = template.Must(template.New("cb").Parse(`<!doctype html>
<html><head><meta charset="utf-8"><title>flashauth dev: signed in at GitHub</title></head>
<body style="font-family: sans-serif; max-width: 50em; margin: 2em auto">
{{if .Error}}
<h1>GitHub refused the sign-in</h1><p>{{.Error}}</p>
{{else if .Odd}}
<h1>Not a sign-in callback</h1>
<p>This address carries a code or state GitHub never sends (only letters, digits and <code>-._~</code>,
at most 512 of them), so no command is shown: someone may have sent you a crafted link.</p>
{{else}}
<h1>Approved at the GitHub emulator</h1>
<p>This page stands in for your front end's callback. Finish the sign-in with:</p>
<pre style="background:#eee; padding:1em; white-space: pre-wrap">curl -s -X POST {{.Base}}/auth/github \
  -H 'Content-Type: application/json' \
  -d '{"code": "{{.Code}}", "state": "{{.State}}", "redirect_uri": "{{.Redirect}}"}'</pre>
<p>The answer's <code>authState.token</code> is a flashauth access token for <code>GET /token</code>;
<code>authState.refreshToken</code> works with <code>POST /auth/github/refresh</code>.</p>
{{end}}
</body></html>
`))

// callbackValue is what a code or state the page puts into its shell
// command may hold. html/template escapes for HTML, not for the shell: the
// reader copies the text, and a quote in it would end the command's quoting.
var callbackValue = regexp.MustCompile(`^[A-Za-z0-9._~-]{1,512}$`)

// devCallback serves the dev callback page for the flashauth at base.
func devCallback(base, redirect string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		code, state := q.Get("code"), q.Get("state")
		odd := !callbackValue.MatchString(code) || (state != "" && !callbackValue.MatchString(state))
		h := w.Header()
		h.Set("Content-Type", "text/html; charset=utf-8")
		h.Set("Cache-Control", "no-store")
		h.Set("Content-Security-Policy", "default-src 'none'; style-src 'unsafe-inline'; base-uri 'none'; form-action 'none'; frame-ancestors 'none'")
		h.Set("X-Content-Type-Options", "nosniff")
		h.Set("Referrer-Policy", "no-referrer")
		_ = devCallbackPage.Execute(w, map[string]any{
			"Base": base, "Code": code, "State": state, "Redirect": redirect,
			"Error": q.Get("error_description"), "Odd": odd,
		})
	})
}
