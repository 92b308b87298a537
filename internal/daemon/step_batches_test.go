package daemon_test

import (
	"context"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestStepBatchesStayOutOfHistory: a batch of execution steps is stored before it is sent, and
// the workflow's history holds its summary: a batch of the most steps one call takes adds a
// few kilobytes to the history, not the 1.6 MB the steps weigh, and the stored copy is gone
// once the steps are recorded.
func TestStepBatchesStayOutOfHistory(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	reviewAndApprove(t, e, id)
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")
	size := func() int64 {
		t.Helper()
		d, err := e.D.Temporal.DescribeWorkflowExecution(ctx, workflows.ID(id), "")
		if err != nil {
			t.Fatal(err)
		}
		return d.GetWorkflowExecutionInfo().GetHistorySizeBytes()
	}
	before := size()
	targets := make([]string, 10_000) // measure.MaxSteps, on the approved targets in turn
	for i := range targets {
		targets[i] = []string{"203.0.113.10", "update.example-c2.jp"}[i%2]
	}
	batch := steps(e, time.Now(), targets...)
	mustAct(t, u["executor"], id, "log_steps", batch, "EXECUTING")
	if grew := size() - before; grew > 64<<10 {
		t.Errorf("a batch of 10,000 steps added %d bytes to the workflow's history; its summary should", grew)
	}
	var stored, staged int
	if err := e.Owner.QueryRow(ctx, `SELECT (SELECT count(*) FROM execution_steps WHERE measure_id = $1), (SELECT count(*) FROM step_batches WHERE measure_id = $1)`,
		id).Scan(&stored, &staged); err != nil {
		t.Fatal(err)
	}
	if stored != 10_000 || staged != 0 {
		t.Errorf("%d steps recorded and %d batches left stored; want 10000 and 0", stored, staged)
	}
	verifyLog(t, e)
}

// TestStepBatchAlteredInSQLIsRefused: an insider with the database rewrites a batch of steps
// between the moment the service stores it and the moment the activity records it (a trigger
// here, which a real insider could race by hand), or drops it. The activity records steps only
// when they hash to the digest the workflow judged: the batch is refused with the rule "seal",
// audited, and no step is stored; once the trigger is gone the same steps are taken.
func TestStepBatchAlteredInSQLIsRefused(t *testing.T) {
	t.Parallel() // a server of its own and nothing timed closely: runs beside the others
	e := testenv.Start(t, workflows.DefaultConfig())
	impatient(e)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	reviewAndApprove(t, e, id)
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")
	for _, tc := range []struct{ name, body string }{
		{"a target swapped", `NEW.steps := convert_to(replace(convert_from(NEW.steps, 'UTF8'), '203.0.113.10', '198.18.0.66'), 'UTF8'); RETURN NEW;`},
		{"the batch dropped", `RETURN NULL;`},
	} {
		if _, err := e.Owner.Exec(ctx, fmt.Sprintf(`CREATE OR REPLACE FUNCTION insider() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN %s END $$;
			CREATE OR REPLACE TRIGGER insider BEFORE INSERT OR UPDATE ON step_batches FOR EACH ROW EXECUTE FUNCTION insider()`, tc.body)); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, err := u["executor"].Act(ctx, id, "log_steps", steps(e, time.Now(), "203.0.113.10"))
		refusedWith(t, err, 403, "seal")
	}
	var stored int
	if err := e.Owner.QueryRow(ctx, `SELECT count(*) FROM execution_steps WHERE measure_id = $1`, id).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("%d steps stored from altered batches (%v)", stored, err)
	}
	if _, err := e.Owner.Exec(ctx, `DROP TRIGGER insider ON step_batches`); err != nil {
		t.Fatal(err)
	}
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "203.0.113.10"), "EXECUTING")
	requireRefusals(t, u["auditor"], id, "refused.log_steps seal", "refused.log_steps seal")
	verifyLog(t, e)
}

