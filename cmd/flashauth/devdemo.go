package main

import (
	"bytes"
	"embed"
	"html/template"
	"net/http"
	"strings"
)

// The demo page `flashauth dev` serves at /: plain HTML, CSS and JS, no
// build step. serve never wires it; its / stays the API's 404.
//
//go:embed demo/index.html demo/demo.js demo/demo.css
var demoFiles embed.FS

// demoAssetPrefix is where the page's script and style sheet are served.
const demoAssetPrefix = "/_dev/demo/"

// demoCSP lets the page run its own same-origin script and style sheet and
// call the API on its own origin; nothing else, no inline code.
const demoCSP = "default-src 'none'; script-src 'self'; style-src 'self'; connect-src 'self'; img-src 'self'; " +
	"base-uri 'none'; form-action 'none'; frame-ancestors 'none'"

var demoPage = template.Must(template.ParseFS(demoFiles, "demo/index.html"))

// withDemo puts the demo page in front of the API handler. redirectURI is
// the page's own address, registered at the emulator as a callback.
func withDemo(redirectURI string) func(http.Handler) http.Handler {
	var page bytes.Buffer
	if err := demoPage.Execute(&page, map[string]string{"RedirectURI": redirectURI}); err != nil {
		panic(err) // the template is embedded: a failure is a bug caught by any test
	}
	assets := map[string]string{"demo.js": "text/javascript; charset=utf-8", "demo.css": "text/css; charset=utf-8"}
	return func(api http.Handler) http.Handler {
		return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			if r.Method != http.MethodGet && r.Method != http.MethodHead {
				api.ServeHTTP(w, r)
				return
			}
			body, ctype := page.Bytes(), "text/html; charset=utf-8"
			if name, ok := strings.CutPrefix(r.URL.Path, demoAssetPrefix); ok && assets[name] != "" {
				b, err := demoFiles.ReadFile("demo/" + name)
				if err != nil {
					http.Error(w, "missing asset", http.StatusInternalServerError)
					return
				}
				body, ctype = b, assets[name]
			} else if r.URL.Path != "/" {
				api.ServeHTTP(w, r)
				return
			}
			h := w.Header()
			h.Set("Content-Type", ctype)
			h.Set("Content-Security-Policy", demoCSP)
			h.Set("X-Content-Type-Options", "nosniff")
			h.Set("X-Frame-Options", "DENY")
			h.Set("Referrer-Policy", "no-referrer")
			h.Set("Cache-Control", "no-store")
			if r.Method == http.MethodHead {
				return
			}
			_, _ = w.Write(body)
		})
	}
}
