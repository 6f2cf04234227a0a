package main

import (
	"html/template"
	"net/http"
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

// devCallback serves the dev callback page for the flashauth at base.
func devCallback(base, redirect string) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		q := r.URL.Query()
		w.Header().Set("Content-Type", "text/html; charset=utf-8")
		w.Header().Set("Cache-Control", "no-store")
		_ = devCallbackPage.Execute(w, map[string]string{
			"Base": base, "Code": q.Get("code"), "State": q.Get("state"), "Redirect": redirect,
			"Error": q.Get("error_description"),
		})
	})
}
