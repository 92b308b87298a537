package web

import "net/http"

// Page wraps h in the middleware of every signed-in page (security headers, cross-origin
// protection, the session, the sign-in check): the benchmark's baseline is a trivial page
// behind exactly this.
func (s *Server) Page(h http.HandlerFunc) http.Handler {
	return s.headers(http.NewCrossOriginProtection().Handler(s.sessions.LoadAndSave(s.signedIn(h))))
}
