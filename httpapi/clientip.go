package httpapi

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// clientIP returns the caller's address, without an IPv6 zone. The
// X-Forwarded-For and Forwarded headers are believed only when the direct
// peer is a configured trusted proxy, and then only as far as trusted
// proxies vouch for them: see clientFrom.
//
// A proxy appends to one of the two headers and passes the other one through
// untouched, so either may be the client's own invention. When both are
// present and name different clients there is no telling which one the
// proxy wrote, and the peer itself is answered: a spoofer cannot pick a
// rate-limit bucket that way, only share the proxy's.
func (s *server) clientIP(r *http.Request) string {
	peer := peerAddr(r.RemoteAddr)
	if !peer.IsValid() {
		return r.RemoteAddr
	}
	if !s.trusted(peer) {
		return peer.String()
	}
	fw, hasFw := forwardedHops(r.Header.Values("Forwarded"))
	xff, hasXFF := xffHops(r.Header.Values("X-Forwarded-For"))
	switch {
	case hasFw && hasXFF:
		a, b := s.clientFrom(fw, peer), s.clientFrom(xff, peer)
		if a != b {
			return peer.String()
		}
		return a.String()
	case hasFw:
		return s.clientFrom(fw, peer).String()
	case hasXFF:
		return s.clientFrom(xff, peer).String()
	}
	return peer.String()
}

// clientFrom walks hops from the right, where the trusted proxies appended
// what they saw, and returns the first hop that is not a trusted proxy.
// Everything left of that hop is whatever the client sent. An entry that
// cannot be parsed (an obfuscated identifier, "unknown", garbage) ends the
// walk at the last trusted hop, because skipping it would hand the answer
// to the part of the header the client wrote.
func (s *server) clientFrom(hops []netip.Addr, peer netip.Addr) netip.Addr {
	last := peer
	for i := len(hops) - 1; i >= 0; i-- {
		h := hops[i]
		if !h.IsValid() {
			return last
		}
		if !s.trusted(h) {
			return h
		}
		last = h
	}
	return last
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
	return parseAddr(host)
}

// parseAddr parses an address, unmapped and without a zone (a zone would
// let one address take many rate-limit buckets); the zero Addr when it is
// not one.
func parseAddr(s string) netip.Addr {
	a, err := netip.ParseAddr(s)
	if err != nil {
		return netip.Addr{}
	}
	return a.Unmap().WithZone("")
}

// parseHop parses one forwarded node: an address, optionally quoted, in
// brackets (IPv6) and with a port, as proxies write them.
func parseHop(v string) netip.Addr {
	v = strings.Trim(strings.TrimSpace(v), `"`)
	if a := parseAddr(v); a.IsValid() {
		return a
	}
	if host, _, err := net.SplitHostPort(v); err == nil {
		return parseAddr(host)
	}
	if strings.HasPrefix(v, "[") && strings.HasSuffix(v, "]") {
		return parseAddr(v[1 : len(v)-1])
	}
	return netip.Addr{}
}

// xffHops lists X-Forwarded-For's entries in order; unparseable ones are
// kept as the zero Addr. Empty entries (",,") carry nothing and are skipped.
// The bool reports whether the header was present.
func xffHops(lines []string) ([]netip.Addr, bool) {
	var out []netip.Addr
	for _, line := range lines {
		for _, part := range strings.Split(line, ",") {
			if strings.TrimSpace(part) == "" {
				continue
			}
			out = append(out, parseHop(part))
		}
	}
	return out, len(lines) > 0
}

// forwardedHops lists the for= node of each element of Forwarded (RFC 7239)
// in order; an element without a parseable for= is kept as the zero Addr.
// Splitting on commas ignores quoting on purpose: an unterminated quote from
// the client must not swallow what the proxy appended after it.
func forwardedHops(lines []string) ([]netip.Addr, bool) {
	var out []netip.Addr
	for _, line := range lines {
		for _, elem := range strings.Split(line, ",") {
			if strings.TrimSpace(elem) == "" {
				continue
			}
			var hop netip.Addr
			for _, pair := range strings.Split(elem, ";") {
				k, v, ok := strings.Cut(strings.TrimSpace(pair), "=")
				if ok && strings.EqualFold(strings.TrimSpace(k), "for") {
					hop = parseHop(v)
				}
			}
			out = append(out, hop)
		}
	}
	return out, len(lines) > 0
}
