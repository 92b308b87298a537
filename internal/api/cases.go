package api

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
)

// Case is an investigation (事案) holding measure requests.
type Case struct {
	ID          string          `json:"id"`
	Org         string          `json:"org"`
	Title       string          `json:"title"`
	Summary     string          `json:"summary"`
	Attribution json.RawMessage `json:"attribution,omitempty"`
	Harm        json.RawMessage `json:"harm,omitempty"`
	CreatedBy   string          `json:"created_by"`
	CreatedAt   time.Time       `json:"created_at"`
	Measures    []string        `json:"measures"`
}

func (s *Server) createCase(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	r.Body = http.MaxBytesReader(w, r.Body, 1<<20)
	var in struct {
		Title       string          `json:"title"`
		Summary     string          `json:"summary"`
		Attribution json.RawMessage `json:"attribution"`
		Harm        json.RawMessage `json:"harm"`
	}
	if err := decode(r, &in); err != nil {
		s.fail(w, r, err)
		return
	}
	if !a.Has(authz.Officer) {
		err := &authz.Denied{Rule: "role", Reason: "opening a case needs the officer role"}
		s.refused(r.Context(), a, "", "", "case.create", "", err)
		s.fail(w, r, err)
		return
	}
	if err := checkCase(in.Title, in.Summary); err != nil {
		s.fail(w, r, err)
		return
	}
	for _, f := range []struct {
		name string
		raw  json.RawMessage
	}{{"attribution", in.Attribution}, {"harm", in.Harm}} {
		if err := measure.CheckObject(f.name, f.raw); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	c := Case{ID: newID("c-"), Org: a.Org, Title: in.Title, Summary: in.Summary, Attribution: orObject(in.Attribution),
		Harm: orObject(in.Harm), CreatedBy: a.ID, Measures: []string{}}
	ctx := r.Context()
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO cases (id, org_id, title, summary, attribution, harm, created_by)
			VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING created_at`, c.ID, c.Org, c.Title, c.Summary, c.Attribution, c.Harm, c.CreatedBy).Scan(&c.CreatedAt); err != nil {
			return err
		}
		return audit.Append(ctx, tx, "case/"+c.ID, &audit.Record{PolicyVersion: s.Authz.Version(),
			Actor: audit.Actor{ID: a.ID, Roles: rolesOf(a), Org: a.Org}, Action: "case.created", Case: c.ID,
			Details: map[string]any{"title": c.Title},
		})
	})
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusCreated, c)
}

func orObject(raw json.RawMessage) json.RawMessage {
	if len(raw) == 0 || string(raw) == "null" {
		return json.RawMessage("{}")
	}
	return raw
}

// caseColumns reads a case with what the need-to-know rule asks of it: whether any of its
// measures was put before the Commission, and the executors their sealed versions name.
const caseColumns = `c.id, c.org_id, c.title, c.summary, c.attribution, c.harm, c.created_by, c.created_at,
	COALESCE((SELECT array_agg(m.id ORDER BY m.created_at) FROM measures m WHERE m.case_id = c.id), '{}'),
	EXISTS (SELECT 1 FROM measures m JOIN measure_versions v ON v.measure_id = m.id WHERE m.case_id = c.id),
	COALESCE((SELECT array_agg(DISTINCT x) FROM measures m, jsonb_array_elements_text(COALESCE(m.facts->'named_executors', '[]')) x
		WHERE m.case_id = c.id), '{}')`

func scanCase(row pgx.Row) (Case, authz.Subject, error) {
	var c Case
	var subj authz.Subject
	err := row.Scan(&c.ID, &c.Org, &c.Title, &c.Summary, &c.Attribution, &c.Harm, &c.CreatedBy, &c.CreatedAt, &c.Measures,
		&subj.BeforeCommission, &subj.NamedExecutors)
	subj.Org = c.Org
	return c, subj, err
}

// readCase loads the case named in the path if the actor may read it (see mayRead).
func (s *Server) readCase(r *http.Request, what string) (Case, error) {
	c, subj, err := scanCase(s.DB.QueryRow(r.Context(), `SELECT `+caseColumns+` FROM cases c WHERE c.id = $1`, r.PathValue("case")))
	if errors.Is(err, pgx.ErrNoRows) {
		return c, &Error{Status: 404, Code: "not_found", Message: "no case " + measure.Clip(r.PathValue("case"), 64)}
	}
	if err != nil {
		return c, err
	}
	return c, s.mayRead(r, subj, what, c.ID, "")
}

func (s *Server) getCase(w http.ResponseWriter, r *http.Request) {
	c, err := s.readCase(r, "case")
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

// MaxPage bounds one page of a list.
const MaxPage = 500

// page reads ?limit= (default 50, at most MaxPage) and ?offset=.
func page(r *http.Request) (limit, offset int, err error) {
	limit, offset = 50, 0
	q := r.URL.Query()
	if v := q.Get("limit"); v != "" {
		if limit, err = strconv.Atoi(v); err != nil || limit < 1 || limit > MaxPage {
			return 0, 0, &measure.FieldError{Field: "limit", Message: fmt.Sprintf("must be a number from 1 to %d", MaxPage)}
		}
	}
	if v := q.Get("offset"); v != "" {
		if offset, err = strconv.Atoi(v); err != nil || offset < 0 {
			return 0, 0, &measure.FieldError{Field: "offset", Message: "must be a number from 0"}
		}
	}
	return limit, offset, nil
}

// listCases lists the cases the actor may read, newest first, a page at a time. The query
// keeps to the need-to-know rule; each row is checked against authz.CanRead as well.
func (s *Server) listCases(w http.ResponseWriter, r *http.Request) {
	a := actorOf(r)
	limit, offset, err := page(r)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	sc := s.reads().Scope(a)
	rows, err := s.DB.Query(r.Context(), `SELECT `+caseColumns+` FROM cases c
		WHERE $1 OR ($2 <> '' AND c.org_id = $2)
			OR ($3 <> '' AND EXISTS (SELECT 1 FROM measures m WHERE m.case_id = c.id AND COALESCE(m.facts->'named_executors', '[]') ? $3))
			OR ($4 AND EXISTS (SELECT 1 FROM measures m JOIN measure_versions v ON v.measure_id = m.id WHERE m.case_id = c.id))
		ORDER BY c.created_at DESC, c.id LIMIT $5 OFFSET $6`,
		sc.All, sc.Org, sc.Executor, sc.Commission, limit, offset)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	defer rows.Close()
	out := []Case{}
	for rows.Next() {
		c, subj, err := scanCase(rows)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		if err := s.reads().CanRead(a, subj); err != nil {
			s.Log.Error("the case list's query and the need-to-know rule disagree", "case", c.ID, "actor", a.ID)
			continue
		}
		out = append(out, c)
	}
	if err := rows.Err(); err != nil {
		s.fail(w, r, err)
		return
	}
	if a.Has(authz.Auditor) && len(out) > 0 {
		if err := s.mayRead(r, authz.Subject{}, "cases", "", ""); err != nil {
			s.fail(w, r, err)
			return
		}
	}
	writeJSON(w, http.StatusOK, out)
}

// checkCase checks a case's text as it arrives.
func checkCase(title, summary string) error {
	if fe := measure.CheckLine("title", title, measure.MaxLine); fe != nil {
		return fe
	}
	if strings.TrimSpace(title) == "" {
		return &measure.FieldError{Field: "title", Message: "is required"}
	}
	if fe := measure.CheckText("summary", summary, measure.MaxText); fe != nil {
		return fe
	}
	return nil
}
