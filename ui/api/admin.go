package api

import (
	"bytes"
	"io"
	"net/http"

	"github.com/takedown/takedown/audit"
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
	sig, err := s.approvalSignature(w, r, "role_change.approve")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.ApproveRoleChange(r.Context(), actorOf(r), r.PathValue("id"), sig)
	s.reply(w, r, http.StatusOK, c, err)
}

// approvalSignature reads an approval's optional body, {"signature": {...}}: the approving
// administrator's personal signature over the approval's statement.
func (s *Server) approvalSignature(w http.ResponseWriter, r *http.Request, action string) (*audit.Signature, error) {
	body, err := io.ReadAll(http.MaxBytesReader(w, r.Body, 1<<16))
	if err != nil {
		return nil, err
	}
	if len(bytes.TrimSpace(body)) == 0 {
		return nil, nil
	}
	var in struct {
		Signature *audit.Signature `json:"signature"`
	}
	if err := decodeJSON(bytes.NewReader(body), &in); err != nil {
		s.Refused(r.Context(), actorOf(r), service.On{}, action, err)
		return nil, err
	}
	return in.Signature, nil
}

// approvalStatement words an approval for the administrator to sign.
func (s *Server) approvalStatement(op authz.Op, subject string) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		st, err := s.ApprovalStatement(r.Context(), actorOf(r), op, r.PathValue(subject))
		s.reply(w, r, http.StatusOK, ViewStatement(st), err)
	}
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
	sig, err := s.approvalSignature(w, r, "policy.approve")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	v, err := s.ApprovePolicy(r.Context(), actorOf(r), r.PathValue("version"), sig)
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

func (s *Server) pendingPolicies(w http.ResponseWriter, r *http.Request) {
	ps, err := s.PendingPolicies(r.Context(), actorOf(r))
	s.reply(w, r, http.StatusOK, map[string]any{"proposals": ps}, err)
}

func (s *Server) pendingChanges(w http.ResponseWriter, r *http.Request) {
	cs, err := s.PendingChanges(r.Context(), actorOf(r))
	s.reply(w, r, http.StatusOK, map[string]any{"changes": cs}, err)
}
