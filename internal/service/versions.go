package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
)

// Decision is one review, vote, conflict declaration or gate recorded on a measure, with the
// version and digest it was given on: a decision on an older version is void.
type Decision struct {
	Kind       string    `json:"kind"` // legal, command, post_hoc, report_verification, vote, conflict, gate
	Version    int       `json:"version"`
	Digest     string    `json:"digest,omitempty"`
	By         string    `json:"by"`
	Decision   string    `json:"decision"`
	Reason     string    `json:"reason,omitempty"`
	Conditions []string  `json:"conditions,omitempty"`
	At         time.Time `json:"at"`
}

// Decisions returns every decision recorded on a measure, oldest first.
func (s *Service) Decisions(ctx context.Context, a authz.Actor, id string) ([]Decision, error) {
	m, err := s.readMeasure(ctx, a, id, "decisions")
	if err != nil {
		return nil, err
	}
	return s.decisionsOf(ctx, m)
}

func (s *Service) decisionsOf(ctx context.Context, m Measure) ([]Decision, error) {
	rows, err := s.DB.Query(ctx, `
		SELECT kind, version, '' AS digest, reviewer_id, decision, reason, '[]'::jsonb, at FROM reviews WHERE measure_id = $1
		UNION ALL SELECT 'vote', version, digest, member_id, vote, reason, conditions, at FROM votes WHERE measure_id = $1
		UNION ALL SELECT 'conflict', version, '', member_id, CASE WHEN conflicted THEN 'recused' ELSE 'no_conflict' END, reason, '[]'::jsonb, at
			FROM conflict_declarations WHERE measure_id = $1
		UNION ALL SELECT 'gate', version, '', recorded_by, kind, reference, '[]'::jsonb, at FROM gates WHERE measure_id = $1
		ORDER BY at, kind`, m.ID)
	if err != nil {
		return nil, fmt.Errorf("read decisions of %s: %w", m.ID, err)
	}
	out, err := pgx.CollectRows(rows, func(row pgx.CollectableRow) (Decision, error) {
		var d Decision
		err := row.Scan(&d.Kind, &d.Version, &d.Digest, &d.By, &d.Decision, &d.Reason, &d.Conditions, &d.At)
		return d, err
	})
	if err != nil {
		return nil, fmt.Errorf("read decisions of %s: %w", m.ID, err)
	}
	return out, nil
}

// FieldChange is one plan field that differs between two versions, each side as text.
type FieldChange struct {
	Field string `json:"field"`
	Old   string `json:"old"`
	New   string `json:"new"`
}

// Diff is what changed from the last sealed version before the current one: the plan field by
// field, and the targets added and removed (the first MaxDiffTargets of each, with counts).
type Diff struct {
	From       int              `json:"from"`
	FromDigest string           `json:"from_digest"`
	To         int              `json:"to"`
	Fields     []FieldChange    `json:"fields"`
	Added      []measure.Target `json:"added"`
	Removed    []measure.Target `json:"removed"`
	AddedN     int              `json:"added_count"`
	RemovedN   int              `json:"removed_count"`
}

// MaxDiffTargets bounds the targets a diff lists on each side.
const MaxDiffTargets = 100

// Changes returns what changed since the previous version, or nil when the measure has only
// one.
func (s *Service) Changes(ctx context.Context, a authz.Actor, id string) (*Diff, error) {
	m, err := s.readMeasure(ctx, a, id, "changes")
	if err != nil {
		return nil, err
	}
	return s.changesOf(ctx, m)
}

