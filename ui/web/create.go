package web

import (
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strings"

	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/service"
)

// MaxFormTargets bounds the targets one draft form takes; botnet-sized lists go through the
// API or the CLI (takedown targets add).
const MaxFormTargets = 10000

func (s *Server) newCase(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, newCasePage(s.frame(r, "new case")))
}

// createCase opens a case and goes on to its first measure's draft.
func (s *Server) createCase(w http.ResponseWriter, r *http.Request) {
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	c, err := s.CreateCase(r.Context(), actorOf(r), service.NewCase{Title: r.PostFormValue("title"), Summary: r.PostFormValue("summary")})
	if err != nil {
		p := s.frame(r, "new case")
		var status int
		p.Error, status = s.problemOf(r, p.Lang, err)
		s.render(w, r, status, newCasePage(p))
		return
	}
	http.Redirect(w, r, "/measures/new?"+url.Values{"case": {c.ID}}.Encode(), http.StatusSeeOther)
}

func (s *Server) newMeasure(w http.ResponseWriter, r *http.Request) {
	s.render(w, r, http.StatusOK, newMeasurePage(s.frame(r, "new measure"), r.URL.Query().Get("case")))
}

// createMeasure opens a draft from the form, with its targets, and shows it.
func (s *Server) createMeasure(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	r.Body = http.MaxBytesReader(w, r.Body, 8<<20)
	fail := func(err error) {
		p := s.frame(r, "new measure")
		var status int
		p.Error, status = s.problemOf(r, p.Lang, err)
		s.render(w, r, status, newMeasurePage(p, r.PostFormValue("case")))
	}
	plan, targets, err := planForm(r)
	if err != nil {
		s.Refused(r.Context(), a, service.On{Case: r.PostFormValue("case")}, "measure.create", err)
		fail(err)
		return
	}
	m, err := s.CreateMeasure(r.Context(), a, r.PostFormValue("case"), plan)
	if err != nil {
		fail(err)
		return
	}
	if len(targets) > 0 {
		if _, err := s.AddTargets(r.Context(), a, m.ID, targets); err != nil {
			// The draft exists: show it with the refusal, so the targets can be added again.
			s.sessions.Put(r.Context(), "flash", T(language(r), "targets refused")+": "+s.Classify(r.Context(), err).Message)
		}
	}
	http.Redirect(w, r, "/measures/"+url.PathEscape(m.ID), http.StatusSeeOther)
}

// lines splits a textarea into its non-empty lines.
func lines(v string) []string {
	var out []string
	for _, l := range strings.Split(v, "\n") {
		if l = strings.TrimSpace(l); l != "" {
			out = append(out, l)
		}
	}
	return out
}

// planForm reads the draft form: the plan, and targets one per line ("value[,location]").
func planForm(r *http.Request) (measure.Plan, []measure.Target, error) {
	f := func(k string) string { return r.PostFormValue(k) }
	p := measure.Plan{Title: f("title"), LegalBasis: f("legal_basis"), Kind: measure.Kind(f("kind")), Technique: f("technique"),
		Operations: lines(f("operations")), Executors: lines(f("executors")), Necessity: f("necessity"),
		Proportionality: f("proportionality"), Collateral: f("collateral"), RollbackPlan: f("rollback_plan"),
		NotificationPlan: f("notification_plan")}
	if v := strings.TrimSpace(f("alternatives")); v != "" {
		rows, err := csv.NewReader(strings.NewReader(v)).ReadAll()
		if err != nil {
			return p, nil, &measure.FieldError{Field: "alternatives", Message: "is not CSV: " + err.Error()}
		}
		for i, row := range rows {
			if len(row) != 3 {
				return p, nil, &measure.FieldError{Field: fmt.Sprintf("alternatives[%d]", i), Message: "needs 3 columns: means,outcome,reason"}
			}
			p.Alternatives = append(p.Alternatives, measure.Alternative{Means: strings.TrimSpace(row[0]), Outcome: strings.TrimSpace(row[1]), Reason: strings.TrimSpace(row[2])})
		}
	}
	var targets []measure.Target
	for i, l := range lines(f("targets")) {
		value, location, _ := strings.Cut(l, ",")
		value, location = strings.TrimSpace(value), strings.TrimSpace(location)
		if location == "" {
			location = "unknown"
		}
		if i >= MaxFormTargets {
			return p, nil, &measure.FieldError{Field: "targets", Message: fmt.Sprintf("at most %d targets in the form; the API and CLI take more", MaxFormTargets)}
		}
		targets = append(targets, measure.Target{Kind: measure.GuessKind(value), Value: value, Location: location})
	}
	return p, targets, nil
}

// addEvidence stores an uploaded file in a draft.
func (s *Server) addEvidence(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	id := r.PathValue("measure")
	r.Body = http.MaxBytesReader(w, r.Body, s.MaxEvidence+1<<20)
	file, hdr, err := r.FormFile("file")
	if err != nil {
		err = &measure.FieldError{Field: "file", Message: "choose a file (at most the server's evidence limit)"}
		s.Refused(r.Context(), a, service.On{Measure: id}, "evidence.added", err)
		s.showMeasure(w, r, http.StatusBadRequest, err)
		return
	}
	defer file.Close()
	e := service.Evidence{Filename: hdr.Filename, Kind: r.PostFormValue("kind"), Provenance: r.PostFormValue("provenance"),
		LegalBasis: r.PostFormValue("legal_basis"), TLP: r.PostFormValue("tlp")}
	if _, err := s.AddEvidence(r.Context(), a, id, e, file); err != nil {
		s.showMeasure(w, r, 0, err)
		return
	}
	s.sessions.Put(r.Context(), "flash", T(language(r), "done"))
	http.Redirect(w, r, "/measures/"+url.PathEscape(id), http.StatusSeeOther)
}