// TestLargeMeasureJudgesStepsAgainstTheSealedSet: on a measure of more targets than the
// activity reads whole at every batch, a row rewritten in SQL between batches still gets no
// step: the new value is refused as out of scope (the steps are judged against the set that
// hashed to the seal), and finishing, which reads every row, is refused while a row is
// rewritten or removed.
func TestLargeMeasureJudgesStepsAgainstTheSealedSet(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	const n = 10_000 // activities' cachedFrom
	ts := make([]map[string]any, n)
	for i := range ts {
		ts[i] = map[string]any{"kind": "ip", "value": fmt.Sprintf("10.%d.%d.%d", i>>16, i>>8&255, i&255), "location": "domestic", "role": "botnet_node"}
	}
	if _, err := u["officer"].AddTargets(ctx, id, ts); err != nil {
		t.Fatal(err)
	}
	reviewAndApprove(t, e, id)
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "10.0.0.1"), "EXECUTING")

	if _, err := e.Owner.Exec(ctx, `UPDATE targets SET value = '198.18.0.66' WHERE measure_id = $1 AND value = '10.0.0.2'`, id); err != nil {
		t.Fatal(err)
	}
	_, err := u["executor"].Act(ctx, id, "log_steps", steps(e, time.Now(), "198.18.0.66"))
	refusedWith(t, err, 403, "scope")
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "10.0.0.3"), "EXECUTING")

	if _, err := e.Owner.Exec(ctx, `UPDATE targets SET value = '10.0.0.2' WHERE measure_id = $1 AND value = '198.18.0.66'`, id); err != nil {
		t.Fatal(err)
	}
	// A row removed: the batches go on against the sealed set, and finishing is refused.
	if _, err := e.Owner.Exec(ctx, `DELETE FROM targets WHERE measure_id = $1 AND value = '10.0.0.4'`, id); err != nil {
		t.Fatal(err)
	}
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "10.0.0.5"), "EXECUTING")
	_, err = u["executor"].Act(ctx, id, "finish_execution", nil)
	refusedWith(t, err, 403, "seal")
	var stored int
	if err := e.Owner.QueryRow(ctx, `SELECT count(*) FROM execution_steps WHERE measure_id = $1 AND target = '198.18.0.66'`, id).Scan(&stored); err != nil || stored != 0 {
		t.Fatalf("%d steps on the rewritten address were stored (%v)", stored, err)
	}
	requireRefusals(t, u["auditor"], id, "refused.log_steps scope", "refused.finish_execution seal")
}

// TestIdenticalBatchesAtOnce: the same batch sent twice at the same moment (two tabs, a
// script run twice, no idempotency key) is two batches, each judged and recorded as if sent
// one after the other, and no tampering is alleged.
func TestIdenticalBatchesAtOnce(t *testing.T) {
	e := testenv.Shared(t)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	reviewAndApprove(t, e, id)
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")
	batch := steps(e, time.Now(), "203.0.113.10", "update.example-c2.jp")
	const senders = 3
	errs := make(chan error, senders)
	for range senders {
		go func() {
			_, err := u["executor"].Act(ctx, id, "log_steps", batch)
			errs <- err
		}()
	}
	for range senders {
		if err := <-errs; err != nil {
			t.Errorf("an identical batch sent at the same moment: %v", err)
		}
	}
	var stored int
	if err := e.Owner.QueryRow(ctx, `SELECT count(*) FROM execution_steps WHERE measure_id = $1`, id).Scan(&stored); err != nil || stored != 2*senders {
		t.Fatalf("%d steps recorded, want %d (%v)", stored, 2*senders, err)
	}
	h, err := u["auditor"].History(ctx, id)
	if err != nil {
		t.Fatal(err)
	}
	for _, r := range h {
		if strings.HasPrefix(r.Action, "refused.") {
			t.Errorf("refused: %s %v", r.Action, r.Details)
		}
	}
}
