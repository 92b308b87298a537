package web

import (
	"cmp"
	"encoding/csv"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
	"github.com/takedown/takedown/internal/service"
)

// MaxFormTargets bounds the targets one draft form takes; botnet-sized lists go through the
// API or the CLI (takedown targets add).
const MaxFormTargets = 10000

func (s *Server) newCase(w http.ResponseWriter, r *http.Request) {
	p := s.frame(r, "new case")
	status, typed := http.StatusOK, url.Values{}
	if rf := s.refusedOf(r, "refused:new-case"); rf != nil {
		typed = rf.Values
		p.Error, status = s.problemFor(p.Lang, &rf.Refusal)
	}
	s.render(w, r, status, newCasePage(p, typed.Get("title"), typed.Get("summary")))
}

// createCase opens a case and goes on to its first measure's draft.
func (s *Server) createCase(w http.ResponseWriter, r *http.Request) {
	err := readForm(w, r, 64<<10)
	var c service.Case
	if err == nil {
		c, err = s.CreateCase(r.Context(), actorOf(r), service.NewCase{Title: r.PostFormValue("title"), Summary: r.PostFormValue("summary")})
	}
	if err != nil {
		http.Redirect(w, r, s.keepRefused(r, "/cases/new", "refused:new-case", "new_case", err), http.StatusSeeOther)
		return
	}
	http.Redirect(w, r, "/measures/new?"+url.Values{"case": {c.ID}}.Encode(), http.StatusSeeOther)
}

func (s *Server) newMeasure(w http.ResponseWriter, r *http.Request) {
	p := s.frame(r, "new measure")
	status, plan, targets, window := http.StatusOK, measure.Plan{}, "", ""
	if rf := s.refusedOf(r, "refused:new-measure"); rf != nil {
		plan, _, _ = planForm(rf.Values, plan)
		targets, window = rf.Values.Get("targets"), rf.Values.Get("requested_window")
		p.Error, status = s.problemFor(p.Lang, &rf.Refusal)
	}
	s.render(w, r, status, newMeasurePage(p, r.URL.Query().Get("case"), plan, targets, window))
}

