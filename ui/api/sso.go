package api

import (
	"net/http"
	"strings"

	"github.com/takedown/takedown/internal/service"
	"github.com/takedown/takedown/ui"
	"github.com/takedown/takedown/ui/signon"
)

// ssoLogin sends the browser to the identity provider for an API token.
func (s *Server) ssoLogin(w http.ResponseWriter, r *http.Request) {
	if err := s.SSO.Start(w, r, signon.API); err != nil {
		s.fail(w, r, err)
	}
}

// ssoCallback finishes a sign-on: for the web pages, a browser session (BrowserSignOn); for
// the API, a token in the answer.
func (s *Server) ssoCallback(w http.ResponseWriter, r *http.Request) {
	door := signon.Door(r)
	if door == signon.API && strings.Contains(r.Header.Get("Accept"), "text/html") {
		// A browser whose sign-on cookie is gone (expired, another browser): answered with a
		// page, not the API's JSON.
		door = signon.Web
	}
	id, err := s.SSO.Finish(w, r, s.Log)
	if err != nil {
		s.SignOnFailed(r.Context(), ui.ClientAddress(r), err)
	}
	if door == signon.Web && s.BrowserSignOn != nil {
		s.BrowserSignOn(w, r, id, err)
		return
	}
	if door == signon.CLI {
		// The command line learns the outcome at its loopback listener, refusals included.
		var t service.Token
		if err == nil {
			t, err = s.LoginSSO(r.Context(), id, ui.ClientAddress(r))
		}
		if err != nil {
			err = s.Classify(r.Context(), err)
		}
		if rerr := s.SSO.ReturnToCLI(w, r, t, err); rerr != nil && s.BrowserSignOn != nil {
			s.BrowserSignOn(w, r, service.Identity{}, rerr)
		} else if rerr != nil {
			s.fail(w, r, rerr)
		}
		return
	}
	if err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.LoginSSO(r.Context(), id, ui.ClientAddress(r))
	s.reply(w, r, http.StatusCreated, t, err)
}

// BrowserSignOn finishes a sign-on started from the web pages.
type BrowserSignOn func(w http.ResponseWriter, r *http.Request, id service.Identity, err error)
