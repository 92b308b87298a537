package service

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/takedown/takedown/internal/measure"
)

// Aftermath is what happened to a measure after its approval (or emergency declaration): the
// order, the execution steps (a page of them), the reports and the notifications. The
// information requests and answers and the post-hoc decisions are in the dossier's history
// and decisions.
type Aftermath struct {
	Order         *OrderRecord        `json:"order,omitempty"`
	Steps         []StepRecord        `json:"steps"`
	StepsN        int                 `json:"steps_matching"`
	Reports       []ReportRecord      `json:"reports"`
	Notifications []NotificationEntry `json:"notifications"`
}

// OrderRecord is an order issued to a server's administrator.
type OrderRecord struct {
	measure.Order
	IssuedBy string    `json:"issued_by"`
	Outcome  string    `json:"outcome,omitempty"`
	At       time.Time `json:"at"`
}

// StepRecord is one logged execution step.
type StepRecord struct {
	Seq       int       `json:"seq"`
	Executor  string    `json:"executor"`
	Witness   string    `json:"witness"`
	Target    string    `json:"target"`
	Technique string    `json:"technique"`
	Action    string    `json:"action"`
	Result    string    `json:"result"`
	At        time.Time `json:"at"`
}

// ReportRecord is the post-execution report or the Commission's notification after an
// emergency.
type ReportRecord struct {
	Kind       string    `json:"kind"` // post_execution | commission_notification
	Author     string    `json:"author"`
	Body       string    `json:"body"`
	VerifiedBy string    `json:"verified_by,omitempty"`
	At         time.Time `json:"at"`
}

// NotificationEntry is one affected party told (or a deferral with its reason).
type NotificationEntry struct {
	Seq        int       `json:"seq"`
	Addressee  string    `json:"addressee"`
	Status     string    `json:"status"`
	Reason     string    `json:"reason,omitempty"`
	RecordedBy string    `json:"recorded_by"`
	At         time.Time `json:"at"`
}

// StepQuery picks a page of a measure's steps: Search matches the target (contains, any case).
type StepQuery struct {
	Search string
	Page
}

// aftermathOf reads what happened after approval.
func (s *Service) aftermathOf(ctx context.Context, m Measure, q StepQuery) (Aftermath, error) {
	var out Aftermath
	var o OrderRecord
	var outcome *string
	err := s.DB.QueryRow(ctx, `SELECT addressee, content, deadline, proof, issued_by, outcome, at FROM orders WHERE measure_id = $1`, m.ID).
		Scan(&o.Addressee, &o.Content, &o.Deadline, &o.Proof, &o.IssuedBy, &outcome, &o.At)
	switch {
	case err == nil:
		if outcome != nil {
			o.Outcome = *outcome
		}
		out.Order = &o
	case !errors.Is(err, pgx.ErrNoRows):
		return out, fmt.Errorf("read the order of %s: %w", m.ID, err)
	}
	if fe := measure.CheckQuery("sq", q.Search, measure.MaxTargetValue); fe != nil {
		return out, fe
	}
	limit := q.Limit
	if limit <= 0 || limit > MaxPage {
		limit = MaxPage
	}
	// Steps name their targets as the targets are held, in A-labels: a name searched for in
	// Unicode is searched for as stored, as the target search does.
	search := measure.ASCIISearch(q.Search)
	if err := s.DB.QueryRow(ctx, `SELECT count(*) FROM execution_steps WHERE measure_id = $1 AND ($2 = '' OR strpos(lower(target), lower($2)) > 0)`,
		m.ID, search).Scan(&out.StepsN); err != nil {
		return out, fmt.Errorf("count the steps of %s: %w", m.ID, err)
	}
	rows, err := s.DB.Query(ctx, `SELECT seq, executor_id, witness_id, target, technique, action, result, at FROM execution_steps
		WHERE measure_id = $1 AND ($2 = '' OR strpos(lower(target), lower($2)) > 0) ORDER BY seq LIMIT $3 OFFSET $4`,
		m.ID, search, limit, max(q.Offset, 0))
	if err != nil {
		return out, fmt.Errorf("read the steps of %s: %w", m.ID, err)
	}
	if out.Steps, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (StepRecord, error) {
		var st StepRecord
		err := row.Scan(&st.Seq, &st.Executor, &st.Witness, &st.Target, &st.Technique, &st.Action, &st.Result, &st.At)
		return st, err
	}); err != nil {
		return out, fmt.Errorf("read the steps of %s: %w", m.ID, err)
	}
	rows, err = s.DB.Query(ctx, `SELECT kind, author_id, body, COALESCE(verified_by, ''), at FROM reports WHERE measure_id = $1 ORDER BY at`, m.ID)
	if err != nil {
		return out, fmt.Errorf("read the reports of %s: %w", m.ID, err)
	}
	if out.Reports, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (ReportRecord, error) {
		var r ReportRecord
		err := row.Scan(&r.Kind, &r.Author, &r.Body, &r.VerifiedBy, &r.At)
		return r, err
	}); err != nil {
		return out, fmt.Errorf("read the reports of %s: %w", m.ID, err)
	}
	rows, err = s.DB.Query(ctx, `SELECT seq, addressee, status, reason, recorded_by, at FROM notifications WHERE measure_id = $1 ORDER BY seq`, m.ID)
	if err != nil {
		return out, fmt.Errorf("read the notifications of %s: %w", m.ID, err)
	}
	if out.Notifications, err = pgx.CollectRows(rows, func(row pgx.CollectableRow) (NotificationEntry, error) {
		var n NotificationEntry
		err := row.Scan(&n.Seq, &n.Addressee, &n.Status, &n.Reason, &n.RecordedBy, &n.At)
		return n, err
	}); err != nil {
		return out, fmt.Errorf("read the notifications of %s: %w", m.ID, err)
	}
	return out, nil
}
