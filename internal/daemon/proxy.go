package daemon

import (
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// behindProxies takes the client's address from X-Forwarded-For when the connection comes from
// a trusted proxy, so that logins are throttled and audited by the client's address, not the
// proxy's. Anyone else's header is ignored: a client cannot name itself someone else.
func behindProxies(next http.Handler, trusted []netip.Prefix) http.Handler {
	if len(trusted) == 0 {
		return next
	}
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if a := forwardedClient(r.RemoteAddr, r.Header.Values("X-Forwarded-For"), trusted); a.IsValid() {
			r.RemoteAddr = net.JoinHostPort(a.String(), "0")
		}
		next.ServeHTTP(w, r)
	})
}

// forwardedClient is the client a chain of trusted proxies names: from the right of
// X-Forwarded-For, the first address that is not a trusted proxy. The zero Addr when the peer
// is not trusted, the chain is malformed, or every hop is a proxy.
func forwardedClient(remote string, xff []string, trusted []netip.Prefix) netip.Addr {
	isTrusted := func(a netip.Addr) bool {
		for _, p := range trusted {
			if p.Contains(a) {
				return true
			}
		}
		return false
	}
	host, _, err := net.SplitHostPort(remote)
	if err != nil {
		return netip.Addr{}
	}
	peer, err := netip.ParseAddr(host)
	if err != nil || !isTrusted(peer.Unmap()) {
		return netip.Addr{}
	}
	var hops []string
	for _, v := range xff {
		hops = append(hops, strings.Split(v, ",")...)
	}
	for i := len(hops) - 1; i >= 0; i-- {
		a, err := netip.ParseAddr(strings.TrimSpace(hops[i]))
		if err != nil {
			return netip.Addr{} // what a proxy wrote is not an address: believe none of it
		}
		if a = a.Unmap(); !isTrusted(a) {
			return a
		}
	}
	return netip.Addr{}
}
