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
	return s.available(a, m, time.Now())
}

func (s *Service) available(a authz.Actor, m Measure, now time.Time) []authz.Op {
	var ops []authz.Op
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

// WorkItem is a measure waiting on someone, with what they may do, since when, and by when
// (Deadline is zero where the lifecycle keeps none).
type WorkItem struct {
	Measure  MeasureSummary `json:"measure"`
	Ops      []authz.Op     `json:"ops"`
	Since    time.Time      `json:"since"`
	Deadline time.Time      `json:"deadline,omitzero"`
	Overdue  bool           `json:"overdue"`
}

// deadline is when the lifecycle expects a measure in stage to have moved on (zero: it keeps
// no deadline there): the Commission's decision target, the approval window, the emergency
// notification, the post-hoc review, the report and the notification of the affected.
func deadline(cfg workflows.Config, stage measure.Stage, since, windowEnd, emergencyAt time.Time, urgent bool) time.Time {
	switch stage {
	case measure.CommissionReview, measure.InfoRequested:
		if urgent {
			return since.Add(cfg.DecisionTargetUrgent)
		}
		return since.Add(cfg.DecisionTarget)
	case measure.Approved, measure.OrderIssued, measure.Executing:
		return windowEnd
	case measure.EmergencyExecuting:
		return emergencyAt.Add(cfg.EmergencyNotification)
	case measure.Executed:
		if !emergencyAt.IsZero() {
			return emergencyAt.Add(cfg.EmergencyNotification)
		}
		return since.Add(cfg.ReportDue)
	case measure.CommissionNotified:
		return since.Add(cfg.PostHocReview)
	case measure.PostHocReviewed:
		return since.Add(cfg.ReportDue)
	case measure.Notifying:
		return since.Add(cfg.NotificationDue)
	}
	return time.Time{}
}

// terminal stages wait on nobody.
var terminal = []measure.Stage{"CLOSED", "WITHDRAWN", "EXPIRED", "REJECTED"}

// Work lists what waits on a, oldest first: the measures they may read and act on now.
func (s *Service) Work(ctx context.Context, a authz.Actor) ([]WorkItem, error) {
	sc := s.reads().Scope(a)
	args := readable(sc)
	args["terminal"], args["limit"] = terminal, MaxPage
	now := time.Now()
	type judged struct {
		stage    measure.Stage
		relation uint16
	}
	seen := map[judged][]authz.Op{}
	// since: when the measure entered its stage (before the Commission, when this version was
	// first put before it, so an information request does not restart the clock).
	// The page's rows are chosen first, by the index on updated_at; what each shows besides
	// (its stage's start, window, emergency) is looked up for those rows only.
	rows, err := s.DB.Query(ctx, `SELECT m.id, m.case_id, m.org_id, COALESCE(m.plan->>'title', ''), m.stage, m.version, m.digest,
			m.requester_id, m.updated_at, m.facts, EXISTS (SELECT 1 FROM measure_versions v WHERE v.measure_id = m.id),
			COALESCE(CASE WHEN m.stage IN ('COMMISSION_REVIEW', 'INFO_REQUESTED')
				THEN (SELECT min(h.entered_at) FROM stage_history h WHERE h.measure_id = m.id AND h.version = m.version AND h.stage = 'COMMISSION_REVIEW')
				ELSE (SELECT max(h.entered_at) FROM stage_history h WHERE h.measure_id = m.id AND h.stage = m.stage) END, m.updated_at),
			COALESCE((m.approval->>'window_end')::timestamptz, 'epoch'),
			COALESCE((SELECT min(h.entered_at) FROM stage_history h WHERE h.measure_id = m.id AND h.stage = 'EMERGENCY_EXECUTING'), 'epoch'),
			COALESCE((m.plan->>'urgent')::boolean, false)
		FROM (SELECT m.*, c.org_id FROM measures m JOIN cases c ON c.id = m.case_id
			WHERE m.stage <> ALL(@terminal) AND `+measureReadable+`
			ORDER BY m.updated_at, m.id LIMIT @limit) m
		ORDER BY m.updated_at, m.id`, args)
	if err != nil {
		return nil, fmt.Errorf("list work: %w", err)
	}
	defer rows.Close()
	out := []WorkItem{}
	for rows.Next() {
		var m Measure
		var sum MeasureSummary
		var facts []byte
		var since, windowEnd, emergencyAt time.Time
		var urgent bool
		if err := rows.Scan(&sum.ID, &sum.Case, &sum.Org, &sum.Title, &sum.Stage, &sum.Version, &sum.Digest, &sum.Requester, &sum.UpdatedAt,
			&facts, &m.BeforeCommission, &since, &windowEnd, &emergencyAt, &urgent); err != nil {
			return nil, fmt.Errorf("list work: %w", err)
		}
		if windowEnd.Unix() == 0 {
			windowEnd = time.Time{}
		}
		if emergencyAt.Unix() == 0 {
			emergencyAt = time.Time{}
		}
		if err := json.Unmarshal(facts, &m.Facts); err != nil {
			return nil, fmt.Errorf("decode facts of %s: %w", sum.ID, err)
		}
		m.ID, m.Stage, m.Org = sum.ID, sum.Stage, sum.Org
		if !sc.Allows(m.Subject()) {
			continue
		}
		// Measures in the same stage and the same relation to a offer the same operations
		// (authz.Relation): each is judged once per list.
		key := judged{m.Stage, authz.Relation(a, m.Facts)}
		ops, ok := seen[key]
		if !ok {
			ops = s.available(a, m, now)
			seen[key] = ops
		}
		if len(ops) > 0 {
			it := WorkItem{Measure: sum, Ops: ops, Since: since, Deadline: deadline(s.Workflow, sum.Stage, since, windowEnd, emergencyAt, urgent)}
			it.Overdue = !it.Deadline.IsZero() && now.After(it.Deadline)
			out = append(out, it)
		}
	}
	if err := rows.Err(); err != nil {
		return nil, err
	}
	// Oldest first: what has waited longest in its stage.
	slices.SortStableFunc(out, func(x, y WorkItem) int { return x.Since.Compare(y.Since) })
	return out, nil
}

// StageCount is how many measures the reader may read are in one stage.
type StageCount struct {
	Stage measure.Stage `json:"stage"`
	N     int           `json:"n"`
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
