package signon

import (
	"net/url"
	"strings"
	"testing"
)

// FuzzCLIReturn: whatever a caller puts in the login URL or the cookie, a return address that
// passes is an http URL on a loopback address with a port, and survives the cookie unchanged.
func FuzzCLIReturn(f *testing.F) {
	key := "hSDwCYkwp1R0i33ctD73Wg2_Og0mOBr066SpjqqbTmo"
	f.Add("http://127.0.0.1:8080/callback", key, "0123456789abcdef")
	f.Add("http://[::1]:1/x", key, "state_state-state")
	f.Add("http://127.0.0.1.evil.example:80/", key, "0123456789abcdef")
	f.Add("http://127.1:80/", key, "0123456789abcdef")
	f.Add("http://0x7f.0.0.1:80/", key, "0123456789abcdef")
	f.Add("http://[::ffff:127.0.0.1]:80/", key, "0123456789abcdef")
	f.Add("http://127.0.0.1:80\\@evil.example/", key, "0123456789abcdef")
	f.Fuzz(func(t *testing.T, cli, key, state string) {
		c, err := cliReturnOf(url.Values{"cli": {cli}, "key": {key}, "state": {state}})
		if err != nil {
			return
		}
		u, err := url.Parse(c.URL)
		if err != nil || u.Scheme != "http" || u.Port() == "" || u.User != nil {
			t.Fatalf("accepted %q", cli)
		}
		if h := u.Hostname(); h != "127.0.0.1" && h != "::1" {
			t.Fatalf("accepted a host other than 127.0.0.1 and ::1: %q", cli)
		}
		if strings.ContainsAny(c.State, ".;,\r\n ") {
			t.Fatalf("accepted state %q", c.State)
		}
		back, ok := decodeCLIReturn(c.encode())
		if !ok || back.URL != c.URL || string(back.Key) != string(c.Key) || back.State != c.State {
			t.Fatalf("the cookie does not give back what was accepted: %+v, %+v", c, back)
		}
	})
}
