package daemon_test

import (
	"context"
	"testing"
	"time"

	"github.com/takedown/takedown/internal/testenv"
	"github.com/takedown/takedown/workflows"
)

// TestSwappedTargetIsNotExecuted: a database owner who rewrites an approved target in SQL
// (or adds one) does not get it executed. Execution is held to the seal the workflow keeps:
// starting, logging steps and finishing are refused with the rule "seal", each refusal audited;
// the honest rows restored, execution goes on.
func TestSwappedTargetIsNotExecuted(t *testing.T) {
	e := testenv.Start(t, workflows.DefaultConfig())
	impatient(e)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	reviewAndApprove(t, e, id)

	for _, tc := range []struct{ name, tamper, restore string }{
		{"a target's value rewritten",
			`UPDATE targets SET value = '198.18.0.66' WHERE measure_id = $1 AND value = '203.0.113.10'`,
			`UPDATE targets SET value = '203.0.113.10' WHERE measure_id = $1 AND value = '198.18.0.66'`},
		{"a target added to the approved version",
			`INSERT INTO targets (measure_id, version, seq, kind, value, location, role)
				SELECT measure_id, version, 99, 'ip', '198.18.0.66', 'domestic', 'c2' FROM targets WHERE measure_id = $1 LIMIT 1`,
			`DELETE FROM targets WHERE measure_id = $1 AND seq = 99`},
		{"a target's location changed",
			`UPDATE targets SET location = 'abroad' WHERE measure_id = $1 AND value = '203.0.113.10'`,
			`UPDATE targets SET location = 'domestic' WHERE measure_id = $1 AND value = '203.0.113.10'`},
	} {
		if _, err := e.Owner.Exec(ctx, tc.tamper, id); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
		_, err := u["executor"].Act(ctx, id, "start_execution", nil)
		refusedWith(t, err, 403, "seal")
		if _, err := e.Owner.Exec(ctx, tc.restore, id); err != nil {
			t.Fatalf("%s: %v", tc.name, err)
		}
	}
	mustAct(t, u["executor"], id, "start_execution", nil, "EXECUTING")
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "update.example-c2.jp"), "EXECUTING")

	// Swapped while executing: the step on the swapped address is refused, and so is one on
	// an approved address, until the rows agree with the seal again.
	if _, err := e.Owner.Exec(ctx, `UPDATE targets SET value = '198.18.0.66' WHERE measure_id = $1 AND value = '203.0.113.10'`, id); err != nil {
		t.Fatal(err)
	}
	_, err := u["executor"].Act(ctx, id, "log_steps", steps(e, time.Now(), "198.18.0.66"))
	refusedWith(t, err, 403, "seal")
	_, err = u["executor"].Act(ctx, id, "log_steps", steps(e, time.Now(), "update.example-c2.jp"))
	refusedWith(t, err, 403, "seal")
	_, err = u["executor"].Act(ctx, id, "finish_execution", nil)
	refusedWith(t, err, 403, "seal")
	if _, err := e.Owner.Exec(ctx, `UPDATE targets SET value = '203.0.113.10' WHERE measure_id = $1 AND value = '198.18.0.66'`, id); err != nil {
		t.Fatal(err)
	}
	_, err = u["executor"].Act(ctx, id, "log_steps", steps(e, time.Now(), "198.18.0.66"))
	refusedWith(t, err, 403, "scope")
	mustAct(t, u["executor"], id, "log_steps", steps(e, time.Now(), "203.0.113.10"), "EXECUTING")
	mustAct(t, u["executor"], id, "finish_execution", nil, "EXECUTED")

	requireRefusals(t, u["auditor"], id, "refused.start_execution seal", "refused.log_steps seal", "refused.finish_execution seal", "refused.log_steps scope")
	var steps int
	if err := e.Owner.QueryRow(ctx, `SELECT count(*) FROM execution_steps WHERE measure_id = $1 AND target = '198.18.0.66'`, id).Scan(&steps); err != nil || steps != 0 {
		t.Fatalf("%d steps on the swapped address were stored (%v)", steps, err)
	}
	verifyLog(t, e)
}

// TestDecisionOnATamperedVersionIsRefused: a vote on a version whose target rows were changed
// after it was sealed is refused, whatever the page showed.
func TestDecisionOnATamperedVersionIsRefused(t *testing.T) {
	e := testenv.Start(t, workflows.DefaultConfig())
	impatient(e)
	ctx := context.Background()
	u := e.Users
	id := newDraft(t, e, "self_execute", domestic).ID
	mustAct(t, u["officer"], id, "submit", nil, "LEGAL_REVIEW")
	if _, err := e.Owner.Exec(ctx, `DELETE FROM targets WHERE measure_id = $1 AND value = 'update.example-c2.jp'`, id); err != nil {
		t.Fatal(err)
	}
	_, err := u["legal"].Act(ctx, id, "legal_review", legalApproval)
	refusedWith(t, err, 403, "seal")
	requireRefusals(t, u["auditor"], id, "refused.legal_review seal")
}
