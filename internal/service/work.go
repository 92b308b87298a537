package service

import (
	"context"
	"encoding/json"
	"fmt"
	"slices"
	"time"

	"github.com/takedown/takedown/authz"
	"github.com/takedown/takedown/internal/measure"
	"github.com/takedown/takedown/workflows"
)

// Available lists the operations a may take on m now: the stage allows them and the policy
// and the separation of duties would. Pages show only these; the service refuses the rest
// anyway.
func (s *Service) Available(a authz.Actor, m Measure) []authz.Op {
	var ops []authz.Op
	now := time.Now()
	for _, op := range authz.Ops {
		if op == authz.OpEditDraft || !slices.Contains(workflows.StagesFor(op), m.Stage) {
			continue
		}
		if s.Authz.Check(op, a, m.Facts, now) == nil {
			ops = append(ops, op)
		}
	}
	return ops
}

// WorkItem is a measure waiting on someone, with what they may do.
type WorkItem struct {
	Measure MeasureSummary
	Ops     []authz.Op
}

// terminal stages wait on nobody.
var terminal = []measure.Stage{"CLOSED", "WITHDRAWN", "EXPIRED", "REJECTED"}

// Work lists what waits on a, oldest first: the measures they may read and act on now.
func (s *Service) Work(ctx context.Context, a authz.Actor) ([]WorkItem, error) {
	sc := s.reads().Scope(a)
	args := readable(sc)
	args["terminal"], args["limit"] = terminal, MaxPage
	rows, err := s.DB.Query(ctx, `SELECT m.id, m.case_id, c.org_id, COALESCE(m.plan->>'title', ''), m.stage, m.version, m.digest,
			m.requester_id, m.updated_at, m.facts, EXISTS (SELECT 1 FROM measure_versions v WHERE v.measure_id = m.id)
		FROM measures m JOIN cases c ON c.id = m.case_id
		WHERE m.stage <> ALL(@terminal) AND `+measureReadable+`
		ORDER BY m.updated_at, m.id LIMIT @limit`, args)
	if err != nil {
		return nil, fmt.Errorf("list work: %w", err)
	}
	defer rows.Close()
	out := []WorkItem{}
	for rows.Next() {
		var m Measure
		var sum MeasureSummary
		var facts []byte
		if err := rows.Scan(&sum.ID, &sum.Case, &sum.Org, &sum.Title, &sum.Stage, &sum.Version, &sum.Digest, &sum.Requester, &sum.UpdatedAt,
			&facts, &m.BeforeCommission); err != nil {
			return nil, fmt.Errorf("list work: %w", err)
		}
		if err := json.Unmarshal(facts, &m.Facts); err != nil {
			return nil, fmt.Errorf("decode facts of %s: %w", sum.ID, err)
		}
		m.ID, m.Stage, m.Org = sum.ID, sum.Stage, sum.Org
		if !sc.Allows(m.Subject()) {
			continue
		}
		if ops := s.Available(a, m); len(ops) > 0 {
			out = append(out, WorkItem{Measure: sum, Ops: ops})
		}
	}
	return out, rows.Err()
}

// StageCount is how many measures the reader may read are in one stage.
type StageCount struct {
	Stage measure.Stage
	N     int
}

// StageCounts counts the measures a may read, by stage.
func (s *Service) StageCounts(ctx context.Context, a authz.Actor) ([]StageCount, error) {
	rows, err := s.DB.Query(ctx, `SELECT m.stage, count(*) FROM measures m JOIN cases c ON c.id = m.case_id
		WHERE `+measureReadable+` GROUP BY m.stage ORDER BY m.stage`, readable(s.reads().Scope(a)))
	if err != nil {
		return nil, fmt.Errorf("count measures: %w", err)
	}
	defer rows.Close()
	var out []StageCount
	for rows.Next() {
		var c StageCount
		if err := rows.Scan(&c.Stage, &c.N); err != nil {
			return nil, err
		}
		out = append(out, c)
	}
	return out, rows.Err()
}
