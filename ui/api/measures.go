package api

import (
	"net/http"
	"strconv"
	"time"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/service"
)

func (s *Server) getMeasure(w http.ResponseWriter, r *http.Request) {
	m, err := s.Measure(r.Context(), actorOf(r), r.PathValue("measure"))
	s.reply(w, r, http.StatusOK, m, err)
}

func (s *Server) listMeasures(w http.ResponseWriter, r *http.Request) {
	f, err := service.MeasureFilterOf(r.URL.Query())
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ms, err := s.Measures(r.Context(), actorOf(r), f)
	s.reply(w, r, http.StatusOK, map[string]any{"measures": ms}, err)
}

func (s *Server) createMeasure(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Plan measure.Plan `json:"plan"`
	}
	if err := s.decode(w, r, 1<<20, "measure.create", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.CreateMeasure(r.Context(), actorOf(r), r.PathValue("case"), in.Plan)
	s.reply(w, r, http.StatusCreated, m, err)
}

func (s *Server) putPlan(w http.ResponseWriter, r *http.Request) {
	var plan measure.Plan
	if err := s.decode(w, r, 1<<20, "plan.updated", &plan); err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.PutPlan(r.Context(), actorOf(r), r.PathValue("measure"), plan)
	s.reply(w, r, http.StatusOK, m, err)
}

func (s *Server) addTargets(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Targets []measure.Target `json:"targets"`
	}
	if err := s.decode(w, r, maxJSON, "targets.added", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.AddTargets(r.Context(), actorOf(r), r.PathValue("measure"), in.Targets)
	s.reply(w, r, http.StatusOK, m, err)
}

// removeTargets takes targets out of a draft by their values.
func (s *Server) removeTargets(w http.ResponseWriter, r *http.Request) {
	var in struct {
		Values []string `json:"values"`
	}
	if err := s.decode(w, r, maxJSON, "targets.removed", &in); err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.RemoveTargets(r.Context(), actorOf(r), r.PathValue("measure"), in.Values)
	s.reply(w, r, http.StatusOK, m, err)
}

// listTargets answers every target of a version, or a page of them when the query asks for one
// (q, offset, limit) with the count that matches.
func (s *Server) listTargets(w http.ResponseWriter, r *http.Request) {
	query := r.URL.Query()
	version, _ := strconv.Atoi(query.Get("version"))
	if !query.Has("q") && !query.Has("offset") && !query.Has("limit") {
		ts, err := s.Targets(r.Context(), actorOf(r), r.PathValue("measure"), version)
		s.reply(w, r, http.StatusOK, map[string]any{"targets": ts}, err)
		return
	}
	page, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ts, n, err := s.TargetPage(r.Context(), actorOf(r), r.PathValue("measure"), service.TargetQuery{Version: version, Search: query.Get("q"), Page: page})
	s.reply(w, r, http.StatusOK, map[string]any{"targets": ts, "total": n}, err)
}

func (s *Server) changes(w http.ResponseWriter, r *http.Request) {
	from := 0
	if v := r.URL.Query().Get("from"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 {
			s.fail(w, r, &measure.FieldError{Field: "from", Message: "must be a version number, e.g. 3"})
			return
		}
		from = n
	}
	d, err := s.Changes(r.Context(), actorOf(r), r.PathValue("measure"), from)
	s.reply(w, r, http.StatusOK, map[string]any{"changes": d}, err)
}

func (s *Server) decisions(w http.ResponseWriter, r *http.Request) {
	ds, err := s.Decisions(r.Context(), actorOf(r), r.PathValue("measure"))
	s.reply(w, r, http.StatusOK, map[string]any{"decisions": ds}, err)
}

// inclusion answers a measure's log entry with its inclusion proof, checked by the server.
func (s *Server) inclusion(w http.ResponseWriter, r *http.Request) {
	i, err := strconv.ParseInt(r.PathValue("index"), 10, 64)
	if err != nil {
		s.fail(w, r, &measure.FieldError{Field: "index", Message: "must be a log index"})
		return
	}
	in, err := s.Inclusion(r.Context(), actorOf(r), r.PathValue("measure"), i)
	s.reply(w, r, http.StatusOK, in, err)
}

