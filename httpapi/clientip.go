package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP returns the caller's address. X-Forwarded-For and Forwarded are
// believed only when the direct peer is a configured trusted proxy; then the
// right-most address that is not itself a trusted proxy is the client.
func (s *server) clientIP(r *http.Request) string {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() {
		return r.RemoteAddr
	}
	if !s.trusted(peer) {
		return peer.String()
	}
	hops := forwardedFor(r.Header)
	for i := len(hops) - 1; i >= 0; i-- {
		if !s.trusted(hops[i]) {
			return hops[i].String()
		}
	}
	return peer.String()
}

func (s *server) trusted(a netip.Addr) bool {
	a = a.Unmap()
	for _, p := range s.trustedProxies {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peerAddr(remote string) netip.Addr {
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		host = remote
	}
	a, err := netip.ParseAddr(host)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap()
}

// forwardedFor lists the addresses of X-Forwarded-For and Forwarded's for=
// in order, dropping anything unparseable (obfuscated identifiers, unknown).
// Forwarded wins when both are present.
func forwardedFor(h http.Header) []netip.Addr {
	var out []netip.Addr
	if fw := h.Values("Forwarded"); len(fw) > 0 {
		for _, line := range fw {
			for _, elem := range strings.Split(line, ",") {
				for _, pair := range strings.Split(elem, ";") {
					k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
					if !ok || !strings.EqualFold(k, "for") {
						continue
					}
					v = strings.Trim(v, `"`)
					if strings.HasPrefix(v, "[") {
						if i := strings.Index(v, "]"); i > 0 {
							v = v[1:i]
						}
					} else if host, _, err := net.SplitHostPort(v); err == nil {
						v = host
					}
					if a, err := netip.ParseAddr(v); err == nil {
						out = append(out, a.Unmap())
					}
				}
			}
		}
		return out
	}
	for _, line := range h.Values("X-Forwarded-For") {
		for _, part := range strings.Split(line, ",") {
			if a, err := netip.ParseAddr(strings.TrimSpace(part)); err == nil {
				out = append(out, a.Unmap())
			}
		}
	}
	return out
}
