package api

import (
	"net/http"

	"github.com/takedown/takedown/internal/service"
)

func (s *Server) createCase(w http.ResponseWriter, r *http.Request) {
	var in service.NewCase
	if err := s.decode(w, r, 1<<20, "case.create", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	c, err := s.CreateCase(r.Context(), actorOf(r), in)
	s.reply(w, r, http.StatusCreated, c, err)
}

func (s *Server) getCase(w http.ResponseWriter, r *http.Request) {
	c, err := s.Case(r.Context(), actorOf(r), r.PathValue("case"))
	s.reply(w, r, http.StatusOK, c, err)
}

func (s *Server) listCases(w http.ResponseWriter, r *http.Request) {
	p, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	cs, err := s.Cases(r.Context(), actorOf(r), p)
	s.reply(w, r, http.StatusOK, cs, err)
}
