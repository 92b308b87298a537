package service

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/internal/refusal"
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
	OrgName     string          `json:"org_name,omitempty"` // the requesting agency in words
}

// NewCase is what opening a case takes.
type NewCase struct {
	Title       string          `json:"title"`
	Summary     string          `json:"summary"`
	Attribution json.RawMessage `json:"attribution"`
	Harm        json.RawMessage `json:"harm"`
}

// check checks a case's text as it arrives.
func (in NewCase) check() error {
	if fe := measure.CheckLine("title", in.Title, measure.MaxLine); fe != nil {
		return fe
	}
	if strings.TrimSpace(in.Title) == "" {
		return &measure.FieldError{Field: "title", Message: "is required"}
	}
	if fe := measure.CheckText("summary", in.Summary, measure.MaxText); fe != nil {
		return fe
	}
	if err := measure.CheckObject("attribution", in.Attribution); err != nil {
		return err
	}
	return measure.CheckObject("harm", in.Harm)
}

// CreateCase opens a case in the officer's organisation.
func (s *Service) CreateCase(ctx context.Context, a authz.Actor, in NewCase) (Case, error) {
	if !a.Has(authz.Officer) {
		return Case{}, s.refuse(ctx, a, On{}, "case.create", &authz.Denied{Rule: "role", Reason: "opening a case needs the officer role"})
	}
	if err := in.check(); err != nil {
		return Case{}, s.refuse(ctx, a, On{}, "case.create", err)
	}
	c := Case{ID: NewID("c-"), Org: a.Org, Title: in.Title, Summary: in.Summary, Attribution: orObject(in.Attribution),
		Harm: orObject(in.Harm), CreatedBy: a.ID, Measures: []string{}}
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		if err := tx.QueryRow(ctx, `INSERT INTO cases (id, org_id, title, summary, attribution, harm, created_by)
			VALUES ($1,$2,$3,$4,$5,$6,$7) RETURNING created_at`, c.ID, c.Org, c.Title, c.Summary, c.Attribution, c.Harm, c.CreatedBy).Scan(&c.CreatedAt); err != nil {
			return err
		}
		return s.append(ctx, tx, a, "case/"+c.ID, &audit.Record{Action: "case.created", Case: c.ID,
			Details: map[string]any{"title": c.Title}})
	})
	if err != nil {
		return Case{}, fmt.Errorf("open case: %w", err)
	}
	return c, nil
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
		WHERE m.case_id = c.id), '{}'),
	COALESCE((SELECT o.name FROM organisations o WHERE o.id = c.org_id), '')`

func scanCase(row pgx.Row) (Case, authz.Subject, error) {
	var c Case
	var subj authz.Subject
	err := row.Scan(&c.ID, &c.Org, &c.Title, &c.Summary, &c.Attribution, &c.Harm, &c.CreatedBy, &c.CreatedAt, &c.Measures,
		&subj.BeforeCommission, &subj.NamedExecutors, &c.OrgName)
	subj.Org = c.Org
	return c, subj, err
}

// Case returns a case the actor may read (see mayRead).
func (s *Service) Case(ctx context.Context, a authz.Actor, id string) (Case, error) {
	c, err := s.readCase(ctx, a, id, "case")
	if err != nil {
		return c, err
	}
	// Only the measures of it the reader may open: an ID answered with 404 is no help.
	ms, err := s.measures(ctx, a, MeasureFilter{Case: c.ID, Page: Page{Limit: MaxPage}})
	if err != nil {
		return c, err
	}
	c.Measures = make([]string, 0, len(ms))
	for i := len(ms) - 1; i >= 0; i-- { // oldest first, as before
		c.Measures = append(c.Measures, ms[i].ID)
	}
	return c, nil
}

func (s *Service) readCase(ctx context.Context, a authz.Actor, id, what string) (Case, error) {
	var c Case
	var subj authz.Subject
	err := pgx.ErrNoRows // an ID we could not have issued is not asked of the database
	if wellFormedID(id) {
		c, subj, err = scanCase(s.DB.QueryRow(ctx, `SELECT `+caseColumns+` FROM cases c WHERE c.id = $1`, id))
	}
	if errors.Is(err, pgx.ErrNoRows) {
		// Audited as a hidden one is, so that the two answers cost alike.
		nf := refusal.New(refusal.NotFound, "no case %s", measure.Clip(id, 64))
		s.Refused(ctx, a, On{}, "read."+what, nf)
		return c, nf
	}
	if err != nil {
		return c, fmt.Errorf("read case: %w", err)
	}
	if err := s.holdOrgs(ctx, []string{c.ID}, []*string{&c.Org}); err != nil {
		return c, err
	}
	subj.Org = c.Org
	return c, s.mayRead(ctx, a, subj, what, On{Case: c.ID})
}

// Cases lists the cases the actor may read, newest first, a page at a time. The query keeps
// to the need-to-know rule; each row is checked against the rule's scope as well (authz tests hold
// the scope to CanRead).
func (s *Service) Cases(ctx context.Context, a authz.Actor, p Page) ([]Case, error) {
	if err := p.Check(); err != nil {
		return nil, err
	}
	sc := s.reads().Scope(a)
	rows, err := s.DB.Query(ctx, `SELECT `+caseColumns+` FROM cases c
		WHERE $1 OR ($2 <> '' AND c.org_id = $2)
			OR ($3 <> '' AND EXISTS (SELECT 1 FROM measures m WHERE m.case_id = c.id AND COALESCE(m.facts->'named_executors', '[]') ? $3))
			OR ($4 AND EXISTS (SELECT 1 FROM measures m JOIN measure_versions v ON v.measure_id = m.id WHERE m.case_id = c.id))
		ORDER BY c.created_at DESC, c.id LIMIT $5 OFFSET $6`,
		sc.All, sc.Org, sc.Executor, sc.Commission, p.Limit, p.Offset)
	if err != nil {
		return nil, fmt.Errorf("list cases: %w", err)
	}
	defer rows.Close()
	var all []Case
	var subjs []authz.Subject
	for rows.Next() {
		c, subj, err := scanCase(rows)
		if err != nil {
			return nil, fmt.Errorf("list cases: %w", err)
		}
		all, subjs = append(all, c), append(subjs, subj)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list cases: %w", err)
	}
	rows.Close()
	ids, orgs := make([]string, len(all)), make([]*string, len(all))
	for i := range all {
		ids[i], orgs[i] = all[i].ID, &all[i].Org
	}
	moved := func(i int) bool { return all[i].Org != subjs[i].Org }
	if err := s.holdOrgs(ctx, ids, orgs); err != nil {
		return nil, err
	}
	out := []Case{}
	for i, c := range all {
		wasMoved := moved(i)
		subjs[i].Org = c.Org
		if !sc.Allows(subjs[i]) {
			if !wasMoved {
				s.Log.ErrorContext(ctx, "the case list's query and the need-to-know rule disagree", "case", c.ID, "actor", a.ID)
			}
			continue
		}
		out = append(out, c)
	}
	if len(out) > 0 {
		if err := s.auditRead(ctx, a, "cases", On{}); err != nil {
			return nil, err
		}
	}
	return out, nil
}

// mayRead applies the need-to-know rule to a case: a refusal is audited and answered exactly as
// a case that does not exist (the reader learns nothing of what exists); an auditor's read of
// case content is audited.
func (s *Service) mayRead(ctx context.Context, a authz.Actor, subj authz.Subject, what string, on On) error {
	if err := s.reads().CanRead(a, subj); err != nil {
		s.Refused(ctx, a, on, "read."+what, err)
		return refusal.Hidden(what, on.Case)
	}
	return s.auditRead(ctx, a, what, on)
}

// auditRead records an auditor's read of case content (a list, a record, a file).
func (s *Service) auditRead(ctx context.Context, a authz.Actor, what string, on On) error {
	if !a.Has(authz.Auditor) {
		return nil
	}
	err := pgx.BeginFunc(ctx, s.DB, func(tx pgx.Tx) error {
		return s.append(ctx, tx, a, "read/"+NewID(""), &audit.Record{Action: "read." + what, Case: on.Case, Measure: on.Measure})
	})
	if err != nil {
		return fmt.Errorf("audit the read of %s: %w", what, err)
	}
	return nil
}
