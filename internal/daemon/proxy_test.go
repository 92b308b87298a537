package daemon

import (
	"net/netip"
	"testing"
)

// TestForwardedClient: only a trusted proxy names the client, and only as the first untrusted
// hop from the right; a client's own X-Forwarded-For names nobody.
func TestForwardedClient(t *testing.T) {
	trusted := []netip.Prefix{netip.MustParsePrefix("10.0.0.0/8"), netip.MustParsePrefix("::1/128")}
	for _, tc := range []struct {
		remote string
		xff    []string
		want   string
	}{
		{"10.1.2.3:443", []string{"203.0.113.7"}, "203.0.113.7"},
		{"10.1.2.3:443", []string{"198.51.100.1, 203.0.113.7"}, "203.0.113.7"},             // the client forged the first hop
		{"10.1.2.3:443", []string{"203.0.113.7, 10.9.9.9"}, "203.0.113.7"},                 // two proxies of ours
		{"10.1.2.3:443", []string{"198.51.100.1", "203.0.113.7, 10.9.9.9"}, "203.0.113.7"}, // several headers
		{"[::1]:443", []string{"2001:db8::5"}, "2001:db8::5"},
		{"10.1.2.3:443", []string{"::ffff:203.0.113.7"}, "203.0.113.7"},
		{"203.0.113.9:5555", []string{"10.0.0.1"}, ""}, // not from a proxy: the header is ignored
		{"10.1.2.3:443", []string{"not-an-ip"}, ""},
		{"10.1.2.3:443", []string{"10.9.9.9"}, ""}, // only proxies: keep the peer
		{"10.1.2.3:443", nil, ""},
		{"garbage", []string{"203.0.113.7"}, ""},
	} {
		got := forwardedClient(tc.remote, tc.xff, trusted)
		if (tc.want == "" && got.IsValid()) || (tc.want != "" && got.String() != tc.want) {
			t.Errorf("%s with %q: %v, want %q", tc.remote, tc.xff, got, tc.want)
		}
	}
}
