package api

import (
	"net/http"

	"github.com/takedown/takedown/internal/service"
	"github.com/takedown/takedown/ui"
)

// createToken exchanges a username and password for a new API token.
func (s *Server) createToken(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Username string `json:"username"`
		Password string `json:"password"`
	}
	if err := s.decode(w, r, 4096, "", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	t, err := s.Login(r.Context(), in.Username, in.Password, ui.ClientAddress(r))
	s.reply(w, r, http.StatusCreated, t, err)
}

func (s *Server) listTokens(w http.ResponseWriter, r *http.Request) {
	ts, err := s.Tokens(r.Context(), actorOf(r), tokenOf(r))
	s.reply(w, r, http.StatusOK, map[string]any{"tokens": ts}, err)
}

// revokeToken revokes one of the caller's tokens; "current" names the one in use (logout).
func (s *Server) revokeToken(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("id")
	if id == "current" {
		id = tokenOf(r)
	}
	if err := s.RevokeToken(r.Context(), actorOf(r), id); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

func (s *Server) me(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, actorOf(r))
}

// enrol sets a new local user's password with their one-time code.
func (s *Server) enrol(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Username string `json:"username"`
		Code     string `json:"code"`
		Password string `json:"password"`
	}
	if err := s.decode(w, r, 4096, "", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if err := s.Enrol(r.Context(), in.Username, in.Code, in.Password, ui.ClientAddress(r)); err != nil {
		s.fail(w, r, err)
		return
	}
	w.WriteHeader(http.StatusNoContent)
}

// myNotifications answers the reader's notification choices and the notifications planned
// for them, newest first.
func (s *Server) myNotifications(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	p, err := s.NotificationPrefsOf(r.Context(), a)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sent, err := s.MyNotifications(r.Context(), a)
	s.reply(w, r, http.StatusOK, map[string]any{"preferences": p, "notifications": sent}, err)
}

// setNotifications saves the reader's choices; a new webhook address is answered with its
// secret, once.
func (s *Server) setNotifications(w http.ResponseWriter, r *http.Request) {
	var p service.NotificationPrefs
	if err := s.decode(w, r, 8<<10, "notification.preferences", &p); err != nil {
		s.fail(w, r, err)
		return
	}
	p, err := s.SetNotificationPrefs(r.Context(), actorOf(r), p)
	s.reply(w, r, http.StatusOK, p, err)
}
