package web

import (
	"encoding/csv"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
	"github.com/takedown/takedown/internal/service"
)

type stageCount = service.StageCount

// work is "My work": what waits on the person, oldest first, and counts by stage.
func (s *Server) work(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	p := s.frame(r, "my work")
	items, err := s.Work(r.Context(), a)
	var counts []service.StageCount
	if err == nil {
		counts, err = s.StageCounts(r.Context(), a)
	}
	status := http.StatusOK
	if err != nil {
		p.Error, status = s.problemOf(r, p.Lang, err)
	}
	s.render(w, r, status, workPage(p, items, counts))
}

// measures is the measure list and search, a page of 50 at a time.
func (s *Server) measures(w http.ResponseWriter, r *http.Request) {
	p := s.frame(r, "all measures")
	q := r.URL.Query()
	typed := search{Stage: q.Get("stage"), Org: q.Get("org"), Requester: q.Get("requester"), Target: q.Get("target"),
		Country: q.Get("country"), Emergency: q.Get("emergency"), From: q.Get("from"), To: q.Get("to")}
	q.Del("limit")
	f, err := service.MeasureFilterOf(q)
	var list []service.MeasureSummary
	if err == nil {
		f.Offset = max(f.Offset, 0)
		list, err = s.Measures(r.Context(), actorOf(r), f)
	}
	status := http.StatusOK
	if err != nil {
		p.Error, status = s.problemOf(r, p.Lang, err)
	}
	link := func(off int) string {
		v := url.Values{}
		for k, vs := range q {
			if k != "offset" && len(vs) > 0 && vs[0] != "" {
				v.Set(k, vs[0])
			}
		}
		v.Set("offset", strconv.Itoa(off))
		return "/measures?" + v.Encode()
	}
	next, prev := "", ""
	if err == nil && len(list) == 50 {
		next = link(f.Offset + 50)
	}
	if f.Offset > 0 {
		prev = link(max(f.Offset-50, 0))
	}
	s.render(w, r, status, measuresPage(p, list, typed, next, prev))
}

// measure is a measure's page: what a reviewer approves, on one screen, and the forms of the
// decisions the reader may take now.
func (s *Server) measure(w http.ResponseWriter, r *http.Request) {
	s.showMeasure(w, r, http.StatusOK, nil)
}

// targetsPerPage is how many targets a measure's page lists at once.
const targetsPerPage = 100

func (s *Server) showMeasure(w http.ResponseWriter, r *http.Request, status int, refused error) {
	a := actorOf(r)
	ctx := r.Context()
	p := s.frame(r, "measures")
	id := r.PathValue("measure")
	q := r.URL.Query()
	search := q.Get("tq")
	offset, _ := strconv.Atoi(q.Get("toff"))
	from, _ := strconv.Atoi(q.Get("from"))
	rf := s.refusedOf(r, refusedKey(id))
	if rf != nil && rf.Refusal.Code == refusal.Stale && rf.Refusal.Seen > 0 && from == 0 {
		from = rf.Refusal.Seen // what changed since the version the person decided on
	}
	soff, _ := strconv.Atoi(q.Get("soff"))
	tq := service.TargetQuery{Search: search, Page: service.Page{Limit: targetsPerPage, Offset: max(offset, 0)}, ChangesFrom: max(from, 0),
		Steps: service.StepQuery{Search: q.Get("sq"), Page: service.Page{Limit: targetsPerPage, Offset: max(soff, 0)}}}
	d, err := s.Dossier(ctx, a, id, tq)
	if fe := (*measure.FieldError)(nil); errors.As(err, &fe) {
		// A bad search or version shows its refusal over the page, with every target.
		refused, search, tq.Search, tq.Offset, tq.ChangesFrom, tq.Steps = err, "", "", 0, 0, service.StepQuery{Page: service.Page{Limit: targetsPerPage}}
		d, err = s.Dossier(ctx, a, id, tq)
	}
	if err != nil {
		p.Error, status = s.problemOf(r, p.Lang, err)
		s.render(w, r, status, layout(p))
		return
	}
	m := d.Measure
	p.Title = orID(m.Plan.Title, m.ID)
	v := measureView{Dossier: d, Search: search, Ops: s.Available(a, m), Editable: m.Stage == measure.Draft && m.Requester == a.ID, Lang: p.Lang,
		Exportable: m.Stage == measure.Closed && (a.Has(authz.Officer) || a.Has(authz.Commander)) && a.Org == m.Org}
	v.Signing = s.signingFor(r, v.Ops)
	if d.Sealed != nil && d.Sealed.Broken {
		// Nobody decides on a version whose shown content is not what its digest covers.
		v.Ops = slices.DeleteFunc(v.Ops, func(op authz.Op) bool { return measure.Judges(op) })
	}
	link := func(off int) string {
		u := url.Values{"toff": {strconv.Itoa(off)}}
		if search != "" {
			u.Set("tq", search)
		}
		return "/measures/" + url.PathEscape(m.ID) + "?" + u.Encode() + "#targets"
	}
	if tq.Offset+tq.Limit < d.TargetsN {
		v.Next = link(tq.Offset + tq.Limit)
	}
	if tq.Offset > 0 {
		v.Prev = link(max(tq.Offset-tq.Limit, 0))
	}
	stepLink := func(off int) string {
		u := url.Values{"soff": {strconv.Itoa(off)}}
		if tq.Steps.Search != "" {
			u.Set("sq", tq.Steps.Search)
		}
		return "/measures/" + url.PathEscape(m.ID) + "?" + u.Encode() + "#steps"
	}
	v.StepSearch = tq.Steps.Search
	if tq.Steps.Offset+tq.Steps.Limit < d.After.StepsN {
		v.StepsNext = stepLink(tq.Steps.Offset + tq.Steps.Limit)
	}
	if tq.Steps.Offset > 0 {
		v.StepsPrev = stepLink(max(tq.Steps.Offset-tq.Steps.Limit, 0))
	}
	if refused != nil {
		p.Error, status = s.problemOf(r, p.Lang, refused)
	} else if rf != nil {
		v.Refused = rf
		p.Error, status = s.problemOf(r, p.Lang, &rf.Refusal)
		if rf.Refusal.Code == refusal.Stale {
			p.Error.Headline = fmt.Sprintf("%s (v%d → v%d)", T(p.Lang, "stale"), rf.Refusal.Seen, rf.Refusal.Current)
			p.Error.Message = ""
		}
	}
	if status == 0 {
		status = http.StatusOK
	}
	s.render(w, r, status, measurePage(p, v))
}

