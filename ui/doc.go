// Package ui holds takedown's HTTP doors: ui/api, the JSON API, and ui/web, the web pages.
// Both are thin adapters over internal/service, so a request gets the same authorization,
// validation and refusal audit whichever door it came through.
package ui

import (
	"net"
	"net/http"
)

// ClientAddress is the address failed logins are counted against, for both doors.
func ClientAddress(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}
