package api

import (
	"net/http"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/service"
)

func (s *Server) proposeRoleChange(w http.ResponseWriter, r *http.Request) {
	var c service.RoleChange
	if err := s.decode(w, r, 1<<16, "role_change.propose", &c); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.ProposeRoleChange(r.Context(), actorOf(r), c)
	s.reply(w, r, http.StatusCreated, c, err)
}

func (s *Server) approveRoleChange(w http.ResponseWriter, r *http.Request) {
	c, err := s.ApproveRoleChange(r.Context(), actorOf(r), r.PathValue("id"))
	s.reply(w, r, http.StatusOK, c, err)
}

func (s *Server) getPolicy(w http.ResponseWriter, r *http.Request) {
	writeJSON(w, http.StatusOK, s.Policy())
}

func (s *Server) proposePolicy(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Rules  []authz.Rule `json:"rules"`
		Reason string       `json:"reason"`
	}
	if err := s.decode(w, r, 1<<20, "policy.propose", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.ProposePolicy(r.Context(), actorOf(r), in.Rules, in.Reason)
	s.reply(w, r, http.StatusCreated, map[string]any{"version": v}, err)
}

func (s *Server) approvePolicy(w http.ResponseWriter, r *http.Request) {
	v, err := s.ApprovePolicy(r.Context(), actorOf(r), r.PathValue("version"))
	s.reply(w, r, http.StatusOK, map[string]any{"version": v}, err)
}

func (s *Server) listUsers(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	us, err := s.Users(r.Context(), actorOf(r), p)
	s.reply(w, r, http.StatusOK, map[string]any{"users": us}, err)
}

func (s *Server) pendingChanges(w http.ResponseWriter, r *http.Request) {
	cs, err := s.PendingChanges(r.Context(), actorOf(r))
	s.reply(w, r, http.StatusOK, map[string]any{"changes": cs}, err)
}