// readActionForm reads a decision form, a multipart one (with a file of steps) too: a CSV
// file of steps stands for the text box when that is empty.
func readActionForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, 2<<20)
	var err error
	if strings.HasPrefix(r.Header.Get("Content-Type"), "multipart/form-data") {
		err = r.ParseMultipartForm(1 << 20)
	} else {
		err = r.ParseForm()
	}
	if err != nil {
		return &measure.FieldError{Field: "form", Message: "is not a form this page sent (or over 1 MiB)"}
	}
	if f, _, ferr := r.FormFile("steps_file"); ferr == nil {
		b, rerr := io.ReadAll(io.LimitReader(f, 1<<20))
		f.Close()
		if rerr == nil && strings.TrimSpace(r.PostForm.Get("steps")) == "" {
			r.PostForm.Set("steps", string(b))
		}
	}
	return nil
}

// act takes the decision a form posts, through the same service call as the JSON API.
func (s *Server) act(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	if err := readActionForm(w, r); err != nil {
		s.sendBack(w, r, r.PathValue("measure"), r.PathValue("op"), err, "")
		return
	}
	op := authz.Op(r.PathValue("op"))
	id := r.PathValue("measure")
	in, err := actionInput(r.PostForm)
	if err != nil {
		s.Refused(r.Context(), a, service.On{Measure: id}, measure.Clip(string(op), 64), err)
	} else {
		_, err = s.Act(r.Context(), a, id, op, in, r.PostFormValue("key"))
	}
	if err != nil {
		s.sendBack(w, r, id, string(op), err, "#act-"+url.PathEscape(string(op)))
		return
	}
	s.sessions.Remove(r.Context(), refusedKey(id))
	s.sessions.Put(r.Context(), "flash", T(language(r), "done"))
	http.Redirect(w, r, "/measures/"+url.PathEscape(id), http.StatusSeeOther)
}

// sendBack answers a refused form with the measure's page, the form as it was typed and the
// refusal beside it (see keepRefused).
func (s *Server) sendBack(w http.ResponseWriter, r *http.Request, id, form string, err error, anchor string) {
	http.Redirect(w, r, s.keepRefused(r, "/measures/"+url.PathEscape(id), refusedKey(id), form, err)+anchor, http.StatusSeeOther)
}

// keepRefused keeps a refused form in the session under key and returns the address of page
// to show it on: the address names the refusal, so a reload or the language switch shows it
// again, and the page reached any other way shows the measure as it is.
func (s *Server) keepRefused(r *http.Request, page, key, form string, err error) string {
	typed := url.Values{}
	for k, vs := range r.PostForm {
		if k != "key" && k != "digest" {
			typed[k] = vs
		}
	}
	rf := refusedForm{Op: form, Values: typed, Refusal: *s.Classify(r.Context(), err), At: time.Now(), Token: service.NewID("r")}
	if rf.Refusal.Code == refusal.Stale {
		// The words typed come back; the choice does not: it was made on another version, and
		// one click must not carry it over to this one.
		typed.Del("decision")
		typed.Del("conflicted")
		typed.Del("checklist")
	}
	if b, jerr := json.Marshal(rf); jerr == nil {
		s.sessions.Put(r.Context(), key, string(b))
	}
	sep := "?"
	if strings.Contains(page, "?") {
		sep = "&"
	}
	return page + sep + "r=" + rf.Token
}

