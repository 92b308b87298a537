package web

import (
	"net/http"
	"net/url"
	"strconv"

	"github.com/takedown/takedown/internal/service"
)

// casesPerPage is how many cases the case list shows at once.
const casesPerPage = 50

// cases lists the cases the reader may read, newest first.
func (s *Server) cases(w http.ResponseWriter, r *http.Request) {
	p := s.frame(r, "cases")
	offset, _ := strconv.Atoi(r.URL.Query().Get("offset"))
	offset = max(offset, 0)
	list, err := s.Cases(r.Context(), actorOf(r), service.Page{Limit: casesPerPage, Offset: offset})
	status := http.StatusOK
	if err != nil {
		p.Error, status = s.problemOf(r, p.Lang, err)
	}
	next, prev := "", ""
	if err == nil && len(list) == casesPerPage {
		next = "/cases?" + url.Values{"offset": {strconv.Itoa(offset + casesPerPage)}}.Encode()
	}
	if offset > 0 {
		prev = "/cases?" + url.Values{"offset": {strconv.Itoa(max(offset-casesPerPage, 0))}}.Encode()
	}
	s.render(w, r, status, casesPage(p, list, next, prev))
}

// caseView is a case with the measures of it the reader may read.
func (s *Server) caseView(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	p := s.frame(r, "case")
	c, err := s.Case(r.Context(), a, r.PathValue("case"))
	var measures []service.MeasureSummary
	if err == nil {
		measures, err = s.Measures(r.Context(), a, service.MeasureFilter{Case: c.ID, Page: service.Page{Limit: service.MaxPage}})
	}
	if err != nil {
		s.render(w, r, s.problem(r, &p, err), layout(p))
		return
	}
	p.Title = orID(c.Title, c.ID)
	s.render(w, r, http.StatusOK, casePage(p, c, measures, p.Officer))
}