func (s *Service) changesOf(ctx context.Context, m Measure) (*Diff, error) {
	d := Diff{To: m.Version}
	var oldPlan []byte
	err := s.DB.QueryRow(ctx, `SELECT version, digest, COALESCE(body->'content'->'plan', '{}') FROM measure_versions
		WHERE measure_id = $1 AND version < $2 ORDER BY version DESC LIMIT 1`, m.ID, m.Version).Scan(&d.From, &d.FromDigest, &oldPlan)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil, nil
	}
	if err != nil {
		return nil, fmt.Errorf("read the previous version of %s: %w", m.ID, err)
	}
	newPlan, err := json.Marshal(m.Plan)
	if err != nil {
		return nil, err
	}
	if d.Fields, err = fieldChanges(oldPlan, newPlan); err != nil {
		return nil, fmt.Errorf("compare versions of %s: %w", m.ID, err)
	}
	const cols = `kind, value, COALESCE(port, 0), location, country, role, ownership, hosting_provider, registrar`
	side := func(from, to int) ([]measure.Target, int, error) {
		q := `SELECT ` + cols + ` FROM targets WHERE measure_id = $1 AND version = $2 EXCEPT SELECT ` + cols + ` FROM targets WHERE measure_id = $1 AND version = $3`
		var n int
		if err := s.DB.QueryRow(ctx, `SELECT count(*) FROM (`+q+`) d`, m.ID, to, from).Scan(&n); err != nil {
			return nil, 0, err
		}
		rows, err := s.DB.Query(ctx, q+` ORDER BY 2, 1 LIMIT `+fmt.Sprint(MaxDiffTargets), m.ID, to, from)
		if err != nil {
			return nil, 0, err
		}
		ts, err := pgx.CollectRows(rows, scanTarget)
		return ts, n, err
	}
	if d.Added, d.AddedN, err = side(d.From, d.To); err != nil {
		return nil, fmt.Errorf("compare targets of %s: %w", m.ID, err)
	}
	if d.Removed, d.RemovedN, err = side(d.To, d.From); err != nil {
		return nil, fmt.Errorf("compare targets of %s: %w", m.ID, err)
	}
	return &d, nil
}

func scanTarget(row pgx.CollectableRow) (measure.Target, error) {
	var t measure.Target
	err := row.Scan(&t.Kind, &t.Value, &t.Port, &t.Location, &t.Country, &t.Role, &t.Ownership, &t.HostingProvider, &t.Registrar)
	return t, err
}

// fieldChanges compares two plans' top-level JSON fields, in name order.
func fieldChanges(oldPlan, newPlan []byte) ([]FieldChange, error) {
	var o, n map[string]json.RawMessage
	if err := json.Unmarshal(oldPlan, &o); err != nil {
		return nil, err
	}
	if err := json.Unmarshal(newPlan, &n); err != nil {
		return nil, err
	}
	var names []string
	for k := range o {
		names = append(names, k)
	}
	for k := range n {
		if _, ok := o[k]; !ok {
			names = append(names, k)
		}
	}
	slices.Sort(names)
	out := []FieldChange{}
	for _, k := range names {
		ov, nv := shown(o[k]), shown(n[k])
		if ov != nv {
			out = append(out, FieldChange{Field: k, Old: ov, New: nv})
		}
	}
	return out, nil
}

// shown is a JSON value as a person reads it: strings as they are, empty values as nothing,
// the rest as compact JSON.
func shown(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	t := strings.TrimSpace(string(v))
	switch t {
	case "", "null", "[]", "{}", "false", "0":
		return ""
	}
	var buf bytes.Buffer
	if err := json.Compact(&buf, v); err != nil {
		return t
	}
	return buf.String()
}

// Dossier is all a reviewer sees of a measure on one screen.
type Dossier struct {
	Measure   Measure          `json:"measure"`
	Targets   []measure.Target `json:"targets"`
	TargetsN  int              `json:"targets_matching"`
	Evidence  []Evidence       `json:"evidence"`
	Decisions []Decision       `json:"decisions"`
	Changes   *Diff            `json:"changes"`
	History   []audit.Entry    `json:"history"`
}

// Dossier reads a measure with a page of its targets, its evidence, decisions, changes since
// the previous version and its timeline: one read check, and for an auditor one audited read.
func (s *Service) Dossier(ctx context.Context, a authz.Actor, id string, q TargetQuery) (Dossier, error) {
	m, err := s.readMeasure(ctx, a, id, "dossier")
	if err != nil {
		return Dossier{}, err
	}
	d := Dossier{Measure: m}
	if d.Targets, d.TargetsN, err = s.targetPage(ctx, m, q); err != nil {
		return d, err
	}
	if d.Evidence, err = s.evidenceOf(ctx, m); err != nil {
		return d, err
	}
	if d.Decisions, err = s.decisionsOf(ctx, m); err != nil {
		return d, err
	}
	if d.Changes, err = s.changesOf(ctx, m); err != nil {
		return d, err
	}
	d.History, err = s.historyOf(ctx, m)
	return d, err
}
