package service

import (
	"context"
	"encoding/json"
	"fmt"
	"github.com/jackc/pgx/v5"
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
		// An order is issued only on an order measure, and execution of one waits for it, then
		// needs an approval that covers execution by the agency itself.
		order := m.Plan.Kind == measure.OrderAdministrator
		if (op == authz.OpIssueOrder && !order) || (op == authz.OpStartExecution && m.Stage == measure.Approved && order) ||
			(op == authz.OpStartExecution && m.Stage == measure.OrderIssued && (m.Approval == nil || !m.Approval.SelfExecutionAllowed)) {
			continue
		}
		// Only an emergency measure, executed without the Commission's approval, is notified
		// to it after the fact.
		if op == authz.OpNotifyCommission && m.Approval != nil {
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
	// DeadlineName names the deadline (decision_overdue, report_overdue…).
	DeadlineName string `json:"deadline_name,omitempty"`
	Overdue      bool   `json:"overdue"`
}

// terminal stages wait on nobody.
var terminal = []measure.Stage{"CLOSED", "WITHDRAWN", "EXPIRED", "REJECTED"}

// Work lists what waits on a, oldest first: the measures they may read and act on now.
func (s *Service) Work(ctx context.Context, a authz.Actor) ([]WorkItem, error) {
	return s.workAt(ctx, a, time.Now())
}

// workAt is Work as it stands at now (the notifier's clock).
func (s *Service) workAt(ctx context.Context, a authz.Actor, now time.Time) ([]WorkItem, error) {
	sc := s.reads().Scope(a)
	args := readable(sc)
	type judged struct {
		stage         measure.Stage
		relation      uint16
		kind          measure.Kind
		selfExecution bool
		approved      bool
	}
	seen := map[judged][]authz.Op{}
	all, err := s.openMeasures(ctx, args)
	if err != nil {
		return nil, err
	}
	out := []WorkItem{}
	for _, r := range all {
		m, sum, c := r.m, r.sum, r.c
		m.ID, m.Stage, m.Org = sum.ID, sum.Stage, sum.Org
		if !sc.Allows(m.Subject()) {
			continue
		}
		// Measures in the same stage and the same relation to a offer the same operations
		// (authz.Relation): each is judged once per list.
		key := judged{m.Stage, authz.Relation(a, m.Facts), m.Plan.Kind, m.Approval != nil && m.Approval.SelfExecutionAllowed, m.Approval != nil}
		ops, ok := seen[key]
		if !ok {
			ops = s.available(a, m, now)
			seen[key] = ops
		}
		if len(ops) > 0 {
			it := WorkItem{Measure: sum, Ops: ops, Since: c.Since}
			if ds := s.Workflow.Deadlines(c); len(ds) > 0 {
				it.Deadline, it.DeadlineName = ds[0].At, ds[0].Name
			}
			it.Overdue = !it.Deadline.IsZero() && now.After(it.Deadline)
			out = append(out, it)
		}
	}
	// Oldest first: what has waited longest in its stage.
	slices.SortStableFunc(out, func(x, y WorkItem) int { return x.Since.Compare(y.Since) })
	return out, nil
}

// openRow is an open measure with the instants its deadlines run from.
type openRow struct {
	m   Measure
	sum MeasureSummary
	c   workflows.Clock
}

// openMeasures reads the open measures args' read scope allows (measureReadable), oldest
// change first, at most MaxPage, with their clocks and their case and organisation as the
// creation records say.
func (s *Service) openMeasures(ctx context.Context, args pgx.NamedArgs) ([]openRow, error) {
	args["terminal"], args["limit"] = terminal, MaxPage
	// The instants the deadlines run from (workflows.Clock), from the stages' history: the page's
	// rows are chosen first, by the index on updated_at; the rest is looked up for those rows.
	rows, err := s.DB.Query(ctx, `SELECT m.id, m.case_id, m.org_id, COALESCE(m.plan->>'title', ''), m.stage, m.version, m.digest,
			m.requester_id, m.updated_at, m.facts, EXISTS (SELECT 1 FROM measure_versions v WHERE v.measure_id = m.id),
			COALESCE((SELECT max(h.entered_at) FROM stage_history h WHERE h.measure_id = m.id AND h.stage = m.stage), m.updated_at),
			COALESCE((SELECT min(h.entered_at) FROM stage_history h WHERE h.measure_id = m.id AND h.stage = 'EMERGENCY_EXECUTING'), 'epoch'),
			COALESCE((SELECT max(h.entered_at) FROM stage_history h WHERE h.measure_id = m.id AND h.stage = 'COMMISSION_NOTIFIED'), 'epoch'),
			COALESCE((SELECT max(h.entered_at) FROM stage_history h WHERE h.measure_id = m.id AND h.stage = 'EXECUTED'), 'epoch'),
			COALESCE((m.plan->>'urgent')::boolean, false),
			COALESCE((m.approval->>'window_end')::timestamptz, 'epoch'),
			COALESCE((SELECT o.deadline FROM orders o WHERE o.measure_id = m.id), 'epoch'),
			COALESCE(m.plan->>'kind', ''), COALESCE((m.approval->>'self_execution_allowed')::boolean, false)
		FROM (SELECT m.*, c.org_id FROM measures m JOIN cases c ON c.id = m.case_id
			WHERE m.stage <> ALL(@terminal) AND `+measureReadable+`
			ORDER BY m.updated_at, m.id LIMIT @limit) m
		ORDER BY m.updated_at, m.id`, args)
	if err != nil {
		return nil, fmt.Errorf("list work: %w", err)
	}
	defer rows.Close()
	var all []openRow
	for rows.Next() {
		var r openRow
		var facts []byte
		var selfExecution bool
		c := &r.c
		if err := rows.Scan(&r.sum.ID, &r.sum.Case, &r.sum.Org, &r.sum.Title, &r.sum.Stage, &r.sum.Version, &r.sum.Digest, &r.sum.Requester, &r.sum.UpdatedAt,
			&facts, &r.m.BeforeCommission, &c.Since, &c.Declared, &c.Notified, &c.Executed, &c.Urgent, &c.WindowEnd, &c.OrderDue,
			&r.m.Plan.Kind, &selfExecution); err != nil {
			return nil, fmt.Errorf("list work: %w", err)
		}
		for _, t := range []*time.Time{&c.Declared, &c.Notified, &c.Executed, &c.WindowEnd, &c.OrderDue} {
			if t.Unix() == 0 {
				*t = time.Time{}
			}
		}
		c.Stage = r.sum.Stage
		if !c.WindowEnd.IsZero() {
			r.m.Approval = &measure.Approval{WindowEnd: c.WindowEnd, SelfExecutionAllowed: selfExecution}
		}
		if err := json.Unmarshal(facts, &r.m.Facts); err != nil {
			return nil, fmt.Errorf("decode facts of %s: %w", r.sum.ID, err)
		}
		all = append(all, r)
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list work: %w", err)
	}
	rows.Close() // the lookups below take their own connection
	// The case and organisation as the creation records say (a case or measure moved in SQL).
	ids, cases, orgs := make([]string, len(all)), make([]*string, len(all)), make([]*string, len(all))
	for i := range all {
		ids[i], cases[i], orgs[i] = all[i].sum.ID, &all[i].sum.Case, &all[i].sum.Org
	}
	if err := s.holdMeasures(ctx, s.DB, ids, cases, orgs); err != nil {
		return nil, err
	}
	return all, nil
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
