package service

import (
	"cmp"
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/takedown/takedown/audit"
	"github.com/takedown/takedown/authz"
)

// MeasureReport is everything the file of one measure holds: its dossier (the plan sealed,
// the evidence with hashes, every decision and every audit entry with its log index), with
// its targets and steps counted rather than listed, and the signed checkpoint the indexes are
// proved against.
type MeasureReport struct {
	Dossier
	TargetSummary TargetSummary `json:"target_summary"`
	StepSummary   StepSummary   `json:"step_summary"`
	// Checkpoint is the newest signed checkpoint (a C2SP signed note): every index below its
	// size has an inclusion proof against it (GET /proof/{index}).
	Checkpoint string    `json:"checkpoint"`
	Generated  time.Time `json:"generated"`
}

// TargetSummary counts a version's targets by what a reviewer asks of them.
type TargetSummary struct {
	Total       int            `json:"total"`
	ByKind      map[string]int `json:"by_kind"`
	ByLocation  map[string]int `json:"by_location"`
	ByRole      map[string]int `json:"by_role"`
	ByOwnership map[string]int `json:"by_ownership"`
	ByCountry   map[string]int `json:"by_country"`
	Imported    int            `json:"imported"` // with a STIX or MISP source
}

// StepSummary counts the execution steps.
type StepSummary struct {
	Total       int            `json:"total"`
	ByResult    map[string]int `json:"by_result"`
	First, Last *time.Time
}

// stepSummary counts a measure's execution steps by result, with the first and last step's time.
func (s *Service) stepSummary(ctx context.Context, measureID string) (StepSummary, error) {
	ss := StepSummary{ByResult: map[string]int{}}
	rows, err := s.DB.Query(ctx, `SELECT result, count(*), min(at), max(at) FROM execution_steps WHERE measure_id = $1 GROUP BY result`, measureID)
	if err != nil {
		return ss, fmt.Errorf("count the steps of %s: %w", measureID, err)
	}
	defer rows.Close()
	for rows.Next() {
		var result string
		var n int
		var first, last time.Time
		if err := rows.Scan(&result, &n, &first, &last); err != nil {
			return ss, err
		}
		ss.Total += n
		ss.ByResult[result] = n
		if ss.First == nil || first.Before(*ss.First) {
			ss.First = &first
		}
		if ss.Last == nil || last.After(*ss.Last) {
			ss.Last = &last
		}
	}
	return ss, rows.Err()
}

// Report reads a measure's file for one who may read the measure.
func (s *Service) Report(ctx context.Context, a authz.Actor, id string) (MeasureReport, error) {
	d, err := s.Dossier(ctx, a, id, TargetQuery{Page: Page{Limit: 1}, Steps: StepQuery{Page: Page{Limit: 20}}})
	if err != nil {
		return MeasureReport{}, err
	}
	r := MeasureReport{Dossier: d, Generated: s.now().UTC()}
	ts := TargetSummary{ByKind: map[string]int{}, ByLocation: map[string]int{}, ByRole: map[string]int{}, ByOwnership: map[string]int{}, ByCountry: map[string]int{}}
	rows, err := s.DB.Query(ctx, `SELECT kind, location, role, ownership, country, source <> '', count(*) FROM targets
		WHERE measure_id = $1 AND version = $2 GROUP BY 1, 2, 3, 4, 5, 6`, d.Measure.ID, d.Measure.Version)
	if err != nil {
		return r, fmt.Errorf("count the targets of %s: %w", id, err)
	}
	for rows.Next() {
		var kind, loc, role, own, country string
		var imported bool
		var n int
		if err := rows.Scan(&kind, &loc, &role, &own, &country, &imported, &n); err != nil {
			rows.Close()
			return r, err
		}
		ts.Total += n
		ts.ByKind[kind] += n
		ts.ByLocation[loc] += n
		ts.ByRole[role] += n
		ts.ByOwnership[own] += n
		if country != "" {
			ts.ByCountry[country] += n
		}
		if imported {
			ts.Imported += n
		}
	}
	rows.Close()
	r.TargetSummary = ts
	ss, err := s.stepSummary(ctx, d.Measure.ID)
	if err != nil {
		return r, err
	}
	r.StepSummary = ss
	if ck, err := s.Checkpoint(ctx); err == nil {
		r.Checkpoint = string(ck)
	}
	// The log's records about the measure that are not its own: its notifications sent and
	// the files imported into it (each names the measure in its details).
	rows, err = s.DB.Query(ctx, `SELECT e.record, l.idx FROM audit_entries e JOIN audit_log l ON l.entry_id = e.id
		WHERE (e.key LIKE 'notification/%' OR e.key LIKE 'import/%') AND e.measure_id IS NULL AND position($1 in convert_from(e.record, 'UTF8')) > 0
		ORDER BY l.idx`, d.Measure.ID)
	if err != nil {
		return r, fmt.Errorf("read the notifications of %s: %w", id, err)
	}
	for rows.Next() {
		var raw []byte
		var idx int64
		if err := rows.Scan(&raw, &idx); err != nil {
			rows.Close()
			return r, err
		}
		var e audit.Entry
		if json.Unmarshal(raw, &e.Record) != nil || e.Details["measure"] != d.Measure.ID {
			continue
		}
		e.Index = &idx
		r.History = append(r.History, e)
	}
	rows.Close()
	// In the log's order, which is what an index names; entries not yet in the log last, by time.
	slices.SortStableFunc(r.History, func(a, b audit.Entry) int {
		switch {
		case a.Index != nil && b.Index != nil:
			return cmp.Compare(*a.Index, *b.Index)
		case a.Index != nil:
			return -1
		case b.Index != nil:
			return 1
		}
		return a.TS.Compare(b.TS)
	})
	// A review's or gate's row holds no digest; the log's record of it does.
	action := map[string]string{"legal": "legal_review", "command": "command_review", "gate": "record_gate", "vote": "vote",
		"conflict": "declare_conflict", "post_hoc": "post_hoc_decision", "report_verification": "verify_report"}
	for i := range r.Decisions {
		dd := &r.Decisions[i]
		if dd.Digest != "" {
			continue
		}
		for _, e := range r.History {
			if e.Action == action[dd.Kind] && e.Actor.ID == dd.By && e.Version == dd.Version {
				if dg, ok := e.Details["digest"].(string); ok {
					dd.Digest = dg
				}
			}
		}
	}
	return r, nil
}
