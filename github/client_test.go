package github

import (
	"net/http"
	"strings"
	"testing"
	"time"

	"github.com/flashbacktech/flashauth"
)

func TestNewDefaults(t *testing.T) {
	c, err := New(Config{ClientID: testClientID, ClientSecret: testClientSecret})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	for name, ok := range map[string]bool{
		"tokenURL":  c.tokenURL == "https://github.com/login/oauth/access_token",
		"userURL":   c.userURL == "https://api.github.com/user",
		"emailsURL": c.emailsURL == "https://api.github.com/user/emails",
		"timeout":   c.timeout == DefaultTimeout,
		"userAgent": c.userAgent == "flashauth",
		"clock":     c.clock == flashauth.SystemClock{},
		"client":    c.hc != http.DefaultClient && c.hc.Transport != nil && c.hc.Transport != http.DefaultTransport,
		"buffers":   c.hc.Transport.(*http.Transport).ReadBufferSize == 2<<10 && c.hc.Transport.(*http.Transport).WriteBufferSize == 1<<10,
		"pool":      c.hc.Transport.(*http.Transport).MaxConnsPerHost == 1024 && c.hc.Transport.(*http.Transport).MaxIdleConnsPerHost == 1024,
	} {
		if !ok {
			t.Errorf("default %s is wrong", name)
		}
	}
}

func TestNewEnterpriseURLs(t *testing.T) {
	c, err := New(Config{ClientID: testClientID, ClientSecret: testClientSecret,
		BaseURL: "https://ghe.example.com/", APIURL: "https://ghe.example.com/api/v3/"})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if c.tokenURL != "https://ghe.example.com/login/oauth/access_token" || c.userURL != "https://ghe.example.com/api/v3/user" {
		t.Errorf("URLs = %q, %q", c.tokenURL, c.userURL)
	}
}

func TestNewCopiesTheCallersHTTPClient(t *testing.T) {
	mine := &http.Client{Timeout: time.Minute}
	c, err := New(Config{ClientID: testClientID, ClientSecret: testClientSecret, HTTPClient: mine})
	if err != nil {
		t.Fatalf("New: %v", err)
	}
	if mine.CheckRedirect != nil {
		t.Error("New changed the caller's *http.Client")
	}
	if c.hc.CheckRedirect == nil || c.hc.Timeout != time.Minute {
		t.Error("the client's copy must refuse redirects and keep the caller's settings")
	}
}

func TestNewRejectsBadConfig(t *testing.T) {
	good := Config{ClientID: testClientID, ClientSecret: testClientSecret}
	tests := []struct {
		name   string
		mutate func(*Config)
	}{
		{"no client id", func(c *Config) { c.ClientID = "" }},
		{"no client secret", func(c *Config) { c.ClientSecret = "" }},
		{"relative base URL", func(c *Config) { c.BaseURL = "github.com" }},
		{"ftp base URL", func(c *Config) { c.BaseURL = "ftp://github.com" }},
		{"base URL with credentials", func(c *Config) { c.BaseURL = "https://user:" + testClientSecret + "@github.com" }},
		{"base URL with query", func(c *Config) { c.BaseURL = "https://github.com/?a=b" }},
		{"API URL with fragment", func(c *Config) { c.APIURL = "https://api.github.com/#x" }},
		{"API URL without host", func(c *Config) { c.APIURL = "https:///api" }},
		{"unparseable API URL", func(c *Config) { c.APIURL = "http://[::1" }},
		{"negative timeout", func(c *Config) { c.Timeout = -time.Second }},
		{"user agent with a newline", func(c *Config) { c.UserAgent = "flashauth\r\nX: y" }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			cfg := good
			tt.mutate(&cfg)
			c, err := New(cfg)
			if err == nil {
				t.Fatalf("New = %v, nil; want an error", c)
			}
			if strings.Contains(err.Error(), testClientSecret) {
				t.Errorf("error %q quotes the secret", err)
			}
		})
	}
}
