package httpapi

import (
	"net/http"
	"net/netip"
	"testing"
)

func newIPServer() *server {
	return &server{trustedProxies: []netip.Prefix{
		netip.MustParsePrefix("127.0.0.0/8"),
		netip.MustParsePrefix("10.0.0.0/8"),
		netip.MustParsePrefix("::1/128"),
	}}
}

func ipRequest(remote, xff, fwd string) *http.Request {
	r := &http.Request{RemoteAddr: remote, Header: http.Header{}}
	if xff != "" {
		r.Header.Set("X-Forwarded-For", xff)
	}
	if fwd != "" {
		r.Header.Set("Forwarded", fwd)
	}
	return r
}

func TestClientIP(t *testing.T) {
	s := newIPServer()
	rows := []struct {
		name, remote, xff, fwd, want string
	}{
		{"untrusted peer, headers ignored", "203.0.113.5:4000", "198.51.100.1", "for=198.51.100.2", "203.0.113.5"},
		{"trusted peer, no header", "127.0.0.1:4000", "", "", "127.0.0.1"},
		{"xff single", "127.0.0.1:4000", "198.51.100.1", "", "198.51.100.1"},
		{"xff spoofed left part", "127.0.0.1:4000", "1.1.1.1, 198.51.100.1", "", "198.51.100.1"},
		{"xff through two trusted proxies", "127.0.0.1:4000", "1.1.1.1, 198.51.100.1, 10.0.0.7", "", "198.51.100.1"},
		{"xff only trusted hops", "127.0.0.1:4000", "10.0.0.7, 10.0.0.8", "", "10.0.0.7"},
		{"xff with port and brackets", "127.0.0.1:4000", "[2001:db8::1]:443", "", "2001:db8::1"},
		{"xff v4 with port", "127.0.0.1:4000", "198.51.100.1:5678", "", "198.51.100.1"},
		{"xff garbage hop stops the walk", "127.0.0.1:4000", "1.1.1.1, garbage, 10.0.0.7", "", "10.0.0.7"},
		{"xff empty entries skipped", "127.0.0.1:4000", "198.51.100.1,, ", "", "198.51.100.1"},
		{"xff zone dropped", "127.0.0.1:4000", "fe80::1%eth0", "", "fe80::1"},
		{"xff mapped v4", "127.0.0.1:4000", "::ffff:198.51.100.1", "", "198.51.100.1"},
		{"forwarded", "127.0.0.1:4000", "", `for=198.51.100.1;proto=https`, "198.51.100.1"},
		{"forwarded v6 quoted", "127.0.0.1:4000", "", `for="[2001:db8::2]:4711"`, "2001:db8::2"},
		{"forwarded spoofed left", "127.0.0.1:4000", "", `for=1.1.1.1, for=198.51.100.1`, "198.51.100.1"},
		{"forwarded obfuscated hop stops", "127.0.0.1:4000", "", `for=1.1.1.1, for=_hidden`, "127.0.0.1"},
		{"forwarded unknown", "127.0.0.1:4000", "", `for=unknown`, "127.0.0.1"},
		{"forwarded unterminated quote", "127.0.0.1:4000", "", `for="1.1.1.1, for=198.51.100.1`, "198.51.100.1"},
		{"both agree", "127.0.0.1:4000", "1.1.1.1, 198.51.100.1", "for=198.51.100.1", "198.51.100.1"},
		{"both disagree: the peer", "127.0.0.1:4000", "198.51.100.1", "for=1.1.1.1", "127.0.0.1"},
		{"v6 peer trusted", "[::1]:4000", "198.51.100.1", "", "198.51.100.1"},
		{"peer without port", "127.0.0.1", "198.51.100.1", "", "198.51.100.1"},
		{"unparseable peer", "pipe", "198.51.100.1", "", "pipe"},
	}
	for _, tc := range rows {
		t.Run(tc.name, func(t *testing.T) {
			if got := s.clientIP(ipRequest(tc.remote, tc.xff, tc.fwd)); got != tc.want {
				t.Errorf("clientIP = %q, want %q", got, tc.want)
			}
		})
	}
}

func TestRateKeyGroupsIPv6By64(t *testing.T) {
	rows := map[string]string{
		"198.51.100.1":          "198.51.100.1",
		"2001:db8:1:2::1":       "2001:db8:1:2::/64",
		"2001:db8:1:2:ffff::9":  "2001:db8:1:2::/64",
		"2001:db8:1:3::1":       "2001:db8:1:3::/64",
		"not an address":        "not an address",
		"fe80::1%eth0":          "fe80::/64",
		"2001:db8:1:2::1%zone1": "2001:db8:1:2::/64",
	}
	for in, want := range rows {
		if got := rateKey(in); got != want {
			t.Errorf("rateKey(%q) = %q, want %q", in, got, want)
		}
	}
}

// FuzzClientIP feeds arbitrary peers and forwarding headers to clientIP. It
// must never panic, must never believe headers from an untrusted peer, must
// answer an address without a zone, and must let the last trusted proxy's
// word win: whatever a client put in the headers, the entry a trusted proxy
// appends after it decides.
func FuzzClientIP(f *testing.F) {
	seeds := [][3]string{
		{"127.0.0.1:1", "198.51.100.1", ""},
		{"127.0.0.1:1", "1.1.1.1, 198.51.100.1, 10.0.0.1", ""},
		{"203.0.113.9:1", "198.51.100.1", "for=1.1.1.1"},
		{"[::1]:1", "", `for="[2001:db8::1]:80";proto=https, for=_x`},
		{"127.0.0.1:1", "garbage,,[::1]", `for="1.1.1.1`},
		{"10.1.2.3", "fe80::1%eth0", "FOR=198.51.100.1;by=10.0.0.1"},
		{"not-an-ip", "", ""},
		{"127.0.0.1:1", "\"[2001:db8::1]\"", `for=;for="]"`},
	}
	for _, s := range seeds {
		f.Add(s[0], s[1], s[2])
	}
	const appended = "198.51.100.77"
	s := newIPServer()
	f.Fuzz(func(t *testing.T, remote, xff, fwd string) {
		// A trusted proxy appends what it saw; the client cannot outvote it.
		const trustedPeer = "127.0.0.1:9"
		if got := s.clientIP(ipRequest(trustedPeer, xff+", "+appended, "")); got != appended {
			t.Fatalf("X-Forwarded-For %q + proxy's %s gave %s", xff, appended, got)
		}
		if got := s.clientIP(ipRequest(trustedPeer, "", fwd+", for="+appended)); got != appended {
			t.Fatalf("Forwarded %q + proxy's %s gave %s", fwd, appended, got)
		}
		if got := s.clientIP(ipRequest(trustedPeer, xff+", "+appended, fwd+", for="+appended)); got != appended {
			t.Fatalf("both headers + proxy's %s gave %s", appended, got)
		}

		got := s.clientIP(ipRequest(remote, xff, fwd))
		peer := peerAddr(remote)
		if !peer.IsValid() {
			if got != remote {
				t.Fatalf("unparseable peer %q answered %q", remote, got)
			}
			return
		}
		a, err := netip.ParseAddr(got)
		if err != nil || a.Zone() != "" || a.Is4In6() {
			t.Fatalf("clientIP = %q: not a plain address", got)
		}
		if !s.trusted(peer) {
			if a != peer {
				t.Fatalf("untrusted peer %s, headers %q / %q believed: %s", peer, xff, fwd, got)
			}
		}
	})
}