// createMeasure opens a draft from the form, with its targets, and shows it.
func (s *Server) createMeasure(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	ferr := readForm(w, r, 8<<20)
	plan, targets, err := planForm(r.PostForm, measure.Plan{})
	fail := func(err error) {
		// The form comes back as typed, with the refusal above it, at the form's own address.
		page := "/measures/new?" + url.Values{"case": {r.PostFormValue("case")}}.Encode()
		http.Redirect(w, r, s.keepRefused(r, page, "refused:new-measure", "new_measure", err), http.StatusSeeOther)
	}
	if ferr != nil {
		fail(ferr)
		return
	}
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

// planForm reads the draft form over p (fields the form does not show are kept): the plan,
// and targets one per line ("value[,location]").
func planForm(form url.Values, p measure.Plan) (measure.Plan, []measure.Target, error) {
	f := form.Get
	p.Title, p.LegalBasis, p.Kind, p.Technique = f("title"), f("legal_basis"), measure.Kind(f("kind")), f("technique")
	p.Operations, p.Executors, p.Necessity = lines(f("operations")), lines(f("executors")), f("necessity")
	p.Proportionality, p.Collateral, p.RollbackPlan, p.NotificationPlan = f("proportionality"), f("collateral"), f("rollback_plan"), f("notification_plan")
	p.DataHandling, p.EmergencyJustify = f("data_handling"), f("emergency_justification")
	p.SelfExecutionFallback, p.Urgent = f("self_execution_fallback") == "true", f("urgent") == "true"
	p.RequestedWindow = 0
	if v := strings.TrimSpace(f("requested_window")); v != "" {
		d, err := measure.ParseDuration(v)
		if err != nil {
			return p, nil, &measure.FieldError{Field: "requested_window", Message: "must be days or hours, e.g. 14d or 72h"}
		}
		p.RequestedWindow = measure.Duration(d)
	}
	p.Alternatives = nil
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
	var bad []string
	for i, l := range strings.Split(f("targets"), "\n") {
		if l = strings.TrimSpace(l); l == "" {
			continue
		}
		if len(targets) >= MaxFormTargets {
			return p, nil, &measure.FieldError{Field: "targets", Message: fmt.Sprintf("at most %d targets in the form; the API and CLI take more", MaxFormTargets)}
		}
		t, err := targetLine(l)
		if err == nil {
			err = t.Validate()
		}
		if err != nil {
			// Every bad line is named; nothing typed is dropped (the form comes back as typed).
			if len(bad) < 20 {
				bad = append(bad, fmt.Sprintf("line %d (%s): %v", i+1, measure.Clip(l, 80), err))
			}
			continue
		}
		targets = append(targets, t)
	}
	if len(bad) > 0 {
		return p, nil, &measure.FieldError{Field: "targets", Message: strings.Join(bad, "; ")}
	}
	return p, targets, nil
}

// windowText is a requested window as the form shows it.
func windowText(d measure.Duration) string {
	t := time.Duration(d)
	if t <= 0 {
		return ""
	}
	if t%(24*time.Hour) == 0 {
		return fmt.Sprintf("%dd", t/(24*time.Hour))
	}
	return t.String()
}

// removeTargets takes the ticked targets out of a draft, through the same service call as the
// API's.
func (s *Server) removeTargets(w http.ResponseWriter, r *http.Request) {
	id := r.PathValue("measure")
	r.Body = http.MaxBytesReader(w, r.Body, 8<<20)
	if err := r.ParseForm(); err != nil {
		s.sendBack(w, r, id, "remove_targets", &measure.FieldError{Field: "form", Message: "is not a form this page sent"}, "#targets")
		return
	}
	if _, err := s.RemoveTargets(r.Context(), actorOf(r), id, r.PostForm["value"]); err != nil {
		s.sendBack(w, r, id, "remove_targets", err, "#targets")
		return
	}
	s.sessions.Put(r.Context(), "flash", T(language(r), "done"))
	http.Redirect(w, r, "/measures/"+url.PathEscape(id)+"#targets", http.StatusSeeOther)
}

// targetLine reads one target line of the form: value[,location[,port[,country[,role[,ownership
// [,hosting provider[,registrar]]]]]]], columns after the value optional (location unknown).
func targetLine(l string) (measure.Target, error) {
	cols, err := csv.NewReader(strings.NewReader(l)).Read()
	if err != nil {
		return measure.Target{}, fmt.Errorf("is not a line of comma-separated values: %v", err)
	}
	if len(cols) > 8 {
		return measure.Target{}, fmt.Errorf("has %d columns; at most 8: value,location,port,country,role,ownership,hosting provider,registrar", len(cols))
	}
	col := func(i int) string {
		if i < len(cols) {
			return strings.TrimSpace(cols[i])
		}
		return ""
	}
	t := measure.Target{Value: col(0), Location: cmp.Or(col(1), "unknown"), Country: col(3), Role: col(4), Ownership: col(5),
		HostingProvider: col(6), Registrar: col(7)}
	t.Kind = measure.GuessKind(t.Value)
	if v := col(2); v != "" {
		if t.Port, err = strconv.Atoi(v); err != nil {
			return t, fmt.Errorf("port %q is not a number", v)
		}
	}
	return t, nil
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
		s.sendBack(w, r, id, "add_evidence", err, "#evidence")
		return
	}
	defer file.Close()
	e := service.Evidence{Filename: hdr.Filename, Kind: r.PostFormValue("kind"), Provenance: r.PostFormValue("provenance"),
		LegalBasis: r.PostFormValue("legal_basis"), TLP: r.PostFormValue("tlp")}
	if _, err := s.AddEvidence(r.Context(), a, id, e, file); err != nil {
		s.sendBack(w, r, id, "add_evidence", err, "#evidence")
		return
	}
	s.sessions.Put(r.Context(), "flash", T(language(r), "done"))
	http.Redirect(w, r, "/measures/"+url.PathEscape(id), http.StatusSeeOther)
}

