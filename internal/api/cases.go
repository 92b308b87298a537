package api

import (
	"encoding/json"
	"net/http"
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

func (s *Server) loadCase(r *http.Request, id string) (Case, error) {
	var c Case
	ctx := r.Context()
	err := s.DB.QueryRow(ctx, `SELECT id, org_id, title, summary, attribution, harm, created_by, created_at,
		COALESCE((SELECT array_agg(m.id ORDER BY m.created_at) FROM measures m WHERE m.case_id = c.id), '{}')
		FROM cases c WHERE id = $1`, id).
		Scan(&c.ID, &c.Org, &c.Title, &c.Summary, &c.Attribution, &c.Harm, &c.CreatedBy, &c.CreatedAt, &c.Measures)
	return c, err
}

func (s *Server) getCase(w http.ResponseWriter, r *http.Request) {
	c, err := s.loadCase(r, r.PathValue("case"))
	if err != nil {
		s.fail(w, r, err)
		return
	}
	writeJSON(w, http.StatusOK, c)
}

func (s *Server) listCases(w http.ResponseWriter, r *http.Request) {
	rows, err := s.DB.Query(r.Context(), `SELECT id FROM cases ORDER BY created_at DESC LIMIT 500`)
	if err != nil {
		s.fail(w, r, err)
		return
	}
	ids, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		s.fail(w, r, err)
		return
	}
	out := []Case{}
	for _, id := range ids {
		c, err := s.loadCase(r, id)
		if err != nil {
			s.fail(w, r, err)
			return
		}
		out = append(out, c)
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