// refusedForm is a form the service refused, kept in the session for the page the person is
// sent back to.
type refusedForm struct {
	Op      string        `json:"op"`
	Values  url.Values    `json:"values"`
	Refusal refusal.Error `json:"refusal"`
	At      time.Time     `json:"at"`
	Token   string        `json:"token"`
}

// refusedFor is how long a refused form can be shown again.
const refusedFor = 30 * time.Minute

func refusedKey(measureID string) string { return "refused:" + measureID }

// refusedOf is the refused form kept under key that this page's address names, if any.
func (s *Server) refusedOf(r *http.Request, key string) *refusedForm {
	token := r.URL.Query().Get("r")
	if token == "" {
		return nil
	}
	raw := s.sessions.GetString(r.Context(), key)
	var rf refusedForm
	if raw == "" || json.Unmarshal([]byte(raw), &rf) != nil || rf.Token != token || time.Since(rf.At) > refusedFor {
		return nil
	}
	return &rf
}

// actionInput reads a decision form.
func actionInput(f url.Values) (service.ActionInput, error) {
	// A browser sends a text box's line breaks as CRLF in a form and as LF to a script: one
	// spelling, so the statement signed is the decision recorded.
	lf := func(k string) string { return strings.ReplaceAll(f.Get(k), "\r\n", "\n") }
	in := service.ActionInput{Decision: f.Get("decision"), Reason: lf("reason"), Body: lf("body"),
		Gate: f.Get("gate"), Reference: f.Get("reference"), Checklist: f["checklist"], Digest: f.Get("digest")}
	if sig := f.Get("signature"); sig != "" {
		in.Signature = &audit.Signature{}
		if err := json.Unmarshal([]byte(sig), in.Signature); err != nil {
			return in, &measure.FieldError{Field: "signature", Message: "is not the signature this page's script makes"}
		}
	}
	switch f.Get("conflicted") {
	case "true":
		in.Conflicted = new(true)
	case "false":
		in.Conflicted = new(false)
	}
	for _, c := range strings.Split(f.Get("conditions"), "\n") {
		if c = strings.TrimSpace(c); c != "" {
			in.Conditions = append(in.Conditions, c)
		}
	}
	if f.Has("order_addressee") || f.Has("order_content") || f.Has("order_deadline") {
		o := &measure.Order{Addressee: strings.TrimSpace(f.Get("order_addressee")), Content: f.Get("order_content"), Proof: f.Get("order_proof")}
		if v := strings.TrimSpace(f.Get("order_deadline")); v != "" {
			at, err := time.ParseInLocation("2006-01-02T15:04", v, service.JST)
			if err != nil {
				return in, &measure.FieldError{Field: "order.deadline", Message: "must be a date and time, e.g. 2026-12-31T17:00 (JST)"}
			}
			o.Deadline = at
		}
		in.Order = o
	}
	if v := strings.TrimSpace(f.Get("steps")); v != "" {
		rows, err := csv.NewReader(strings.NewReader(v)).ReadAll()
		if err != nil {
			return in, &measure.FieldError{Field: "steps", Message: "is not CSV: " + err.Error()}
		}
		for i, row := range rows {
			if len(row) != 6 {
				return in, &measure.FieldError{Field: fmt.Sprintf("steps[%d]", i), Message: "needs 6 columns: target,technique,action,result,witness,at"}
			}
			at, err := time.Parse(time.RFC3339, strings.TrimSpace(row[5]))
			if err != nil {
				return in, &measure.FieldError{Field: fmt.Sprintf("steps[%d].at", i), Message: "must be an RFC 3339 time"}
			}
			in.Steps = append(in.Steps, measure.Step{Target: strings.TrimSpace(row[0]), Technique: strings.TrimSpace(row[1]),
				Action: strings.TrimSpace(row[2]), Result: strings.TrimSpace(row[3]), Witness: strings.TrimSpace(row[4]), At: at})
		}
	}
	if v := strings.TrimSpace(f.Get("notifications")); v != "" {
		rows, err := csv.NewReader(strings.NewReader(v)).ReadAll()
		if err != nil {
			return in, &measure.FieldError{Field: "notifications", Message: "is not CSV: " + err.Error()}
		}
		for i, row := range rows {
			if len(row) != 2 && len(row) != 3 {
				return in, &measure.FieldError{Field: fmt.Sprintf("notifications[%d]", i), Message: "needs 2 or 3 columns: addressee,status,reason for a deferral"}
			}
			n := measure.Notification{Addressee: strings.TrimSpace(row[0]), Status: strings.TrimSpace(row[1])}
			if len(row) == 3 {
				n.Reason = strings.TrimSpace(row[2])
			}
			in.Notices = append(in.Notices, n)
		}
	}
	return in, nil
}