// alternativesCSV is the alternatives as the form takes them.
func alternativesCSV(as []measure.Alternative) string {
	var b strings.Builder
	w := csv.NewWriter(&b)
	for _, a := range as {
		_ = w.Write([]string{a.Means, a.Outcome, a.Reason})
	}
	w.Flush()
	return b.String()
}

// editPlan shows a draft's plan in the form, for its requester.
func (s *Server) editPlan(w http.ResponseWriter, r *http.Request) {
	p := s.frame(r, "edit plan")
	a := actorOf(r)
	m, err := s.Measure(r.Context(), a, r.PathValue("measure"))
	if err == nil && (m.Requester != a.ID || m.Stage != measure.Draft) {
		// Only the requester edits, and only a draft: nobody else is shown a form to fill.
		err = refusal.New(refusal.WrongStage, "only the requester edits the plan, and only while the measure is a draft")
	}
	if err != nil {
		s.render(w, r, s.problem(r, &p, err), layout(p))
		return
	}
	status, plan, targets, window := http.StatusOK, m.Plan, "", windowText(m.Plan.RequestedWindow)
	if rf := s.refusedOf(r, refusedKey(m.ID)+":plan"); rf != nil {
		plan, _, _ = planForm(rf.Values, m.Plan)
		targets, window = rf.Values.Get("targets"), rf.Values.Get("requested_window")
		p.Error, status = s.problemFor(p.Lang, &rf.Refusal)
	}
	s.render(w, r, status, editPlanPage(p, m, plan, targets, window))
}

// savePlan replaces a draft's plan and appends the targets the form adds, through the same
// service calls as the API's PUT plan and POST targets.
func (s *Server) savePlan(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	id := r.PathValue("measure")
	ferr := readForm(w, r, 8<<20)
	m, err := s.Measure(r.Context(), a, id)
	if err != nil {
		s.refused(w, r, "edit plan", err)
		return
	}
	fail := func(err error) {
		page := "/measures/" + url.PathEscape(m.ID) + "/edit"
		http.Redirect(w, r, s.keepRefused(r, page, refusedKey(m.ID)+":plan", "edit_plan", err), http.StatusSeeOther)
	}
	if ferr == nil && !r.PostForm.Has("title") {
		// Every field of the plan comes with the form: a post without them would empty the plan.
		ferr = &measure.FieldError{Field: "form", Message: "is not a form this page sent"}
	}
	if ferr != nil {
		fail(ferr)
		return
	}
	plan, targets, err := planForm(r.PostForm, m.Plan)
	if err != nil {
		s.Refused(r.Context(), a, service.On{Measure: m.ID, Case: m.Case}, "plan.updated", err)
		fail(err)
		return
	}
	if _, err := s.PutPlan(r.Context(), a, m.ID, plan); err != nil {
		fail(err)
		return
	}
	if len(targets) > 0 {
		if _, err := s.AddTargets(r.Context(), a, m.ID, targets); err != nil {
			s.sessions.Put(r.Context(), "flash", T(language(r), "targets refused")+": "+s.Classify(r.Context(), err).Message)
			http.Redirect(w, r, "/measures/"+url.PathEscape(m.ID), http.StatusSeeOther)
			return
		}
	}
	s.sessions.Put(r.Context(), "flash", T(language(r), "done"))
	http.Redirect(w, r, "/measures/"+url.PathEscape(m.ID), http.StatusSeeOther)
}

// evidenceFile downloads an evidence file; the service records the access in its custody and
// the audit log.
func (s *Server) evidenceFile(w http.ResponseWriter, r *http.Request) {
	content, err := s.EvidenceFile(r.Context(), actorOf(r), r.PathValue("sha256"))
	if err != nil {
		s.refused(w, r, "evidence", err)
		return
	}
	w.Header().Set("Content-Type", "application/octet-stream")
	w.Header().Set("Content-Disposition", `attachment; filename="evidence.bin"`)
	_, _ = w.Write(content)
}
