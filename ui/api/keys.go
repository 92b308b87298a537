package api

import (
	"encoding/hex"
	"net/http"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/service"
)

// StatementView is a decision's statement as a client signs it.
type StatementView struct {
	// Statement is the canonical JSON an SSH key signs (namespace takedown-decision).
	Statement string `json:"statement"`
	// SHA256 is its hash in hex; Challenge the same in base64url, a passkey's challenge.
	SHA256    string `json:"sha256"`
	Challenge string `json:"challenge"`
	// Time is the statement's time: the signature's time field must repeat it.
	Time  string `json:"time"`
	Words string `json:"words"`
}

// ViewStatement is st as the API shows it.
func ViewStatement(st audit.Statement) StatementView {
	return StatementView{Statement: string(st.Bytes()), SHA256: hex.EncodeToString(st.Hash()), Challenge: st.Challenge(),
		Time: st.Time.UTC().Format(time.RFC3339), Words: st.Words()}
}

func (s *Server) statement(w http.ResponseWriter, r *http.Request) {
	op := authz.Op(r.PathValue("op"))
	var in service.ActionInput
	if err := s.decode(w, r, maxJSON, "read.statement", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	st, err := s.Statement(r.Context(), actorOf(r), r.PathValue("measure"), op, in)
	s.reply(w, r, http.StatusOK, ViewStatement(st), err)
}

func (s *Server) proposeKey(w http.ResponseWriter, r *http.Request) {
	var p service.KeyProposal
	if err := s.decode(w, r, 1<<16, "key.propose", &p); err != nil {
		s.fail(w, r, err)
		return
	}
	// The API registers SSH keys; a passkey is registered on the web page it is bound to.
	k, err := s.ProposeKey(r.Context(), actorOf(r), p, "")
	s.reply(w, r, http.StatusCreated, k, err)
}

func (s *Server) listKeys(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	user := a.ID
	if r.URL.Query().Has("user") {
		user = r.URL.Query().Get("user")
		if fe := measure.CheckLine("user", user, 64); fe != nil {
			s.fail(w, r, fe)
			return
		}
	}
	ks, err := s.Keys(r.Context(), a, user)
	s.reply(w, r, http.StatusOK, map[string]any{"keys": ks}, err)
}

func (s *Server) approveKey(w http.ResponseWriter, r *http.Request) {
	sig, err := s.approvalSignature(w, r, "key.approve")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	k, err := s.ApproveKey(r.Context(), actorOf(r), r.PathValue("id"), sig)
	s.reply(w, r, http.StatusOK, k, err)
}

func (s *Server) revokeKey(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Reason string `json:"reason"`
	}
	if err := s.decode(w, r, 1<<16, "key.revoke", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	k, err := s.RevokeKey(r.Context(), actorOf(r), r.PathValue("id"), in.Reason)
	s.reply(w, r, http.StatusOK, k, err)
}