// addEvidence stores an uploaded file with its metadata from the query.
func (s *Server) addEvidence(w http.ResponseWriter, r *http.Request) {
	q := r.URL.Query()
	e := service.Evidence{Filename: q.Get("filename"), Kind: q.Get("kind"), Provenance: q.Get("provenance"),
		LegalBasis: q.Get("legal_basis"), Acquirer: q.Get("acquirer"), Tool: q.Get("tool"), TLP: q.Get("tlp")}
	if v := q.Get("acquired_at"); v != "" {
		t, err := time.Parse(time.RFC3339, v)
		if err != nil {
			err := &measure.FieldError{Field: "acquired_at", Message: "must be an RFC 3339 time"}
			s.Refused(r.Context(), actorOf(r), service.On{Measure: r.PathValue("measure")}, "evidence.added", err)
			s.fail(w, r, err)
			return
		}
		e.AcquiredAt = &t
	}
	e, err := s.AddEvidence(r.Context(), actorOf(r), r.PathValue("measure"), e, r.Body)
	s.reply(w, r, http.StatusCreated, e, err)
}

func (s *Server) listEvidence(w http.ResponseWriter, r *http.Request) {
	es, err := s.EvidenceList(r.Context(), actorOf(r), r.PathValue("measure"))
	s.reply(w, r, http.StatusOK, map[string]any{"evidence": es}, err)
}

func (s *Server) getEvidence(w http.ResponseWriter, r *http.Request) {
	content, err := s.EvidenceFile(r.Context(), actorOf(r), r.PathValue("sha256"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	_, _ = w.Write(content)
}

func (s *Server) history(w http.ResponseWriter, r *http.Request) {
	recs, err := s.History(r.Context(), actorOf(r), r.PathValue("measure"))
	s.reply(w, r, http.StatusOK, map[string]any{"entries": recs}, err)
}

// act sends an action to the measure's workflow; the answer is the measure after it.
func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	op := authz.Op(r.PathValue("op"))
	var in service.ActionInput
	if err := s.decode(w, r, maxJSON, measure.Clip(string(op), 64), &in); err != nil {
		s.fail(w, r, err)
		return
	}
	m, err := s.Act(r.Context(), actorOf(r), r.PathValue("measure"), op, in, r.Header.Get("Idempotency-Key"))
	s.reply(w, r, http.StatusOK, m, err)
}

// statistics answers a year's figures for the annual report to the Diet: a calendar year, or
// with ?basis=fiscal a fiscal year (April to March).
func (s *Server) statistics(w http.ResponseWriter, r *http.Request) {
	var fiscal bool
	switch r.URL.Query().Get("basis") {
	case "", "calendar":
	case "fiscal":
		fiscal = true
	default:
		s.fail(w, r, &measure.FieldError{Field: "basis", Message: "must be calendar or fiscal"})
		return
	}
	// Without ?year=, the year now falls in, as the page and its CSV take it.
	year := service.CurrentYear(time.Now(), fiscal)
	if v := r.URL.Query().Get("year"); v != "" {
		var err error
		if year, err = strconv.Atoi(v); err != nil {
			s.fail(w, r, &measure.FieldError{Field: "year", Message: "must be a year, e.g. 2026"})
			return
		}
	}
	st, err := s.Statistics(r.Context(), actorOf(r), year, fiscal)
	s.reply(w, r, http.StatusOK, st, err)
}

// work answers what waits on the reader, oldest first, with deadlines, and the counts by stage.
func (s *Server) work(w http.ResponseWriter, r *http.Request) {
	items, err := s.Work(r.Context(), actorOf(r))
	var counts []service.StageCount
	if err == nil {
		counts, err = s.StageCounts(r.Context(), actorOf(r))
	}
	s.reply(w, r, http.StatusOK, map[string]any{"work": items, "counts": counts}, err)
}
